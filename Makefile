# The two commands a newcomer needs: `make dev` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin

# make dev: every process on this machine, no Docker (README).
export DATABASE_URL  ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
export KAFKA_BROKERS ?= 127.0.0.1:9092
# Development mode: secrets (ADMIN_TOKEN) fall back to their development
# defaults. Outside it a process without its secrets refuses to start.
export DEV_MODE      ?= 1
export ETCD_ENDPOINTS ?= 127.0.0.1:2379
# Static binaries, as in the images (deploy/build.sh); every go command
# here uses the same setting, so tests and builds share one build cache.
export CGO_ENABLED := 0
DEV_DIR := .dev

# Every module of go.work (make new-service adds one there): what make
# test vets and tests and make lint checks.
PACKAGES := $(shell sed -n 's|^[[:space:]]*\(\./[^[:space:]]*\)[[:space:]]*$$|\1/...|p' go.work)

.PHONY: help build dev observability prometheus test test-go modules rename test-short k6-check api-check api-docs workflows lint vulncheck sbom load chaos fmt clean new-service bench-relay bench bench-history profile

# `make` alone lists the targets: each has its purpose after "## ".
.DEFAULT_GOAL := help
help: ## list every target with what it does
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z0-9-]*:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Every command of platform/ and services/, with the version from git
# (deploy/build.sh: the same command the Dockerfile runs).
build: ## every command of platform/ and services/ into bin/
	deploy/build.sh $(BIN)

# Foreground; Ctrl-C stops every process in order (dev.procfile, run by
# platform/cmd/devrun, which reports when every process's /readyz answers):
# sidecars, then services, then etcd and the broker, each group within 8 s.
# A process that dies (kill -9 a replica to watch failover) leaves the
# others running.
dev: build ## the whole suite on this machine, no Docker (Ctrl-C stops it)
	mkdir -p $(DEV_DIR)
	exec $(BIN)/devrun dev.procfile

# Grafana, Tempo, Loki, Prometheus and Pyroscope in Docker for make dev
# (deploy/compose/observability.yaml; nothing is built): make dev then
# exports there. Stop it with docker compose -f deploy/compose/observability.yaml down.
observability: ## the compose stack's Grafana and backends for make dev (http://localhost:3000; needs Docker)
	docker compose -f deploy/compose/observability.yaml up -d --wait

# Prometheus beside make dev (Debian: apt-get install prometheus): scrapes
# every process, evaluates prometheus/rules, keeps exemplars; UI and
# alerts on http://localhost:9090 (classic UI: /classic/graph).
prometheus: ## Prometheus beside make dev, with the rules and exemplars (http://localhost:9090)
	@command -v prometheus >/dev/null || { echo "prometheus not found: sudo apt-get install prometheus"; exit 1; }
	mkdir -p $(DEV_DIR)/prometheus
	exec prometheus --config.file=prometheus/prometheus.dev.yml --storage.tsdb.path=$(DEV_DIR)/prometheus \
		--web.listen-address=127.0.0.1:9090 --enable-feature=exemplar-storage --web.enable-remote-write-receiver

# Every test. Dependencies: TEST_DATABASE_URL / TEST_KAFKA_BROKERS when set,
# else PostgreSQL and Kafka containers when Docker answers (testdeps,
# testcontainers), else the local PostgreSQL and an in-process Kafka broker.
# The end-to-end suite runs after the rest, alone: the tests that fill
# million-row tables hold a transaction open for seconds, and transaction
# ids are cluster-wide, so that would hold back the e2e suite's projector
# (docs/resilience.md).
test: ## every test: vet, module graph, promtool, k6 and API checks, unit, integration and end-to-end
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || \
		{ echo "make test needs promtool and prometheus: sudo apt-get install prometheus"; exit 1; }
	$(GO) vet $(PACKAGES)
	$(MAKE) --no-print-directory modules
	promtool check config prometheus/prometheus.dev.yml
	promtool check config prometheus/prometheus.compose.yml
	promtool check config prometheus/prometheus.host.yml
	promtool check rules prometheus/rules/*.rules.yml
	cd prometheus/tests && promtool test rules *.test.yml
	$(MAKE) --no-print-directory k6-check api-check workflows
	$(GO) build -o $(BIN)/ ./platform/cmd/testdeps
	$(BIN)/testdeps -- $(MAKE) --no-print-directory test-go

# make test's go test runs, under testdeps (which sets the TEST_* variables).
test-go: ## the go tests of make test, without its other checks (TEST_* variables as set)
	$(GO) test -count=1 -timeout 15m $(filter-out ./e2e/...,$(PACKAGES))
	$(GO) test -count=1 -timeout 10m ./e2e/...

# Every module of go.work on its own (GOWORK=off: its go.mod and replace
# lines only) builds and vets, and no two of the repository's modules
# require each other, directly or not (docs/architecture.md).
modules: ## every module builds and vets alone (GOWORK=off); the module graph has no cycle
	@set -e; for m in $(patsubst ./%/...,%,$(PACKAGES)); do \
		echo "modules: $$m"; (cd $$m && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...); done
	$(GO) run ./platform/cmd/modgraph $(patsubst ./%/...,%,$(PACKAGES))

# The GitHub workflows (.github/workflows) with actionlint at the version
# tools/go.mod pins; it runs shellcheck on their scripts when installed.
workflows: ## check the GitHub workflows with actionlint
	cd tools && GOWORK=off $(GO) build -o ../$(BIN)/ github.com/rhysd/actionlint/cmd/actionlint
	$(BIN)/actionlint

# Static analysis: staticcheck and gosec at the versions tools/go.mod pins
# (its own module, outside go.work, so their dependencies do not mix with
# the suite's). Zero findings; a suppression carries its reason:
# // #nosec G404 -- why.
lint: ## staticcheck, gosec and govulncheck at pinned versions
	cd tools && GOWORK=off $(GO) build -o ../$(BIN)/ honnef.co/go/tools/cmd/staticcheck github.com/securego/gosec/v2/cmd/gosec \
		golang.org/x/vuln/cmd/govulncheck golang.org/x/vulndb/cmd/indexdb github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod
	$(BIN)/staticcheck $(PACKAGES)
	$(BIN)/gosec -quiet -exclude-generated $(PACKAGES)
	$(MAKE) --no-print-directory vulncheck sbom

# Known vulnerabilities the code reaches, from the Go vulnerability
# database at the version tools/go.mod pins (golang.org/x/vulndb, indexed
# here: vuln.go.dev cannot be reached from every machine, and a pinned
# database gives the same answer on every run). govulncheck runs per
# module that ships in the image (it takes no go.work patterns; the test
# and tool modules, e2e, loadtest, deploy and dashboards, run on
# developers' machines and CI only); platform/cmd/vulngate fails on
# any finding tools/vulncheck-accepted.txt does not list with its reason.
# Update the database: cd tools && go get -tool golang.org/x/vulndb/cmd/indexdb@<newer pseudo-version>.
# An SBOM (CycloneDX JSON, bin/sbom/<command>.cdx.json) for each binary the
# image ships (the Dockerfile's list), built for the image's platform:
# every module and version linked into it, for a scanner or an auditor.
IMAGE_COMMANDS := platform/cmd:sidecar platform/cmd:redrive platform/cmd:probe platform/cmd:localsecrets \
	services/orders:cmd/orders services/payments:cmd/payments services/payments:cmd/psp services/inventory:cmd/inventory
sbom: ## an SBOM of every binary the image ships (bin/sbom/, CycloneDX; make lint writes them)
	@mkdir -p $(BIN)/sbom
	@set -e; for mc in $(IMAGE_COMMANDS); do m=$${mc%%:*}; main=$${mc##*:}; \
		(cd $$m && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(CURDIR)/$(BIN)/cyclonedx-gomod app -json -licenses=false \
			-main $$main -output $(CURDIR)/$(BIN)/sbom/$$(basename $$main).cdx.json .); done
	@echo "sbom: $$(ls $(BIN)/sbom | wc -l) SBOMs in $(BIN)/sbom"

VULNDB := $(BIN)/vulndb
SHIPPED_MODULES := platform platform/cmd services/orders services/payments services/inventory
vulncheck: ## govulncheck against the pinned vulnerability database; fails on a reachable finding not accepted with a reason
	rm -rf $(VULNDB)
	$(BIN)/indexdb -vulns "$$(cd tools && GOWORK=off $(GO) list -m -f '{{.Dir}}' golang.org/x/vulndb)/data/osv" -out $(VULNDB)
	@for m in $(SHIPPED_MODULES); do \
		(cd $$m && $(CURDIR)/$(BIN)/govulncheck -db file://$(CURDIR)/$(VULNDB) -format json ./...) || exit 1; \
		done > $(BIN)/vulncheck.json
	$(GO) run ./platform/cmd/vulngate tools/vulncheck-accepted.txt < $(BIN)/vulncheck.json

# Type-checks the k6 scripts (TypeScript over JavaScript, @types/k6): k6
# itself cannot be installed here. Then runs them under Node with k6's
# modules stubbed, to check the series their samples would make in
# Prometheus stay few (loadtest/k6/test). Needs Node.js and npm.
k6-check: ## type-check the k6 scripts and check the series their samples make
	@command -v npm >/dev/null || { echo "make test needs npm to type-check the k6 scripts: sudo apt-get install npm"; exit 1; }
	cd loadtest/k6 && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check

# api/openapi.yaml and api/asyncapi.yaml: Redocly's recommended rules as
# errors, and the AsyncAPI parser's validation (versions in
# api/package-lock.json). The e2e suite checks them against the running code.
api-check: ## lint the OpenAPI and AsyncAPI files
	@command -v npm >/dev/null || { echo "make test needs npm to lint api/: sudo apt-get install npm"; exit 1; }
	cd api && npm ci --no-audit --no-fund --loglevel=error && npm run --silent lint

# Both files as static HTML in api/html/ (compose serves the same pages on
# http://localhost:8088, the api-docs service).
api-docs: ## the API reference as static HTML in api/html/
	cd api && npm ci --no-audit --no-fund --loglevel=error && npm run --silent docs
	@echo "open api/html/index.html"

# A load scenario of loadtest/scenarios/scenarios.json against make dev,
# without k6 (loadrun: the same arrival profile and thresholds as
# loadtest/k6/$(SCENARIO).js). Exits non-zero when a threshold fails.
SCENARIO ?= smoke
load: ## a load scenario against make dev without k6 (SCENARIO=smoke|average|stress|…)
	$(GO) build -o $(BIN)/ ./loadtest/cmd/loadrun
	$(BIN)/loadrun -scenario $(SCENARIO)

# A seeded chaos run with invariants (loadtest/cmd/chaos): its own ports and
# scratch databases, so it runs beside make dev. The default (CI's) runs
# every kind of fault once, the broker paused 20 s; CHAOS_ARGS="-seed 7
# -duration 10m -every 12s" for a longer one (the broker paused 30 s); the
# report goes to chaos-report.json.
CHAOS_ARGS ?= -seed 1 -duration 200s -every 8s -rate 30 -broker-pause 20s
chaos: build ## a seeded chaos run with invariants, beside make dev (CHAOS_ARGS=…)
	$(GO) build -o $(BIN)/ ./loadtest/cmd/chaos
	$(BIN)/chaos -bin $(BIN) $(CHAOS_ARGS)

# A new service from the template (platform/cmd/newservice/template): a
# consumer of TOPIC with inbox and outbox, one table, an HTTP API, its own
# event contract and tests. It changes go.work and dev.procfile only, and
# joins make dev, build, test and lint through them (README, "Add a service").
TOPIC ?= payments.events
new-service: ## a new service from the template (NAME=shipping PORT=8085 [TOPIC=…])
	@test -n "$(NAME)" -a -n "$(PORT)" || { echo "usage: make new-service NAME=shipping PORT=8085 [TOPIC=payments.events]"; exit 1; }
	$(GO) run ./platform/cmd/newservice -name "$(NAME)" -port "$(PORT)" -topic "$(TOPIC)"

# The suite's throughput and cost per saga beside PostgreSQL's two
# ceilings (loadtest/bench.sh; docs/performance.md). Stop make dev first:
# it drops make dev's databases. BENCH_RATES=100:1300:50; BASE=<commit>
# measures that commit too, alternately, ROUNDS times; PEER_DIR=<a checkout
# of the Watermill peer> adds its saga step.
BENCH_RATES ?= 100:1300:50
bench: build ## throughput, cost per saga and latency beside PostgreSQL's ceilings (stop make dev first)
	BASE="$(BASE)" ROUNDS="$(ROUNDS)" PEER_DIR="$(PEER_DIR)" loadtest/bench.sh $(BENCH_RATES)

# The outbox relay end to end (8 writers, relay, broker, consumer): msg/s
# and commit→consumed latency; docs/performance.md compares it with the
# Watermill peer. Run it on a quiet machine.
# CPU per process and per saga, and each service's CPU profile, under a
# constant load (loadtest/profile.sh RATE DURATION; default 150/s, 30 s).
profile: build ## CPU per process and per saga, and CPU profiles, under a constant load
	loadtest/profile.sh $(PROFILE_ARGS)

# Saga latency at 100 orders/s from empty databases, then with a million
# events and a million inbox rows per service (issue 11: at most 1.5×).
bench-history: build ## saga latency from empty databases, then with a million events and inbox rows
	loadtest/history.sh

bench-relay: ## the outbox relay end to end, beside the Watermill peer
	$(GO) test -run x -bench 'Relay(EndToEnd|Drain)' -benchtime 20000x ./platform/outbox/

# Your own module path for a copy of this repository: every go.mod, import
# and template (platform/cmd/rename; README, "Copy it as a template").
rename: ## give a copy its own module path (MODULE=github.com/acme/shop)
	@test -n "$(MODULE)" || { echo "usage: make rename MODULE=github.com/acme/shop"; exit 1; }
	$(GO) run ./platform/cmd/rename -module "$(MODULE)"

test-short: ## the tests that take seconds (no end-to-end suite)
	$(GO) build -o $(BIN)/ ./platform/cmd/testdeps
	$(BIN)/testdeps -- $(GO) test -short -count=1 $(PACKAGES)

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

clean: ## remove bin/ and .dev/ (make dev's broker and etcd data; PostgreSQL is kept)
	rm -rf $(BIN) $(DEV_DIR)

# The two commands a newcomer needs: `make dev` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin

# make dev: every process on this machine, no Docker (CONTRACT.md).
export DATABASE_URL  ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
export KAFKA_BROKERS ?= 127.0.0.1:9092
export ADMIN_TOKEN   ?= dev-admin-token
DEV_DIR := .dev

BINARIES := ./platform/cmd/devkafka ./services/orders/cmd/orders ./services/payments/cmd/payments \
            ./services/payments/cmd/psp ./services/inventory/cmd/inventory
PACKAGES := ./platform/... ./services/orders/... ./services/payments/... ./services/inventory/... ./e2e/...

.PHONY: build dev test test-short vet fmt tools clean

build:
	$(GO) build -o $(BIN)/ $(BINARIES)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

tools: node_modules/.installed

# Foreground; Ctrl-C stops every process (concurrently forwards the signal
# and --kill-others stops the rest if one dies).
dev: build tools
	mkdir -p $(DEV_DIR)
	exec node_modules/.bin/concurrently --kill-others --kill-signal SIGTERM --prefix-colors auto \
		--names kafka,psp,inventory-1,inventory-2,payments,orders \
		"KAFKA_DATA_DIR=$(DEV_DIR)/kafka exec $(BIN)/devkafka" \
		"HTTP_ADDR=:8090 exec $(BIN)/psp" \
		"HTTP_ADDR=:8083 INSTANCE_ID=inventory-1 exec $(BIN)/inventory" \
		"HTTP_ADDR=:8084 INSTANCE_ID=inventory-2 exec $(BIN)/inventory" \
		"HTTP_ADDR=:8082 INSTANCE_ID=payments-1 exec $(BIN)/payments" \
		"HTTP_ADDR=:8081 INSTANCE_ID=orders-1 exec $(BIN)/orders"

# Every test. Dependencies: TEST_DATABASE_URL / TEST_KAFKA_BROKERS when set,
# else testcontainers when Docker answers, else the local PostgreSQL and an
# in-process Kafka broker.
test:
	$(GO) vet $(PACKAGES)
	$(GO) test -count=1 -timeout 15m $(PACKAGES)

test-short:
	$(GO) test -short -count=1 $(PACKAGES)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) $(DEV_DIR)

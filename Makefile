# The two commands a newcomer needs: `make dev` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin

# make dev: every process on this machine, no Docker (CONTRACT.md).
export DATABASE_URL  ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
export KAFKA_BROKERS ?= 127.0.0.1:9092
export ADMIN_TOKEN   ?= dev-admin-token
export ETCD_ENDPOINTS ?= 127.0.0.1:2379
DEV_DIR := .dev

BINARIES := ./platform/cmd/devkafka ./platform/cmd/devetcd ./platform/cmd/sidecar ./services/orders/cmd/orders ./services/payments/cmd/payments \
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
# to each). A process that dies (kill -9 a replica to watch failover) leaves
# the others running.
dev: build tools
	mkdir -p $(DEV_DIR)
	exec node_modules/.bin/concurrently --kill-signal SIGTERM --prefix-colors auto \
		--names kafka,etcd,psp,inventory-1,inventory-2,payments,orders,sidecar-inv-1,sidecar-inv-2,sidecar-pay,sidecar-ord \
		"KAFKA_DATA_DIR=$(DEV_DIR)/kafka exec $(BIN)/devkafka" \
		"ETCD_DATA_DIR=$(DEV_DIR)/etcd exec $(BIN)/devetcd" \
		"HTTP_ADDR=:8090 exec $(BIN)/psp" \
		"HTTP_ADDR=:8083 INSTANCE_ID=inventory-1 exec $(BIN)/inventory" \
		"HTTP_ADDR=:8084 INSTANCE_ID=inventory-2 exec $(BIN)/inventory" \
		"HTTP_ADDR=:8082 INSTANCE_ID=payments-1 exec $(BIN)/payments" \
		"HTTP_ADDR=:8081 INSTANCE_ID=orders-1 exec $(BIN)/orders" \
		"SERVICE_NAME=inventory INSTANCE_ID=inventory-1 SERVICE_ADDR=http://127.0.0.1:8083 HTTP_ADDR=:9083 exec $(BIN)/sidecar" \
		"SERVICE_NAME=inventory INSTANCE_ID=inventory-2 SERVICE_ADDR=http://127.0.0.1:8084 HTTP_ADDR=:9084 exec $(BIN)/sidecar" \
		"SERVICE_NAME=payments INSTANCE_ID=payments-1 SERVICE_ADDR=http://127.0.0.1:8082 HTTP_ADDR=:9082 exec $(BIN)/sidecar" \
		"SERVICE_NAME=orders INSTANCE_ID=orders-1 SERVICE_ADDR=http://127.0.0.1:8081 HTTP_ADDR=:9081 exec $(BIN)/sidecar"

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

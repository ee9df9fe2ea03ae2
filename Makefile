# cloudmux — make targets. `make dev` runs an all-embedded broker; `make test`
# installs what the tests need (Consul, built once and cached) and runs them all.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# promtool checks ops/prometheus (scripts/install-promtool.sh; make test sets it).
PROMTOOL    ?= $(lastword $(wildcard $(HOME)/.cache/cloudmux/bin/promtool-*))
BIN         := bin/cloudmux
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)

.PHONY: all build dev test test-unit test-faults lint bench deps clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cloudmux

## dev: run `cloudmux serve -dev` (memory store, fake local cloud, admin credentials printed)
dev: build
	./$(BIN) serve -dev

## deps: install what the tests need (Consul 1.14.11, built from the Go module proxy and cached)
deps:
	./scripts/test-deps.sh

## test: every test, with the race detector, against real components, plus lint
test:
	./scripts/test.sh

## test-faults: three brokers on a three-server Consul cluster under load; a broker and the Consul leader SIGKILLed
test-faults:
	eval "$$(./scripts/test-deps.sh)" && $(GO) test -count=1 -timeout 20m -tags faults -run '^TestActiveActiveUnderFaults$$' -v ./cmd/cloudmux

## test-unit: the fast tests only (no Consul agent)
test-unit:
	$(GO) test -short ./...

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags testcloud_disrupt ./cmd/cloudmux
	$(GO) vet -tags faults ./cmd/cloudmux
	$(GO) run $(STATICCHECK) ./...
	@if [ -n "$(PROMTOOL)" ]; then \
		$(PROMTOOL) check rules ops/prometheus/*.yml && (cd ops/prometheus/tests && $(PROMTOOL) test rules *.yml); \
	else echo "lint: promtool not found (scripts/install-promtool.sh installs it): ops/prometheus not checked"; fi

## bench: the benchmarks, printed as a table
bench:
	./scripts/bench.sh

clean:
	rm -rf bin

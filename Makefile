# Spool — developer tasks. `make` (or `make help`) lists them.

GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 10s
BIN       ?= bin/spool

# The race detector needs cgo, hence a C compiler. Without one, `make test`
# runs without it and says so, except under CI=true, where it fails.
RACE := $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$($(GO) env CC)" >/dev/null 2>&1 && echo -race)

.DEFAULT_GOAL := help
.PHONY: help build test test-short test-race chaos lint vet fmt-check golangci-lint fmt bench fuzz clean

help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build the spool binary into bin/spool.
	$(GO) build -o $(BIN) ./cmd/spool

test: ## Run every test (a throwaway PostgreSQL and Debian's chromium included) with the race detector, go vet and the gofmt check (what CI runs).
ifeq ($(RACE),)
ifeq ($(CI),true)
	@echo "make test: the race detector needs a C compiler (apt-get install gcc)"; exit 1
else
	@echo "WARNING: no C compiler, so no race detector (apt-get install gcc); testing without it"
endif
endif
	scripts/ensure-chromium
	scripts/with-postgres $(GO) test $(RACE) -count=1 $(PKGS)
	$(MAKE) --no-print-directory lint

test-race: test ## Same as test.

test-short: ## Run the quick tests only (no crash test), without the race detector.
	$(GO) test -short -count=1 $(PKGS)

# The chaos suite runs for CHAOS_DURATION and/or CHAOS_KILLS (the first
# reached ends it), shared between the stores of CHAOS_STORES.
CHAOS_DURATION ?=
CHAOS_KILLS    ?=
CHAOS_STORES   ?= embedded,postgres,failover

chaos: ## Run the chaos suite (test/chaos, not part of test) on the embedded store, PostgreSQL and a PostgreSQL failover pair: CHAOS_DURATION=10m and/or CHAOS_KILLS=200 (default 2m); root mounts a tmpfs for the full-disk fault. See docs/reliability.md.
	CHAOS_DURATION=$(if $(CHAOS_DURATION)$(CHAOS_KILLS),$(CHAOS_DURATION),2m) CHAOS_KILLS=$(CHAOS_KILLS) CHAOS_STORES=$(CHAOS_STORES) \
		scripts/with-postgres $(GO) test -count=1 -v -timeout 0 -run '^TestChaos$$' ./test/chaos

lint: vet fmt-check golangci-lint ## go vet, the gofmt check and golangci-lint (.golangci.yaml).

golangci-lint: ## golangci-lint at the pinned version (installed with go install when missing).
	scripts/golangci-lint run $(PKGS)

vet: ## go vet.
	$(GO) vet $(PKGS)

fmt-check: ## Fail if any Go file is not gofmt'ed.
	@files="$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))"; \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi

fmt: ## gofmt every Go file in place.
	gofmt -w $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')

bench: ## Run the benchmarks.
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

fuzz: ## Run each fuzz target for FUZZTIME (default 10s).
	@set -e; \
	for file in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		dir=$$(dirname $$file); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== $$dir $$name"; \
			$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$dir; \
		done; \
	done

clean: ## Remove build output.
	rm -rf bin

# tcpstated build, test and run targets. `make test` is what CI runs.
GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 30s

.PHONY: all build test lint vet fmt-check unit property-long bench-engine fuzz crashtest

all: build

build:
	$(GO) build $(PKGS)

## run: start the server on loopback (gRPC 127.0.0.1:50051, HTTP 127.0.0.1:8080, data in ./data)
.PHONY: run
run:
	$(GO) run ./cmd/tcpstated serve $(ARGS)

## test: everything CI checks: format, vet, proto lint, generated-code
## freshness, then every Go test with the race detector (unit, property,
## end-to-end)
test: fmt-check vet buf-lint gen-check unit conformance

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

## interop: tcpstated against the Linux kernel through a TUN device in a
## network namespace (needs root; also part of `make test`, which skips it
## without root unless CI=true); prints a PASS/FAIL line per check and the
## throughput table
.PHONY: interop
interop:
	$(GO) test -count=1 -v -run TestInterop ./interop/

## conformance: the FreeBSD TCP test suite (FREEBSD_SUITE, default
## ../shared/conformance/freebsd-tcp-testsuite) under profile=freebsd and
## profile=rfc, IPv4 and IPv6: a table per profile; fails when a folder
## passes fewer scripts than its floor in testdata/conformance/*.floors.
## Skips, saying so, where the folder is absent (CI always has it).
FREEBSD_SUITE ?= ../shared/conformance/freebsd-tcp-testsuite
.PHONY: conformance
conformance:
	@if [ ! -d "$(FREEBSD_SUITE)" ]; then \
		if [ -n "$$CI" ]; then echo "conformance: $(FREEBSD_SUITE) is missing (CI must have it)"; exit 1; fi; \
		echo "conformance: SKIP: $(FREEBSD_SUITE) is not here (set FREEBSD_SUITE to the suite's folder)"; exit 0; fi; \
	set -ex; $(GO) build -o bin/tcpstated ./cmd/tcpstated; \
	bin/tcpstated script suite --profile=freebsd --end=packetdrill --floors=testdata/conformance/freebsd.floors $(FREEBSD_SUITE); \
	bin/tcpstated script suite --profile=rfc --define STANDARD --end=packetdrill --floors=testdata/conformance/rfc.floors $(FREEBSD_SUITE)

## property-long: the lossy-link property test over many more seeds
property-long:
	TCPSTATED_PROPERTY_SEEDS=20000 $(GO) test -count=1 -run 'TestProperty' ./fsm/

## bench: the real server under load (unary, streaming, REST; fsync=never and
## always) against bare gRPC and gateway echo servers, and the memory of
## 10 000 idle sessions; prints a Markdown table (docs/PERFORMANCE.md).
## BENCH_ARGS passes flags to tcpstated-bench (e.g. --runs 1 --duration 1s).
.PHONY: bench
bench:
	$(GO) build -o bin/tcpstated ./cmd/tcpstated
	$(GO) build -o bin/tcpstated-bench ./cmd/tcpstated-bench
	bin/tcpstated-bench --server-bin bin/tcpstated $(BENCH_ARGS)

## bench-loss-sim: goodput of each loss-recovery configuration over the
## simulated 20 ms link (fsm, virtual clock, loss 0.1/1/5 %) beside the Mathis
## estimate; writes the table into docs/PERFORMANCE.md and docs/loss-goodput.svg
.PHONY: bench-loss-sim
bench-loss-sim:
	TCPSTATED_WRITE_LOSS_DOCS=1 $(GO) test -count=1 -v -run '^TestSimulatedLinkFigures$$' ./fsm/

## bench-engine: engine hot-path benchmarks (figures go in docs/PERFORMANCE.md)
bench-engine:
	$(GO) test -run '^$$' -bench '$(or $(BENCH),.)' -benchmem -count=$(or $(COUNT),1) ./fsm/

## fuzz: run every fuzz target in the repository (every func Fuzz* in a
## _test.go file) for FUZZTIME (default 30 s) each, printing the executions
## each reached; CI (.ci/run) runs it after make test
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for d in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for t in $$(grep -h '^func Fuzz' $$d/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== $$d $$t for $(FUZZTIME)"; \
			if ! $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$d/ >"$$log" 2>&1; then cat "$$log"; exit 1; fi; \
			grep 'execs:' "$$log" | tail -n 1; \
		done; \
	done

## crashtest: SIGKILL the server N times (default 100) under concurrent
## clients and check that nothing acknowledged was lost (make test runs
## the same harness with N=20 in cmd/crashtest's tests); then 3 replicas on
## one PostgreSQL, RN events (default 20: SIGKILL a replica, SIGSTOP one
## past its lease, crash PostgreSQL once)
crashtest: N ?= 100
crashtest: RN ?= 20
crashtest:
	$(GO) run ./cmd/crashtest -n $(N)
	$(GO) run ./cmd/crashtest -replicas 3 -n $(RN)

include mk/generate.mk

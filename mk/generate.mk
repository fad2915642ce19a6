# API code generation, included by the main Makefile.
#
#   make generate   regenerate gen/ from api/proto (buf + local Go plugins)
#   make buf-lint   lint the protos (buf STANDARD rules)
#   make gen-check  fail if gen/ differs from what the protos generate
#
# buf and the protoc plugins are Go tools pinned in tools/go.mod; they are
# built on first use (a few minutes on a cold cache), so only the Go module
# proxy is needed. No buf registry, nothing on PATH.

BUF ?= $(GO) tool -modfile=tools/go.mod buf

# gen/openapi/openapi.go embeds the OpenAPI document (package
# github.com/tcpstated/tcpstated/gen/openapi, variable JSON). buf.gen.yaml
# has clean: true, so it is written after every buf generate: always use
# `make generate`, not `buf generate` alone.
OPENAPI_EMBED := mk/openapi.go.tmpl

.PHONY: generate buf-lint gen-check

## generate: regenerate gen/ (Go code, gen/openapi/tcpstate.swagger.json and its embedding package)
generate:
	$(BUF) generate
	cp $(OPENAPI_EMBED) gen/openapi/openapi.go

## buf-lint: lint api/proto with buf's STANDARD rules
buf-lint:
	$(BUF) lint

## gen-check: regenerate into a temporary directory and compare with gen/
## (in a CI checkout gen/ is the committed tree, so this checks what is committed)
gen-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BUF) generate -o "$$tmp" && \
	cp $(OPENAPI_EMBED) "$$tmp/gen/openapi/openapi.go" && \
	if ! diff -r -q gen "$$tmp/gen" >/dev/null; then \
		echo "gen-check: gen/ is stale: it differs from what api/proto generates:"; \
		diff -r -q gen "$$tmp/gen" | sed -e "s|$$tmp/||g" -e 's/^/  /'; \
		echo "Run 'make generate' and commit gen/."; \
		exit 1; \
	fi; \
	pending=$$(git status --porcelain -- gen 2>/dev/null); \
	if [ -n "$$pending" ]; then \
		echo "gen-check: gen/ is up to date (note: not yet committed; commit it with api/)"; \
	else \
		echo "gen-check: gen/ is up to date"; \
	fi

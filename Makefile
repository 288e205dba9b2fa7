# tsim — build, test, generate. `sudo make test` is the whole test suite
# (it installs what a fresh Debian machine lacks first); `.ci/run` runs it.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
# Debian's own Go is too old: the go command fetches this toolchain from the
# module proxy when the installed one is older (GOTOOLCHAIN=auto semantics).
export GOTOOLCHAIN ?= go1.26.8+auto

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)} +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X github.com/tsim-dev/tsim/internal/cli.version=$(VERSION) \
	-X github.com/tsim-dev/tsim/internal/cli.commit=$(COMMIT) -X github.com/tsim-dev/tsim/internal/cli.date=$(DATE)

.PHONY: build test deps generate check-generated lint demo dist bench clean

# Linked to a temporary name, then copied into place: on the development VM
# (kernel 6.18) a process starts 0.7-2 ms slower from the file the linker wrote
# through mmap than from a written copy of the same bytes (docs/trace.md#speed).
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o tsim.link ./cmd/tsim
	install -m 0755 tsim.link tsim && rm -f tsim.link

deps:
	./scripts/install-deps.sh

# The whole suite: static checks, generated files current, the repository
# self-contained, every package. TSIM_TEST_STRICT=1 makes a test that lacks
# root or a tool fail instead of skipping (internal/testenv), and testreport
# fails the run if any test skipped anyway: the suite proves what it says.
test: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	CGO_ENABLED=1 go vet -tags pam ./serve/
	./scripts/check-self-contained.sh
	$(MAKE) --no-print-directory check-generated
	go build -o .testreport ./scripts/testreport
	# Labs a killed earlier test run left behind (their registries say so).
	go run ./scripts/reap-test-labs
	# -p 1: namespace-heavy packages probe real sockets; run them one at a time so a
	# loaded 2-core CI machine does not turn slow probes into false verdicts.
	# TSIM_SOAK=1: serve's 100-job soak (flat RSS, goroutines, fds) runs too.
	set -o pipefail; TSIM_SOAK=1 TSIM_TEST_STRICT=1 go test -p 1 -count=1 -timeout 40m -json ./... | ./.testreport -no-skips
	# PAM login through pam_unix with a throw-away user (cgo build tag).
	TSIM_TEST_STRICT=1 CGO_ENABLED=1 go test -count=1 -tags pam -run TestPAMLogin ./serve/
	rm -f .testreport

generate: build
	rm -rf man completions && mkdir -p man completions
	./tsim man -o man
	for s in bash zsh fish; do ./tsim completions $$s > completions/tsim.$$s; done

check-generated: build
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	./tsim man -o $$tmp/man >/dev/null && mkdir -p $$tmp/completions && \
	for s in bash zsh fish; do ./tsim completions $$s > $$tmp/completions/tsim.$$s; done; \
	diff -r man $$tmp/man && diff -r completions $$tmp/completions || \
	{ echo "man/ or completions/ are stale: run 'make generate' and commit"; exit 1; }

# The main job on the built-in example, as a new user runs it first: build,
# install what labs need at run time (iproute2, iptables, ipset), then trace,
# lab, probes and report for https and MySQL from the HQ user to the DMZ web
# server. tsim exits 1 because MySQL is blocked: that is the answer, not an error.
demo: build
	./scripts/install-deps.sh --runtime
	./tsim run --text -s 10.1.10.5 -d 10.1.50.10 -p https,3306/tcp -o report.pdf || [ $$? -eq 1 ]
	@echo "report.pdf: the report (summary and one page per service)"

bench:
	go test -run '^$$' -bench . -benchmem ./...

dist:
	mkdir -p dist
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' -o dist/tsim-linux-$$arch ./cmd/tsim || exit 1; \
	done
	cd dist && sha256sum tsim-linux-amd64 tsim-linux-arm64 > SHA256SUMS

clean:
	rm -rf tsim dist .testreport

# poolgate: `make run` and `make test` are all a newcomer needs on Debian bookworm.
# Both install what is missing (Debian packages from debian-packages.txt, npm packages from
# the lockfiles), build, and then run the gateway / every test.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
CONFIG ?= config/poolgate.toml
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Packages for a set of stages, minus those whose command is already on PATH.
packages = $(shell awk -v stages="$(1)" 'BEGIN{n=split(stages,s," ");for(i=1;i<=n;i++)want[s[i]]=1} !/^\#/ && NF>=2 && ($$1 in want) {print $$2 (NF>=3 ? ":" $$3 : "")}' debian-packages.txt)

.PHONY: run test bench build web pyrtc lint deps deps-test deps-bench cargo-check unit browser clean

run: deps build web
	./target/release/poolgate --config $(CONFIG)

# Every test file of tests/tests; the trials named endpoint_* among them run one per process.
SCENARIO_TESTS := $(patsubst tests/tests/%.rs,--test %,$(wildcard tests/tests/*.rs))

# The managed-endpoint browser tests run one per process: several GStreamer endpoints in a row
# in one process have hung in teardown (webrtcbin 1.22), which is being investigated.
test: deps-test lint build web pyrtc
	$(CARGO) test --workspace --release -- --skip endpoint_ 2>&1 | tee target/test.log
	for t in $$($(CARGO) test --release -p poolgate-tests $(SCENARIO_TESTS) -- --list 2>/dev/null | sed -n 's/^\(endpoint_[a-z0-9_]*\): test$$/\1/p'); do \
	  timeout 300 $(CARGO) test --release -p poolgate-tests $(SCENARIO_TESTS) -- --exact $$t 2>&1 | tee -a target/test.log; \
	done
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "summary: %d passed, %d failed\n", p, f}' target/test.log

# bench-endpoint takes about 35 minutes at full size (its glare soak and churn run are bounded
# at 15 minutes each); `./target/release/bench-endpoint --help` shows how to run less.
bench: deps-bench build pyrtc
	./target/release/bench-signalling --poolgate target/release/poolgate --python .venv/pyrtc/bin/python
	./target/release/bench-mqtt
	./target/release/bench-endpoint
	./target/release/bench-recorder
	./target/release/bench-recorder --composite --peers 2,4 --seconds 10
	./target/release/bench-camera
	./target/release/bench-camera-keyframe

# The reference ssp server (PyPI pyrtc 2.0.2), for the remote-pool tests and the benchmark.
pyrtc: .venv/pyrtc/installed
.venv/pyrtc/installed:
	python3 -m venv .venv/pyrtc
	.venv/pyrtc/bin/pip install --quiet pyrtc==2.0.2 wsproto
	touch $@

# The whole workspace: the binaries and the plugin libraries (cdylibs) the plugin tests load.
build: cargo-check
	$(CARGO) build --workspace --release

# The demo page and the browser-test page bundle the real rtcpool package with esbuild.
web: gateway/web/dist/index.html tests/browser/dist/harness.html

gateway/web/dist/index.html: gateway/web/package.json gateway/web/package-lock.json $(wildcard gateway/web/src/* gateway/web/*.html gateway/web/*.css)
	cd gateway/web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

tests/browser/dist/harness.html: tests/browser/package.json tests/browser/package-lock.json $(wildcard tests/browser/page/*) gateway/web/src/chromium-workarounds.js
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

lint: cargo-check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings

cargo-check:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs), then run make again" >&2; exit 1; }

deps:      ; @$(MAKE) --no-print-directory install-packages STAGES="build runtime"
deps-test: ; @$(MAKE) --no-print-directory install-packages STAGES="build runtime test"
deps-bench:; @$(MAKE) --no-print-directory install-packages STAGES="build runtime test bench"

# Installs the missing packages of STAGES with apt (once: apt is not run when nothing is missing).
.PHONY: install-packages
install-packages:
	@missing=(); \
	for entry in $(call packages,$(STAGES)); do \
	  pkg=$${entry%%:*}; cmd=$${entry#*:}; \
	  if [ "$$cmd" != "$$entry" ] && command -v "$$cmd" >/dev/null; then continue; fi; \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$$pkg"); \
	done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "installing Debian packages: $${missing[*]}"; \
	  $(SUDO) apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends "$${missing[@]}"; \
	fi

clean:
	$(CARGO) clean
	rm -rf gateway/web/dist gateway/web/node_modules tests/browser/dist tests/browser/node_modules .venv

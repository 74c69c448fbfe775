# One entry point for people and CI. See README.md.
#   make demo   – the main job: a sandboxed demo of conntrack state timeouts (root)
#   make test   – every test (installs what a fresh machine lacks; root for kernel tests)
CARGO ?= cargo
SHELL := /bin/bash

.PHONY: deps demo test check test-rust test-vm test-c test-python test-fuzz bench clean

deps:
	tests/install-deps.sh

demo: deps
	$(CARGO) run --release --features cli --bin ipvsct -- demo

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --all-features --lib

test-rust:
	$(CARGO) test --workspace --all-features
	@# The offline read-ahead (feature nightly-prefetch) takes effect on nightly only.
	@if $(CARGO) +nightly --version >/dev/null 2>&1; then \
	  IPVSCT_EXPECT_PREFETCH=1 $(CARGO) +nightly test -p ipvs-conntrack --features nightly-prefetch --lib; \
	elif [ -n "$$CI" ]; then \
	  echo "test-rust: FAILED: CI needs a nightly toolchain for the nightly-prefetch build"; exit 1; \
	else \
	  echo "test-rust: SKIPPED the nightly-prefetch build: no nightly toolchain"; \
	fi

test-vm:
	tests/vm/selftest.sh --quick
	tests/vm/ipvs/run.sh
	tests/c/vm/run.sh
	tests/vm/python/run.sh

# A short run of every fuzz target, seeded with the recorded fixtures (FUZZ_TIME seconds each).
test-fuzz:
	FUZZ_TIME=$${FUZZ_TIME:-30} tests/fuzz.sh

test-c:
	@if [ -x tests/c/run.sh ]; then tests/c/run.sh; else echo "test-c: no C suite yet"; fi

test-python:
	@if [ -x python/run-tests.sh ]; then python/run-tests.sh; else echo "test-python: no Python suite yet"; fi

test: deps check test-rust test-c test-python test-vm test-fuzz
	@echo "make test: all suites passed"

# Offline decoding benchmarks (criterion); the live comparison is tests/bench/run.sh (root).
bench:
	$(CARGO) bench -p ipvs-conntrack --bench decode

clean:
	$(CARGO) clean

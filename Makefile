# The commands the README names. cargo honours CARGO_TARGET_DIR from the
# environment.
CARGO ?= cargo

.PHONY: test lint demo deps

## test: install fuse3/attr if needed (root on Debian/Ubuntu), build the
## binaries the end-to-end tests run, then run every test in release mode
## (FUSE tests read large files).
test: deps
	$(CARGO) build --workspace --release --bins
	$(CARGO) test --workspace --release --no-fail-fast
	$(CARGO) test --release -p packagefs-state --features failpoints --test failpoints

## lint: formatting and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## demo: show what packagefs does (see fixtures/demo.sh).
demo:
	bash fixtures/demo.sh

## deps: the system packages the tests need (see .ci/deps.sh).
deps:
	@bash .ci/deps.sh

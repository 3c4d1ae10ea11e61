#!/bin/sh
# Runs the test suite on a fresh Debian machine: Docker engine, the Postfix
# image, then `cargo test`, whose integration tests drive a real Postfix.
set -eu
cd "$(dirname "$0")/.."

ci/setup-docker.sh
cargo build --locked --bins
target/debug/tlsharness image build --suite "${TLSHARNESS_SUITE:-bookworm}"
cargo test --locked "$@"

#!/bin/sh
# Runs the built-in scenario suite against a real Postfix on a fresh Debian
# machine: Docker engine, the Postfix image, then `tlsharness run`.
# Extra arguments go to `tlsharness run` (e.g. --json report.json).
set -eu
cd "$(dirname "$0")/.."

ci/setup-docker.sh
cargo build --locked --release --bins
target/release/tlsharness image build --suite "${TLSHARNESS_SUITE:-bookworm}"
exec target/release/tlsharness run scenarios "$@"

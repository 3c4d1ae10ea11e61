#!/bin/sh
# Runs the built-in scenario suite against a real Postfix on a fresh Debian
# machine: Docker engine, the Postfix image, then `tlsharness run`.
# TLSHARNESS_MTA=exim runs it against Exim 4.96 instead (the scenarios that
# state what Exim does). Extra arguments go to `tlsharness run` (e.g.
# --json report.json).
set -eu
cd "$(dirname "$0")/.."

ci/setup-docker.sh
cargo build --locked --release --bins
if [ "${TLSHARNESS_MTA:-postfix}" = exim ]; then
    target/release/tlsharness image build --mta exim
    exec target/release/tlsharness run scenarios --mta exim "$@"
fi
target/release/tlsharness image build --suite "${TLSHARNESS_SUITE:-bookworm}"
exec target/release/tlsharness run scenarios "$@"

#!/bin/sh
# Runs the built-in scenario suite against a real Postfix on a fresh Debian
# machine: Docker engine, the Postfix image, then `tlsharness run`.
# TLSHARNESS_MTA=exim (or opensmtpd) runs it against Exim 4.96 (or
# OpenSMTPD 6.8) instead: the scenarios that state what that MTA does. Extra arguments go to `tlsharness run` (e.g.
# --json report.json).
set -eu
cd "$(dirname "$0")/.."

ci/setup-docker.sh
cargo build --locked --release --bins
mta=${TLSHARNESS_MTA:-postfix}
if [ "$mta" != postfix ]; then
    target/release/tlsharness image build --mta "$mta"
    exec target/release/tlsharness run scenarios --mta "$mta" "$@"
fi
target/release/tlsharness image build --suite "${TLSHARNESS_SUITE:-bookworm}"
exec target/release/tlsharness run scenarios "$@"

#!/bin/sh
# Runs the test suite on a fresh Debian machine: Docker engine, the Postfix
# image, then `cargo test`, whose integration tests drive a real Postfix.
set -eu
cd "$(dirname "$0")/.."

ci/setup-docker.sh
# The JUnit report is validated with xmllint in the tests.
if ! command -v xmllint >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxml2-utils >/dev/null
fi
cargo build --locked --bins
# The check tests compare Postfix 3.5, 3.7 and 3.10.
for suite in bullseye bookworm trixie; do
    target/debug/tlsharness image build --suite "$suite"
done
# The built-in suite must hold on every Postfix the images ship (3.5, 3.7,
# 3.10), as the scenarios' version tables say.
target/debug/tlsharness run scenarios --all-versions
cargo test --locked "$@"

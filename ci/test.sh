#!/bin/sh
# Runs the test suite on a fresh Debian machine: Docker engine, the Postfix
# image, then `cargo test`, whose integration tests drive a real Postfix.
set -eu
cd "$(dirname "$0")/.."

ci/setup-docker.sh
# The tests validate the JUnit report with xmllint and render the HTML
# report in Debian's headless Chromium.
missing=""
command -v xmllint >/dev/null 2>&1 || missing="$missing libxml2-utils"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # one word per package
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
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

#!/bin/sh
# Runs the test suite on a fresh Debian machine: Docker engine, the Postfix
# image, then `cargo test`, whose integration tests drive a real Postfix.
set -eu
cd "$(dirname "$0")/.."

ci/setup-docker.sh
# The JUnit report is validated with xmllint in the tests, the HTML report
# rendered in Debian's headless Chromium; tests/daemons.rs starts a second
# dockerd (ci/second-daemon.sh) in a network namespace of its own with
# util-linux's unshare (essential on Debian) and brings its loopback up
# with iproute2's ip. tests/probe.rs probes relays the project did not
# write: aiosmtpd (STARTTLS and implicit TLS) behind a Python proxy.
missing=""
command -v xmllint >/dev/null 2>&1 || missing="$missing libxml2-utils"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v ip >/dev/null 2>&1 || [ -x /sbin/ip ] || missing="$missing iproute2"
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing="$missing python3-aiosmtpd"
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # one word per package
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
cargo build --locked --bins
# The check tests compare Postfix 3.5, 3.7 and 3.10; tests/exim.rs runs
# Exim 4.96, tests/opensmtpd.rs OpenSMTPD 6.8.
for suite in bullseye bookworm trixie; do
    target/debug/tlsharness image build --suite "$suite"
done
target/debug/tlsharness image build --mta exim
target/debug/tlsharness image build --mta opensmtpd
# The built-in suite must hold on every Postfix the images ship (3.5, 3.7,
# 3.10), as the scenarios' version tables say, and on Exim and OpenSMTPD
# where the scenarios state what they do.
target/debug/tlsharness run scenarios --all-versions
target/debug/tlsharness run scenarios --mta exim
target/debug/tlsharness run scenarios --mta opensmtpd
cargo test --locked "$@"

//! The run's smtpd.conf and the scripts around smtpd: one `relay host`
//! action and one `match` per case, the harness's sender discarded, and
//! smtpd listening on loopback only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::OpensmtpdPolicy;
use crate::mta::{CASE_DOMAIN, MOUNT, Rendered, Target};

/// Where smtpd reads its configuration (Debian's place for it).
pub const CONF: &str = "/etc/smtpd.conf";
/// Where the run's CA and the cases' source addresses live.
pub const CONF_DIR: &str = "/etc/smtpd/tlsharness";
/// The `ca` name the actions trust the run's CA by.
const CA_NAME: &str = "tlsharness";

/// The configuration of one smtpd for `targets`.
pub fn render(
    targets: &[Target<'_>],
    hosts: &BTreeMap<String, Vec<IpAddr>>,
    ca_pem: &str,
) -> Rendered {
    let max_conn = targets.len().max(10);
    let mut conf = format!(
        r#"# Written by tlsharness for one run. Everything is contained: smtpd
# listens on loopback only, each case's domain is relayed to the case's
# relay by name (resolved from /etc/hosts, to loopback) from the case's
# loopback source address, the harness's sender is discarded (bounces
# never leave), and no other domain matches any action.
ca {CA_NAME} cert "{CONF_DIR}/ca.pem"
# Every case's relay is on the same few loopback addresses, where the real
# world has a host per relay: smtpd's default of 10 connections per host
# would make the cases wait for one another. And a session closes as soon
# as its message is done (smtpd's default keeps it 10 s for more mail,
# which the harness would wait out before it judges the attempt).
mta limit max-conn-per-host {max_conn} session-keepalive 0
listen on 127.0.0.1 port 25
action "discard" mda "cat > /dev/null" user nobody
match from local for domain "{CASE_DOMAIN}" action "discard"
"#
    );
    let mut sources = String::new();
    let mut routes = Vec::new();
    for t in targets {
        let policy = OpensmtpdPolicy::of(t.policy).expect("an OpenSMTPD case has its policy");
        let name = format!("c{}", t.index);
        let (action, matched) = case_lines(t, policy, &name);
        conf.push_str(&action);
        conf.push_str(&matched);
        if let Some(src) = t.source {
            let _ = writeln!(sources, "{} {src}", t.domain());
        }
        routes.push((name, format!("{action}{matched}")));
    }
    let files = vec![
        ("smtpd.conf".to_owned(), conf.clone().into_bytes()),
        ("sources".to_owned(), sources.clone().into_bytes()),
        (
            "hosts".to_owned(),
            crate::mta::hosts_file(hosts).into_bytes(),
        ),
        ("ca.pem".to_owned(), ca_pem.as_bytes().to_vec()),
        ("entrypoint.sh".to_owned(), ENTRYPOINT.as_bytes().to_vec()),
        ("queue.sh".to_owned(), QUEUE.as_bytes().to_vec()),
    ];
    Rendered {
        files,
        configs: (conf, sources),
        routes,
    }
}

/// A case's action and match lines.
fn case_lines(t: &Target<'_>, policy: OpensmtpdPolicy, name: &str) -> (String, String) {
    let mut action = format!(
        "action \"{name}\" relay host \"{}://{}:{}\"",
        policy.scheme(),
        t.hostname,
        t.port
    );
    if policy.no_verify() {
        action.push_str(" tls no-verify");
    }
    if let Some(src) = t.source {
        let _ = write!(action, " src {src}");
    }
    // Without `ca`, smtpd verifies against the system store, which does
    // not hold the run's CA (a scenario's `trust_ca = false`).
    if t.scenario.mta_trusts_run_ca() {
        let _ = write!(action, " ca {CA_NAME}");
    }
    action.push('\n');
    let matched = format!(
        "match from local for domain \"{}\" action \"{name}\"\n",
        t.domain()
    );
    (action, matched)
}

/// `queue.sh retry|remove ID` in the container.
pub fn queue_command(what: &str, queue_id: &str) -> Vec<String> {
    vec![
        "sh".into(),
        format!("{MOUNT}/queue.sh"),
        what.into(),
        queue_id.into(),
    ]
}

/// Installs the run's configuration and runs smtpd in the foreground, its
/// log (standard error) on standard output, where the harness reads it.
/// smtpd says nothing when it starts accepting connections (not without
/// `-v`, which logs every internal message): the script connects to its
/// port until it answers, and says so.
const ENTRYPOINT: &str = r#"#!/bin/bash
# tlsharness entry point (runs inside the OpenSMTPD container). The lab
# starts it with sh; it needs bash's /dev/tcp.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -eu
src=/tlsharness
mkdir -p /etc/smtpd/tlsharness
cp "$src/smtpd.conf" /etc/smtpd.conf
cp "$src/ca.pem" "$src/sources" /etc/smtpd/tlsharness/
cat "$src/hosts" >> /etc/hosts
# Relay names (and the injector's address) resolve from /etc/hosts only:
# smtpd's resolver (OpenBSD's asr, built in) asks DNS first by default, and
# with nothing on port 53 each lookup waits for an ICMP port unreachable,
# which the kernel rate-limits machine-wide: under load a lookup, and the
# injection or delivery behind it, waited out asr's timeouts.
printf 'nameserver 127.0.0.1\nlookup file\n' > /etc/resolv.conf
echo "mta.tlsharness.test" > /etc/mailname
if ! smtpd -n -f /etc/smtpd.conf 2>&1; then
    echo "tlsharness: smtpd refused its configuration"
    exit 1
fi
version=$(smtpd -h 2>&1 | sed -n 's/^version: OpenSMTPD //p')
smtpd -d -f /etc/smtpd.conf 2>&1 &
smtpd=$!
deadline=$((SECONDS + 60))
until (exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null; do
    if ! kill -0 "$smtpd" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
        echo "tlsharness: smtpd exited or never listened"
        exit 1
    fi
    sleep 0.02
done
echo "tlsharness: OpenSMTPD $version accepting mail on 127.0.0.1:25"
wait "$smtpd"
"#;

/// Retries or removes one message. A failed attempt leaves its route (the
/// case's source address to the relay's) disabled for a while, and a
/// message scheduled on a disabled route fails again without a connection
/// (`No valid route`): so the case's own routes are resumed first, and
/// only those (another case's disabled route is that case's business).
/// `schedule` prints `1 envelope scheduled`, or `0 envelope scheduled`
/// while the message is still in flight (the harness asks again).
const QUEUE: &str = r#"#!/bin/sh
# tlsharness: queue.sh retry|remove MSGID (runs inside the OpenSMTPD container).
set -eu
what=$1 id=$2
domain=$(smtpctl show queue | awk -F'|' -v id="$id" 'index($1, id) == 1 { n = split($6, a, "@"); print a[n]; exit }')
src=$(awk -v d="$domain" '$1 == d { print $2 }' /etc/smtpd/tlsharness/sources)
if [ -n "$src" ]; then
    for route in $(smtpctl show routes | awk -v s="$src" '$2 == s && $6 ~ /D/ { sub(/\.$/, "", $1); print $1 }'); do
        smtpctl resume route "$route" >/dev/null
    done
fi
case "$what" in
    retry) smtpctl schedule "$id" ;;
    remove) smtpctl remove "$id" ;;
esac
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mta::opensmtpd::policy::NAMES;

    #[test]
    fn every_policy_is_a_scheme_and_its_options() {
        let lines: Vec<String> = OpensmtpdPolicy::ALL
            .iter()
            .map(|p| {
                format!(
                    "{}{}",
                    p.scheme(),
                    if p.no_verify() { " no-verify" } else { "" }
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                "smtp+notls",
                "smtp",
                "smtp+tls no-verify",
                "smtp+tls",
                "smtps no-verify",
                "smtps"
            ]
        );
        assert_eq!(NAMES.len(), lines.len());
    }
}

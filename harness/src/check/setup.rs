//! Installing the user's configuration in the container, contained and
//! redirected, with one clone of its outgoing smtp service per scenario.
//! Everything changed is listed by [`changes`] for the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use super::config::UserConfig;
use crate::scenario::Scenario;

/// The domain the check's recipients are in; nothing else routes there.
pub const CHECK_DOMAIN: &str = "check.tlsharness.invalid";

/// The master.cf service that carries scenario `index`.
pub fn service(index: usize) -> String {
    format!("tlsh-check-{index}")
}

/// The recipient of scenario `index`.
pub fn recipient(scenario: &Scenario, index: usize) -> String {
    format!("{}@s{index}.{CHECK_DOMAIN}", scenario.local_part(48))
}

/// `-o` options for scenario `index`'s clone of the outgoing service.
fn overrides(scenario: &Scenario) -> Vec<(String, String)> {
    let mut o = contained();
    if scenario.postfix.trust_ca {
        o.push((
            "smtp_tls_CAfile".to_owned(),
            "/etc/postfix/tlsharness/ca-bundle.pem".to_owned(),
        ));
    }
    if scenario.paths.len() > 1 {
        o.push(("smtp_randomize_addresses".to_owned(), "no".to_owned()));
    }
    for (k, v) in &scenario.postfix.settings {
        if is_timeout(k.as_str()) {
            o.push((k.as_str().to_owned(), v.as_str().to_owned()));
        }
    }
    o
}

/// Containment, as `-o` on every copy of the user's service (after the
/// user's own options, so it wins): a `-o smtp_bind_address=...` or a
/// fallback relay in the user's master.cf entry would otherwise beat
/// main.cf's containment and could send mail off the machine.
const CONTAINED: &[(&str, &str)] = &[
    ("smtp_bind_address", "127.0.0.1"),
    ("smtp_fallback_relay", ""),
    ("smtp_dns_support_level", "disabled"),
    ("smtp_host_lookup", "native"),
];

fn contained() -> Vec<(String, String)> {
    CONTAINED
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Timeouts are the only scenario settings check applies: a stalled path
/// needs one to end within the attempt timeout, and a timeout changes
/// when Postfix gives up, not what it accepts. Anything else a scenario
/// sets would change the user's configuration behind their back.
fn is_timeout(name: &str) -> bool {
    name.ends_with("_timeout")
}

/// The scenario's settings check does not apply (`name=value`), so that
/// its rows can say the scenario was written for a setting the user's
/// configuration decides here.
pub fn dropped_settings(scenario: &Scenario) -> Vec<String> {
    scenario
        .postfix
        .settings
        .iter()
        .filter(|(k, _)| !is_timeout(k.as_str()))
        .map(|(k, v)| format!("{}={}", k.as_str(), v.as_str()))
        .collect()
}

fn option_words(options: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in options {
        if v.contains(char::is_whitespace) || v.is_empty() {
            let _ = write!(out, " -o {{ {k} = {v} }}");
        } else {
            let _ = write!(out, " -o {k}={v}");
        }
    }
    out
}

/// What the harness changes in the user's configuration, in words.
pub fn changes(config: &UserConfig, scenarios: &[std::sync::Arc<Scenario>]) -> Vec<String> {
    let mut out = vec![
        format!(
            "relayhost {} -> a fake relay per scenario on 127.x.y.z:{}, the name kept for certificate checks and resolved through /etc/hosts",
            config.relayhost, config.relayhost.port
        ),
        "each scenario's message leaves through its own copy of your default_transport service (tlsh-check-N), so no scenario inherits another's queue-manager state".to_owned(),
        "the run's CA is added to your trust anchors (smtp_tls_CAfile, bundled with yours) for scenarios whose relay certificate is meant to be trusted".to_owned(),
        "your inet listeners are disabled; mail is injected through an smtpd on 127.0.0.1 that accepts it from loopback".to_owned(),
        "relays that require AUTH accept the credentials your configuration sends, whatever they are".to_owned(),
        "contained: inet_interfaces = 127.0.0.1, inet_protocols = ipv4, and on every copy of your service (after your own -o options) smtp_bind_address = 127.0.0.1, smtp_fallback_relay = (none), smtp_dns_support_level = disabled, smtp_host_lookup = native".to_owned(),
        "logging: maillog_file = /dev/stdout, smtp_tls_loglevel raised to 1 if lower".to_owned(),
        format!(
            "before any case, your outgoing smtp client is started once ({}, a copy of your default_transport service without smtp_fallback_relay) on a message to a closed port on 127.0.0.1, so that a setting Postfix refuses only then is reported at once",
            super::preflight::SERVICE
        ),
    ];
    let words = |s: &Scenario, keep: bool| -> Vec<String> {
        s.postfix
            .settings
            .iter()
            .filter(|(k, _)| is_timeout(k.as_str()) == keep)
            .map(|(k, v)| format!("{}={}", k.as_str(), v.as_str()))
            .collect()
    };
    let listed = |keep: bool| -> Vec<String> {
        scenarios
            .iter()
            .filter_map(|s| {
                let w = words(s, keep);
                (!w.is_empty()).then(|| format!("{}: {}", s.id, w.join(" ")))
            })
            .collect()
    };
    let applied = listed(true);
    if !applied.is_empty() {
        out.push(format!(
            "scenario timeouts applied to that scenario's service, so that a stalled path ends: {}",
            applied.join("; ")
        ));
    }
    let dropped = listed(false);
    if !dropped.is_empty() {
        out.push(format!(
            "NOT applied, your configuration decides (the rows are marked): scenario settings {}",
            dropped.join("; ")
        ));
    }
    out
}

/// Everything the check entry point needs, by path under the harness's
/// directory in the container; `closed` is where the preflight message
/// goes (see [`super::preflight`]).
pub fn files(
    config: &UserConfig,
    scenarios: &[std::sync::Arc<Scenario>],
    inject: SocketAddr,
    closed: SocketAddr,
    ca_pem: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for (name, bytes) in &config.files {
        files.push((format!("etc/{name}"), bytes.clone()));
    }
    files.push(("ca.pem".to_owned(), ca_pem.as_bytes().to_vec()));
    let mut transport = String::new();
    let mut services = BTreeMap::new();
    for (i, s) in scenarios.iter().enumerate() {
        let _ = writeln!(
            transport,
            "s{i}.{CHECK_DOMAIN} {}:{}",
            service(i),
            config.relayhost.raw
        );
        services.insert(service(i), option_words(&overrides(s)));
    }
    let _ = writeln!(
        transport,
        "preflight.{CHECK_DOMAIN} {}:[{}]:{}",
        super::preflight::SERVICE,
        closed.ip(),
        closed.port()
    );
    // A fallback relay would turn the refused connection into a delivery
    // attempt elsewhere.
    services.insert(
        super::preflight::SERVICE.to_owned(),
        option_words(&contained()),
    );
    files.push(("transport".to_owned(), transport.into_bytes()));
    let mut clones = String::new();
    for (name, options) in &services {
        let _ = writeln!(clones, "{name}{options}");
    }
    files.push(("clones".to_owned(), clones.into_bytes()));
    files.push(("inject".to_owned(), inject.to_string().into_bytes()));
    files.push(("entrypoint.sh".to_owned(), ENTRYPOINT.as_bytes().to_vec()));
    files
}

/// Installs the user's files over the image's, redirects and contains
/// them (see [`changes`]), and runs Postfix in the foreground. Postfix's
/// own tools (postconf -M, -Me, -M#, -e) do the editing.
const ENTRYPOINT: &str = concat!(
    r#"#!/bin/sh
# tlsharness check entry point (runs inside the Postfix container).
set -eu
src=/tlsharness
cp "$src"/etc/* /etc/postfix/
mkdir -p /etc/postfix/tlsharness
cp "$src/transport" /etc/postfix/tlsharness/transport
# Lookup tables the configuration names, built as Postfix would need them.
for m in $(postconf -n | grep -o '\(hash\|btree\|lmdb\|cdb\):[^ ,]*' | sort -u); do
  f=${m#*:}
  if [ -f "$f" ]; then postmap "$m"; fi
done
# Trust: the user's CA file plus the run's CA.
their_ca=$(postconf -h smtp_tls_CAfile)
{ if [ -n "$their_ca" ] && [ -f "$their_ca" ]; then cat "$their_ca"; fi; cat "$src/ca.pem"; } \
  > /etc/postfix/tlsharness/ca-bundle.pem
# The service the user's relayed mail leaves by, cloned once per scenario.
svc=$(postconf -h default_transport | cut -d: -f1)
entry=$(postconf -M "$svc/unix")
if [ -z "$entry" ]; then
  echo "tlsharness: fatal: default_transport is $svc, but master.cf has no $svc/unix service" >&2
  exit 1
fi
while read -r name options; do
  postconf -Me "$name/unix=$(printf '%s' "$entry" | sed "s/^$svc /$name /") $options"
done < "$src/clones"
# No listener of the user's on the host network; one loopback injector.
for s in $(postconf -M | awk '$2 == "inet" { print $1 }'); do postconf -M# "$s/inet"; done
inject=$(cat "$src/inject")
postconf -Me "$inject/inet=$inject inet n - n - - smtpd -o smtpd_relay_restrictions=permit_mynetworks,reject -o mynetworks=127.0.0.0/8 -o smtpd_recipient_restrictions= -o smtpd_client_restrictions= -o smtpd_helo_restrictions= -o smtpd_sender_restrictions= -o smtpd_data_restrictions= -o smtpd_tls_security_level=none -o smtpd_sasl_auth_enable=no -o smtpd_milters= -o content_filter="
if [ -z "$(postconf -M postlog/unix-dgram)" ]; then
  postconf -Me "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd"
fi
level=$(postconf -h smtp_tls_loglevel)
if [ "${level:-0}" -lt 1 ]; then postconf -e smtp_tls_loglevel=1; fi
their_maps=$(postconf -h transport_maps)
postconf -e \
  maillog_file=/dev/stdout \
  inet_interfaces=127.0.0.1 \
  inet_protocols=ipv4 \
  smtp_bind_address=127.0.0.1 \
  smtp_dns_support_level=disabled \
  smtp_host_lookup=native \
  "transport_maps=texthash:/etc/postfix/tlsharness/transport${their_maps:+, $their_maps}"
# The relay's name is pointed at each scenario's fakes in turn (see
# tlsharness-hosts); keep the container's own entries.
cp /etc/hosts /etc/hosts.tlsharness-orig
"#,
    crate::postfix::config::entrypoint_tail!()
);

/// The TLS policy Postfix applies on one scenario's service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlsPolicy {
    /// The next hop it applies to, as relayhost names it.
    pub nexthop: String,
    /// The level (the policy's first word when a policy map decides).
    pub level: String,
    /// Where it came from, in Postfix's terms.
    pub source: String,
}

/// Asks Postfix, inside the container, which TLS level each service
/// applies to `nexthop`: the service's `-o smtp_tls_security_level`, else
/// main.cf's, then overridden by the first of `smtp_tls_policy_maps` (the
/// service's, else main.cf's) that has an entry for the next hop as
/// written in relayhost (`postmap -q`, as smtp(8) looks it up for a
/// `[host]:port` next hop). Prints `service TAB level TAB source` lines.
const POLICY_SCRIPT: &str = r#"nexthop=$1; shift
for svc in "$@"; do
  level=$(postconf -P "$svc/unix/smtp_tls_security_level" 2>/dev/null | sed 's/^[^=]*= *//')
  from="set by -o smtp_tls_security_level on your default_transport service in master.cf"
  if [ -z "$level" ]; then
    level=$(postconf -h smtp_tls_security_level)
    from="set by smtp_tls_security_level in main.cf"
  fi
  if [ -z "$level" ]; then level=none; from="smtp_tls_security_level is not set"; fi
  maps=$(postconf -P "$svc/unix/smtp_tls_policy_maps" 2>/dev/null | sed 's/^[^=]*= *//')
  [ -n "$maps" ] || maps=$(postconf -h smtp_tls_policy_maps)
  for m in $(printf '%s' "$maps" | tr ',' ' '); do
    if v=$(postmap -q "$nexthop" "$m" 2>/dev/null); then
      level=${v%% *}
      from="set by smtp_tls_policy_maps: postmap -q '$nexthop' $m answers '$v'"
      break
    fi
  done
  printf '%s\t%s\t%s\n' "$svc" "$level" "$from"
done
"#;

/// The command that runs [`POLICY_SCRIPT`] for `services`.
pub fn policy_command(nexthop: &str, services: &[String]) -> Vec<String> {
    let mut cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        POLICY_SCRIPT.to_owned(),
        "sh".to_owned(),
        nexthop.to_owned(),
    ];
    cmd.extend(services.iter().cloned());
    cmd
}

/// [`POLICY_SCRIPT`]'s output, by service.
pub fn parse_policies(out: &str, nexthop: &str) -> BTreeMap<String, TlsPolicy> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let (svc, level, source) = (f.next()?, f.next()?, f.next()?);
            Some((
                svc.to_owned(),
                TlsPolicy {
                    nexthop: nexthop.to_owned(),
                    level: level.to_owned(),
                    source: source.to_owned(),
                },
            ))
        })
        .collect()
}

/// Postfix's own list of the parameters the user's main.cf sets
/// (`postconf -n` on the installed copy of their files, untouched by the
/// harness).
pub fn postconf_n_command() -> Vec<String> {
    vec![
        "postconf".to_owned(),
        "-c".to_owned(),
        format!("{}/etc", crate::postfix::config::MOUNT),
        "-n".to_owned(),
    ]
}

/// `postconf -n` output as parameters, without the `config_directory`
/// that `-c` adds.
pub fn parse_postconf_n(out: &str) -> BTreeMap<String, String> {
    let mut p = super::config::parameters(out);
    p.remove("config_directory");
    p
}

/// The command that points the relay's name at `line`'s addresses
/// (`"127.1.1.1 smtp.example.com"`), for the chroot too.
pub fn hosts_command(line: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        "cat /etc/hosts.tlsharness-orig > /etc/hosts && printf '%s\\n' \"$1\" >> /etc/hosts && cp /etc/hosts /var/spool/postfix/etc/hosts".into(),
        "sh".into(),
        line.to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::config::Relayhost;

    #[test]
    fn every_scenario_copy_is_contained_and_gets_only_timeouts() {
        let scenarios = crate::scenario::builtin::load().unwrap();
        for s in &scenarios {
            let o = overrides(s);
            for (k, v) in CONTAINED {
                assert!(
                    o.iter().any(|(ok, ov)| ok == k && ov == v),
                    "{}: {k} not forced",
                    s.id
                );
            }
            for (k, _) in &o {
                let ours = CONTAINED.iter().any(|(c, _)| c == k)
                    || ["smtp_tls_CAfile", "smtp_randomize_addresses"].contains(&k.as_str());
                assert!(ours || is_timeout(k), "{}: {k} applied", s.id);
            }
        }
    }

    #[test]
    fn the_preflight_goes_to_the_closed_port_without_a_fallback_relay() {
        let config = UserConfig {
            source: "main.cf".into(),
            files: [(
                "main.cf".to_owned(),
                b"relayhost = [smtp.example.com]:587\n".to_vec(),
            )]
            .into(),
            relayhost: Relayhost::parse("[smtp.example.com]:587").unwrap(),
            level: String::new(),
        };
        let files = files(
            &config,
            &[],
            "127.0.0.1:25".parse().unwrap(),
            "127.0.0.1:40001".parse().unwrap(),
            "",
        );
        let read = |name: &str| {
            let (_, bytes) = files.iter().find(|(n, _)| n == name).unwrap();
            String::from_utf8(bytes.clone()).unwrap()
        };
        assert_eq!(
            read("transport"),
            "preflight.check.tlsharness.invalid tlsh-check-preflight:[127.0.0.1]:40001\n"
        );
        assert_eq!(
            read("clones"),
            "tlsh-check-preflight -o smtp_bind_address=127.0.0.1 -o { smtp_fallback_relay =  } -o smtp_dns_support_level=disabled -o smtp_host_lookup=native\n"
        );
        assert_eq!(
            super::super::preflight::recipient(),
            "preflight@preflight.check.tlsharness.invalid"
        );
    }
}

//! Installing the user's configuration in the container, contained and
//! redirected, with one clone of its outgoing smtp service per scenario.
//! Everything changed is listed by [`changes`] for the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use super::config::{self, UserConfig};
use super::routes::{Hop, MailClass};
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
/// main.cf's containment and could send mail off the machine. The same
/// settings go into main.cf and onto every other smtp client service of
/// the user's (see [`contained_for`]), so that Postfix's own view of the
/// configuration (postfix::containment) shows no way out anywhere.
const CONTAINED: &[(&str, &str)] = &[
    ("smtp_bind_address", "127.0.0.1"),
    ("smtp_bind_address6", ""),
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

/// The master.cf commands whose services containment edits.
const CONTAINED_COMMANDS: [&str; 3] = ["smtp", "lmtp", "trivial-rewrite"];

/// What containment sets on a service whose command is `command`: for
/// smtp(8), [`CONTAINED`]; run as `lmtp` it reads the same settings under
/// `lmtp_` names; the address resolver must pick no relay by sender (the
/// transport map's next hops beat it for the check's own mail, but no
/// other message may go there either).
fn contained_for(command: &str) -> Vec<(String, String)> {
    match command {
        "smtp" => contained(),
        "lmtp" => CONTAINED
            .iter()
            .map(|(k, v)| (k.replacen("smtp_", "lmtp_", 1), (*v).to_owned()))
            .collect(),
        "trivial-rewrite" => vec![("sender_dependent_relayhost_maps".to_owned(), String::new())],
        _ => Vec::new(),
    }
}

/// Containment in main.cf: no listener but loopback, IPv4 only, and
/// every service's settings of [`contained_for`] as the default.
fn contained_main() -> Vec<(String, String)> {
    let mut out = vec![
        ("inet_interfaces".to_owned(), "127.0.0.1".to_owned()),
        ("inet_protocols".to_owned(), "ipv4".to_owned()),
    ];
    for command in CONTAINED_COMMANDS {
        out.extend(contained_for(command));
    }
    out
}

/// One of the user's own settings that containment overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overridden {
    /// The master.cf service whose `-o` it is; `None` for main.cf.
    pub service: Option<String>,
    pub parameter: String,
    /// The user's value.
    pub value: String,
    /// What containment sets instead.
    pub with: String,
}

/// How every [`Overridden`] line ends, so that the report can tell them
/// from the other changes.
const CONTAINMENT: &str = " (containment)";

impl std::fmt::Display for Overridden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let with = if self.with.is_empty() {
            "(none)"
        } else {
            self.with.as_str()
        };
        match &self.service {
            Some(service) => write!(
                f,
                "master.cf service {service}: -o {}={} overridden with {with}{CONTAINMENT}",
                self.parameter, self.value
            ),
            None => write!(
                f,
                "main.cf: {} = {} overridden with {with}{CONTAINMENT}",
                self.parameter, self.value
            ),
        }
    }
}

/// Whether a line of [`changes`] is an [`Overridden`].
pub fn is_overridden(change: &str) -> bool {
    change.ends_with(CONTAINMENT) && change.contains(" overridden with ")
}

/// The user's settings that containment overrides: main.cf's, then each
/// `-o` (the last of a name, which the service uses) of each service in
/// master.cf that containment edits, in the file's order. A value equal
/// to containment's is not overridden.
pub fn overridden(config: &UserConfig) -> Vec<Overridden> {
    let text = |name: &str| {
        config
            .files
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let mut out = Vec::new();
    let main = config::parameters(&text("main.cf").unwrap_or_default());
    for (k, ours) in contained_main() {
        if let Some(theirs) = main.get(&k).filter(|v| **v != ours) {
            out.push(Overridden {
                service: None,
                parameter: k,
                value: theirs.clone(),
                with: ours,
            });
        }
    }
    for service in config::services(&text("master.cf").unwrap_or_default()) {
        let mut last: Vec<(&str, &str)> = Vec::new();
        for (k, v) in &service.options {
            last.retain(|(n, _)| n != k);
            last.push((k, v));
        }
        let ours = contained_for(&service.command);
        for (k, theirs) in last {
            if let Some((_, with)) = ours.iter().find(|(n, v)| n == k && v != theirs) {
                out.push(Overridden {
                    service: Some(service.name.clone()),
                    parameter: k.to_owned(),
                    value: theirs.to_owned(),
                    with: with.clone(),
                });
            }
        }
    }
    out
}

/// `name = value` for the report, `(none)` for an empty value.
fn setting_words(settings: &[(String, String)]) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k} = {}", if v.is_empty() { "(none)" } else { v }))
        .collect::<Vec<_>>()
        .join(", ")
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

/// What the harness changes in side `side`'s configuration, in words.
pub fn changes(
    config: &UserConfig,
    side: usize,
    classes: &[MailClass],
    unchecked: &[String],
    scenarios: &[std::sync::Arc<Scenario>],
) -> Vec<String> {
    let mut out: Vec<String> = classes
        .iter()
        .filter_map(|class| class.routes.get(side).map(|r| (class, r)))
        .map(|(class, (route, hop))| match hop {
            Hop::Relay(relay) => format!(
                "{}: Postfix's address resolver sends it to {route}; that next hop -> a fake relay per scenario on 127.0.1.1:{} in the check's own network namespace (Postfix has no other network), the name {} kept for certificate checks and resolved through /etc/hosts",
                class.label, relay.port, relay.host
            ),
            Hop::Mx => format!(
                "{}: Postfix's address resolver sends it to {route}, the recipient domain's MX hosts: each scenario with [dns] stands in for that domain (its own zone, signed or not, served in the check's namespace and judged by a validating resolver, unbound, which your smtp client asks with your own DNS settings; the MTA-STS resolver daemon on 127.0.0.1:8461)",
                class.label
            ),
        })
        .collect();
    out.extend(unchecked.iter().cloned());
    // How your configuration, as found, was fitted to the image.
    out.extend(config.fit.notes.iter().cloned());
    out.extend([
        "each scenario's message leaves through its own copy of the service Postfix routes it to (tlsh-check-N), so no scenario inherits another's queue-manager state".to_owned(),
        "the run's CA is added to your trust anchors (smtp_tls_CAfile, bundled with yours) for scenarios whose relay certificate is meant to be trusted".to_owned(),
        "your inet listeners are disabled; mail is injected through an smtpd on 127.0.0.1 that accepts it from loopback".to_owned(),
        "relays that require AUTH accept the credentials your configuration sends, whatever they are".to_owned(),
        format!(
            "contained: in main.cf {}; in main.cf and as -o on every smtp client service, your own and every copy (replacing any -o of yours), {} (the lmtp_ names likewise for lmtp services); in main.cf and as -o on every trivial-rewrite service, {}",
            setting_words(&contained_main()[..2]),
            setting_words(&contained()),
            setting_words(&contained_for("trivial-rewrite")),
        ),
        "logging: maillog_file = /dev/stdout, smtp_tls_loglevel raised to 1 if lower".to_owned(),
        format!(
            "before any case, your outgoing smtp client is started once ({}, a copy of the first path's service without smtp_fallback_relay) on a message to a port where nothing listens (127.0.0.1:9), so that a setting Postfix refuses only then is reported at once",
            super::preflight::SERVICE
        ),
    ]);
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
    out.extend(overridden(config).iter().map(ToString::to_string));
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

/// One scenario on one class of mail's route: case `k`, carried by its own
/// copy (`tlsh-check-k`) of the master.cf service `transport`.
#[derive(Clone, Debug)]
pub struct CheckPath<'a> {
    pub k: usize,
    pub scenario: &'a std::sync::Arc<Scenario>,
    pub transport: String,
    /// The next hop: the relay as the resolver names it, or (by MX) the
    /// scenario's zone for this case.
    pub nexthop: String,
    /// Whether the mail goes by MX: the copy then keeps your DNS settings.
    pub by_mx: bool,
}

/// Everything the check entry point needs, by path under the harness's
/// directory in the container; `closed` is where the preflight message
/// goes (see [`super::preflight`]), through a copy of `first_transport`;
/// `zones` are the by-MX cases' zones.
#[allow(clippy::too_many_arguments)]
pub fn files(
    config: &UserConfig,
    paths: &[CheckPath],
    first_transport: &str,
    zones: &[crate::dns::Zone],
    inject: SocketAddr,
    closed: SocketAddr,
    ca_pem: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    files.extend(super::install::files(config));
    files.push(("ca.pem".to_owned(), ca_pem.as_bytes().to_vec()));
    let mut transport = String::new();
    let mut services = BTreeMap::new();
    let mut by_mx = String::new();
    for p in paths {
        let _ = writeln!(
            transport,
            "s{}.{CHECK_DOMAIN} {}:{}",
            p.k,
            service(p.k),
            p.nexthop
        );
        services.insert(
            service(p.k),
            (p.transport.clone(), option_words(&overrides(p.scenario))),
        );
        if p.by_mx {
            let _ = writeln!(by_mx, "{} {}", service(p.k), p.transport);
        }
    }
    files.push(("by-mx".to_owned(), by_mx.into_bytes()));
    files.extend(crate::mta::dns::files(zones, true));
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
        (first_transport.to_owned(), option_words(&contained())),
    );
    files.push(("transport".to_owned(), transport.into_bytes()));
    let mut per_command = String::new();
    for command in CONTAINED_COMMANDS {
        for (k, v) in contained_for(command) {
            let _ = writeln!(per_command, "{command} {k}={v}");
        }
    }
    files.push(("contained".to_owned(), per_command.into_bytes()));
    let main: Vec<String> = contained_main()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    files.push((
        "contained-main".to_owned(),
        (main.join("\n") + "\n").into_bytes(),
    ));
    let mut clones = String::new();
    for (name, (source, options)) in &services {
        let _ = writeln!(clones, "{name} {source}{options}");
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
# The user's configuration, fitted to this image (check::install).
sh "$src/install.sh" "$src"
mkdir -p /etc/postfix/tlsharness
cp "$src/transport" /etc/postfix/tlsharness/transport
# Trust: the user's CA file plus the run's CA.
their_ca=$(postconf -h smtp_tls_CAfile)
{ if [ -n "$their_ca" ] && [ -f "$their_ca" ]; then cat "$their_ca"; fi; cat "$src/ca.pem"; } \
  > /etc/postfix/tlsharness/ca-bundle.pem
# The service each path's mail leaves by (as Postfix's resolver named it),
# cloned once per scenario.
while read -r name svc options; do
  entry=$(postconf -M "$svc/unix")
  if [ -z "$entry" ]; then
    echo "tlsharness: fatal: mail goes to transport $svc, but master.cf has no $svc/unix service" >&2
    exit 1
  fi
  postconf -Me "$name/unix=$(printf '%s' "$entry" | sed "s/^$svc /$name /") $options"
done < "$src/clones"
# What the user's services use for DNS, before containment turns it off:
# the copies that carry mail by MX get it back afterwards.
their_dns=$(postconf -h smtp_dns_support_level)
if [ -z "$their_dns" ]; then
  if [ "$(postconf -h disable_dns_lookups)" = yes ]; then their_dns=disabled; else their_dns=enabled; fi
fi
their_lookup=$(postconf -h smtp_host_lookup)
: > /tmp/tlsh-by-mx
while read -r name svc; do
  level=$(postconf -P "$svc/unix/smtp_dns_support_level" 2>/dev/null | sed 's/^[^=]*= *//')
  lookup=$(postconf -P "$svc/unix/smtp_host_lookup" 2>/dev/null | sed 's/^[^=]*= *//')
  printf '%s %s %s\n' "$name" "${level:-$their_dns}" "$(printf '%s' "${lookup:-$their_lookup}" | tr -d ' ')" >> /tmp/tlsh-by-mx
done < "$src/by-mx"
# No listener of the user's on the host network; one loopback injector.
for s in $(postconf -M | awk '$2 == "inet" { print $1 }'); do postconf -M# "$s/inet"; done
inject=$(cat "$src/inject")
postconf -Me "$inject/inet=$inject inet n - n - - smtpd -o smtpd_relay_restrictions=permit_mynetworks,reject -o mynetworks=127.0.0.0/8 -o smtpd_recipient_restrictions= -o smtpd_client_restrictions= -o smtpd_helo_restrictions= -o smtpd_sender_restrictions= -o smtpd_data_restrictions= -o smtpd_tls_security_level=none -o smtpd_sasl_auth_enable=no -o smtpd_milters= -o content_filter="
if [ -z "$(postconf -M postlog/unix-dgram)" ]; then
  postconf -Me "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd"
fi
# Containment on every smtp client, lmtp client and address resolver
# service, the user's own too (no mail is routed through those, but
# Postfix's own view of the configuration must show no way out): -o on
# each, replacing any of the user's of the same name, and main.cf. The
# lists ("command name=value", "name=value") hold no spaces, so the words
# split as meant.
edits=
for s in $(postconf -M | awk '{ n = split($8, c, "/"); print $1 "/" $2 "/" c[n] }'); do
  for o in $(awk -v c="${s##*/}" '$1 == c { print $2 }' "$src/contained"); do
    edits="$edits ${s%/*}/$o"
  done
done
if [ -n "$edits" ]; then postconf -Pe $edits; fi
postconf -e $(cat "$src/contained-main")
# The copies that carry mail by MX resolve through the run's validating
# resolver (dns.sh), with the DNS settings of the service they copy.
while read -r name level lookup; do
  postconf -P "$name/unix/smtp_dns_support_level=$level" "$name/unix/smtp_host_lookup=$lookup"
done < /tmp/tlsh-by-mx
if [ -f "$src/dns.sh" ]; then sh "$src/dns.sh"; fi
level=$(postconf -h smtp_tls_loglevel)
if [ "${level:-0}" -lt 1 ]; then postconf -e smtp_tls_loglevel=1; fi
their_maps=$(postconf -h transport_maps)
postconf -e \
  maillog_file=/dev/stdout \
  "transport_maps=texthash:/etc/postfix/tlsharness/transport${their_maps:+, $their_maps}"
# The relay's name is pointed at each scenario's fakes in turn (see
# tlsharness-hosts); keep the container's own entries.
cp /etc/hosts /etc/hosts.tlsharness-orig
"#,
    crate::mta::postfix::config::entrypoint_tail!()
);

/// The TLS policy Postfix applies on one scenario's service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TlsPolicy {
    /// The next hop it applies to, as Postfix's resolver names it.
    pub nexthop: String,
    /// The level (the policy's first word when a policy map decides).
    pub level: String,
    /// Where it came from, in Postfix's terms.
    pub source: String,
}

/// Asks Postfix, inside the container, what decides the TLS level each
/// service applies to `nexthop` (see [`super::tls_level`]): each of
/// [`super::tls_level::PARAMETERS`] the service sets with `-o` (even
/// empty) and main.cf sets, and the first of `smtp_tls_policy_maps` (the
/// service's, else main.cf's) that has an entry for the next hop as the
/// resolver names it (`postmap -q`, as smtp(8) looks it up for a
/// `[host]:port` next hop). Prints `service TAB asked`, then `service TAB
/// service|main.cf|policy-map TAB name TAB value` lines.
const POLICY_SCRIPT: &str = r#"nexthop=$1; names=$2; shift 2
main=$(postconf -n $names 2>/dev/null)
for svc in "$@"; do
  printf '%s\tasked\n' "$svc"
  asked=
  for p in $names; do asked="$asked $svc/unix/$p"; done
  postconf -P $asked 2>/dev/null | sed -n "s|^[^ ]*/unix/\([a-z0-9_]*\) = *\(.*\)\$|$svc\tservice\t\1\t\2|p"
  printf '%s\n' "$main" | sed -n "s|^\([a-z0-9_]*\) = *\(.*\)\$|$svc\tmain.cf\t\1\t\2|p"
  maps=$(postconf -P "$svc/unix/smtp_tls_policy_maps" 2>/dev/null | sed 's/^[^=]*= *//')
  [ -n "$maps" ] || maps=$(postconf -h smtp_tls_policy_maps 2>/dev/null)
  for m in $(printf '%s' "$maps" | tr ',' ' '); do
    if v=$(postmap -q "$nexthop" "$m" 2>/dev/null); then
      printf '%s\tpolicy-map\t%s\t%s\n' "$svc" "$m" "$v"
      break
    fi
  done
done
"#;

/// The command that runs [`POLICY_SCRIPT`] for `services`.
pub fn policy_command(nexthop: &str, services: &[String]) -> Vec<String> {
    let names: Vec<&str> = super::tls_level::PARAMETERS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let mut cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        POLICY_SCRIPT.to_owned(),
        "sh".to_owned(),
        nexthop.to_owned(),
        names.join(" "),
    ];
    cmd.extend(services.iter().cloned());
    cmd
}

/// [`POLICY_SCRIPT`]'s output, by service: the level each applies. A
/// service the script did not reach has none.
pub fn parse_policies(out: &str, nexthop: &str) -> BTreeMap<String, TlsPolicy> {
    let mut said: BTreeMap<String, super::tls_level::Said> = BTreeMap::new();
    for line in out.lines() {
        let mut f = line.splitn(4, '\t');
        let (Some(svc), Some(kind)) = (f.next(), f.next()) else {
            continue;
        };
        let (name, value) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        let entry = said.entry(svc.to_owned()).or_default();
        match kind {
            "service" => {
                entry.service.insert(name.to_owned(), value.to_owned());
            }
            "main.cf" => {
                entry.main.insert(name.to_owned(), value.to_owned());
            }
            "policy-map" => entry.policy_map = Some((name.to_owned(), value.to_owned())),
            _ => {}
        }
    }
    said.into_iter()
        .map(|(svc, s)| (svc, super::tls_level::policy(&s, nexthop)))
        .collect()
}

/// Postfix's own list of the parameters the user's main.cf sets
/// (`postconf -n` on the installed copy of their files, untouched by the
/// harness). The listening addresses are overridden for postconf to run
/// at all in the container (see `check::install`); [`parse_postconf_n`]
/// puts the user's own back.
pub fn postconf_n_command() -> Vec<String> {
    let mut cmd = vec![
        "postconf".to_owned(),
        "-c".to_owned(),
        format!("{}/etc", crate::mta::postfix::config::MOUNT),
    ];
    for (k, v) in LISTENING {
        cmd.extend(["-o".to_owned(), format!("{k}={v}")]);
    }
    cmd.push("-n".to_owned());
    cmd
}

/// The listening settings [`postconf_n_command`] overrides.
const LISTENING: [(&str, &str); 2] = [("inet_interfaces", "127.0.0.1"), ("inet_protocols", "ipv4")];

/// `postconf -n` output as parameters, without the `config_directory`
/// that `-c` adds, and with `config`'s own listening settings (or none)
/// where the command overrode them.
pub fn parse_postconf_n(out: &str, config: &UserConfig) -> BTreeMap<String, String> {
    let mut p = super::config::parameters(out);
    p.remove("config_directory");
    let main = String::from_utf8_lossy(config.files.get("main.cf").map_or(&[][..], |b| b));
    let theirs = super::config::parameters(&main);
    for (k, _) in LISTENING {
        match theirs.get(k) {
            Some(v) => p.insert(k.to_owned(), v.clone()),
            None => p.remove(k),
        };
    }
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

    /// A user's configuration: the incident's main.cf with `main_extra`,
    /// and Debian's master.cf with `edit` applied.
    fn user_config(main_extra: &str, edit: impl Fn(String) -> String) -> UserConfig {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        let main = read("fixtures/configs/incident-before/main.cf") + main_extra;
        let master = edit(read("harness/tests/data/master.cf"));
        UserConfig {
            source: "postfix".into(),
            files: [
                ("main.cf".to_owned(), main.into_bytes()),
                ("master.cf".to_owned(), master.into_bytes()),
                (
                    "sasl_passwd".to_owned(),
                    read("fixtures/configs/incident-before/sasl_passwd").into_bytes(),
                ),
            ]
            .into(),
            relayhost: Some("[smtp.sendgrid.net]:587".to_owned()),
            level: "encrypt".to_owned(),
            ..Default::default()
        }
    }

    /// Every way out a user's configuration may hold: main.cf's own, and
    /// `-o` on the outgoing service (the clones copy it), on another smtp
    /// client service, on the lmtp client and on the address resolver.
    fn leaky() -> UserConfig {
        user_config(
            "smtp_bind_address = 192.0.2.7\nsmtp_fallback_relay =\nsender_dependent_relayhost_maps = texthash:/etc/postfix/sender_relay\n",
            |m| {
                m.replace(
                    "\nsmtp      unix  -       -       y       -       -       smtp\n",
                    "\nsmtp      unix  -       -       y       -       -       smtp\n  -o smtp_bind_address=192.0.2.7\n  -o smtp_fallback_relay=[192.0.2.1]:25\n  -o smtp_helo_timeout=30s\n",
                )
                .replace(
                    "        -o syslog_name=postfix/$service_name\n",
                    "        -o syslog_name=postfix/$service_name\n        -o { smtp_bind_address6 = 2001:db8::7 }\n        -o smtp_bind_address=127.0.0.1\n",
                )
                .replace(
                    "\nlmtp      unix  -       -       y       -       -       lmtp\n",
                    "\nlmtp      unix  -       -       y       -       -       lmtp\n  -o lmtp_host_lookup=dns\n",
                )
                .replace(
                    "\nrewrite   unix  -       -       y       -       -       trivial-rewrite\n",
                    "\nrewrite   unix  -       -       y       -       -       trivial-rewrite\n  -o sender_dependent_relayhost_maps=texthash:/etc/postfix/sender_relay\n",
                )
            },
        )
    }

    #[test]
    fn every_setting_of_the_user_s_that_containment_overrides_is_listed() {
        let config = leaky();
        let found: Vec<String> = overridden(&config)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "main.cf: inet_interfaces = loopback-only overridden with 127.0.0.1 (containment)",
                "main.cf: inet_protocols = all overridden with ipv4 (containment)",
                "main.cf: smtp_bind_address = 192.0.2.7 overridden with 127.0.0.1 (containment)",
                "main.cf: sender_dependent_relayhost_maps = texthash:/etc/postfix/sender_relay overridden with (none) (containment)",
                "master.cf service rewrite: -o sender_dependent_relayhost_maps=texthash:/etc/postfix/sender_relay overridden with (none) (containment)",
                "master.cf service smtp: -o smtp_bind_address=192.0.2.7 overridden with 127.0.0.1 (containment)",
                "master.cf service smtp: -o smtp_fallback_relay=[192.0.2.1]:25 overridden with (none) (containment)",
                "master.cf service relay: -o smtp_bind_address6=2001:db8::7 overridden with (none) (containment)",
                "master.cf service lmtp: -o lmtp_host_lookup=dns overridden with native (containment)",
            ]
        );
        // In the report's list of changes, and told apart from the rest.
        let changes = changes(&config, 0, &[], &[], &[]);
        for line in &found {
            assert!(changes.contains(line), "{line}: {changes:#?}");
        }
        let marked: Vec<&String> = changes.iter().filter(|c| is_overridden(c)).collect();
        assert_eq!(marked, found.iter().collect::<Vec<_>>());
        // A configuration without master.cf (the image's is used) and with
        // containment's own values has nothing overridden.
        let mut plain = user_config("", |m| m);
        plain.files.remove("master.cf");
        let main = String::from_utf8(plain.files["main.cf"].clone()).unwrap();
        plain.files.insert(
            "main.cf".to_owned(),
            main.replace(
                "inet_interfaces = loopback-only",
                "inet_interfaces = 127.0.0.1",
            )
            .replace("inet_protocols = all", "inet_protocols = ipv4")
            .into_bytes(),
        );
        assert_eq!(overridden(&plain), []);
    }

    #[test]
    fn containment_reaches_every_client_and_resolver_service_through_words_that_split() {
        let files = files(
            &leaky(),
            &[],
            "smtp",
            &[],
            "127.0.0.1:25".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
            "",
        );
        let read = |name: &str| {
            let (_, bytes) = files.iter().find(|(n, _)| n == name).unwrap();
            String::from_utf8(bytes.clone()).unwrap()
        };
        assert_eq!(
            read("contained"),
            "smtp smtp_bind_address=127.0.0.1\n\
             smtp smtp_bind_address6=\n\
             smtp smtp_fallback_relay=\n\
             smtp smtp_dns_support_level=disabled\n\
             smtp smtp_host_lookup=native\n\
             lmtp lmtp_bind_address=127.0.0.1\n\
             lmtp lmtp_bind_address6=\n\
             lmtp lmtp_fallback_relay=\n\
             lmtp lmtp_dns_support_level=disabled\n\
             lmtp lmtp_host_lookup=native\n\
             trivial-rewrite sender_dependent_relayhost_maps=\n"
        );
        // The entry point splits these on whitespace, unquoted.
        for (k, v) in contained_main() {
            assert!(
                !format!("{k}={v}").contains(|c: char| c.is_whitespace() || "*?[]'\"$".contains(c)),
                "{k}={v}"
            );
        }
        assert!(read("contained-main").starts_with(
            "inet_interfaces=127.0.0.1\ninet_protocols=ipv4\nsmtp_bind_address=127.0.0.1\n"
        ));
    }

    /// Docker-backed: the check's entry point, up to starting Postfix, on
    /// every built-in image; then Postfix's own view of the result.
    #[test]
    fn the_installed_configuration_is_contained_by_postfix_s_own_account_on_every_image() {
        let scenarios: Vec<std::sync::Arc<Scenario>> = crate::scenario::builtin::load()
            .unwrap()
            .into_iter()
            .take(2)
            .map(std::sync::Arc::new)
            .collect();
        let paths: Vec<CheckPath> = scenarios
            .iter()
            .enumerate()
            .map(|(k, scenario)| CheckPath {
                k,
                scenario,
                transport: "smtp".to_owned(),
                nexthop: "[smtp.sendgrid.net]:587".to_owned(),
                by_mx: false,
            })
            .collect();
        let files = files(
            &leaky(),
            &paths,
            "smtp",
            &[],
            "127.0.0.1:25".parse().unwrap(),
            "127.0.0.1:9".parse().unwrap(),
            "",
        );
        // The files reach the container as a tar on its stdin, as the
        // harness's own copy through the API would place them.
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes) in &files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes.as_slice())
                .unwrap();
        }
        let tar = tar.into_inner().unwrap();
        const SEPARATOR: &str = "@@tlsharness@@";
        let views: Vec<String> = crate::mta::postfix::containment::commands()
            .iter()
            .map(|c| c.join(" "))
            .collect();
        let script = format!(
            "mkdir -p /tlsharness && tar -x -C /tlsharness \
             && sed '/^exec postfix start-fg/d' /tlsharness/entrypoint.sh > /tmp/entry.sh \
             && sh /tmp/entry.sh >&2 && postconf -n 2>&1 >/dev/null && echo {SEPARATOR} && {}",
            views.join(&format!(" && echo {SEPARATOR} && "))
        );
        for (suite, _) in crate::mta::postfix::image::SUITES {
            let image = crate::mta::postfix::image::image_for_suite(suite);
            let mut child = std::process::Command::new("docker")
                .args([
                    "run",
                    "--rm",
                    "-i",
                    "--network",
                    "none",
                    "--entrypoint",
                    "sh",
                ])
                .args([image.as_str(), "-c", &script])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("this test needs Docker and the built-in images: run ci/setup-docker.sh");
            {
                use std::io::Write as _;
                let mut stdin = child.stdin.take().unwrap();
                stdin.write_all(&tar).unwrap();
            }
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{image}: {stderr}");
            let parts: Vec<&str> = stdout.split(&format!("{SEPARATOR}\n")).collect();
            let [warnings, main, services, overrides] = parts.as_slice() else {
                panic!("{image}: {stdout}");
            };
            assert_eq!(*warnings, "", "{image}: Postfix warns");
            let loose: Vec<String> =
                crate::mta::postfix::containment::loose(main, services, overrides)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            assert!(loose.is_empty(), "{image}: {loose:#?}");
            // Every clone and the user's own services were judged.
            for name in [
                "tlsh-check-0",
                "tlsh-check-1",
                "smtp",
                "relay",
                "lmtp",
                "rewrite",
            ] {
                assert!(
                    services.lines().any(|l| l.starts_with(&format!("{name} "))),
                    "{image}: no {name}: {services}"
                );
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
            relayhost: Some("[smtp.example.com]:587".to_owned()),
            level: String::new(),
            ..Default::default()
        };
        let files = files(
            &config,
            &[],
            "smtp",
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
            "tlsh-check-preflight smtp -o smtp_bind_address=127.0.0.1 -o { smtp_bind_address6 =  } -o { smtp_fallback_relay =  } -o smtp_dns_support_level=disabled -o smtp_host_lookup=native\n"
        );
        assert_eq!(
            super::super::preflight::recipient(),
            "preflight@preflight.check.tlsharness.invalid"
        );
    }
}

//! Exim 4 behind the MTA boundary: the whole configuration is the
//! harness's own (Debian's split configuration is not used), with one
//! smtp transport per policy ([`EximPolicy`]) and a route
//! per case read from a table: the case's recipient domain goes to the
//! relay's name and port, from the case's source address; a case by MX
//! becomes an address in its zone's domain, delivered by Exim's own
//! dnslookup router.

pub mod log;
pub mod policy;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

pub use policy::EximPolicy;

use super::containment::{Loose, NotContained};
use super::image::BuiltIn;
use super::{CASE_DOMAIN, Driver, Rendered, Target};
use crate::policy::Mta;

/// The Exim image: Debian bookworm's Exim 4.96 (exim4-daemon-heavy,
/// built with GnuTLS).
pub const IMAGE: &str = "tlsharness/exim:bookworm";
/// What the Exim image holds besides the base system: Exim, and for
/// scenarios with DNS on the path the validating resolver (unbound), the
/// name server of the run's zones (nsd) and the tools that sign them and
/// ask the resolver (ldnsutils). Exim has no MTA-STS, so no policy daemon.
pub const PACKAGES: [&str; 5] = [
    "exim4-daemon-heavy",
    "ca-certificates",
    "unbound",
    "nsd",
    "ldnsutils",
];

/// The smtp transport options a scenario may set in `[exim.settings]`:
/// timeouts and the TLS versions and ciphers the client offers. Those
/// that make a policy, route or contain the mail are the harness's.
pub const SETTINGS: [&str; 5] = [
    "command_timeout",
    "connect_timeout",
    "data_timeout",
    "final_timeout",
    "tls_require_ciphers",
];

/// Exim's driver: its policies are [`EximPolicy`]'s, its scenario table
/// `[exim]`.
pub struct Exim;

impl Driver for Exim {
    fn name(&self) -> &'static str {
        "exim"
    }

    fn title(&self) -> &'static str {
        "Exim"
    }

    fn policies(&self) -> &'static [&'static str] {
        &policy::NAMES
    }

    fn scenario_table(&self) -> Option<(&'static str, &'static [&'static str])> {
        Some(("exim", &SETTINGS))
    }

    fn default_image(&self) -> &'static str {
        IMAGE
    }

    fn images(&self) -> &'static [BuiltIn] {
        &[BuiltIn {
            image: IMAGE,
            suite: "bookworm",
            packages: &PACKAGES,
        }]
    }

    fn render(
        &self,
        targets: &[Target<'_>],
        hosts: &BTreeMap<String, Vec<IpAddr>>,
        ca_pem: &str,
    ) -> Rendered {
        render(targets, hosts, ca_pem)
    }

    fn parse_line(&self, raw: &str) -> super::log::LogLine {
        log::parse(raw)
    }

    /// `OK id=1xXyir-00000T-1e`
    fn queue_id_in_reply(&self, reply: &str) -> Option<String> {
        let (_, id) = reply.rsplit_once("id=")?;
        Some(id.trim().to_owned())
    }

    fn retry_command(&self, queue_id: &str) -> Vec<String> {
        retry_command(queue_id)
    }

    fn remove_command(&self, queue_id: &str) -> Vec<String> {
        vec!["exim".into(), "-Mrm".into(), queue_id.into()]
    }

    fn case_config(
        &self,
        version: &str,
        image: &str,
        configs: &(String, String),
        transport: &str,
        route: &str,
    ) -> String {
        case_config(version, image, configs, transport, route)
    }

    /// Exim only queues what it receives; `exim -M` is the attempt.
    fn queues_on_receipt(&self) -> bool {
        true
    }

    fn containment_commands(&self) -> Vec<Vec<String>> {
        containment_commands()
    }

    fn verify_containment(&self, outputs: &[&str]) -> Result<(), NotContained> {
        verify_containment(outputs)
    }
}

/// Where the harness's route table and CA live inside the container.
const CONF_DIR: &str = "/etc/exim4/tlsharness";

/// The smtp transport options that make each policy (besides the
/// route's port, source address and CA, which every transport reads).
fn policy_options(policy: EximPolicy) -> &'static [(&'static str, &'static str)] {
    match policy {
        EximPolicy::None => &[("hosts_avoid_tls", "*")],
        EximPolicy::Try => &[],
        EximPolicy::TryNoclear => &[("tls_tempfail_tryclear", "false")],
        EximPolicy::Require => &[("hosts_require_tls", "*")],
        EximPolicy::RequireVerify => &[
            ("hosts_require_tls", "*"),
            ("tls_verify_hosts", "*"),
            ("tls_verify_cert_hostnames", "*"),
        ],
        EximPolicy::Dane => &[("hosts_require_dane", "*")],
    }
}

/// A transport: a policy, with a scenario's own `[exim.settings]`.
type TransportKey = (EximPolicy, BTreeMap<String, String>);

/// The name of transport `n`: `tlsh0_try_noclear`.
fn transport_name(n: usize, policy: EximPolicy) -> String {
    format!("tlsh{n}_{}", policy.as_str().replace('-', "_"))
}

/// The main configuration: injected mail is accepted from loopback only,
/// every case's domain is routed by the table, the sender's domain (where
/// bounces go) is discarded, and nothing else is routable.
fn main_conf(transports: &[(String, TransportKey)]) -> String {
    let mut out = format!(
        r#"# Written by tlsharness for one run. Everything outside the harness's
# own routes is contained: loopback only, DNS only from the run's own
# resolver (for the cases that go by MX), and a domain in no table of the
# harness's is undeliverable.
primary_hostname = mta.tlsharness.test
keep_environment =
daemon_smtp_ports = 25
# Every case is injected at once; Exim's default refuses the 21st connection.
smtp_accept_max = 0
local_interfaces = <; 127.0.0.1
tls_advertise_hosts =
host_lookup =
rfc1413_hosts =
log_file_path = /var/log/exim4/%slog
log_selector = +pid +tls_peerdn +tls_certificate_verified +outgoing_port +outgoing_interface
message_logs = false
# Every delivery is the harness's (`exim -M`, forced): cases share the
# relay's name and address, and Exim's hints (a host's retry time, messages
# waiting for a host) would otherwise carry one case's failure into another.
queue_only = true
acl_smtp_rcpt = acl_rcpt
never_users =
received_header_text = Received: from $sender_rcvhost by $primary_hostname with $received_protocol id $message_exim_id

begin acl

acl_rcpt:
  accept hosts = <; 127.0.0.0/8
  deny

begin routers

# Bounces to the harness's sender are discarded here.
discard:
  driver = redirect
  domains = {CASE_DOMAIN}
  data = :blackhole:

# A case whose mail goes by MX: its address becomes one in its zone's
# domain, which the MX router below delivers as Exim would any domain.
tlsh_zone:
  driver = redirect
  domains = lsearch;{CONF_DIR}/by-mx
  data = $local_part@${{lookup{{$domain}}lsearch{{{CONF_DIR}/by-mx}}}}

# A case whose mail goes to the relay by name: its host (from /etc/hosts),
# port, source address and transport.
tlsh:
  driver = manualroute
  domains = lsearch;{CONF_DIR}/routes
  address_data = ${{lookup{{$domain}}lsearch{{{CONF_DIR}/routes}}}}
  route_data = ${{extract{{host}}{{$address_data}}}} byname
  transport = ${{extract{{transport}}{{$address_data}}}}
  host_find_failed = defer
  self = send

# A zone's domain: its MX hosts through the run's validating resolver,
# with DNSSEC asked for (Exim's default), so that DANE can apply.
tlsh_mx:
  driver = dnslookup
  domains = lsearch;{CONF_DIR}/zones
  address_data = ${{lookup{{$domain}}lsearch{{{CONF_DIR}/zones}}}}
  transport = ${{extract{{transport}}{{$address_data}}}}
  dnssec_request_domains = *
  self = send
  no_more

begin transports
"#
    );
    for (name, (policy, settings)) in transports {
        let _ = write!(
            out,
            "\n{name}:\n  driver = smtp\n  connection_max_messages = 1\n  port = ${{extract{{port}}{{$address_data}}}}\n  interface = ${{extract{{source}}{{$address_data}}}}\n  tls_verify_certificates = ${{extract{{ca}}{{$address_data}}}}\n"
        );
        for (k, v) in policy_options(*policy) {
            let _ = writeln!(out, "  {k} = {v}");
        }
        for (k, v) in settings {
            let _ = writeln!(out, "  {k} = {v}");
        }
    }
    out.push_str(
        "\nbegin retry\n\n# Retries are the harness's (`exim -M`); no queue runner runs.\n* * F,1d,1m\n",
    );
    out
}

/// A case's route: `c0.tlsharness.test: host=... port=... source=...
/// ca=... transport=...`, or for a case by MX, its zone's entry
/// `ZONE: port=25 source=... ca=... transport=...`.
fn route_line(t: &Target<'_>, transport: &str) -> String {
    let ca = if t.scenario.mta_trusts_run_ca() {
        format!("{CONF_DIR}/ca.pem")
    } else {
        // The system store, which does not hold the run's CA.
        "system".to_owned()
    };
    let source = t.source.map(|s| s.to_string()).unwrap_or_default();
    match &t.zone {
        Some(z) => format!(
            "{}: port={} source={source} ca={ca} transport={transport}",
            z.name, t.port
        ),
        None => format!(
            "{}: host={} port={} source={source} ca={ca} transport={transport}",
            t.domain(),
            t.hostname,
            t.port,
        ),
    }
}

/// Installs the run's configuration and runs Exim's daemon in the
/// foreground, with no queue runner (retries are the harness's); the main
/// and panic logs are followed on stdout, where the harness reads them.
const ENTRYPOINT: &str = r#"#!/bin/sh
# tlsharness entry point (runs inside the Exim container).
set -eu
src=/tlsharness
mkdir -p /etc/exim4/tlsharness
cp "$src/exim4.conf" /etc/exim4/exim4.conf
cp "$src/routes" "$src/by-mx" "$src/zones" "$src/ca.pem" /etc/exim4/tlsharness/
cat "$src/hosts" >> /etc/hosts
# Relay names resolve from /etc/hosts; only the run's own resolver (for the
# cases by MX, see dns.sh) answers DNS in the namespace.
echo "nameserver 127.0.0.1" > /etc/resolv.conf
if [ -f "$src/dns.sh" ]; then sh "$src/dns.sh"; fi
mkdir -p /var/log/exim4
: > /var/log/exim4/mainlog
: > /var/log/exim4/paniclog
chown Debian-exim:adm /var/log/exim4/mainlog /var/log/exim4/paniclog
tail -q -n +1 -F /var/log/exim4/mainlog /var/log/exim4/paniclog &
echo "tlsharness: configuration installed" >&2
exec exim -bdf
"#;

/// The configuration of one Exim instance for `targets`.
fn render(targets: &[Target<'_>], hosts: &BTreeMap<String, Vec<IpAddr>>, ca_pem: &str) -> Rendered {
    let mut transports: Vec<(String, TransportKey)> = Vec::new();
    let mut routes = String::new();
    let mut by_mx = String::new();
    let mut zones = String::new();
    let mut zone_list = Vec::new();
    let mut shown = Vec::new();
    for t in targets {
        let policy = EximPolicy::of(t.policy).expect("an Exim case has an Exim policy");
        let key = (policy, t.scenario.settings(Mta::Exim).clone());
        let name = match transports.iter().find(|(_, k)| *k == key) {
            Some((name, _)) => name.clone(),
            None => {
                let name = transport_name(transports.len(), policy);
                transports.push((name.clone(), key));
                name
            }
        };
        let line = route_line(t, &name);
        match &t.zone {
            Some(z) => {
                let _ = writeln!(by_mx, "{}: {}", t.domain(), z.name);
                let _ = writeln!(zones, "{line}");
                shown.push((name, format!("{} -> {}; {line}", t.domain(), z.name)));
            }
            None => {
                let _ = writeln!(routes, "{line}");
                shown.push((name, line));
            }
        }
        zone_list.extend(t.zone.clone());
    }
    let conf = main_conf(&transports);
    let mut files = vec![
        ("exim4.conf".to_owned(), conf.clone().into_bytes()),
        ("routes".to_owned(), routes.clone().into_bytes()),
        ("by-mx".to_owned(), by_mx.clone().into_bytes()),
        ("zones".to_owned(), zones.clone().into_bytes()),
        ("hosts".to_owned(), super::hosts_file(hosts).into_bytes()),
        ("ca.pem".to_owned(), ca_pem.as_bytes().to_vec()),
        ("entrypoint.sh".to_owned(), ENTRYPOINT.as_bytes().to_vec()),
    ];
    // Exim has no MTA-STS: its cases need no policy daemon.
    files.extend(super::dns::files(&zone_list, false));
    Rendered {
        files,
        configs: (conf, format!("{routes}{by_mx}{zones}")),
        routes: shown,
    }
}

/// The section of `transport` in the configuration: its line and its
/// indented options.
fn transport_section(conf: &str, transport: &str) -> String {
    super::section(conf, |line| line == format!("{transport}:"))
}

/// A case's configuration for its artifacts: its route, its transport,
/// then the whole exim4.conf.
fn case_config(
    version: &str,
    image: &str,
    (conf, _routes): &(String, String),
    transport: &str,
    route: &str,
) -> String {
    format!(
        "# Exim {version} in {image}; the case's route and transport, then the whole exim4.conf.\n\n\
         # route table entry ({CONF_DIR}/routes)\n{route}\n\n# transport\n{}\n# exim4.conf\n{conf}",
        transport_section(conf, transport),
    )
}

/// Delivers one queued message now, whatever its retry time (`-M`; it
/// waits for the delivery, and its exit status says only that the
/// message is still queued, which the log says better).
fn retry_command(queue_id: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        "exim -M \"$1\" || true".into(),
        "sh".into(),
        queue_id.into(),
    ]
}

/// The harness's routers, in order.
const ROUTERS: [&str; 4] = ["discard", "tlsh_zone", "tlsh", "tlsh_mx"];

/// Exim's own account of its routers and transports, then resolv.conf.
fn containment_commands() -> Vec<Vec<String>> {
    vec![
        vec!["exim".into(), "-bP".into(), "router_list".into()],
        vec!["exim".into(), "-bP".into(), "transports".into()],
    ]
}

/// Refuses a configuration whose routers are not the harness's two, or
/// whose transports could send anywhere but to the route's host from
/// loopback (`hosts` or `fallback_hosts` set, or an `interface` that the
/// route table does not give).
fn verify_containment(outputs: &[&str]) -> Result<(), NotContained> {
    let [routers, transports, resolv_conf] = outputs else {
        return Err(NotContained::unreadable("exim -bP"));
    };
    let mut loose = Vec::new();
    let mut flag = |kind: &str, parameter: &str, value: &str, why: &str| {
        loose.push(Loose {
            service: "exim".into(),
            kind: kind.into(),
            parameter: parameter.into(),
            value: value.into(),
            effective: value.into(),
            why: why.into(),
        })
    };
    // `exim -bP router_list` prints one router per line.
    let list: Vec<&str> = routers
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if list != ROUTERS {
        flag(
            "router",
            "router_list",
            &list.join(" : "),
            "only the harness's routers (discard, tlsh_zone, tlsh, tlsh_mx) may route mail",
        );
    }
    for line in transports.lines() {
        let Some((k, v)) = line.split_once(" = ") else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "hosts" | "fallback_hosts" if !v.is_empty() => flag(
                "transport",
                k,
                v,
                "a transport's own hosts would receive mail the route table does not send them",
            ),
            "interface" if v != "${extract{source}{$address_data}}" => flag(
                "transport",
                k,
                v,
                "the client must send from the case's loopback source address",
            ),
            _ => {}
        }
    }
    if super::containment::asks_off_loopback(resolv_conf) {
        let servers = super::containment::nameservers(resolv_conf).join(" ");
        flag(
            "resolver",
            "nameserver",
            &servers,
            "only a resolver on loopback may be asked",
        );
    }
    if loose.is_empty() {
        Ok(())
    } else {
        Err(NotContained(loose))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_has_its_transport_and_options() {
        let transports: Vec<(String, TransportKey)> = EximPolicy::ALL
            .iter()
            .enumerate()
            .map(|(n, p)| (transport_name(n, *p), (*p, BTreeMap::new())))
            .collect();
        let conf = main_conf(&transports);
        for (name, _) in &transports {
            assert!(conf.contains(&format!("\n{name}:\n")), "{conf}");
        }
        assert!(conf.contains("tlsh2_try_noclear:\n"));
        assert!(conf.contains("  tls_tempfail_tryclear = false\n"));
        assert!(conf.contains("  hosts_avoid_tls = *\n"));
    }

    #[test]
    fn a_case_s_artifact_shows_its_own_transport() {
        let transports = vec![
            ("tlsh0_try".to_owned(), (EximPolicy::Try, BTreeMap::new())),
            (
                "tlsh1_require".to_owned(),
                (EximPolicy::Require, BTreeMap::new()),
            ),
        ];
        let conf = main_conf(&transports);
        let text = case_config(
            "4.96",
            "tlsharness/exim:bookworm",
            &(conf, String::new()),
            "tlsh1_require",
            "c1.tlsharness.test: host=smtp.relay.test port=587",
        );
        let section = text.split("# transport\n").nth(1).unwrap();
        let section = section.split("\n# exim4.conf").next().unwrap();
        assert!(
            section.starts_with("tlsh1_require:\n  driver = smtp\n"),
            "{section}"
        );
        assert!(section.contains("  hosts_require_tls = *\n"), "{section}");
        assert!(!section.contains("tlsh0_try"), "{section}");
    }

    #[test]
    fn a_transport_with_hosts_of_its_own_is_refused() {
        let ok = "interface = ${extract{source}{$address_data}}\nhosts =\n";
        assert!(
            verify_containment(&[
                "discard\ntlsh_zone\ntlsh\ntlsh_mx\n",
                ok,
                "nameserver 127.0.0.1\n"
            ])
            .is_ok()
        );
        let out = "interface = ${extract{source}{$address_data}}\nfallback_hosts = 192.0.2.1\n";
        let e = verify_containment(&["discard\ntlsh_zone\ntlsh\ntlsh_mx\n", out, ""]).unwrap_err();
        assert!(e.to_string().contains("fallback_hosts = 192.0.2.1"), "{e}");
    }
}

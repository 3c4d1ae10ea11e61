//! Postfix behind the MTA boundary: a run's cases as smtp transports
//! (one per distinct set of `-o` settings) and transport_maps routes,
//! its mail log, and the containment check of its configuration.

pub mod config;
pub mod containment;
pub mod image;
pub mod level;
pub mod log;

use std::collections::BTreeMap;
use std::net::IpAddr;

use config::{CONF_DIR, PostfixConfig, Route, Transport};

use super::containment::NotContained;
use super::image::BuiltIn;
use super::{Driver, Rendered, Target};
use crate::level::Level;
use crate::policy::Policy;
use crate::scenario::Scenario;

/// Postfix's driver: its policies are `smtp_tls_security_level`'s values
/// ([`Level`]), then the two legacy policies.
pub struct Postfix;

impl Driver for Postfix {
    fn name(&self) -> &'static str {
        "postfix"
    }

    fn title(&self) -> &'static str {
        "Postfix"
    }

    fn policies(&self) -> &'static [&'static str] {
        &level::NAMES
    }

    fn default_image(&self) -> &'static str {
        image::DEFAULT_IMAGE
    }

    fn images(&self) -> &'static [BuiltIn] {
        &image::IMAGES
    }

    /// `[postfix] image`.
    fn pinned_image<'s>(&self, scenario: &'s Scenario) -> Option<&'s str> {
        scenario.postfix.image.as_deref()
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

    /// `2.0.0 Ok: queued as 4ABC123`
    fn queue_id_in_reply(&self, reply: &str) -> Option<String> {
        let (_, id) = reply.rsplit_once("queued as ")?;
        Some(id.trim().to_owned())
    }

    fn retry_command(&self, queue_id: &str) -> Vec<String> {
        vec!["postqueue".into(), "-i".into(), queue_id.into()]
    }

    fn remove_command(&self, queue_id: &str) -> Vec<String> {
        vec!["postsuper".into(), "-d".into(), queue_id.into()]
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

    fn plaintext_fallback_age(
        &self,
        policy: Policy,
        scenario: &Scenario,
    ) -> Option<std::time::Duration> {
        plaintext_fallback_age(Level::of(policy)?, scenario)
    }

    /// qmgr's `(queue active)` line.
    fn logs_attempt_start(&self) -> bool {
        true
    }

    fn containment_commands(&self) -> Vec<Vec<String>> {
        containment::commands().to_vec()
    }

    fn verify_containment(&self, outputs: &[&str]) -> Result<(), NotContained> {
        match outputs {
            [main, services, overrides, resolv_conf] => {
                containment::verify(main, services, overrides, resolv_conf)
            }
            _ => Err(NotContained::unreadable("postconf")),
        }
    }
}

/// The file of case `rig`'s own lookup table `kind`: cases share next
/// hops (the relay's name and real port), so each has tables of its own.
fn map_name(kind: &str, rig: u64) -> String {
    format!("{kind}.{rig}")
}

/// The case's next hop in Postfix's terms: `[name]:port`, or the domain
/// whose MX hosts Postfix looks up.
fn nexthop(t: &Target<'_>) -> String {
    match &t.zone {
        Some(z) => z.name.clone(),
        None => format!("[{}]:{}", t.hostname, t.port),
    }
}

/// The smtp client settings that select `level`.
fn level_settings(level: Level) -> Vec<(&'static str, &'static str)> {
    match level {
        Level::LegacyUseTls => vec![
            ("smtp_tls_security_level", ""),
            ("smtp_use_tls", "yes"),
            ("smtp_enforce_tls", "no"),
        ],
        Level::LegacyEnforceTls => vec![
            ("smtp_tls_security_level", ""),
            ("smtp_use_tls", "no"),
            ("smtp_enforce_tls", "yes"),
        ],
        level => vec![("smtp_tls_security_level", level.as_str())],
    }
}

/// Postfix's default `minimal_backoff_time` (every version the images
/// ship); a scenario sets its own only through `[delivery] retry_after`.
const DEFAULT_MINIMAL_BACKOFF: u64 = 300;

/// The age from which Postfix at `level` retries a failed TLS handshake
/// in plaintext: at `may` (and the legacy `smtp_use_tls`, which is `may`)
/// without SASL credentials, once the message waited minimal_backoff_time
/// before entering the active queue (smtp_proto.c,
/// `PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE`: `PREACTIVE_DELAY >=
/// var_min_backoff_time && !HAVE_SASL_CREDENTIALS`).
fn plaintext_fallback_age(level: Level, scenario: &Scenario) -> Option<std::time::Duration> {
    if !matches!(level, Level::May | Level::LegacyUseTls) || scenario.postfix.sasl.is_some() {
        return None;
    }
    let secs = scenario
        .delivery
        .retry_after
        .map_or(DEFAULT_MINIMAL_BACKOFF, |s| s.0);
    Some(std::time::Duration::from_secs(secs))
}

/// Where Postfix asks the MTA-STS resolver daemon the run starts
/// (postfix-mta-sts-resolver's socketmap, on its default address).
const MTA_STS_DAEMON: &str = "socketmap:inet:127.0.0.1:8461:postfix";

/// The `-o` settings of a case's smtp transport: its level, source
/// address, trust, backoff, pinned fingerprint, DNS, SASL and policy
/// tables, then the scenario's own `[postfix.settings]`.
fn settings(t: &Target<'_>, level: Level) -> BTreeMap<String, String> {
    let scenario = t.scenario;
    let mut settings = BTreeMap::new();
    for (k, v) in level_settings(level) {
        settings.insert(k.to_owned(), v.to_owned());
    }
    if let Some(source) = t.source {
        settings.insert("smtp_bind_address".into(), source.to_string());
    }
    if !scenario.postfix.trust_ca {
        settings.insert("smtp_tls_CAfile".into(), String::new());
    }
    if let Some(after) = scenario.delivery.retry_after {
        settings.insert("minimal_backoff_time".into(), format!("{}s", after.0));
    }
    if level == Level::Fingerprint {
        // The admin pinned the real relay's certificate.
        settings.insert("smtp_tls_fingerprint_digest".into(), "sha256".into());
        settings.insert(
            "smtp_tls_fingerprint_cert_match".into(),
            t.relay_fingerprint.clone(),
        );
    }
    if t.paths > 1 {
        // Postfix would shuffle the addresses; the paths are in order.
        settings.insert("smtp_randomize_addresses".into(), "no".into());
    }
    if t.zone.is_some() {
        // DNSSEC answers for the DANE levels, as Postfix's DANE
        // documentation asks; plain DNS elsewhere.
        let support = if matches!(level, Level::Dane | Level::DaneOnly) {
            "dnssec"
        } else {
            "enabled"
        };
        settings.insert("smtp_dns_support_level".into(), support.into());
        settings.insert("smtp_host_lookup".into(), "dns".into());
        if scenario.mta_sts.is_some() {
            settings.insert("smtp_tls_policy_maps".into(), MTA_STS_DAEMON.into());
        }
    }
    if scenario.postfix.sasl.is_some() {
        settings.insert("smtp_sasl_auth_enable".into(), "yes".into());
        settings.insert(
            "smtp_sasl_password_maps".into(),
            format!("texthash:{CONF_DIR}/{}", map_name("sasl_passwd", t.rig)),
        );
    }
    if scenario.postfix.tls_policy.is_some() {
        settings.insert(
            "smtp_tls_policy_maps".into(),
            format!("texthash:{CONF_DIR}/{}", map_name("tls_policy", t.rig)),
        );
    }
    for (k, v) in &scenario.postfix.settings {
        settings.insert(k.as_str().to_owned(), v.as_str().to_owned());
    }
    settings
}

/// The configuration of one Postfix instance for `targets`: a transport
/// per distinct set of settings (`tlsh<N>-<level>`), a route per case.
fn render(targets: &[Target<'_>], hosts: &BTreeMap<String, Vec<IpAddr>>, ca_pem: &str) -> Rendered {
    let mut transports: BTreeMap<BTreeMap<String, String>, String> = BTreeMap::new();
    let mut routes = Vec::new();
    let mut maps = BTreeMap::new();
    for t in targets {
        let level = Level::of(t.policy).expect("a Postfix case has a Postfix level");
        let settings = settings(t, level);
        let next = transports.len();
        let name = settings
            .get("smtp_tls_security_level")
            .filter(|l| !l.is_empty())
            .cloned()
            .unwrap_or_else(|| "legacy".into());
        let transport = transports
            .entry(settings)
            .or_insert_with(|| format!("tlsh{next}-{name}"))
            .clone();
        routes.push(Route {
            domain: t.domain(),
            transport,
            nexthop: nexthop(t),
        });
        if let Some(s) = &t.scenario.postfix.sasl {
            maps.insert(
                map_name("sasl_passwd", t.rig),
                format!("{} {}:{}\n", nexthop(t), s.username, s.password),
            );
        }
        if let Some(p) = &t.scenario.postfix.tls_policy {
            maps.insert(
                map_name("tls_policy", t.rig),
                format!("{} {}\n", nexthop(t), p.as_str()),
            );
        }
    }
    let config = PostfixConfig {
        inject: super::INJECT,
        transports: transports
            .into_iter()
            .map(|(settings, name)| Transport { name, settings })
            .collect(),
        routes: routes.clone(),
        hosts: hosts.clone(),
        ca_pem: ca_pem.to_owned(),
        main_overrides: BTreeMap::new(),
        maps,
        zones: targets.iter().filter_map(|t| t.zone.clone()).collect(),
    };
    Rendered {
        files: config.files(),
        configs: (config.main_cf(), config.master_cf()),
        routes: routes
            .into_iter()
            .map(|r| {
                let shown = format!("{} {}:{}", r.domain, r.transport, r.nexthop);
                (r.transport, shown)
            })
            .collect(),
    }
}

/// The master.cf entry of one service: its line and its `-o` lines.
fn master_entry(master_cf: &str, service: &str) -> String {
    super::section(master_cf, |line| {
        line.split_whitespace().next() == Some(service)
    })
}

/// A case's configuration for its artifacts: its transport_maps entry,
/// its master.cf service, then the whole main.cf.
fn case_config(
    version: &str,
    image: &str,
    (main_cf, master_cf): &(String, String),
    transport: &str,
    route: &str,
) -> String {
    format!(
        "# Postfix {version} in {image}; the case's route and transport, then the whole main.cf.\n\n\
         # transport_maps entry\n{route}\n\n# master.cf entry\n{}\n# main.cf\n{main_cf}",
        master_entry(master_cf, transport),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_one_master_entry_with_its_options() {
        let master = "smtp unix - - n - - smtp\ntlsh0-may unix - - n - - smtp\n  -o smtp_tls_security_level=may\ntlsh1-encrypt unix - - n - - smtp\n  -o smtp_tls_security_level=encrypt\n";
        assert_eq!(
            master_entry(master, "tlsh0-may"),
            "tlsh0-may unix - - n - - smtp\n  -o smtp_tls_security_level=may\n"
        );
    }
}

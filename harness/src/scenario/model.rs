//! The scenario file's data model. Every struct refuses unknown keys and
//! every value is checked while it is read, so an error carries the
//! position of the offending key.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::level::Level;
use crate::middlebox::BehaviourSpec;
use crate::outcome::{Outcome, Trust};
use crate::pki::CertKind;
use crate::tls::TlsVersions;
use crate::upstream::ReplaySpec;

/// The scenario file as written, before cross-key checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub relay: Spanned<RelaySpec>,
    #[serde(default)]
    pub middlebox: Option<Spanned<MiddleboxSpec>>,
    /// One path per address of the relay's name, in the order Postfix
    /// tries them; instead of `[middlebox]`.
    #[serde(default)]
    pub paths: Option<Spanned<Vec<MiddleboxSpec>>>,
    /// The recipient domain and its DNS: mail goes by MX instead of to
    /// the relay by name.
    #[serde(default)]
    pub dns: Option<Spanned<crate::dns::DnsSpec>>,
    /// The domain's MTA-STS policy (needs `[dns]`).
    #[serde(default)]
    pub mta_sts: Option<Spanned<crate::dns::mta_sts::MtaStsSpec>>,
    #[serde(default)]
    pub postfix: PostfixSpec,
    #[serde(default)]
    pub delivery: DeliverySpec,
    pub expect: Spanned<RawExpectations>,
    /// What Exim does (`[exim]`), by Exim's policy names; a scenario
    /// without it is not run on Exim.
    #[serde(default)]
    pub exim: Option<Spanned<RawMtaTable>>,
}

/// The fake upstream relay at the far end of the network path.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySpec {
    /// The name Postfix is told to relay to; it resolves to loopback inside
    /// the container and is the name certificates are checked against.
    pub hostname: Hostname,
    /// The port of the real relayhost (shown in reports). On loopback the
    /// harness listens on an ephemeral port instead.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Whether the relay offers STARTTLS in its EHLO reply. Required in the
    /// single-port form; with `services`, the first service's mode.
    #[serde(default)]
    pub starttls: bool,
    /// The certificate the relay presents after STARTTLS.
    #[serde(default)]
    pub certificate: CertKind,
    /// The TLS versions the relay accepts.
    #[serde(default)]
    pub tls_versions: TlsVersions,
    /// Refuse MAIL before STARTTLS (`530 5.7.0 Must issue a STARTTLS command first`).
    #[serde(default)]
    pub require_tls: bool,
    /// TLS from the first byte, as on port 465 (Postfix needs
    /// `smtp_tls_wrappermode = yes` to talk to it).
    #[serde(default)]
    pub implicit_tls: bool,
    /// The relay's listeners, as a hosted relay has (STARTTLS on 587,
    /// implicit TLS on 465): instead of `port`, `starttls` and
    /// `implicit_tls`, which then describe the first, the one `run`
    /// delivers to. Loading fills it in for the single-port form too.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// Whether the file gave the single-port form (set by loading).
    #[serde(skip)]
    pub single_port: bool,
    /// SMTP AUTH; when present the relay requires it before MAIL.
    #[serde(default)]
    pub auth: Option<RelayAuthSpec>,
    /// Replies recorded on a real path (`tlsharness probe`), sent instead of
    /// the relay's own greeting, EHLO replies and answer to STARTTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplaySpec>,
    /// What the relay's host does on ports not in `services`. Absent, the
    /// scenario says nothing about them (`check` on such a port gives
    /// `not-modelled`); `"refused"`, nothing else listens there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elsewhere: Option<Elsewhere>,
}

/// `relay.elsewhere`: the relay host's other ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Elsewhere {
    /// Nothing else listens: a connection to any other port is refused
    /// (the host answers the SYN with a reset).
    Refused,
}

/// One of the relay's listeners: a port and how TLS starts on it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub port: u16,
    pub mode: ServiceMode,
    /// The certificate this listener presents, when it is not the relay's
    /// (`[relay] certificate`): e.g. a path that intercepts TLS on one port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertKind>,
    /// What a probe recorded on this port (`tlsharness probe HOST`); for an
    /// implicit-TLS service, the greeting and EHLO said inside TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplaySpec>,
}

impl ServiceSpec {
    /// A listener with the relay's certificate and its own replies.
    pub fn new(port: u16, mode: ServiceMode) -> ServiceSpec {
        ServiceSpec {
            port,
            mode,
            certificate: None,
            replay: None,
        }
    }
}

/// How a service starts TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceMode {
    /// Plaintext SMTP offering STARTTLS (25, 587).
    Starttls,
    /// TLS from the first byte (465).
    ImplicitTls,
    /// Plaintext SMTP without STARTTLS.
    None,
}

impl ServiceMode {
    pub fn starttls(self) -> bool {
        self == ServiceMode::Starttls
    }

    pub fn implicit_tls(self) -> bool {
        self == ServiceMode::ImplicitTls
    }
}

impl fmt::Display for ServiceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceMode::Starttls => "starttls",
            ServiceMode::ImplicitTls => "implicit-tls",
            ServiceMode::None => "none",
        })
    }
}

/// The port of SMTP submission over implicit TLS (RFC 8314's
/// `submissions`), where TLS starts before any SMTP.
pub const SUBMISSIONS_PORT: u16 = 465;

impl RelaySpec {
    /// The relay's service on `port`, if it has one.
    pub fn service(&self, port: u16) -> Option<ServiceSpec> {
        self.services.iter().find(|s| s.port == port).cloned()
    }

    /// The service a configuration relaying to `port` meets (check). A
    /// relay written with `services` answers on those ports only. One
    /// written in the single-port form answers wherever the configuration
    /// relays, as it always has (its path does not depend on 25 against
    /// 587), except across the implicit-TLS port: a plaintext-first relay
    /// is never on 465, and an implicit-TLS one never elsewhere, since
    /// that would be another service pretending to be this one.
    pub fn service_for(&self, port: u16) -> Option<ServiceSpec> {
        if let Some(s) = self.service(port) {
            return Some(s);
        }
        let only = self.services.first()?;
        let implicit = |p: u16, mode: ServiceMode| p == SUBMISSIONS_PORT || mode.implicit_tls();
        (self.single_port && !implicit(port, ServiceMode::None) && !implicit(only.port, only.mode))
            .then(|| ServiceSpec {
                port,
                ..only.clone()
            })
    }
}

/// `[relay.auth]`: the relay's SMTP AUTH.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelayAuthSpec {
    #[serde(default = "both_mechanisms")]
    pub mechanisms: Vec<AuthMechanism>,
    pub username: String,
    pub password: String,
    /// Offer AUTH before STARTTLS too (as a careless relay does); by
    /// default AUTH is offered only inside TLS, as hosted relays on 587 do.
    #[serde(default)]
    pub before_tls: bool,
}

/// An SMTP AUTH mechanism the fake relay can offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMechanism {
    Plain,
    Login,
}

fn both_mechanisms() -> Vec<AuthMechanism> {
    vec![AuthMechanism::Plain, AuthMechanism::Login]
}

fn default_port() -> u16 {
    25
}

/// The network path between Postfix and the relay.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MiddleboxSpec {
    /// Behaviours applied in order; empty means pass-through.
    #[serde(default)]
    pub behaviour: Vec<BehaviourSpec>,
    /// The relay's ports the behaviours act on; by default every port. A
    /// firewall's SMTP inspection is configured per port (25 and 587, not
    /// 465), so the other ports pass through untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
    /// The relay's ports this path refuses outright (connection refused),
    /// as a firewall that lets only 25 and 587 out does to 465.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block: Vec<u16>,
    /// The relay's ports this path silently drops (no answer to the SYN,
    /// so the client's connect times out), as a firewall with a DROP rule
    /// does; a refusal (`block`) and a drop are different facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<u16>,
}

/// What a path does with a connection to one port.
#[derive(Clone, Debug, PartialEq)]
pub enum PortFate {
    /// It reaches the relay through these behaviours (none: untouched).
    Passes(Vec<BehaviourSpec>),
    /// The connection is refused (`block`).
    Refused,
    /// The SYN goes unanswered (`drop`).
    Dropped,
}

impl MiddleboxSpec {
    /// The behaviours that act on `port`; `None` when the path refuses it.
    pub fn on_port(&self, port: u16) -> Option<Vec<BehaviourSpec>> {
        match self.fate(port) {
            PortFate::Passes(b) => Some(b),
            PortFate::Refused | PortFate::Dropped => None,
        }
    }

    /// What the path does with a connection to `port`.
    pub fn fate(&self, port: u16) -> PortFate {
        if self.block.contains(&port) {
            return PortFate::Refused;
        }
        if self.drop.contains(&port) {
            return PortFate::Dropped;
        }
        match &self.ports {
            Some(ports) if !ports.contains(&port) => PortFate::Passes(Vec::new()),
            _ => PortFate::Passes(self.behaviour.clone()),
        }
    }
}

/// Scenario-level settings of the Postfix under test.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostfixSpec {
    /// Whether Postfix trusts the run's CA (`smtp_tls_CAfile`). With `false`
    /// Postfix has no trust anchor at all, as with a relay whose CA is unknown.
    #[serde(default = "yes")]
    pub trust_ca: bool,
    /// smtp client settings for this scenario's transports (`-o name=value`),
    /// e.g. shortened timeouts.
    #[serde(default)]
    pub settings: BTreeMap<SettingName, SettingValue>,
    /// Postfix's SASL client credentials for the relay (password map entry).
    #[serde(default)]
    pub sasl: Option<SaslSpec>,
    /// An smtp_tls_policy_maps entry for the relay's next hop, e.g.
    /// `"secure match=nexthop"`: it overrides the level for this destination.
    #[serde(default)]
    pub tls_policy: Option<TlsPolicy>,
    /// The Postfix image this scenario runs on, whatever `--image` says.
    #[serde(default, deserialize_with = "image_name")]
    pub image: Option<String>,
}

impl Default for PostfixSpec {
    fn default() -> Self {
        PostfixSpec {
            trust_ca: true,
            settings: BTreeMap::new(),
            sasl: None,
            tls_policy: None,
            image: None,
        }
    }
}

fn image_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(de::Error::custom(format!(
            "`{s}` is not an image name (e.g. tlsharness/postfix:trixie)"
        )));
    }
    Ok(Some(s))
}

/// `[postfix.sasl]`: what Postfix's SASL client authenticates with.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SaslSpec {
    pub username: String,
    pub password: String,
}

/// The right-hand side of an smtp_tls_policy_maps entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TlsPolicy(String);

impl TlsPolicy {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TlsPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let level = s.split_whitespace().next().unwrap_or("");
        let known = Level::ALL.iter().take(8).any(|l| l.as_str() == level);
        if !known || s.contains(['\n', '\r']) {
            return Err(de::Error::custom(format!(
                "`{s}` is not a TLS policy: start with a level (none, may, encrypt, fingerprint, dane, dane-only, verify, secure), then its attributes, e.g. \"secure match=nexthop\""
            )));
        }
        Ok(TlsPolicy(s))
    }
}

/// Settings the harness sets itself, per case.
pub const OWNED_SETTINGS: &[(&str, &str)] = &[
    ("smtp_tls_security_level", "the level comes from [expect]"),
    ("smtp_use_tls", "use the legacy-use-tls level in [expect]"),
    (
        "smtp_enforce_tls",
        "use the legacy-enforce-tls level in [expect]",
    ),
    ("smtp_tls_CAfile", "use [postfix] trust_ca"),
    ("minimal_backoff_time", "use [delivery] retry_after"),
    ("smtp_tls_policy_maps", "use [postfix] tls_policy"),
    ("smtp_sasl_auth_enable", "use [postfix.sasl]"),
    ("smtp_sasl_password_maps", "use [postfix.sasl]"),
    (
        "smtp_tls_fingerprint_cert_match",
        "the harness pins the relay's certificate for the fingerprint level",
    ),
    (
        "smtp_tls_fingerprint_digest",
        "the harness pins the relay's certificate for the fingerprint level",
    ),
    (
        "smtp_randomize_addresses",
        "the harness turns it off for scenarios with several paths",
    ),
    // Containment: with any of these a transport could reach beyond the
    // run's own next hops, or send from an address other than loopback.
    // A scenario's settings become `-o` options on its smtp(8) transport,
    // which beat main.cf; the routing parameters below do nothing there
    // today, but are refused too so that no scenario can ever route mail
    // past the transport map, whatever a setting is applied to.
    (
        "smtp_bind_address",
        "the harness binds the smtp client to 127.0.0.1 (containment)",
    ),
    (
        "smtp_bind_address6",
        "the harness binds the smtp client to loopback (containment)",
    ),
    (
        "smtp_fallback_relay",
        "a fallback relay would send mail beyond the run's own next hops (containment)",
    ),
    (
        "smtp_dns_support_level",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    (
        "smtp_host_lookup",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    (
        "smtp_bind_address_enforce",
        "the harness decides where the smtp client sends from (containment)",
    ),
    // Which addresses Postfix has: with a single non-loopback address in
    // inet_interfaces the smtp client sends from it, and inet_protocols
    // decides whether it may use IPv6 (sent from smtp_bind_address6).
    (
        "inet_interfaces",
        "the harness keeps Postfix on loopback (containment)",
    ),
    (
        "inet_protocols",
        "the harness keeps Postfix on loopback IPv4 (containment)",
    ),
    // Name resolution: DNS is disabled; these would turn it back on or
    // change the names looked up.
    (
        "disable_dns_lookups",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    (
        "smtp_dns_resolver_options",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    (
        "use_srv_lookup",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    // Routing: the transport map sends each case to its own fake relay and
    // everything else is refused locally; each of these could send mail to
    // another next hop or transport. relay_domains is not among them: it
    // decides which recipients are relayed, not where (relay_transport and
    // the transport map do). The address_verify_* variants route only
    // address-verification probes, which nothing in a run makes.
    (
        "fallback_relay",
        "the old name of smtp_fallback_relay: a fallback relay would send mail beyond the run's own next hops (containment)",
    ),
    (
        "relayhost",
        "the transport map sends each case to its own relay (containment)",
    ),
    (
        "sender_dependent_relayhost_maps",
        "the transport map sends each case to its own relay (containment)",
    ),
    (
        "transport_maps",
        "the harness routes each case through its own transport map (containment)",
    ),
    (
        "default_transport",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "sender_dependent_default_transport_maps",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "relay_transport",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "local_transport",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "virtual_transport",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "content_filter",
        "a content filter would send every message to another transport (containment)",
    ),
    (
        "best_mx_transport",
        "it would hand mail to another transport (containment)",
    ),
];

/// A Postfix parameter name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SettingName(String);

impl SettingName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SettingName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let valid = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(de::Error::custom(format!(
                "`{s}` is not a Postfix parameter name"
            )));
        }
        if let Some((_, why)) = OWNED_SETTINGS.iter().find(|(n, _)| *n == s) {
            return Err(de::Error::custom(format!(
                "`{s}` is set by the harness: {why}"
            )));
        }
        if !is_postfix_parameter(&s) {
            let hint = match closest_parameter(&s) {
                Some(near) => match OWNED_SETTINGS.iter().find(|(n, _)| *n == near) {
                    Some((_, why)) => {
                        format!("; did you mean `{near}`? (it is set by the harness: {why})")
                    }
                    None => format!("; did you mean `{near}`?"),
                },
                None => String::new(),
            };
            return Err(de::Error::custom(format!(
                "`{s}` is not a Postfix parameter (no built-in image's Postfix knows it){hint}"
            )));
        }
        Ok(SettingName(s))
    }
}

/// Every parameter name `postconf -d` lists on the three built-in images,
/// one a line, sorted, after `#` comments: Postfix ignores a setting it
/// does not know (a warning in its log), so a misspelled one would
/// silently change nothing. Postfix's own list, not a hand-kept one; the
/// Docker-backed test in tests/blame.rs keeps it equal to the images'.
const POSTFIX_PARAMETERS: &str = include_str!("../../../fixtures/postfix/parameters.txt");

fn postfix_parameters() -> impl Iterator<Item = &'static str> {
    POSTFIX_PARAMETERS
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Whether some built-in image's Postfix knows the parameter `name`.
pub fn is_postfix_parameter(name: &str) -> bool {
    postfix_parameters().any(|p| p == name)
}

/// The known parameter nearest to `name`, if one is near enough to be a
/// slip of the keyboard: at most a third of its length in edits, and at
/// most three. Ties go to the first in sorted order, so the hint is stable.
pub fn closest_parameter(name: &str) -> Option<&'static str> {
    let most = (name.chars().count() / 3).clamp(1, 3);
    postfix_parameters()
        .map(|p| (edit_distance(name, p), p))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| p)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A Postfix parameter value: text, a number or a boolean (`yes`/`no`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SettingValue(String);

impl SettingValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SettingValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SettingValue, E> {
                if v.contains(['\n', '\r', '{', '}']) {
                    return Err(E::custom("a value may not contain line breaks or braces"));
                }
                Ok(SettingValue(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SettingValue, E> {
                Ok(SettingValue(if v { "yes" } else { "no" }.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[delivery]`: how further delivery attempts are made.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
    /// How old the message must be before each further attempt. It is also
    /// the smtp client's `minimal_backoff_time`, which decides whether an
    /// opportunistic (`may`) delivery may fall back to plaintext after a
    /// failed TLS handshake. Without it, further attempts follow at once
    /// and Postfix's default (300s) applies.
    #[serde(default)]
    pub retry_after: Option<Seconds>,
}

/// A whole number of seconds, written `"5s"`, `"2m"` or `"1h"`, from one
/// second to one day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Seconds(pub u64);

impl Seconds {
    /// One day: longer waits are a typo, not a test.
    pub const MAX: u64 = 86_400;
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || {
            de::Error::custom(format!(
                "`{s}` is not a duration (write e.g. \"5s\", \"2m\")"
            ))
        };
        let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(bad()),
        };
        if n == 0 {
            return Err(de::Error::custom("the duration must be at least 1s"));
        }
        match n.checked_mul(mult) {
            Some(secs) if secs <= Seconds::MAX => Ok(Seconds(secs)),
            _ => Err(de::Error::custom(format!(
                "`{s}` is too long: the longest duration is 24h"
            ))),
        }
    }
}

fn yes() -> bool {
    true
}

/// `[expect]`: one entry per security level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpectations {
    pub none: Option<Spanned<Expectation>>,
    pub may: Option<Spanned<Expectation>>,
    pub encrypt: Option<Spanned<Expectation>>,
    pub fingerprint: Option<Spanned<Expectation>>,
    pub dane: Option<Spanned<Expectation>>,
    #[serde(rename = "dane-only")]
    pub dane_only: Option<Spanned<Expectation>>,
    pub verify: Option<Spanned<Expectation>>,
    pub secure: Option<Spanned<Expectation>>,
    #[serde(rename = "legacy-use-tls")]
    pub legacy_use_tls: Option<Spanned<Expectation>>,
    #[serde(rename = "legacy-enforce-tls")]
    pub legacy_enforce_tls: Option<Spanned<Expectation>>,
    /// What differs on some Postfix versions: `[expect.postfix."3.5"]`
    /// states, for the levels where that version does something else, what
    /// it does instead.
    #[serde(default)]
    pub postfix: BTreeMap<VersionPrefix, Spanned<RawExpectations>>,
}

impl RawExpectations {
    pub fn into_map(self) -> BTreeMap<Level, Spanned<Expectation>> {
        [
            (Level::None, self.none),
            (Level::May, self.may),
            (Level::Encrypt, self.encrypt),
            (Level::Fingerprint, self.fingerprint),
            (Level::Dane, self.dane),
            (Level::DaneOnly, self.dane_only),
            (Level::Verify, self.verify),
            (Level::Secure, self.secure),
            (Level::LegacyUseTls, self.legacy_use_tls),
            (Level::LegacyEnforceTls, self.legacy_enforce_tls),
        ]
        .into_iter()
        .filter_map(|(level, e)| e.map(|e| (level, e)))
        .collect()
    }
}

impl RawScenario {
    /// The MTAs' own tables (`[exim]`, ...), by table name: each is read
    /// the neutral way and checked against its MTA's driver.
    pub fn mta_tables(&mut self) -> Vec<(&'static str, Option<Spanned<RawMtaTable>>)> {
        vec![("exim", self.exim.take())]
    }
}

/// A scenario's table of what one MTA does, as written: one key per
/// policy of that MTA (its driver names them; the loader checks the
/// names) with what must happen there, and `settings` for the case's
/// own client options.
#[derive(Debug, Default)]
pub(crate) struct RawMtaTable {
    pub policies: Vec<(Spanned<String>, Spanned<Expectation>)>,
    pub settings: BTreeMap<Spanned<String>, String>,
}

impl<'de> Deserialize<'de> for RawMtaTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TableVisitor;
        impl<'de> Visitor<'de> for TableVisitor {
            type Value = RawMtaTable;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of policy names, and `settings`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMtaTable, A::Error> {
                let mut table = RawMtaTable::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    if key.get_ref() == "settings" {
                        table.settings = map.next_value()?;
                    } else {
                        table.policies.push((key, map.next_value()?));
                    }
                }
                Ok(table)
            }
        }
        d.deserialize_map(TableVisitor)
    }
}

/// What must happen at one level: one entry per delivery attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Expectation {
    pub attempts: Vec<AttemptExpectation>,
}

/// What must happen at one delivery attempt. `dsn`, `reason` and `trust`
/// are checked only when given.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptExpectation {
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<Dsn>,
    /// A piece of text Postfix's reason must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The trust Postfix must have logged for the TLS session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<Trust>,
    /// How the relay received the message (differs from Postfix's side
    /// when a middlebox intercepts TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<Hop>,
    /// The TLS protocol Postfix logged, e.g. `TLSv1.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// How one hop carried the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hop {
    Tls,
    Plaintext,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hop::Tls => "tls",
            Hop::Plaintext => "plaintext",
        })
    }
}

impl AttemptExpectation {
    pub fn outcome(outcome: Outcome) -> Self {
        AttemptExpectation {
            outcome,
            dsn: None,
            reason: None,
            trust: None,
            relay: None,
            protocol: None,
        }
    }
}

impl fmt::Display for AttemptExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.outcome)?;
        if let Some(dsn) = &self.dsn {
            write!(f, " dsn={dsn}")?;
        }
        if let Some(trust) = &self.trust {
            write!(f, " trust={trust}")?;
        }
        if let Some(relay) = &self.relay {
            write!(f, " relay={relay}")?;
        }
        if let Some(protocol) = &self.protocol {
            write!(f, " protocol={protocol}")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, " reason~{reason:?}")?;
        }
        Ok(())
    }
}

struct AttemptVisitor;

impl<'de> Visitor<'de> for AttemptVisitor {
    type Value = AttemptExpectation;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an outcome (\"delivered-tls\", \"delivered-plaintext\", \"deferred\", \"bounced\") or a table { outcome, dsn, reason, trust, relay, protocol }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.parse::<Outcome>()
            .map(AttemptExpectation::outcome)
            .map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        AttemptExpectation::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

/// An attempt is written either as a bare outcome or as a table.
#[derive(Deserialize)]
#[serde(transparent)]
struct OneAttempt(#[serde(deserialize_with = "attempt")] AttemptExpectation);

fn attempt<'de, D: Deserializer<'de>>(d: D) -> Result<AttemptExpectation, D::Error> {
    d.deserialize_any(AttemptVisitor)
}

impl<'de> Deserialize<'de> for Expectation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ExpectationVisitor;

        impl<'de> Visitor<'de> for ExpectationVisitor {
            type Value = Expectation;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an outcome, a table { outcome, dsn, reason, trust, relay, protocol }, or a list of them (one per delivery attempt)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                AttemptVisitor
                    .visit_str(v)
                    .map(|a| Expectation { attempts: vec![a] })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                AttemptVisitor
                    .visit_map(map)
                    .map(|a| Expectation { attempts: vec![a] })
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut attempts = Vec::new();
                while let Some(OneAttempt(a)) = seq.next_element()? {
                    attempts.push(a);
                }
                if attempts.is_empty() {
                    return Err(de::Error::custom(
                        "an empty list: give at least one delivery attempt",
                    ));
                }
                Ok(Expectation { attempts })
            }
        }

        d.deserialize_any(ExpectationVisitor)
    }
}

/// A Postfix version or the first parts of one: `3.5` matches 3.5.0,
/// 3.5.25 and so on; `3` matches every 3.x; `3.5.25` only itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct VersionPrefix(String);

impl VersionPrefix {
    pub fn parse(s: &str) -> Result<VersionPrefix, String> {
        let parts: Vec<&str> = s.split('.').collect();
        // No leading zeros: Postfix never writes "3.05", so such a key
        // could never match.
        let numeric = |p: &&str| {
            !p.is_empty()
                && p.len() <= 4
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        };
        if parts.len() > 3 || !parts.iter().all(numeric) {
            return Err(format!(
                "`{s}` is not a Postfix version (expected MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 3.5)"
            ));
        }
        Ok(VersionPrefix(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many parts it names: the more, the more specific.
    pub fn parts(&self) -> usize {
        self.0.split('.').count()
    }

    /// Whether `version` (as Postfix reports it, e.g. `3.5.25`, or a
    /// snapshot such as `3.11-20250101`) is this version or a release of it.
    pub fn matches(&self, version: &str) -> bool {
        version == self.0
            || version
                .strip_prefix(self.0.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
    }
}

impl fmt::Display for VersionPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for VersionPrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        VersionPrefix::parse(&s).map_err(de::Error::custom)
    }
}

/// A DSN status code such as `4.7.4`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Dsn(String);

impl Dsn {
    pub fn parse(s: &str) -> Result<Dsn, String> {
        let parts: Vec<&str> = s.split('.').collect();
        let ok = parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            Ok(Dsn(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not a DSN status code (expected class.subject.detail, e.g. 4.7.4)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Dsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dsn::parse(&s).map_err(de::Error::custom)
    }
}

/// A DNS host name (lower case, letters, digits and hyphens, at least two labels).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    pub fn parse(s: &str) -> Result<Hostname, String> {
        let bad = |why: &str| Err(format!("`{s}` is not a usable host name: {why}"));
        if s.is_empty() || s.len() > 253 {
            return bad("it must have 1 to 253 characters");
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return bad("give a fully qualified name such as smtp.relay.test");
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return bad("each label must have 1 to 63 characters");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return bad("use lower-case letters, digits and hyphens only");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return bad("a label may not begin or end with a hyphen");
            }
        }
        if labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
            return bad("it looks like an IP address; give a name");
        }
        Ok(Hostname(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Hostname {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hostname::parse(&s).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_accepts_status_codes_only() {
        assert!(Dsn::parse("4.7.4").is_ok());
        assert!(Dsn::parse("5.7.10").is_ok());
        assert!(Dsn::parse("4.7").is_err());
        assert!(Dsn::parse("3.0.0").is_err());
        assert!(Dsn::parse("4.x.4").is_err());
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            edit_distance(
                "smtp_tls_mandatry_protocols",
                "smtp_tls_mandatory_protocols"
            ),
            1
        );
    }

    #[test]
    fn the_parameter_list_is_postfix_s() {
        assert!(is_postfix_parameter("smtp_tls_mandatory_protocols"));
        assert!(is_postfix_parameter("smtp_helo_timeout"));
        // A name one version knows counts: only 3.5 has
        // smtp_per_record_deadline, only 3.10 smtp_tls_enable_rpk.
        assert!(is_postfix_parameter("smtp_per_record_deadline"));
        assert!(is_postfix_parameter("smtp_tls_enable_rpk"));
        assert!(!is_postfix_parameter("smtp_tls_mandatry_protocols"));
        assert!(!is_postfix_parameter(""));
        let names: Vec<&str> = postfix_parameters().collect();
        assert!(names.len() > 900, "{}", names.len());
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    }

    #[test]
    fn the_closest_parameter_is_a_hint_only_when_close() {
        assert_eq!(
            closest_parameter("smtp_tls_mandatry_protocols"),
            Some("smtp_tls_mandatory_protocols")
        );
        assert_eq!(
            closest_parameter("smtp_helo_timout"),
            Some("smtp_helo_timeout")
        );
        assert_eq!(closest_parameter("tlsharness_speed"), None);
        assert_eq!(closest_parameter("x"), None);
    }

    fn setting(name: &str) -> Result<SettingName, String> {
        SettingName::deserialize(de::value::StrDeserializer::<de::value::Error>::new(name))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_setting_postfix_does_not_know_is_refused_with_a_hint() {
        assert_eq!(
            setting("smtp_tls_mandatry_protocols").unwrap_err(),
            "`smtp_tls_mandatry_protocols` is not a Postfix parameter (no built-in image's Postfix knows it); did you mean `smtp_tls_mandatory_protocols`?"
        );
        assert_eq!(
            setting("tlsharness_speed").unwrap_err(),
            "`tlsharness_speed` is not a Postfix parameter (no built-in image's Postfix knows it)"
        );
        // A near name the harness owns says so at once.
        assert_eq!(
            setting("smtp_tls_security_levl").unwrap_err(),
            "`smtp_tls_security_levl` is not a Postfix parameter (no built-in image's Postfix knows it); did you mean `smtp_tls_security_level`? (it is set by the harness: the level comes from [expect])"
        );
        assert_eq!(
            setting("smtp_tls_security_level").unwrap_err(),
            "`smtp_tls_security_level` is set by the harness: the level comes from [expect]"
        );
        assert_eq!(
            setting("smtp_helo_timeout").unwrap().as_str(),
            "smtp_helo_timeout"
        );
    }

    #[test]
    fn containment_settings_are_refused() {
        // A -o on a case's transport beats main.cf: any of these could let
        // a case reach beyond the run's own next hops.
        for name in [
            "smtp_bind_address",
            "smtp_bind_address6",
            "smtp_bind_address_enforce",
            "smtp_fallback_relay",
            "fallback_relay",
            "smtp_dns_support_level",
            "smtp_host_lookup",
            "disable_dns_lookups",
            "smtp_dns_resolver_options",
            "use_srv_lookup",
            "inet_interfaces",
            "inet_protocols",
            "relayhost",
            "sender_dependent_relayhost_maps",
            "sender_dependent_default_transport_maps",
            "transport_maps",
            "default_transport",
            "relay_transport",
            "local_transport",
            "virtual_transport",
            "content_filter",
            "best_mx_transport",
        ] {
            let e = setting(name).unwrap_err();
            assert!(e.contains("(containment)"), "{name}: {e}");
            assert!(e.contains("is set by the harness"), "{name}: {e}");
        }
        // Deciding which recipients are relayed is not deciding where.
        assert!(setting("relay_domains").is_ok());
    }

    #[test]
    fn every_refused_setting_but_an_old_name_is_a_postfix_parameter() {
        // A misspelled name here would leave the real parameter allowed.
        // fallback_relay is only the default of smtp_fallback_relay
        // (`$fallback_relay`), so no image lists it.
        for (name, _) in OWNED_SETTINGS {
            assert!(
                is_postfix_parameter(name) || *name == "fallback_relay",
                "{name}"
            );
        }
    }

    #[test]
    fn hostname_rules() {
        assert!(Hostname::parse("smtp.relay.test").is_ok());
        assert!(Hostname::parse("smtp-1.sendgrid.net").is_ok());
        assert!(Hostname::parse("localhost").is_err());
        assert!(Hostname::parse("SMTP.relay.test").is_err());
        assert!(Hostname::parse("127.0.0.1").is_err());
        assert!(Hostname::parse("a..b").is_err());
        assert!(Hostname::parse("-a.b").is_err());
    }
}

//! `[relay]`: the fake relay at the far end of the path, its listeners
//! and its SMTP AUTH.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::hostname::Hostname;
use crate::pki::CertKind;
use crate::tls::TlsVersions;
use crate::upstream::ReplaySpec;

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

//! The MTAs the harness can test, and each one's client TLS policies by
//! its own names: Postfix's `smtp_tls_security_level` values
//! ([`Level`]), Exim's smtp transport options ([`EximPolicy`]). A case
//! runs one scenario at one [`Policy`].

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

pub use crate::level::Level;

/// An MTA the harness runs in its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Mta {
    #[default]
    Postfix,
    Exim,
}

impl Mta {
    pub const ALL: [Mta; 2] = [Mta::Postfix, Mta::Exim];

    pub fn as_str(self) -> &'static str {
        match self {
            Mta::Postfix => "postfix",
            Mta::Exim => "exim",
        }
    }

    /// The MTA's own name, for messages.
    pub fn title(self) -> &'static str {
        match self {
            Mta::Postfix => "Postfix",
            Mta::Exim => "Exim",
        }
    }
}

impl Serialize for Mta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Mta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown MTA `{0}` (expected postfix or exim)")]
pub struct UnknownMta(pub String);

impl FromStr for Mta {
    type Err = UnknownMta;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mta::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMta(s.to_owned()))
    }
}

/// Exim 4's client TLS policies, named after the smtp transport options
/// that make them (Exim 4.96 has no `hosts_try_tls`: opportunistic TLS
/// is its default), weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EximPolicy {
    /// `hosts_avoid_tls = *`: never STARTTLS.
    None,
    /// The defaults: STARTTLS when offered, and after a failed handshake
    /// a new connection in clear (`tls_tempfail_tryclear = true`).
    Try,
    /// STARTTLS when offered, no clear retry after a failed handshake
    /// (`tls_tempfail_tryclear = false`).
    TryNoclear,
    /// `hosts_require_tls = *`: TLS or nothing, any certificate.
    Require,
    /// `hosts_require_tls` and `tls_verify_hosts = *` with the CA and
    /// the host's name checked (`tls_verify_cert_hostnames = *`).
    RequireVerify,
    /// `hosts_require_dane = *`: DANE or nothing (needs DNSSEC-signed MX
    /// hosts with TLSA records: scenarios with `[dns]`).
    Dane,
}

impl EximPolicy {
    pub const ALL: [EximPolicy; 6] = [
        EximPolicy::None,
        EximPolicy::Try,
        EximPolicy::TryNoclear,
        EximPolicy::Require,
        EximPolicy::RequireVerify,
        EximPolicy::Dane,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EximPolicy::None => "none",
            EximPolicy::Try => "try",
            EximPolicy::TryNoclear => "try-noclear",
            EximPolicy::Require => "require",
            EximPolicy::RequireVerify => "require-verify",
            EximPolicy::Dane => "dane",
        }
    }
}

impl fmt::Display for EximPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One client TLS policy of one MTA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    Postfix(Level),
    Exim(EximPolicy),
}

impl Policy {
    pub fn mta(self) -> Mta {
        match self {
            Policy::Postfix(_) => Mta::Postfix,
            Policy::Exim(_) => Mta::Exim,
        }
    }

    /// The policy's name in its MTA's terms (`encrypt`, `try-noclear`).
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Postfix(l) => l.as_str(),
            Policy::Exim(p) => p.as_str(),
        }
    }

    /// Postfix's level, for a Postfix case.
    pub fn level(self) -> Option<Level> {
        match self {
            Policy::Postfix(l) => Some(l),
            Policy::Exim(_) => None,
        }
    }

    /// Parses a policy name of `mta`.
    pub fn parse(mta: Mta, s: &str) -> Result<Policy, String> {
        match mta {
            Mta::Postfix => s
                .parse::<Level>()
                .map(Policy::Postfix)
                .map_err(|e| e.to_string()),
            Mta::Exim => EximPolicy::ALL
                .into_iter()
                .find(|p| p.as_str() == s)
                .map(Policy::Exim)
                .ok_or_else(|| {
                    format!(
                        "unknown Exim policy `{s}` (expected one of: {})",
                        EximPolicy::ALL.map(|p| p.as_str()).join(", ")
                    )
                }),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl From<Level> for Policy {
    fn from(l: Level) -> Policy {
        Policy::Postfix(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_per_mta() {
        for p in EximPolicy::ALL {
            assert_eq!(Policy::parse(Mta::Exim, p.as_str()), Ok(Policy::Exim(p)));
        }
        assert_eq!(
            Policy::parse(Mta::Postfix, "encrypt"),
            Ok(Policy::Postfix(Level::Encrypt))
        );
        // Both MTAs have a `none`; each parses its own.
        assert_eq!(
            Policy::parse(Mta::Exim, "none"),
            Ok(Policy::Exim(EximPolicy::None))
        );
        assert!(Policy::parse(Mta::Exim, "encrypt").is_err());
        assert_eq!("exim".parse::<Mta>().unwrap(), Mta::Exim);
    }
}

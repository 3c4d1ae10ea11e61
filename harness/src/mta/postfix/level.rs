//! Postfix's client TLS security levels (`smtp_tls_security_level`), and
//! the two legacy policies that apply when it is empty.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::policy::{Mta, Policy};

/// One value of `smtp_tls_security_level`, weakest first, then the
/// legacy policies (`smtp_tls_security_level` empty, `smtp_use_tls = yes`
/// or `smtp_enforce_tls = yes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    None,
    May,
    Encrypt,
    Fingerprint,
    Dane,
    DaneOnly,
    Verify,
    Secure,
    LegacyUseTls,
    LegacyEnforceTls,
}

impl Level {
    /// Every level Postfix accepts, weakest first, then the legacy policies.
    pub const ALL: [Level; 10] = [
        Level::None,
        Level::May,
        Level::Encrypt,
        Level::Fingerprint,
        Level::Dane,
        Level::DaneOnly,
        Level::Verify,
        Level::Secure,
        Level::LegacyUseTls,
        Level::LegacyEnforceTls,
    ];

    /// The levels every scenario must state an expectation for.
    pub const REQUIRED: [Level; 5] = [
        Level::None,
        Level::May,
        Level::Encrypt,
        Level::Verify,
        Level::Secure,
    ];

    /// The spelling Postfix uses in main.cf.
    pub fn as_str(self) -> &'static str {
        NAMES[self as usize]
    }

    /// The level of a Postfix policy.
    pub fn of(policy: Policy) -> Option<Level> {
        (policy.mta() == Mta::Postfix).then(|| Level::ALL[policy.index()])
    }
}

/// The levels' spellings, in [`Level::ALL`]'s order: Postfix's policies
/// as its driver names them.
pub const NAMES: [&str; 10] = [
    "none",
    "may",
    "encrypt",
    "fingerprint",
    "dane",
    "dane-only",
    "verify",
    "secure",
    "legacy-use-tls",
    "legacy-enforce-tls",
];

impl From<Level> for Policy {
    fn from(level: Level) -> Policy {
        Policy::new(Mta::Postfix, level as usize)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a Postfix security level.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown security level `{0}` (expected one of: none, may, encrypt, fingerprint, dane, dane-only, verify, secure)"
)]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for level in Level::ALL {
            assert_eq!(level.as_str().parse::<Level>().unwrap(), level);
        }
        assert!("encrpyt".parse::<Level>().is_err());
        for (i, level) in Level::ALL.into_iter().enumerate() {
            assert_eq!(level as usize, i);
            assert_eq!(Level::of(Policy::from(level)), Some(level));
        }
    }
}

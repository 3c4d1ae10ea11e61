//! Postfix's client TLS security levels (`smtp_tls_security_level`), and
//! the two legacy policies that apply when it is empty.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
        match self {
            Level::None => "none",
            Level::May => "may",
            Level::Encrypt => "encrypt",
            Level::Fingerprint => "fingerprint",
            Level::Dane => "dane",
            Level::DaneOnly => "dane-only",
            Level::Verify => "verify",
            Level::Secure => "secure",
            Level::LegacyUseTls => "legacy-use-tls",
            Level::LegacyEnforceTls => "legacy-enforce-tls",
        }
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
    }
}

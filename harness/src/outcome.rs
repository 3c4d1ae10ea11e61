//! What happened to one message at one delivery attempt.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The verdict for one delivery attempt. "Delivered" is never reported
/// without saying whether the message crossed the wire encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Postfix logged `status=sent` and the message crossed the wire inside TLS.
    DeliveredTls,
    /// Postfix logged `status=sent` and the message crossed the wire in plaintext.
    DeliveredPlaintext,
    /// Postfix logged `status=deferred`: the message stays queued.
    Deferred,
    /// Postfix logged `status=bounced`: the message was returned.
    Bounced,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::DeliveredTls,
        Outcome::DeliveredPlaintext,
        Outcome::Deferred,
        Outcome::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::DeliveredTls => "delivered-tls",
            Outcome::DeliveredPlaintext => "delivered-plaintext",
            Outcome::Deferred => "deferred",
            Outcome::Bounced => "bounced",
        }
    }

    /// Whether the message left Postfix's queue with this attempt.
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::Deferred)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown outcome `{0}` (expected one of: delivered-tls, delivered-plaintext, deferred, bounced)"
)]
pub struct UnknownOutcome(pub String);

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownOutcome(s.to_owned()))
    }
}

/// How far Postfix trusted the peer, from its "... TLS connection
/// established" log line (`smtp_tls_loglevel = 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    Anonymous,
    Untrusted,
    Trusted,
    Verified,
}

impl Trust {
    pub const ALL: [Trust; 4] = [
        Trust::Anonymous,
        Trust::Untrusted,
        Trust::Trusted,
        Trust::Verified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Anonymous => "anonymous",
            Trust::Untrusted => "untrusted",
            Trust::Trusted => "trusted",
            Trust::Verified => "verified",
        }
    }

    /// Parses the capitalised word Postfix logs ("Verified").
    pub fn from_log_word(word: &str) -> Option<Trust> {
        Trust::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown TLS trust `{0}` (expected one of: anonymous, untrusted, trusted, verified)")]
pub struct UnknownTrust(pub String);

impl FromStr for Trust {
    type Err = UnknownTrust;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Trust::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTrust(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>().unwrap(), o);
        }
        assert!("delivered".parse::<Outcome>().is_err());
    }

    #[test]
    fn trust_parses_postfix_spelling() {
        assert_eq!(Trust::from_log_word("Verified"), Some(Trust::Verified));
        assert_eq!(Trust::from_log_word("Anonymous"), Some(Trust::Anonymous));
        assert_eq!(Trust::from_log_word("Encrypted"), None);
    }
}

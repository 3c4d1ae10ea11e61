//! `[delivery]`: when further delivery attempts are made.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

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

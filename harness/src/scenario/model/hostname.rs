//! Host names as a scenario writes them: the relay's, the domain's and
//! its MX hosts'.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

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

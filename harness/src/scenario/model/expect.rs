//! `[expect]` and the MTAs' own tables: what must happen at each level
//! or policy, attempt by attempt, and on which Postfix versions.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::level::Level;
use crate::outcome::{Outcome, Trust};

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
}

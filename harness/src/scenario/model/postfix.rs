//! `[postfix]`: the scenario's settings of the Postfix under test.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::settings::{SettingName, SettingValue};
use crate::level::Level;

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

fn yes() -> bool {
    true
}

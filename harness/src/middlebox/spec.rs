//! The behaviours a scenario may name, as written in the file: a bare name
//! (`"strip-starttls"`), or a one-key table with options
//! (`{ reject-starttls = { reply = "502 5.5.1 ..." } }`). Options are
//! checked as strictly as the rest of the file.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::behaviour::Behaviour;
use super::delay::{Delay, DelayConfig};
use super::drop_on_starttls::{DropOnStarttls, DropOnStarttlsConfig};
use super::fail_handshake::{FailHandshake, FailHandshakeConfig};
use super::inject::{Inject, InjectConfig};
use super::intercept_tls::{InterceptTls, InterceptTlsConfig};
use super::mask_banner::MaskBanner;
use super::mask_starttls::{MaskStarttls, MaskStarttlsConfig};
use super::pass_through::PassThrough;
use super::reject_starttls::{RejectStarttls, RejectStarttlsConfig};
use super::stall::{Stall, StallConfig};
use super::strip_starttls::StripStarttls;
use crate::pki::CertKind;

/// One entry of `[middlebox] behaviour = [...]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BehaviourSpec {
    PassThrough,
    StripStarttls,
    MaskStarttls(MaskStarttlsConfig),
    MaskBanner,
    RejectStarttls(RejectStarttlsConfig),
    DropOnStarttls(DropOnStarttlsConfig),
    FailHandshake(FailHandshakeConfig),
    InterceptTls(InterceptTlsConfig),
    Inject(InjectConfig),
    Delay(DelayConfig),
    Stall(StallConfig),
}

/// Every behaviour name, in the order of the README's table.
pub const NAMES: &[&str] = &[
    "pass-through",
    "strip-starttls",
    "mask-starttls",
    "mask-banner",
    "reject-starttls",
    "drop-on-starttls",
    "fail-handshake",
    "intercept-tls",
    "inject",
    "delay",
    "stall",
];

/// What behaviours need from the run to be built.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    /// TLS server configurations for the relay's name, by certificate kind
    /// (for `intercept-tls`).
    pub acceptors: BTreeMap<CertKind, Arc<rustls::ServerConfig>>,
}

impl BehaviourSpec {
    pub fn name(&self) -> &'static str {
        match self {
            BehaviourSpec::PassThrough => NAMES[0],
            BehaviourSpec::StripStarttls => NAMES[1],
            BehaviourSpec::MaskStarttls(_) => NAMES[2],
            BehaviourSpec::MaskBanner => NAMES[3],
            BehaviourSpec::RejectStarttls(_) => NAMES[4],
            BehaviourSpec::DropOnStarttls(_) => NAMES[5],
            BehaviourSpec::FailHandshake(_) => NAMES[6],
            BehaviourSpec::InterceptTls(_) => NAMES[7],
            BehaviourSpec::Inject(_) => NAMES[8],
            BehaviourSpec::Delay(_) => NAMES[9],
            BehaviourSpec::Stall(_) => NAMES[10],
        }
    }

    /// Whether the behaviour means anything on a path that is TLS from its
    /// first byte (implicit TLS, port 465).
    pub fn works_with_implicit_tls(&self) -> bool {
        matches!(
            self,
            BehaviourSpec::PassThrough
                | BehaviourSpec::FailHandshake(_)
                | BehaviourSpec::InterceptTls(_)
                | BehaviourSpec::Delay(_)
                | BehaviourSpec::Stall(_)
        )
    }

    /// The certificate kind this behaviour presents, if it presents one.
    pub fn certificate(&self) -> Option<CertKind> {
        match self {
            BehaviourSpec::InterceptTls(c) => Some(c.certificate),
            _ => None,
        }
    }

    /// A fresh behaviour with its own state, for one connection.
    pub fn build(&self, ctx: &BuildContext) -> Box<dyn Behaviour> {
        match self {
            BehaviourSpec::PassThrough => Box::new(PassThrough),
            BehaviourSpec::StripStarttls => Box::new(StripStarttls),
            BehaviourSpec::MaskStarttls(c) => Box::new(MaskStarttls(c.clone())),
            BehaviourSpec::MaskBanner => Box::new(MaskBanner),
            BehaviourSpec::RejectStarttls(c) => Box::new(RejectStarttls(c.clone())),
            BehaviourSpec::DropOnStarttls(c) => Box::new(DropOnStarttls(c.clone())),
            BehaviourSpec::FailHandshake(c) => Box::new(FailHandshake(c.clone())),
            BehaviourSpec::InterceptTls(c) => Box::new(InterceptTls {
                config: c.clone(),
                acceptor: ctx
                    .acceptors
                    .get(&c.certificate)
                    .cloned()
                    .expect("the run prepares an acceptor for every intercept certificate"),
            }),
            BehaviourSpec::Inject(c) => Box::new(Inject(c.clone())),
            BehaviourSpec::Delay(c) => Box::new(Delay(c.clone())),
            BehaviourSpec::Stall(c) => Box::new(Stall(c.clone())),
        }
    }
}

/// Options of behaviours that take none, in table form (`{ mask-banner = {} }`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

impl<'de> Deserialize<'de> for BehaviourSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpecVisitor)
    }
}

struct SpecVisitor;

impl<'de> Visitor<'de> for SpecVisitor {
    type Value = BehaviourSpec;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a behaviour name, or a one-key table { name = { options } }")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(match name {
            "pass-through" => BehaviourSpec::PassThrough,
            "strip-starttls" => BehaviourSpec::StripStarttls,
            "mask-starttls" => BehaviourSpec::MaskStarttls(Default::default()),
            "mask-banner" => BehaviourSpec::MaskBanner,
            "reject-starttls" => BehaviourSpec::RejectStarttls(Default::default()),
            "drop-on-starttls" => BehaviourSpec::DropOnStarttls(Default::default()),
            "fail-handshake" => BehaviourSpec::FailHandshake(Default::default()),
            "intercept-tls" => BehaviourSpec::InterceptTls(Default::default()),
            "inject" => BehaviourSpec::Inject(Default::default()),
            "delay" => BehaviourSpec::Delay(Default::default()),
            "stall" => BehaviourSpec::Stall(Default::default()),
            other => return Err(E::unknown_variant(other, NAMES)),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(name) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "an empty table: name a behaviour, e.g. { reject-starttls = { reply = \"454 4.7.0 ...\" } }",
            ));
        };
        let spec = match name.as_str() {
            "pass-through" | "strip-starttls" | "mask-banner" => {
                map.next_value::<NoOptions>()?;
                self.visit_str(&name)?
            }
            "mask-starttls" => BehaviourSpec::MaskStarttls(map.next_value()?),
            "reject-starttls" => BehaviourSpec::RejectStarttls(map.next_value()?),
            "drop-on-starttls" => BehaviourSpec::DropOnStarttls(map.next_value()?),
            "fail-handshake" => BehaviourSpec::FailHandshake(map.next_value()?),
            "intercept-tls" => BehaviourSpec::InterceptTls(map.next_value()?),
            "inject" => BehaviourSpec::Inject(map.next_value()?),
            "delay" => BehaviourSpec::Delay(map.next_value()?),
            "stall" => BehaviourSpec::Stall(map.next_value()?),
            other => return Err(de::Error::unknown_variant(other, NAMES)),
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "`{extra}`: one behaviour per table; list several as separate entries, in order"
            )));
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Holder {
        behaviour: Vec<BehaviourSpec>,
    }

    fn parse(text: &str) -> Result<Vec<BehaviourSpec>, String> {
        toml::from_str::<Holder>(text)
            .map(|h| h.behaviour)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn names_and_tables() {
        let got = parse(
            r#"behaviour = ["strip-starttls", { reject-starttls = { reply = "502 5.5.1 no" } }, { mask-banner = {} }]"#,
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].name(), "reject-starttls");
        let BehaviourSpec::RejectStarttls(c) = &got[1] else {
            panic!()
        };
        assert_eq!(c.reply.to_string(), "502 5.5.1 no");
    }

    #[test]
    fn sides_keep_their_scenario_names() {
        let got = parse(
            r#"behaviour = [{ delay = { to_postfix_ms = 5, to_relay_ms = 7 } }, { stall = { to = "relay", after_bytes = 3 } }, { inject = { into = "postfix" } }]"#,
        )
        .unwrap();
        let mut shaping = super::super::behaviour::Shaping::default();
        for spec in &got {
            spec.build(&BuildContext::default()).shape(&mut shaping);
        }
        assert_eq!(shaping.to_client.delay.as_millis(), 5);
        assert_eq!(shaping.to_server.delay.as_millis(), 7);
        assert_eq!(
            (shaping.to_client.stall_after, shaping.to_server.stall_after),
            (None, Some(3))
        );
        let e = parse(r#"behaviour = [{ stall = { to = "client" } }]"#).unwrap_err();
        assert!(e.contains("expected `postfix` or `relay`"), "{e}");
    }

    #[test]
    fn every_name_parses_alone() {
        for name in NAMES {
            let got = parse(&format!("behaviour = [\"{name}\"]")).unwrap();
            assert_eq!(got[0].name(), *name);
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let e = parse(r#"behaviour = [{ fail-handshake = { mode = "explode" } }]"#).unwrap_err();
        assert!(e.contains("explode"), "{e}");
        let e = parse(r#"behaviour = [{ delay = { to_postfix = 3 } }]"#).unwrap_err();
        assert!(e.contains("to_postfix"), "{e}");
        let e = parse(r#"behaviour = [{ mask-banner = { x = 1 } }]"#).unwrap_err();
        assert!(e.contains("x"), "{e}");
        let e = parse(r#"behaviour = [{ delay = {}, stall = {} }]"#).unwrap_err();
        assert!(e.contains("one behaviour per table"), "{e}");
        let e = parse(r#"behaviour = ["strp-starttls"]"#).unwrap_err();
        assert!(e.contains("strip-starttls"), "{e}");
    }
}

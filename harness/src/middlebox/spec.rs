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

/// Declares every behaviour once, in the order of the README's table: its
/// name in scenario files, its variant (with the type of its options, if
/// it takes any), whether it means anything on a path that is TLS from its
/// first byte (implicit TLS, port 465), and how one connection's fresh
/// behaviour is built from it. The enum, [`NAMES`], the names, the
/// deserializer's lookups and the builder all come from this one list.
macro_rules! behaviours {
    ($(
        $name:literal => $variant:ident $(($config:ty))?,
        implicit_tls: $implicit:literal,
        build: |$options:pat_param, $ctx:pat_param| $build:expr;
    )*) => {
        /// One entry of `[middlebox] behaviour = [...]`.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum BehaviourSpec {
            $( #[serde(rename = $name)] $variant $(($config))?, )*
        }

        /// Every behaviour name, in the order of the README's table.
        pub const NAMES: &[&str] = &[$($name),*];

        impl BehaviourSpec {
            pub fn name(&self) -> &'static str {
                match self {
                    $( behaviours!(@pattern $variant $(($config))?, _) => $name, )*
                }
            }

            /// Whether the behaviour means anything on a path that is TLS
            /// from its first byte (implicit TLS, port 465).
            pub fn works_with_implicit_tls(&self) -> bool {
                match self {
                    $( behaviours!(@pattern $variant $(($config))?, _) => $implicit, )*
                }
            }

            /// A fresh behaviour with its own state, for one connection.
            pub fn build(&self, ctx: &BuildContext) -> Box<dyn Behaviour> {
                match self {
                    $( behaviours!(@pattern $variant $(($config))?, config) => {
                        let $options = behaviours!(@options config $(($config))?);
                        let $ctx = ctx;
                        $build
                    } )*
                }
            }
        }

        /// The behaviour a bare name names, with its default options.
        fn by_name(name: &str) -> Option<BehaviourSpec> {
            Some(match name {
                $( $name => behaviours!(@default $variant $(($config))?), )*
                _ => return None,
            })
        }

        /// The behaviour a one-key table names, with the options of its
        /// value; a behaviour without options takes an empty table.
        fn by_table<'de, A: MapAccess<'de>>(
            name: &str,
            map: &mut A,
        ) -> Result<Option<BehaviourSpec>, A::Error> {
            Ok(Some(match name {
                $( $name => behaviours!(@table map, $variant $(($config))?), )*
                _ => return Ok(None),
            }))
        }
    };
    (@pattern $variant:ident, $bind:pat) => { BehaviourSpec::$variant };
    (@pattern $variant:ident ($config:ty), $bind:pat) => { BehaviourSpec::$variant($bind) };
    (@options $bind:ident) => { &() };
    (@options $bind:ident ($config:ty)) => { $bind };
    (@default $variant:ident) => { BehaviourSpec::$variant };
    (@default $variant:ident ($config:ty)) => { BehaviourSpec::$variant(<$config>::default()) };
    (@table $map:ident, $variant:ident) => {{
        $map.next_value::<NoOptions>()?;
        BehaviourSpec::$variant
    }};
    (@table $map:ident, $variant:ident ($config:ty)) => {
        BehaviourSpec::$variant($map.next_value::<$config>()?)
    };
}

behaviours! {
    "pass-through" => PassThrough,
        implicit_tls: true,
        build: |_, _| Box::new(PassThrough);
    "strip-starttls" => StripStarttls,
        implicit_tls: false,
        build: |_, _| Box::new(StripStarttls);
    "mask-starttls" => MaskStarttls(MaskStarttlsConfig),
        implicit_tls: false,
        build: |c, _| Box::new(MaskStarttls(c.clone()));
    "mask-banner" => MaskBanner,
        implicit_tls: false,
        build: |_, _| Box::new(MaskBanner);
    "reject-starttls" => RejectStarttls(RejectStarttlsConfig),
        implicit_tls: false,
        build: |c, _| Box::new(RejectStarttls(c.clone()));
    "drop-on-starttls" => DropOnStarttls(DropOnStarttlsConfig),
        implicit_tls: false,
        build: |c, _| Box::new(DropOnStarttls(c.clone()));
    "fail-handshake" => FailHandshake(FailHandshakeConfig),
        implicit_tls: true,
        build: |c, _| Box::new(FailHandshake(c.clone()));
    "intercept-tls" => InterceptTls(InterceptTlsConfig),
        implicit_tls: true,
        build: |c, ctx| Box::new(InterceptTls {
            config: c.clone(),
            acceptor: ctx
                .acceptors
                .get(&c.certificate)
                .cloned()
                .expect("the run prepares an acceptor for every intercept certificate"),
        });
    "inject" => Inject(InjectConfig),
        implicit_tls: false,
        build: |c, _| Box::new(Inject(c.clone()));
    "delay" => Delay(DelayConfig),
        implicit_tls: true,
        build: |c, _| Box::new(Delay(c.clone()));
    "stall" => Stall(StallConfig),
        implicit_tls: true,
        build: |c, _| Box::new(Stall(c.clone()));
}

/// What behaviours need from the run to be built.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    /// TLS server configurations for the relay's name, by certificate kind
    /// (for `intercept-tls`).
    pub acceptors: BTreeMap<CertKind, Arc<rustls::ServerConfig>>,
}

impl BehaviourSpec {
    /// The certificate kind this behaviour presents, if it presents one.
    pub fn certificate(&self) -> Option<CertKind> {
        match self {
            BehaviourSpec::InterceptTls(c) => Some(c.certificate),
            _ => None,
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
        by_name(name).ok_or_else(|| E::unknown_variant(name, NAMES))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(name) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "an empty table: name a behaviour, e.g. { reject-starttls = { reply = \"454 4.7.0 ...\" } }",
            ));
        };
        let Some(spec) = by_table(&name, &mut map)? else {
            return Err(de::Error::unknown_variant(&name, NAMES));
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
            r#"behaviour = [{ delay = { to_mta_ms = 5, to_relay_ms = 7 } }, { stall = { to = "relay", after_bytes = 3 } }, { inject = { into = "mta" } }]"#,
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
        assert!(e.contains("`mta`") && e.contains("`relay`"), "{e}");
    }

    #[test]
    fn the_older_spelling_of_the_mta_s_side_still_reads() {
        let old = r#"behaviour = [{ delay = { to_postfix_ms = 5 } }, { stall = { to = "postfix" } }, { inject = { into = "postfix" } }]"#;
        let new = r#"behaviour = [{ delay = { to_mta_ms = 5 } }, { stall = { to = "mta" } }, { inject = { into = "mta" } }]"#;
        assert_eq!(parse(old).unwrap(), parse(new).unwrap());
    }

    #[test]
    fn every_name_parses_alone() {
        for name in NAMES {
            let got = parse(&format!("behaviour = [\"{name}\"]")).unwrap();
            assert_eq!(got[0].name(), *name);
        }
    }

    #[test]
    fn every_name_is_its_serialised_tag_and_reads_back() {
        for name in NAMES {
            let spec = by_name(name).unwrap();
            let json = serde_json::to_value(&spec).unwrap();
            let tag = json
                .as_str()
                .map(str::to_owned)
                .or_else(|| json.as_object().and_then(|o| o.keys().next().cloned()));
            assert_eq!(tag.as_deref(), Some(*name), "{json}");
            let back: BehaviourSpec = serde_json::from_value(json).unwrap();
            assert_eq!(back, spec);
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

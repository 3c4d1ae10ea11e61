//! `intercept-tls`: terminates Postfix's TLS in the middlebox with the
//! middlebox's own certificate (self-signed, or signed by a CA Postfix
//! trusts, as corporate TLS inspection does), talks to the relay on its own
//! terms (TLS or plaintext), and reads everything in between.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, CommandVerdict, Interception, ReplyContext, TlsVerdict};
use crate::pki::CertKind;
use crate::smtp::{Reply, ReplyLine};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Upstream {
    /// STARTTLS to the relay as well, on a separate TLS session.
    #[default]
    Tls,
    /// Plaintext to the relay; the middlebox offers and answers STARTTLS itself.
    Plaintext,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InterceptTlsConfig {
    /// The certificate the middlebox shows Postfix, for the relay's name.
    #[serde(default = "self_signed")]
    pub certificate: CertKind,
    #[serde(default)]
    pub upstream: Upstream,
}

fn self_signed() -> CertKind {
    CertKind::SelfSigned
}

impl Default for InterceptTlsConfig {
    fn default() -> Self {
        InterceptTlsConfig {
            certificate: self_signed(),
            upstream: Upstream::default(),
        }
    }
}

pub struct InterceptTls {
    pub config: InterceptTlsConfig,
    pub acceptor: Arc<rustls::ServerConfig>,
}

impl Behaviour for InterceptTls {
    fn name(&self) -> &'static str {
        "intercept-tls"
    }

    fn on_reply(&mut self, ctx: ReplyContext<'_>, reply: &mut Reply) -> Option<String> {
        // Answering STARTTLS itself, the box offers it whatever the relay does.
        if self.config.upstream != Upstream::Plaintext || ctx.answering != Some("EHLO") {
            return None;
        }
        if reply.code() != 250 || reply.offers_starttls() {
            return None;
        }
        let code = reply.lines[0].code;
        for l in &mut reply.lines {
            l.last = false;
        }
        reply.lines.push(ReplyLine {
            code,
            last: true,
            text: b"STARTTLS".to_vec(),
        });
        Some("added STARTTLS: the middlebox offers TLS itself".into())
    }

    fn on_command(&mut self, verb: &str, _line: &[u8]) -> CommandVerdict {
        if verb == "STARTTLS" && self.config.upstream == Upstream::Plaintext {
            CommandVerdict::Answer(
                Reply::parse_single("220 2.0.0 Ready to start TLS").expect("a valid reply"),
            )
        } else {
            CommandVerdict::Pass
        }
    }

    fn on_tls(&mut self) -> TlsVerdict {
        TlsVerdict::Intercept(Interception {
            acceptor: self.acceptor.clone(),
            upstream_tls: self.config.upstream == Upstream::Tls,
        })
    }
}

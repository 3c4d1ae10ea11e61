//! `inject`: STARTTLS injection (the CVE-2011-0411 class, and the EAST
//! test cases): plaintext sent in the same packet right behind the STARTTLS
//! exchange, where a careless peer would read it as the first words of the
//! TLS session. `into = "mta"` appends to the relay's `220` reply
//! (response injection); `into = "relay"` appends to the MTA's STARTTLS
//! command (command injection).

use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, ReplyContext};
use crate::smtp::Reply;

/// A side of the path, by the names scenarios give them: the MTA under
/// test (the SMTP client; `postfix` is the older spelling, still read) and
/// the relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Target {
    #[default]
    #[serde(rename = "mta", alias = "postfix")]
    Client,
    #[serde(rename = "relay")]
    Server,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InjectConfig {
    #[serde(default)]
    pub into: Target,
    /// The injected text; CRLF is added to each line. Defaults to a
    /// rejection (to the MTA) or a foreign envelope sender (to the relay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl InjectConfig {
    fn bytes(&self) -> Vec<u8> {
        let text = self.text.clone().unwrap_or_else(|| match self.into {
            Target::Client => "554 5.7.1 tlsharness: injected before TLS".into(),
            Target::Server => "MAIL FROM:<injected@tlsharness.invalid>".into(),
        });
        let mut out = Vec::new();
        for line in text.lines() {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

pub struct Inject(pub InjectConfig);

impl Behaviour for Inject {
    fn name(&self) -> &'static str {
        "inject"
    }

    fn after_reply(&mut self, ctx: ReplyContext<'_>, reply: &Reply) -> Option<Vec<u8>> {
        (self.0.into == Target::Client
            && ctx.answering == Some("STARTTLS")
            && (200..300).contains(&reply.code()))
        .then(|| self.0.bytes())
    }

    fn after_command(&mut self, verb: &str) -> Option<Vec<u8>> {
        (self.0.into == Target::Server && verb == "STARTTLS").then(|| self.0.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injects_behind_starttls_only() {
        let mut b = Inject(InjectConfig::default());
        let ok = Reply::parse_single("220 Ready to start TLS").unwrap();
        let ctx = ReplyContext {
            answering: Some("STARTTLS"),
        };
        assert_eq!(
            b.after_reply(ctx, &ok).unwrap(),
            b"554 5.7.1 tlsharness: injected before TLS\r\n"
        );
        let ehlo = ReplyContext {
            answering: Some("EHLO"),
        };
        assert!(b.after_reply(ehlo, &ok).is_none());
        assert!(b.after_command("STARTTLS").is_none());
        let mut r = Inject(InjectConfig {
            into: Target::Server,
            text: Some("RSET\nNOOP".into()),
        });
        assert_eq!(r.after_command("STARTTLS").unwrap(), b"RSET\r\nNOOP\r\n");
    }
}

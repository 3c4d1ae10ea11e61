//! `reject-starttls`: answers STARTTLS itself with a configurable reply
//! and never passes the command on, as devices that allow STARTTLS in the
//! EHLO reply but refuse the command do.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, CommandVerdict};
use crate::smtp::Reply;

/// A one-line SMTP reply given in a scenario, e.g. `454 4.7.0 TLS not available`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ReplyText(String);

impl ReplyText {
    pub fn parse(s: &str) -> Result<ReplyText, String> {
        let ok = Reply::parse_single(s).is_some_and(|r| (200..600).contains(&r.code()))
            && !s.contains(['\r', '\n'])
            && s.as_bytes().get(3) != Some(&b'-');
        if ok {
            Ok(ReplyText(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not a one-line SMTP reply (expected a code 200-599 and text, e.g. \"454 4.7.0 TLS not available due to temporary reason\")"
            ))
        }
    }

    pub fn reply(&self) -> Reply {
        Reply::parse_single(&self.0).expect("validated when read")
    }
}

impl fmt::Display for ReplyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ReplyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ReplyText::parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RejectStarttlsConfig {
    #[serde(default = "default_reply")]
    pub reply: ReplyText,
}

impl Default for RejectStarttlsConfig {
    fn default() -> Self {
        RejectStarttlsConfig {
            reply: default_reply(),
        }
    }
}

fn default_reply() -> ReplyText {
    ReplyText("454 4.7.0 TLS not available due to temporary reason".into())
}

pub struct RejectStarttls(pub RejectStarttlsConfig);

impl Behaviour for RejectStarttls {
    fn name(&self) -> &'static str {
        "reject-starttls"
    }

    fn on_command(&mut self, verb: &str, _line: &[u8]) -> CommandVerdict {
        if verb == "STARTTLS" {
            CommandVerdict::Answer(self.0.reply.reply())
        } else {
            CommandVerdict::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_text_must_be_one_reply_line() {
        assert!(ReplyText::parse("502 5.5.1 command not recognized").is_ok());
        assert!(ReplyText::parse("454").is_ok());
        assert!(ReplyText::parse("hello").is_err());
        assert!(ReplyText::parse("999 x").is_err());
        assert!(ReplyText::parse("454-more").is_err());
    }

    #[test]
    fn answers_starttls_only() {
        let mut b = RejectStarttls(RejectStarttlsConfig::default());
        assert!(matches!(
            b.on_command("EHLO", b"EHLO x\r\n"),
            CommandVerdict::Pass
        ));
        let CommandVerdict::Answer(r) = b.on_command("STARTTLS", b"STARTTLS\r\n") else {
            panic!("not answered")
        };
        assert_eq!(r.code(), 454);
    }
}

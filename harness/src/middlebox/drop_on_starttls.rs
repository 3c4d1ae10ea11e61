//! `drop-on-starttls`: ends the connection when Postfix sends STARTTLS,
//! with an orderly close or a reset, as some firewalls do to SMTP
//! commands they do not allow.

use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, CloseKind, CommandVerdict};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// An orderly close (FIN).
    #[default]
    Close,
    /// A reset (RST).
    Reset,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropOnStarttlsConfig {
    #[serde(default)]
    pub how: How,
}

pub struct DropOnStarttls(pub DropOnStarttlsConfig);

impl Behaviour for DropOnStarttls {
    fn name(&self) -> &'static str {
        "drop-on-starttls"
    }

    fn on_command(&mut self, verb: &str, _line: &[u8]) -> CommandVerdict {
        if verb != "STARTTLS" {
            return CommandVerdict::Pass;
        }
        CommandVerdict::Close(match self.0.how {
            How::Close => CloseKind::Fin,
            How::Reset => CloseKind::Reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_only_on_starttls() {
        let mut b = DropOnStarttls(DropOnStarttlsConfig { how: How::Reset });
        assert!(matches!(b.on_command("MAIL", b""), CommandVerdict::Pass));
        assert!(matches!(
            b.on_command("STARTTLS", b""),
            CommandVerdict::Close(CloseKind::Reset)
        ));
    }
}

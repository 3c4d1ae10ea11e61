//! `fail-handshake`: lets the relay's `220 Ready to start TLS` through,
//! then breaks the TLS handshake: a fatal alert, bytes that are not TLS, a
//! close, a reset, or silence until Postfix gives up.

use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, TlsVerdict};
use crate::tls::HandshakeBreak;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FailHandshakeConfig {
    #[serde(default)]
    pub mode: HandshakeBreak,
}

pub struct FailHandshake(pub FailHandshakeConfig);

impl Behaviour for FailHandshake {
    fn name(&self) -> &'static str {
        "fail-handshake"
    }

    fn on_tls(&mut self) -> TlsVerdict {
        TlsVerdict::Break(self.0.mode)
    }
}

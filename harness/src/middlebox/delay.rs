//! `delay`: latency per direction, added before every write.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, Shaping};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    /// Before each write to the MTA (`to_postfix_ms`, the older spelling,
    /// is still read).
    #[serde(default, rename = "to_mta_ms", alias = "to_postfix_ms")]
    pub to_client_ms: u64,
    #[serde(default, rename = "to_relay_ms")]
    pub to_server_ms: u64,
}

pub struct Delay(pub DelayConfig);

impl Behaviour for Delay {
    fn name(&self) -> &'static str {
        "delay"
    }

    fn shape(&self, s: &mut Shaping) {
        s.to_client.delay += Duration::from_millis(self.0.to_client_ms);
        s.to_server.delay += Duration::from_millis(self.0.to_server_ms);
    }
}

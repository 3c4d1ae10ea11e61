//! `delay`: latency per direction, added before every write.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, Shaping};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    #[serde(default)]
    pub to_postfix_ms: u64,
    #[serde(default)]
    pub to_relay_ms: u64,
}

pub struct Delay(pub DelayConfig);

impl Behaviour for Delay {
    fn name(&self) -> &'static str {
        "delay"
    }

    fn shape(&self, s: &mut Shaping) {
        s.to_postfix.delay += Duration::from_millis(self.0.to_postfix_ms);
        s.to_relay.delay += Duration::from_millis(self.0.to_relay_ms);
    }
}

//! `stall`: forwards a number of bytes in one direction, then holds
//! everything after them while keeping the connection open, so that
//! Postfix's own timeouts (smtp_helo_timeout, smtp_starttls_timeout, ...)
//! decide. Scenarios shorten those timeouts instead of waiting minutes.

use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, Shaping};
use super::inject::Target;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StallConfig {
    /// Whose incoming bytes stop.
    #[serde(default)]
    pub to: Target,
    /// How many bytes get through first.
    #[serde(default)]
    pub after_bytes: u64,
}

pub struct Stall(pub StallConfig);

impl Behaviour for Stall {
    fn name(&self) -> &'static str {
        "stall"
    }

    fn shape(&self, s: &mut Shaping) {
        let d = match self.0.to {
            Target::Client => &mut s.to_client,
            Target::Server => &mut s.to_server,
        };
        d.stall_after = Some(
            d.stall_after
                .map_or(self.0.after_bytes, |n| n.min(self.0.after_bytes)),
        );
    }
}

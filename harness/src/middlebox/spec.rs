//! The behaviours a scenario may name, as written in the file.

use serde::{Deserialize, Serialize};

use super::behaviour::Behaviour;
use super::pass_through::PassThrough;
use super::strip_starttls::StripStarttls;

/// One entry of `[middlebox] behaviour = [...]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum BehaviourSpec {
    PassThrough,
    StripStarttls,
}

impl BehaviourSpec {
    pub fn name(&self) -> &'static str {
        self.build().name()
    }

    /// A fresh behaviour with its own state, for one connection.
    pub fn build(&self) -> Box<dyn Behaviour> {
        match self {
            BehaviourSpec::PassThrough => Box::new(PassThrough),
            BehaviourSpec::StripStarttls => Box::new(StripStarttls),
        }
    }
}

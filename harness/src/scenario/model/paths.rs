//! `[middlebox]` or `[[paths]]`: the network path between the MTA and
//! the relay, and what it does on each port.

use serde::{Deserialize, Serialize};

use crate::middlebox::BehaviourSpec;

/// The network path between Postfix and the relay.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MiddleboxSpec {
    /// Behaviours applied in order; empty means pass-through.
    #[serde(default)]
    pub behaviour: Vec<BehaviourSpec>,
    /// The relay's ports the behaviours act on; by default every port. A
    /// firewall's SMTP inspection is configured per port (25 and 587, not
    /// 465), so the other ports pass through untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
    /// The relay's ports this path refuses outright (connection refused),
    /// as a firewall that lets only 25 and 587 out does to 465.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block: Vec<u16>,
    /// The relay's ports this path silently drops (no answer to the SYN,
    /// so the client's connect times out), as a firewall with a DROP rule
    /// does; a refusal (`block`) and a drop are different facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<u16>,
}

/// What a path does with a connection to one port.
#[derive(Clone, Debug, PartialEq)]
pub enum PortFate {
    /// It reaches the relay through these behaviours (none: untouched).
    Passes(Vec<BehaviourSpec>),
    /// The connection is refused (`block`).
    Refused,
    /// The SYN goes unanswered (`drop`).
    Dropped,
}

impl MiddleboxSpec {
    /// The behaviours that act on `port`; `None` when the path refuses it.
    pub fn on_port(&self, port: u16) -> Option<Vec<BehaviourSpec>> {
        match self.fate(port) {
            PortFate::Passes(b) => Some(b),
            PortFate::Refused | PortFate::Dropped => None,
        }
    }

    /// What the path does with a connection to `port`.
    pub fn fate(&self, port: u16) -> PortFate {
        if self.block.contains(&port) {
            return PortFate::Refused;
        }
        if self.drop.contains(&port) {
            return PortFate::Dropped;
        }
        match &self.ports {
            Some(ports) if !ports.contains(&port) => PortFate::Passes(Vec::new()),
            _ => PortFate::Passes(self.behaviour.clone()),
        }
    }
}

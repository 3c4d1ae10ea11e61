//! What a check produced: one row per scenario's path, configuration and
//! image, and what the harness and Postfix said of each configuration.

use std::collections::BTreeMap;

use serde::Serialize;

use super::setup::TlsPolicy;
use crate::run::Attempt;
use crate::scenario::AttemptExpectation;

/// One scenario's path under one configuration on one image.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub scenario: String,
    /// Which mail took this path, when the configurations route mail
    /// more than one way (see `check::routes`); rows pair by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    /// Where Postfix's address resolver sent it: `transport:nexthop`.
    pub route: String,
    /// `current` or `candidate`.
    pub side: String,
    pub image: String,
    pub mta_version: String,
    /// The configuration's smtp_tls_security_level (main.cf).
    pub level: String,
    /// The TLS policy Postfix applied on this path: the level after the
    /// service's overrides and smtp_tls_policy_maps.
    pub tls_policy: Option<TlsPolicy>,
    /// The scenario's settings check did not apply (`name=value`): the
    /// scenario was written for them, the user's configuration decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped_settings: Vec<String>,
    /// Why nothing answered on the configuration's port, when nothing
    /// did: the scenario's relay has no service there, or the path blocks
    /// it. Postfix then finds the connection refused, as in life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The port this side's configuration relays to.
    pub port: u16,
    /// Why this path was not run on this side: the scenario does not say
    /// what happens on `port` (no service, no refusal, no drop). The
    /// comparison is then `not-modelled`, never a finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_modelled: Option<String>,
    pub attempt: Attempt,
    pub findings: Vec<crate::run::Finding>,
    /// What the scenario file expects at that level, if it says.
    pub expected: Option<AttemptExpectation>,
    pub log: Vec<String>,
    pub transcript: String,
    /// Each path's behaviours, as in a run's case (for the HTML report).
    #[serde(skip)]
    pub behaviours: Vec<String>,
}

impl Row {
    /// The scenario, and which mail when the configurations route mail
    /// more than one way.
    pub fn name(&self) -> String {
        match &self.mail {
            Some(mail) => format!("{} ({mail})", self.scenario),
            None => self.scenario.clone(),
        }
    }
}

/// Everything a check produced.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub run_id: String,
    pub rows: Vec<Row>,
    /// What the harness changed in each configuration, per side.
    pub changes: Vec<(String, Vec<String>)>,
    /// Each side's `postconf -n`, as Postfix reads the user's main.cf.
    pub parameters: Vec<(String, BTreeMap<String, String>)>,
    /// The files other than main.cf (master.cf, lookup tables) that differ
    /// between the two sides, in words; `postconf -n` does not see them.
    pub file_changes: Vec<String>,
    /// What `postconf` warned of each configuration on each image that is
    /// no refusal: parameters whose support will be removed.
    pub warnings: Vec<PostfixWarning>,
}

/// One of `postconf`'s warnings about one side's configuration on one
/// image, in its words after `warning: `.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PostfixWarning {
    pub side: String,
    pub image: String,
    pub words: String,
}

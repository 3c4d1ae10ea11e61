//! Every port of a next hop, probed: the one place triage talks to the
//! network (never sending mail), through the probe's multi-port API.

use std::path::Path;

use crate::probe::{self, ScenarioError};
pub use crate::probe::{PathObservation, PortPlan, PortSeen, default_ports, probe_ports};
use crate::scenario::Scenario;

/// The scenario of the whole path, one service per port that answered;
/// `None` when no port answered (there is nothing to replay).
pub fn path_scenario_text(
    obs: &PathObservation,
    path: &Path,
) -> Result<Option<(String, Scenario)>, ScenarioError> {
    match probe::path_scenario_text(obs, path) {
        Ok(s) => Ok(Some(s)),
        Err(ScenarioError::NothingAnswered { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

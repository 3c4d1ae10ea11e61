//! Every port of a next hop, probed: the one place triage talks to the
//! network (never sending mail).
//!
//! STAND-IN: until `tlsharness::probe::probe_ports` lands, this module
//! mirrors its types and calls the single-port `probe::probe` once per
//! STARTTLS port; implicit-TLS ports are not probed by the stand-in.

use std::path::Path;

use crate::probe::{self, Observation, ProbeError, ProbeOptions, Target};
use crate::scenario::Scenario;

/// One port to probe, and how it starts TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortPlan {
    pub port: u16,
    pub implicit_tls: bool,
}

/// 587, 25, 2525 with STARTTLS (465 with implicit TLS once the multi-port
/// probe lands).
pub fn default_ports() -> Vec<PortPlan> {
    [587, 25, 2525]
        .into_iter()
        .map(|port| PortPlan {
            port,
            implicit_tls: false,
        })
        .collect()
}

/// What one port showed.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // the stand-in goes when probe_ports lands
pub enum PortSeen {
    Answered(Observation),
    Refused,
    Dropped,
    Failed(ProbeError),
}

/// Every port of one relay.
#[derive(Debug)]
pub struct PathObservation {
    pub host: String,
    pub server_name: String,
    pub ports: Vec<(PortPlan, PortSeen)>,
}

/// Probes `ports` of `host` (where to connect), one after the other.
pub async fn probe_ports(
    host: &str,
    ports: &[PortPlan],
    opts: &ProbeOptions,
) -> Result<PathObservation, ProbeError> {
    let mut seen = Vec::new();
    for plan in ports.iter().filter(|p| !p.implicit_tls) {
        let target = Target {
            host: host.to_owned(),
            port: plan.port,
        };
        let result = match probe::probe(&target, opts).await {
            Ok(obs) => PortSeen::Answered(obs),
            Err(ProbeError::Refused { .. }) => PortSeen::Refused,
            Err(ProbeError::Timeout { step, .. }) if step.starts_with("connecting") => {
                PortSeen::Dropped
            }
            Err(e @ ProbeError::Resolve { .. }) => return Err(e),
            Err(e) => PortSeen::Failed(e),
        };
        seen.push((*plan, result));
    }
    Ok(PathObservation {
        host: host.to_owned(),
        server_name: opts.server_name.clone(),
        ports: seen,
    })
}

/// The scenario of the path: the stand-in writes the first answering
/// STARTTLS port's.
pub fn path_scenario_text(
    obs: &PathObservation,
    path: &Path,
) -> Result<Option<(String, Scenario)>, probe::ScenarioError> {
    let first = obs.ports.iter().find_map(|(_, seen)| match seen {
        PortSeen::Answered(o) => Some(o),
        _ => None,
    });
    first.map(|o| probe::scenario_text(o, path)).transpose()
}

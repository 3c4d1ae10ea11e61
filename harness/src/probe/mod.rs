//! `tlsharness probe`: talk to a relay from inside a network as an SMTP
//! client would (never sending mail), record what the path shows up to and
//! into TLS, and write a scenario whose relay replays it.

mod certs;
mod client;
mod diagnose;
mod dialogue;
mod error;
mod observation;
mod path_scenario;
mod ports;
mod predict;
mod scenario;
mod target;

pub use certs::{CertProblem, CertSummary, ChainSummary, TrustAnchors};
pub use client::{DEFAULT_EHLO, ProbeOptions, probe, probe_implicit_tls};
pub use diagnose::{Diagnosis, Finding, Place, diagnose};
pub use error::ProbeError;
pub use observation::{HandshakeFailure, Lost, Observation, Starttls, TlsObservation};
pub use path_scenario::path_scenario_text;
pub use ports::{
    PathObservation, PortPlan, PortSeen, PortsError, default_ports, parse_ports, plan, probe_ports,
};
pub use predict::{Prediction, postfix_dsn, predict};
pub use scenario::{ScenarioError, scenario_text};
pub use target::Target;

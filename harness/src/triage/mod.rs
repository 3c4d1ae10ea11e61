//! `tlsharness triage`: from the symptom to the fix, on the affected host,
//! without Docker. The configuration says where mail goes (`source`,
//! `hops`), the mail log what failed (`maillog`, read by
//! `explain`), the probe what the path does (`path`); then each
//! standard candidate is predicted against the current configuration
//! (`predict`, `candidates`), written out (`write`) and, with `--confirm`,
//! run on real Postfix (`confirm`). `render` puts it in words.

mod candidates;
mod confirm;
mod error;
mod hops;
mod maillog;
mod path;
mod predict;
mod render;
mod source;
mod write;

pub use candidates::{Candidate, CandidateOutlook, HopOutlook, outlook, ports_for};
pub use confirm::{Confirmation, confirm};
pub use error::TriageError;
pub use hops::{NextHop, Routing, next_hops};
pub use maillog::{MailLog, USUAL_PLACES, read as read_log};
pub use path::{
    PathObservation, PortPlan, PortSeen, default_ports, path_scenario_text, probe_ports,
};
pub use predict::{Predicted, Side};
pub use render::{
    configuration as render_configuration, confirmation as render_confirmation,
    mail_log as render_mail_log, outlook as render_outlook, path as render_path,
};
pub use source::{HostConfig, from_dir, from_postconf, postconf_available};
pub use write::{
    candidate as write_candidate, edit_main_cf, refuse_existing, scenario as write_scenario,
};

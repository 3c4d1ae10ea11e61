//! Why triage could not do its work, and the exit code each reason means
//! (beside the error, so `exit.rs` only names the codes).

use std::path::PathBuf;

use crate::exit;

/// Triage stopped before it could say anything about the path.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    /// The configuration could not be read (missing, unreadable, no main.cf).
    #[error("failed to read the postfix configuration: {0}")]
    Config(#[source] crate::check::CheckError),
    /// `postconf` exists but did not answer.
    #[error("failed to run `{command}`: {why} (give a copy of /etc/postfix with --config DIR)")]
    Postconf { command: String, why: String },
    /// No mail log could be read; each place tried, and why.
    #[error("{}", unreadable_logs(.tried))]
    Log { tried: Vec<(PathBuf, String)> },
    /// The configuration sends no mail to a relay triage can probe.
    #[error("{0}")]
    NoNextHop(String),
    /// A file triage writes already exists.
    #[error("{} exists; pass --force to overwrite it", .0.display())]
    Exists(PathBuf),
    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Scenario(#[from] crate::probe::ScenarioError),
    /// `--confirm`: the check on real Postfix could not run.
    #[error("failed to confirm on real postfix: {0}")]
    Confirm(#[source] crate::check::CheckError),
    #[error("failed to load the scenario triage wrote: {0}")]
    Reload(#[from] crate::scenario::LoadError),
}

fn unreadable_logs(tried: &[(PathBuf, String)]) -> String {
    let mut s = String::from("failed to read a mail log");
    for (path, why) in tried {
        s.push_str(&format!("\n  {}: {why}", path.display()));
    }
    s.push_str("\ngive the log with --log FILE (e.g. from `journalctl -u postfix > mail.log`)");
    s
}

impl exit::Code for TriageError {
    fn exit_code(&self) -> i32 {
        match self {
            TriageError::Config(e) if !matches!(e, crate::check::CheckError::Config { .. }) => {
                exit::BAD_INPUT
            }
            TriageError::Config(_) | TriageError::Postconf { .. } | TriageError::Log { .. } => {
                exit::UNREADABLE
            }
            TriageError::NoNextHop(_) => exit::NO_SAFE_FIX,
            TriageError::Exists(_) => exit::BAD_INPUT,
            TriageError::Write { .. } => exit::ENVIRONMENT,
            TriageError::Scenario(e) => e.exit_code(),
            TriageError::Confirm(e) => e.exit_code(),
            TriageError::Reload(_) => exit::HARNESS_ERROR,
        }
    }
}

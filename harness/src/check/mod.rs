//! `tlsharness check`: the user's own Postfix configuration (and,
//! optionally, a candidate change to it) against scenarios' network paths,
//! on one or more Postfix images. (`tlsharness explain`, which reads a
//! mail log, is [`crate::explain`].)

mod compare;
mod config;
mod execute;
mod host;
mod install;
mod preflight;
mod report;
mod result;
mod routes;
mod setup;
mod tls_level;

use std::fmt;
use std::path::PathBuf;

pub use compare::{Verdict, state, verdict, verdict_at, why};
pub use config::{MasterService, Relayhost, UserConfig, load, parameters, services};
pub use execute::{CheckOptions, check};
pub use result::{CheckReport, PostfixWarning, Row};
// bin/tlsharness/triage.rs still reads a log through `check::explain`.
pub use crate::explain::explain;
pub use host::{Fit, GivenFile, MissingFile, fit, fit_from, is_hosts_own};
pub use report::{Comparison, compare_sides, parameter_diff, render};
pub use setup::TlsPolicy;

/// The MTA whose configurations `check` compares: it reads a main.cf.
pub const MTA: crate::policy::Mta = crate::policy::Mta::Postfix;

/// Why a check could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{}: {why}", path.display())]
    Config { path: PathBuf, why: String },
    /// Postfix refused one or more configurations; no case ran.
    #[error("{}", Refusals(.0))]
    Refused(Vec<Refusal>),
    #[error("{0}")]
    Input(String),
    /// Files that can change the outbound TLS path, named by the
    /// configuration and found nowhere; nothing was started.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Missing(Vec<MissingFile>),
    #[error(transparent)]
    Postfix(#[from] crate::mta::MtaError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    #[error("{0}")]
    Setup(String),
    #[error("failed to try the smtp client before the cases: {0}")]
    Preflight(String),
    #[error("the check was interrupted")]
    Interrupted,
}

impl crate::exit::Code for CheckError {
    fn exit_code(&self) -> i32 {
        match self {
            CheckError::Interrupted => crate::exit::INTERRUPTED,
            e if e.is_bad_input() => crate::exit::BAD_INPUT,
            e if e.is_environment() => crate::exit::ENVIRONMENT,
            _ => crate::exit::HARNESS_ERROR,
        }
    }
}

impl CheckError {
    /// Whether the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            CheckError::Config { .. }
                | CheckError::Refused(_)
                | CheckError::Input(_)
                | CheckError::Missing(_)
        )
    }

    pub fn is_environment(&self) -> bool {
        match self {
            CheckError::Postfix(e) => e.is_environment(),
            CheckError::Lab(e) => e.is_environment(),
            CheckError::Setup(_) => true,
            _ => false,
        }
    }
}

/// The lines of a Postfix log or tool output in which Postfix objected.
fn objections(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("fatal:") || l.contains("error:") || l.contains("warning:"))
        .collect()
}

/// When Postfix refused a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Postfix's own tools (postmap, trivial-rewrite), asked where the
    /// configuration sends mail, before any Postfix under test started.
    Routing,
    /// `postfix check` or master, at start.
    Start,
    /// The outgoing smtp client, tried once before the cases.
    SmtpClient,
    /// `postconf`, reading the configuration before the cases: its
    /// warnings about parameters it does not use.
    Parameters,
}

/// One configuration Postfix refused, on one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `current` or `candidate`.
    pub side: String,
    pub path: PathBuf,
    pub image: String,
    pub stage: Stage,
    /// Postfix's own words.
    pub words: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = match self.stage {
            Stage::Routing => "when asked where it sends mail, before any case ran",
            Stage::Start => "at start",
            Stage::SmtpClient => "when its smtp client started, before any case ran",
            Stage::Parameters => "when postconf read it, before any case ran",
        };
        write!(
            f,
            "Postfix ({}) refused the {} configuration {} {when}:",
            self.image,
            self.side,
            self.path.display()
        )?;
        for line in self.words.lines() {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

struct Refusals<'a>(&'a [Refusal]);

impl fmt::Display for Refusals<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_side_and_quotes_postfix() {
        let refusal = |side: &str, stage| Refusal {
            side: side.to_owned(),
            path: PathBuf::from("postfix-new"),
            image: "tlsharness/postfix:bookworm".to_owned(),
            stage,
            words: "postfix/smtp[185]: fatal: Invalid TLS level \"encrpyt\"".to_owned(),
        };
        let e = CheckError::Refused(vec![
            refusal("current", Stage::Start),
            refusal("candidate", Stage::SmtpClient),
        ]);
        assert!(e.is_bad_input());
        assert!(!e.is_environment());
        assert_eq!(
            e.to_string(),
            "Postfix (tlsharness/postfix:bookworm) refused the current configuration postfix-new at start:\n  postfix/smtp[185]: fatal: Invalid TLS level \"encrpyt\"\nPostfix (tlsharness/postfix:bookworm) refused the candidate configuration postfix-new when its smtp client started, before any case ran:\n  postfix/smtp[185]: fatal: Invalid TLS level \"encrpyt\""
        );
    }
}

//! `tlsharness check`: the user's own Postfix configuration (and,
//! optionally, a candidate change to it) against scenarios' network paths,
//! on one or more Postfix images; and `tlsharness explain`, which reads a
//! mail log and names the path conditions behind its failures.

mod compare;
mod config;
mod execute;
mod explain;
mod report;
mod setup;

use std::path::PathBuf;

pub use compare::{Verdict, verdict};
pub use config::{Relayhost, UserConfig, load, parameters};
pub use execute::{CheckOptions, CheckReport, Row, check};
pub use explain::{Explanation, confirm_commands, explain, render as render_explanations};
pub use report::{Comparison, compare_sides, render};

/// Why a check could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{}: {why}", path.display())]
    Config { path: PathBuf, why: String },
    #[error("Postfix ({image}) refused the configuration {}:\n{words}", path.display())]
    Refused {
        path: PathBuf,
        image: String,
        words: String,
    },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Postfix(#[from] crate::postfix::PostfixError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error("{0}")]
    Setup(String),
    #[error("the check was interrupted")]
    Interrupted,
}

impl CheckError {
    /// Whether the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            CheckError::Config { .. } | CheckError::Refused { .. } | CheckError::Input(_)
        )
    }

    pub fn is_environment(&self) -> bool {
        match self {
            CheckError::Postfix(e) => e.is_environment(),
            CheckError::Setup(_) => true,
            _ => false,
        }
    }
}

//! `--confirm`: each prediction put to real Postfix, through the same
//! in-process `check::check` the `check` subcommand runs.

use std::path::Path;
use std::sync::Arc;

use super::candidates::Candidate;
use super::error::TriageError;
use crate::check::{self, CheckOptions, UserConfig, Verdict};

/// What real Postfix said about one candidate.
#[derive(Clone, Debug)]
pub struct Confirmation {
    pub candidate: Candidate,
    pub predicted: Verdict,
    /// Per image: the verdict `check` reached, and why.
    pub confirmed: Vec<(String, Option<Verdict>, Option<String>)>,
}

impl Confirmation {
    /// Whether every image reached the predicted verdict.
    pub fn agrees(&self) -> bool {
        !self.confirmed.is_empty()
            && self
                .confirmed
                .iter()
                .all(|(_, v, _)| *v == Some(self.predicted))
    }
}

/// Runs `check` with the current configuration and the candidate in
/// `candidate_dir` on the scenario triage wrote.
pub async fn confirm(
    current: &UserConfig,
    candidate: Candidate,
    candidate_dir: &Path,
    scenario: &Path,
    predicted: Verdict,
    opts: &CheckOptions,
) -> Result<Confirmation, TriageError> {
    // As check takes them: fitted to the image (the host's own files
    // are read when the configuration is this host's /etc/postfix).
    let root = Path::new("/");
    let host = check::is_hosts_own(current, root);
    let cand = check::load(candidate_dir)
        .and_then(|c| check::fit_from(&c, &[], root, host))
        .map_err(TriageError::Config)?;
    let current = check::fit(current, &[], root).map_err(TriageError::Config)?;
    let scenarios = vec![Arc::new(crate::scenario::load_file(scenario)?)];
    let sides = vec![
        ("current".to_owned(), current),
        ("candidate".to_owned(), cand),
    ];
    let report = check::check(&sides, &scenarios, opts)
        .await
        .map_err(TriageError::Confirm)?;
    let confirmed = check::compare_sides(&report)
        .into_iter()
        .map(|c| (c.image, c.verdict, c.why))
        .collect();
    Ok(Confirmation {
        candidate,
        predicted,
        confirmed,
    })
}

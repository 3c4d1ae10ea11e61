use std::io;
use std::path::Path;

use serde::Serialize;

use crate::mta::log::TlsSession;
use crate::outcome::Outcome;
use crate::policy::{Mta, Policy};
use crate::run::{Attempt, CaseResult, Finding, RunReport, findings};
use crate::scenario::AttemptExpectation;

/// The JSON report: the run, then one record per case. Under `--repeat`
/// the top level sums the runs (its `run_id`, `mta`, `image` and
/// `postfix_version`, the MTA's version, are the first run's), `runs` lists each run, and every
/// case record names its repetition; a single run has neither, so its
/// report reads as it always has.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub schema: &'static str,
    pub run_id: &'a str,
    pub mta: Mta,
    pub image: &'a str,
    /// The MTA's version, under the report format's published key.
    #[serde(rename = "postfix_version")]
    pub mta_version: &'a str,
    pub passed: bool,
    pub startup_ms: u64,
    pub total_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunRecord<'a>>,
    pub cases: Vec<CaseRecord<'a>>,
}

/// One repetition of `run --repeat`.
#[derive(Serialize)]
pub struct RunRecord<'a> {
    /// 1-based.
    pub repetition: usize,
    pub run_id: &'a str,
    pub image: &'a str,
    /// The MTA's version, under the report format's published key.
    #[serde(rename = "postfix_version")]
    pub mta_version: &'a str,
    pub passed: bool,
    pub startup_ms: u64,
    pub total_ms: u64,
}

impl<'a> RunRecord<'a> {
    pub fn new(r: &'a RunReport, repetition: usize) -> Self {
        RunRecord {
            repetition,
            run_id: &r.run_id,
            image: &r.image,
            mta_version: &r.mta_version,
            passed: r.passed(),
            startup_ms: r.startup_ms,
            total_ms: r.total_ms,
        }
    }
}

/// One scenario at one level.
#[derive(Serialize)]
pub struct CaseRecord<'a> {
    /// Which run of `run --repeat` the case belongs to, 1-based; absent
    /// for a single run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetition: Option<usize>,
    pub scenario: &'a str,
    pub name: &'a str,
    pub file: &'a str,
    pub level: Policy,
    pub mta: Mta,
    pub image: &'a str,
    /// The MTA's version, under the report format's published key.
    #[serde(rename = "postfix_version")]
    pub mta_version: &'a str,
    /// The last attempt's outcome; `null` when it could not be classified.
    pub outcome: Option<Outcome>,
    pub dsn: &'a str,
    pub reason: &'a str,
    /// The MTA's TLS session for the last attempt, if there was one.
    pub tls: Option<&'a TlsSession>,
    /// Whether the message ever crossed the wire in plaintext.
    pub plaintext: bool,
    /// Security-relevant observations, whatever the expectation said.
    pub findings: Vec<Finding>,
    pub expected: &'a [AttemptExpectation],
    pub passed: bool,
    pub failure: Option<&'a str>,
    /// Neither passed nor failed: the MTA's timing was not what the
    /// expectation assumes, on the case's run and its run again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<&'a str>,
    /// Why the case was run again with a fresh message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun: Option<&'a str>,
    pub attempts: &'a [Attempt],
    pub relay: &'a str,
    pub behaviours: &'a [String],
    pub queue_id: Option<&'a str>,
    pub log: &'a [String],
    pub transcript: &'a str,
    pub duration_ms: u64,
}

impl<'a> CaseRecord<'a> {
    pub fn new(c: &'a CaseResult) -> Self {
        let last = c.attempts.last();
        CaseRecord {
            repetition: None,
            scenario: &c.scenario,
            name: &c.name,
            file: &c.file,
            level: c.level,
            mta: c.mta,
            image: &c.image,
            mta_version: &c.mta_version,
            outcome: c.outcome(),
            dsn: last.map_or("", |a| a.dsn.as_str()),
            reason: last.map_or("", |a| a.error.as_deref().unwrap_or(a.reason.as_str())),
            tls: last.and_then(|a| a.tls.as_ref()),
            plaintext: c.attempts.iter().any(|a| a.wire.plaintext_data),
            findings: findings(&c.attempts),
            expected: &c.expected.attempts,
            passed: c.passed,
            failure: c.failure.as_deref(),
            inconclusive: c.inconclusive.as_deref(),
            rerun: c.rerun.as_deref(),
            attempts: &c.attempts,
            relay: &c.relay,
            behaviours: &c.behaviours,
            queue_id: c.queue_id.as_deref(),
            log: &c.log,
            transcript: &c.transcript,
            duration_ms: c.duration_ms,
        }
    }
}

impl<'a> JsonReport<'a> {
    pub fn new(r: &'a RunReport) -> Self {
        JsonReport::runs(std::slice::from_ref(r))
    }

    /// The report of several runs (see [`JsonReport`]); one run gives the
    /// single-run report.
    ///
    /// # Panics
    /// When `reports` is empty: there is no first run to name.
    pub fn runs(reports: &'a [RunReport]) -> Self {
        let first = &reports[0];
        let several = reports.len() > 1;
        let mut runs = Vec::new();
        let mut cases = Vec::new();
        for (k, r) in reports.iter().enumerate() {
            let repetition = several.then_some(k + 1);
            if let Some(k) = repetition {
                runs.push(RunRecord::new(r, k));
            }
            cases.extend(r.cases.iter().map(|c| CaseRecord {
                repetition,
                ..CaseRecord::new(c)
            }));
        }
        JsonReport {
            schema: "tlsharness-report/2",
            run_id: &first.run_id,
            mta: first.mta,
            image: &first.image,
            mta_version: &first.mta_version,
            passed: reports.iter().all(RunReport::passed),
            startup_ms: reports.iter().map(|r| r.startup_ms).sum(),
            total_ms: reports.iter().map(|r| r.total_ms).sum(),
            runs,
            cases,
        }
    }
}

/// Writes one run's JSON report.
pub fn write_json(report: &RunReport, path: &Path) -> io::Result<()> {
    write_json_runs(std::slice::from_ref(report), path)
}

/// Writes the JSON report of every run of `run --repeat`.
pub fn write_json_runs(reports: &[RunReport], path: &Path) -> io::Result<()> {
    if reports.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no run to report",
        ));
    }
    let text =
        serde_json::to_string_pretty(&JsonReport::runs(reports)).map_err(io::Error::other)?;
    std::fs::write(path, text + "\n")
}

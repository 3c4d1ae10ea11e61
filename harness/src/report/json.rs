use std::io;
use std::path::Path;

use serde::Serialize;

use crate::level::Level;
use crate::outcome::Outcome;
use crate::postfix::log::TlsSession;
use crate::run::{Attempt, CaseResult, Finding, RunReport, findings};
use crate::scenario::AttemptExpectation;

/// The JSON report: the run, then one record per case.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub schema: &'static str,
    pub run_id: &'a str,
    pub image: &'a str,
    pub postfix_version: &'a str,
    pub passed: bool,
    pub startup_ms: u64,
    pub total_ms: u64,
    pub cases: Vec<CaseRecord<'a>>,
}

/// One scenario at one level.
#[derive(Serialize)]
pub struct CaseRecord<'a> {
    pub scenario: &'a str,
    pub name: &'a str,
    pub file: &'a str,
    pub level: Level,
    pub image: &'a str,
    pub postfix_version: &'a str,
    /// The last attempt's outcome; `null` when it could not be classified.
    pub outcome: Option<Outcome>,
    pub dsn: &'a str,
    pub reason: &'a str,
    /// Postfix's TLS session for the last attempt, if there was one.
    pub tls: Option<&'a TlsSession>,
    /// Whether the message ever crossed the wire in plaintext.
    pub plaintext: bool,
    /// Security-relevant observations, whatever the expectation said.
    pub findings: Vec<Finding>,
    pub expected: &'a [AttemptExpectation],
    pub passed: bool,
    pub failure: Option<&'a str>,
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
            scenario: &c.scenario,
            name: &c.name,
            file: &c.file,
            level: c.level,
            image: &c.image,
            postfix_version: &c.postfix_version,
            outcome: c.outcome(),
            dsn: last.map_or("", |a| a.dsn.as_str()),
            reason: last.map_or("", |a| a.error.as_deref().unwrap_or(a.reason.as_str())),
            tls: last.and_then(|a| a.tls.as_ref()),
            plaintext: c.attempts.iter().any(|a| a.wire.plaintext_data),
            findings: findings(&c.attempts),
            expected: &c.expected.attempts,
            passed: c.passed,
            failure: c.failure.as_deref(),
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
        JsonReport {
            schema: "tlsharness-report/1",
            run_id: &r.run_id,
            image: &r.image,
            postfix_version: &r.postfix_version,
            passed: r.passed(),
            startup_ms: r.startup_ms,
            total_ms: r.total_ms,
            cases: r.cases.iter().map(CaseRecord::new).collect(),
        }
    }
}

pub fn write_json(report: &RunReport, path: &Path) -> io::Result<()> {
    let text = serde_json::to_string_pretty(&JsonReport::new(report)).map_err(io::Error::other)?;
    std::fs::write(path, text + "\n")
}

//! What the page's script renders, and the views of attempts and
//! connections that run and check pages share.

use serde::Serialize;

use super::ladder::{Step, ladder};
use crate::middlebox::ConnectionRecord;
use crate::outcome::{Outcome, Trust};
use crate::report::matrix::{attempt_cell, attempt_summary};
use crate::run::Attempt;

/// What the page's script renders.
#[derive(Serialize)]
pub(super) struct Page {
    /// `run` or `check`.
    pub(super) kind: &'static str,
    pub(super) title: String,
    /// Facts about the run, one line each.
    pub(super) facts: Vec<String>,
    /// `run`: one matrix per image (and repetition).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tables: Vec<Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) check: Option<CheckPage>,
    pub(super) cases: Vec<CaseView>,
}

/// Scenarios down, levels across.
#[derive(Serialize)]
pub(super) struct Table {
    pub(super) title: String,
    pub(super) levels: Vec<String>,
    /// Per scenario: its id, its name and, per level, the case's index in
    /// `cases`.
    pub(super) rows: Vec<(String, String, Vec<Option<usize>>)>,
}

/// One case (run) or one side of one path (check).
#[derive(Serialize)]
pub(super) struct CaseView {
    /// The address fragment that opens it.
    pub(super) key: String,
    pub(super) title: String,
    pub(super) scenario: String,
    pub(super) name: String,
    pub(super) level: String,
    /// The MTA's name (`Postfix`, `Exim`), for the ladder's lane and labels.
    pub(super) mta: &'static str,
    pub(super) image: String,
    pub(super) version: String,
    /// The outcome class the cell is coloured by.
    pub(super) cat: &'static str,
    /// A middlebox read the message inside TLS it terminated.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) intercepted: bool,
    pub(super) cell: String,
    pub(super) dsn: String,
    /// `pass`, `fail` (an expectation failed), `error` (no verdict) or
    /// `none` (check: nothing was expected of the user's configuration).
    pub(super) mark: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) failure: Option<String>,
    pub(super) expected: Vec<String>,
    pub(super) relay: String,
    pub(super) behaviours: Vec<String>,
    pub(super) findings: Vec<&'static str>,
    pub(super) attempts: Vec<AttemptView>,
    /// The case's MTA log, when no attempt has its own lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) log: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct AttemptView {
    cat: &'static str,
    cell: String,
    summary: String,
    log: Vec<String>,
    conns: Vec<ConnView>,
}

/// One connection through the middlebox.
#[derive(Serialize)]
pub(super) struct ConnView {
    /// `peer -> middlebox address`.
    label: String,
    /// When it began, in milliseconds after the attempt's first connection.
    at: u64,
    end: String,
    steps: Vec<Step>,
    /// Transcript entries not kept (a transcript has a limit).
    #[serde(skip_serializing_if = "is_zero")]
    dropped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// check's part of the page.
#[derive(Serialize)]
pub(super) struct CheckPage {
    /// Per side, the configuration and what Postfix makes of it.
    pub(super) sources: Vec<(String, String)>,
    /// What the candidate changes, one line each.
    pub(super) diff: Vec<String>,
    /// What the harness changed to run each side, per side.
    pub(super) changes: Vec<(String, Vec<String>)>,
    pub(super) with_candidate: bool,
    pub(super) images: Vec<CheckTable>,
}

#[derive(Serialize)]
pub(super) struct CheckTable {
    pub(super) image: String,
    pub(super) version: String,
    pub(super) rows: Vec<CheckRow>,
}

#[derive(Serialize)]
pub(super) struct CheckRow {
    /// The fragment that opens both sides' ladders.
    pub(super) key: String,
    pub(super) scenario: String,
    pub(super) current: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) candidate: Option<usize>,
    /// As the terminal report writes it (`DOWNGRADE`, `same`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) verdict: Option<String>,
    /// The verdict as a class name (`downgrade`, `same`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) vclass: Option<String>,
    /// It fails the gate unless allowed.
    pub(super) gates: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) why: Option<String>,
}

fn conn_view(r: &ConnectionRecord, first_ms: u64) -> ConnView {
    let show = |a: Option<std::net::SocketAddr>| a.map_or("?".to_owned(), |a| a.to_string());
    ConnView {
        label: format!("{} -> {}", show(r.peer), show(r.local)),
        at: r.started_ms.saturating_sub(first_ms),
        end: r.end.clone(),
        steps: ladder(r),
        dropped: r.transcript.dropped,
    }
}

/// The outcome class a cell is coloured by (the page's script has a
/// legend entry for each; a test checks).
pub(super) fn category(a: Option<&Attempt>) -> &'static str {
    let Some(a) = a else { return "error" };
    match a.outcome {
        Some(Outcome::DeliveredTls) => match a.tls.as_ref().map(|t| t.trust) {
            Some(Trust::Verified) => "tls-verified",
            Some(Trust::Trusted) => "tls-trusted",
            _ => "tls-untrusted",
        },
        Some(Outcome::DeliveredPlaintext) if a.wire.plaintext_auth => "plaintext-credentials",
        Some(Outcome::DeliveredPlaintext) => "plaintext",
        Some(Outcome::Deferred) => "deferred",
        Some(Outcome::Bounced) => "bounced",
        None => "error",
    }
}

fn attempt_view(a: &Attempt) -> AttemptView {
    let first_ms = a
        .connections
        .iter()
        .map(|r| r.started_ms)
        .min()
        .unwrap_or(0);
    AttemptView {
        cat: category(Some(a)),
        cell: attempt_cell(a),
        summary: attempt_summary(a),
        log: a.log.clone(),
        conns: a
            .connections
            .iter()
            .map(|r| conn_view(r, first_ms))
            .collect(),
    }
}

/// The attempts' views, and the case's log when no attempt has its own
/// lines (an attempt that timed out, say).
pub(super) fn attempt_views(
    attempts: &[Attempt],
    log: &[String],
) -> (Vec<AttemptView>, Vec<String>) {
    let views: Vec<AttemptView> = attempts.iter().map(attempt_view).collect();
    let own = views.iter().any(|a| !a.log.is_empty());
    (views, if own { Vec::new() } else { log.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::fixtures::attempt;
    use crate::report::html::page::SCRIPT;

    /// Every outcome class a cell can have.
    const CATEGORIES: [&str; 8] = [
        "tls-verified",
        "tls-trusted",
        "tls-untrusted",
        "plaintext",
        "plaintext-credentials",
        "deferred",
        "bounced",
        "error",
    ];

    #[test]
    fn every_outcome_class_is_in_the_legend() {
        let mut a = attempt(None, Vec::new());
        let mut seen = vec![category(None), category(Some(&a))];
        for outcome in Outcome::ALL {
            a.outcome = Some(outcome);
            seen.push(category(Some(&a)));
            a.wire.plaintext_auth = true;
            seen.push(category(Some(&a)));
            a.wire.plaintext_auth = false;
            for trust in Trust::ALL {
                a.tls = Some(crate::mta::log::TlsSession {
                    trust,
                    host: String::new(),
                    addr: String::new(),
                    port: 0,
                    protocol: String::new(),
                    cipher: String::new(),
                });
                seen.push(category(Some(&a)));
            }
            a.tls = None;
        }
        seen.sort_unstable();
        seen.dedup();
        let mut all = CATEGORIES.to_vec();
        all.sort_unstable();
        assert_eq!(seen, all);
        for c in CATEGORIES {
            assert!(
                SCRIPT.contains(&format!("['{c}', ")),
                "{c} has no legend entry"
            );
        }
    }
}

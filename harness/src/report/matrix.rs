use std::fmt::Write as _;

use crate::level::Level;
use crate::outcome::Outcome;
use crate::run::{Attempt, CaseResult, RunReport};
use crate::scenario::Hop;

/// How one attempt reads in a cell. Plaintext delivery is written in
/// capitals: it is a security-relevant result, never just "delivered".
fn attempt_text(a: &Attempt) -> String {
    match a.outcome {
        Some(Outcome::DeliveredTls) => {
            let mut text = match &a.tls {
                Some(t) => format!("tls {}", t.trust),
                None => "tls".into(),
            };
            if a.wire.intercepted {
                text.push_str(" (intercepted)");
            }
            if a.relay_hop == Some(Hop::Plaintext) {
                text.push_str(", relay hop PLAINTEXT");
            }
            text
        }
        Some(Outcome::DeliveredPlaintext) if a.wire.plaintext_auth => {
            "PLAINTEXT +CREDENTIALS".into()
        }
        Some(Outcome::DeliveredPlaintext) => "PLAINTEXT".into(),
        Some(Outcome::Deferred) => format!("deferred {}", a.dsn),
        Some(Outcome::Bounced) => format!("bounced {}", a.dsn),
        None => "error".into(),
    }
}

/// One attempt in words: outcome, dsn and reason, or the error.
pub fn attempt_summary(a: &Attempt) -> String {
    match (&a.outcome, &a.error) {
        (Some(o), _) => {
            let mut s = format!("{o} dsn={} ({})", a.dsn, a.reason);
            if let Some(t) = &a.tls {
                s.push_str(&format!(" [{} TLS, {}]", t.trust, t.protocol));
            }
            if let Some(hop) = a.relay_hop {
                s.push_str(&format!(" [relay received it over {hop}]"));
            }
            s
        }
        (None, Some(e)) => format!("error: {e}"),
        (None, None) => "error".into(),
    }
}

/// A case's cell: pass mark, then each attempt.
pub fn cell(c: &CaseResult) -> String {
    let mark = if c.passed { "✓" } else { "✗" };
    let attempts: Vec<String> = c.attempts.iter().map(attempt_text).collect();
    let text = if attempts.is_empty() {
        "error".to_owned()
    } else {
        attempts.join(" → ")
    };
    format!("{mark} {text}")
}

/// Scenarios down, levels across.
pub fn matrix(report: &RunReport) -> String {
    let mut levels: Vec<Level> = report.cases.iter().map(|c| c.level).collect();
    levels.sort();
    levels.dedup();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for c in &report.cases {
        if rows.last().is_none_or(|(s, _)| *s != c.scenario) {
            rows.push((c.scenario.clone(), vec![String::new(); levels.len()]));
        }
        let col = levels
            .iter()
            .position(|l| *l == c.level)
            .expect("level listed");
        rows.last_mut().expect("row pushed").1[col] = cell(c);
    }
    let width = |s: &str| s.chars().count();
    let first = rows
        .iter()
        .map(|(s, _)| width(s))
        .chain([width("scenario")])
        .max()
        .unwrap_or(8);
    let widths: Vec<usize> = levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            rows.iter()
                .map(|(_, cells)| width(&cells[i]))
                .chain([width(l.as_str())])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = format!("{:first$}", "scenario");
    for (l, w) in levels.iter().zip(&widths) {
        let _ = write!(line, "  {:w$}", l.as_str());
    }
    let _ = writeln!(out, "{}", line.trim_end());
    for (scenario, cells) in &rows {
        let mut line = format!("{scenario:first$}");
        for (c, w) in cells.iter().zip(&widths) {
            let pad = w - width(c);
            let _ = write!(line, "  {c}{}", " ".repeat(pad));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let failed = report.cases.iter().filter(|c| !c.passed).count();
    let plaintext = report
        .cases
        .iter()
        .filter(|c| {
            c.attempts
                .iter()
                .any(|a| a.outcome == Some(Outcome::DeliveredPlaintext))
        })
        .count();
    let credentials = report
        .cases
        .iter()
        .filter(|c| c.attempts.iter().any(|a| a.wire.plaintext_auth))
        .count();
    let _ = writeln!(
        out,
        "\n{} cases, {} passed, {} failed; {} delivered in plaintext, {} sent credentials in plaintext. Postfix {} ({}), ready in {:.1}s, run took {:.1}s.",
        report.cases.len(),
        report.cases.len() - failed,
        failed,
        plaintext,
        credentials,
        report.postfix_version,
        report.image,
        report.startup_ms as f64 / 1000.0,
        report.total_ms as f64 / 1000.0,
    );
    out
}

/// Expected vs got, the Postfix log and the wire transcript of a failed case.
pub fn failure_details(c: &CaseResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "FAIL {}/{} ({})", c.scenario, c.level, c.file);
    let _ = writeln!(
        out,
        "  why:      {}",
        c.failure.as_deref().unwrap_or("unknown")
    );
    let expected: Vec<String> = c.expected.attempts.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(out, "  expected: {}", expected.join(" → "));
    for (i, a) in c.attempts.iter().enumerate() {
        let _ = writeln!(out, "  got #{}:   {}", i + 1, attempt_summary(a));
    }
    if !c.log.is_empty() {
        let _ = writeln!(out, "  postfix log:");
        for l in &c.log {
            let _ = writeln!(out, "    {l}");
        }
    }
    if !c.transcript.is_empty() {
        let _ = writeln!(
            out,
            "  wire transcript (S: relay, C: Postfix, M: middlebox, ~ held back):"
        );
        for l in c.transcript.lines() {
            let _ = writeln!(out, "    {l}");
        }
    }
    out
}

use std::fmt::Write as _;

use crate::outcome::Outcome;
use crate::policy::Policy;
use crate::run::{Attempt, CaseResult, RunReport};
use crate::scenario::Hop;

/// How one attempt reads in a cell. Plaintext delivery is written in
/// capitals: it is a security-relevant result, never just "delivered".
pub fn attempt_cell(a: &Attempt) -> String {
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
        Some(Outcome::DeliveredPlaintext) if a.retried_in_clear.is_some() => {
            "PLAINTEXT (retried in clear)".into()
        }
        Some(Outcome::DeliveredPlaintext) => "PLAINTEXT".into(),
        Some(Outcome::Deferred) => with_dsn("deferred", &a.dsn),
        Some(Outcome::Bounced) => with_dsn("bounced", &a.dsn),
        None => "error".into(),
    }
}

/// `deferred 4.7.4`, or just `deferred` where the MTA logged no dsn.
fn with_dsn(word: &str, dsn: &str) -> String {
    if dsn.is_empty() {
        word.to_owned()
    } else {
        format!("{word} {dsn}")
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
            if let Some(host) = &a.retried_in_clear {
                s.push_str(&format!(
                    " [TLS failed, then a new connection in clear to {host}: {} connections]",
                    a.wire.connections
                ));
            }
            s
        }
        (None, Some(e)) => format!("error: {e}"),
        (None, None) => "error".into(),
    }
}

/// What the marks and words of a cell mean, printed under every matrix.
pub const LEGEND: &str = "✓ as the scenario expects, ✗ not as it expects, ! no verdict (harness error), \
? inconclusive (the MTA was too slow for the scenario's timing, twice); ↻ run again with a fresh message; \
PLAINTEXT delivered without TLS (+CREDENTIALS: AUTH crossed in plaintext too; \
retried in clear: after a failed handshake, on a new connection in the same attempt); \
tls TRUST delivered over TLS, with the trust the MTA logged; \
deferred/bounced DSN as the MTA logged it; → the next delivery attempt";

/// A case's cell: pass mark, then each attempt.
pub fn cell(c: &CaseResult) -> String {
    let mark = if c.is_error() {
        "!"
    } else if c.is_inconclusive() {
        "?"
    } else if c.passed {
        "✓"
    } else {
        "✗"
    };
    let attempts: Vec<String> = c.attempts.iter().map(attempt_cell).collect();
    let text = if attempts.is_empty() {
        "error".to_owned()
    } else {
        attempts.join(" → ")
    };
    let again = if c.rerun.is_some() { "↻ " } else { "" };
    format!("{mark} {again}{text}")
}

/// Scenarios down, levels across; one table per image, then where the
/// images disagree.
pub fn matrix(report: &RunReport) -> String {
    let mut images: Vec<&str> = Vec::new();
    for c in &report.cases {
        if !images.contains(&c.image.as_str()) {
            images.push(&c.image);
        }
    }
    let mut out = String::new();
    for image in &images {
        let cases: Vec<&CaseResult> = report.cases.iter().filter(|c| c.image == *image).collect();
        if images.len() > 1 {
            let version = cases.first().map_or("", |c| c.mta_version.as_str());
            let _ = writeln!(out, "{image} ({} {version})", report.mta.title());
        }
        out.push_str(&table(&cases));
        if images.len() > 1 {
            out.push('\n');
        }
    }
    if images.len() > 1 {
        out.push_str(&across_images(report));
    }
    let failed = report.cases.iter().filter(|c| c.is_failure()).count();
    let errors = report.errors();
    let inconclusive = report.inconclusive();
    let passed = report.cases.iter().filter(|c| c.passed).count();
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
    let versions: Vec<String> = images
        .iter()
        .map(|i| {
            let v = report
                .cases
                .iter()
                .find(|c| c.image == *i)
                .map_or("", |c| c.mta_version.as_str());
            format!("{} {v} ({i})", report.mta.title())
        })
        .collect();
    let _ = writeln!(out, "\n{LEGEND}");
    let _ = writeln!(
        out,
        "{} cases, {} passed, {} failed{}{}; {} delivered in plaintext, {} sent credentials in plaintext. {}, ready in {:.1}s, run took {:.1}s.",
        report.cases.len(),
        passed,
        failed,
        if errors > 0 {
            format!(", {errors} without a verdict")
        } else {
            String::new()
        },
        if inconclusive > 0 {
            format!(", {inconclusive} inconclusive")
        } else {
            String::new()
        },
        plaintext,
        credentials,
        versions.join(", "),
        report.startup_ms as f64 / 1000.0,
        report.total_ms as f64 / 1000.0,
    );
    out
}

fn table(cases: &[&CaseResult]) -> String {
    let mut levels: Vec<Policy> = cases.iter().map(|c| c.level).collect();
    levels.sort();
    levels.dedup();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for c in cases {
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
    out
}

/// A case's attempts as read on each image.
type Readings<'a> = Vec<(&'a str, String)>;

/// Cases whose attempts read differently on different images.
fn across_images(report: &RunReport) -> String {
    let mut by_case: Vec<((String, Policy), Readings<'_>)> = Vec::new();
    for c in &report.cases {
        let key = (c.scenario.clone(), c.level);
        let text: Vec<String> = c.attempts.iter().map(attempt_summary).collect();
        let entry = (c.image.as_str(), text.join(" -> "));
        match by_case.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(entry),
            None => by_case.push((key, vec![entry])),
        }
    }
    let mut out = format!("Across {} versions:\n", report.mta.title());
    let mut any = false;
    for ((scenario, level), seen) in &by_case {
        if seen.windows(2).any(|w| w[0].1 != w[1].1) {
            any = true;
            let _ = writeln!(out, "  {scenario}/{level} differs:");
            for (image, text) in seen {
                let _ = writeln!(out, "    {image}: {text}");
            }
        }
    }
    if !any {
        out.push_str("  no differences: every case gave the same result on every image\n");
    }
    out
}

/// Expected vs got, the MTA's log and the wire transcript of a failed case.
pub fn failure_details(c: &CaseResult) -> String {
    let mut out = String::new();
    let head = if c.is_inconclusive() {
        "INCONCLUSIVE"
    } else {
        "FAIL"
    };
    let _ = writeln!(out, "{head} {}/{} ({})", c.scenario, c.level, c.file);
    let _ = writeln!(
        out,
        "  why:      {}",
        c.inconclusive
            .as_deref()
            .or(c.failure.as_deref())
            .unwrap_or("unknown")
    );
    if let Some(first) = &c.rerun {
        let _ = writeln!(out, "  run again with a fresh message, because: {first}");
    }
    let expected: Vec<String> = c.expected.attempts.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(out, "  expected: {}", expected.join(" → "));
    for (i, a) in c.attempts.iter().enumerate() {
        let _ = writeln!(out, "  got #{}:   {}", i + 1, attempt_summary(a));
    }
    if !c.log.is_empty() {
        let _ = writeln!(out, "  {} log:", c.mta);
        for l in &c.log {
            let _ = writeln!(out, "    {l}");
        }
    }
    if !c.transcript.is_empty() {
        let _ = writeln!(
            out,
            "  wire transcript (S: relay, C: the MTA, M: middlebox, ~ held back):"
        );
        for l in c.transcript.lines() {
            let _ = writeln!(out, "    {l}");
        }
    }
    out
}

//! Repeating a run and finding the cases whose outcome changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::run::RunReport;

/// What a case showed in one repetition, without what legitimately
/// differs between runs (ports, queue ids, timings).
fn signature(c: &crate::run::CaseResult) -> String {
    let attempts: Vec<String> = c
        .attempts
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {}",
                a.outcome.map_or("error".to_owned(), |o| o.to_string()),
                a.dsn,
                a.tls
                    .as_ref()
                    .map_or("-".to_owned(), |t| t.trust.to_string()),
                a.relay_hop.map_or("-".to_owned(), |h| h.to_string()),
            )
        })
        .collect();
    format!(
        "{} [{}]",
        if c.passed {
            "pass"
        } else if c.is_inconclusive() {
            "inconclusive"
        } else {
            "FAIL"
        },
        attempts.join(" -> ")
    )
}

/// A case that did not show the same thing every time.
#[derive(Debug, Clone)]
pub struct Flake {
    pub case: String,
    /// Each distinct signature and how many repetitions showed it.
    pub seen: Vec<(String, usize)>,
}

/// Cases whose signature differed between the repetitions.
pub fn flakes(reports: &[RunReport]) -> Vec<Flake> {
    let mut by_case: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in reports {
        for c in &r.cases {
            let key = format!("{}/{}@{}", c.scenario, c.level, c.image);
            *by_case
                .entry(key)
                .or_default()
                .entry(signature(c))
                .or_default() += 1;
        }
    }
    by_case
        .into_iter()
        .filter(|(_, seen)| seen.len() > 1)
        .map(|(case, seen)| Flake {
            case,
            seen: seen.into_iter().collect(),
        })
        .collect()
}

/// The summary of a repeated run.
pub fn flake_report(reports: &[RunReport]) -> String {
    let found = flakes(reports);
    let cases = reports.first().map_or(0, |r| r.cases.len());
    let failed: usize = reports
        .iter()
        .map(|r| r.cases.iter().filter(|c| !c.passed).count())
        .sum();
    let mut out = format!(
        "{} repetitions of {cases} cases: {} case(s) changed outcome, {failed} failed case run(s).\n",
        reports.len(),
        found.len()
    );
    for f in &found {
        let _ = writeln!(out, "  {}:", f.case);
        for (sig, n) in &f.seen {
            let _ = writeln!(out, "    {n}x {sig}");
        }
    }
    out
}

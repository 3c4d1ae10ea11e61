//! The check's report: per image, each scenario's path under the current
//! configuration (and the candidate, with the verdict), then where the
//! Postfix versions differ.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::compare::{Verdict, verdict_at, why};
use super::result::{CheckReport, Row};
use super::setup::is_overridden;
use crate::report::attempt_summary;

/// One path on one image, both sides.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub scenario: String,
    /// Which mail took the path, when the configurations route mail more
    /// than one way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    pub image: String,
    pub current: Row,
    pub candidate: Option<Row>,
    pub verdict: Option<Verdict>,
    /// Why the verdict, in one line; absent for `same`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// By side, the user's settings the harness overrode to keep mail on
    /// the machine (they are among the report's changes too): the path
    /// ran without them, which the JSON alone must say as well.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub overridden: BTreeMap<String, Vec<String>>,
    /// By side, what `postconf` warned of that side's configuration on
    /// this image without refusing it (a parameter whose support will be
    /// removed), in Postfix's words.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub warnings: BTreeMap<String, Vec<String>>,
}

/// The TLS level Postfix applied on the current side's path: its policy's
/// (service override or policy map) when known, else main.cf's.
fn current_level(row: &Row) -> &str {
    row.tls_policy
        .as_ref()
        .map_or(row.level.as_str(), |p| p.level.as_str())
}

/// Pairs current and candidate rows by (scenario, mail, image).
pub fn compare_sides(report: &CheckReport) -> Vec<Comparison> {
    let overridden: BTreeMap<String, Vec<String>> = report
        .changes
        .iter()
        .map(|(side, changes)| {
            let lines: Vec<String> = changes
                .iter()
                .filter(|c| is_overridden(c))
                .cloned()
                .collect();
            (side.clone(), lines)
        })
        .filter(|(_, lines)| !lines.is_empty())
        .collect();
    let mut out = Vec::new();
    for row in report.rows.iter().filter(|r| r.side == "current") {
        let mut warnings: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for w in report.warnings.iter().filter(|w| w.image == row.image) {
            warnings
                .entry(w.side.clone())
                .or_default()
                .push(w.words.clone());
        }
        let candidate = report
            .rows
            .iter()
            .find(|r| {
                r.side == "candidate"
                    && r.scenario == row.scenario
                    && r.mail == row.mail
                    && r.image == row.image
            })
            .cloned();
        let not_modelled = [Some(row), candidate.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|r| r.not_modelled.as_ref().map(|why| (r.side.as_str(), why)));
        let (v, why) = match (&candidate, not_modelled) {
            (_, Some((side, said))) => (
                candidate.as_ref().map(|_| Verdict::NotModelled),
                Some(format!("{side}: {said}")),
            ),
            (Some(c), None) => {
                let v = verdict_at(&row.attempt, &c.attempt, Some(current_level(row)));
                (Some(v), why(&row.attempt, &c.attempt, v))
            }
            (None, None) => (None, None),
        };
        out.push(Comparison {
            why,
            scenario: row.scenario.clone(),
            mail: row.mail.clone(),
            image: row.image.clone(),
            current: row.clone(),
            overridden: overridden
                .iter()
                .filter(|(side, _)| *side == "current" || candidate.is_some())
                .map(|(side, lines)| (side.clone(), lines.clone()))
                .collect(),
            warnings: warnings
                .into_iter()
                .filter(|(side, _)| side == "current" || candidate.is_some())
                .collect(),
            candidate,
            verdict: v,
        });
    }
    out
}

fn cell(r: &Row) -> String {
    if r.not_modelled.is_some() {
        return format!("not modelled (port {})", r.port);
    }
    let a = &r.attempt;
    let mut text = crate::report::attempt_cell(a);
    if r.findings
        .contains(&crate::run::Finding::PlaintextCredentials)
        && !text.contains("CREDENTIALS")
    {
        text.push_str(" +CREDENTIALS");
    }
    text
}

fn level_label(level: &str) -> &str {
    if level.is_empty() { "(unset)" } else { level }
}

/// A side's label in a table's head: the level Postfix applied on every
/// path of that table, or main.cf's level when the paths differ (each
/// then says its own).
fn side_head(side: &str, rows: &[&Row]) -> String {
    let mut levels: Vec<&str> = rows
        .iter()
        .map(|r| {
            r.tls_policy
                .as_ref()
                .map_or(level_label(&r.level), |p| p.level.as_str())
        })
        .collect();
    levels.sort_unstable();
    levels.dedup();
    match levels.as_slice() {
        [one] => format!("{side} ({one})"),
        _ => format!("{side} (per path, see below)"),
    }
}

/// Where each side's applied TLS level came from, on one image.
fn policy_lines(out: &mut String, side: &str, rows: &[&Row]) {
    let mut policies: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let p = r.tls_policy.as_ref().map_or_else(
                || "unknown (Postfix was not asked)".to_owned(),
                |p| format!("{} to {} ({})", p.level, p.nexthop, p.source),
            );
            (r.name(), p)
        })
        .collect();
    let uniform = policies.windows(2).all(|w| w[0].1 == w[1].1);
    if uniform {
        if let Some((_, p)) = policies.first() {
            let _ = writeln!(out, "  {side}: Postfix applies TLS level {p}");
        }
        return;
    }
    policies.sort();
    for (scenario, p) in policies {
        let _ = writeln!(out, "  {side}: Postfix applies TLS level {p} on {scenario}");
    }
}

/// The parameters main.cf sets differently on the two sides, by
/// Postfix's `postconf -n`.
pub fn parameter_diff(
    current: &BTreeMap<String, String>,
    candidate: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut names: Vec<&String> = current.keys().chain(candidate.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| {
            let (a, b) = (current.get(n), candidate.get(n));
            (a != b).then(|| {
                let show = |v: Option<&String>| v.map_or("(not set)".to_owned(), |v| v.clone());
                format!("{n}: {} -> {}", show(a), show(b))
            })
        })
        .collect()
}

impl Comparison {
    /// The summary's words when the candidate changes nothing on any path.
    pub const NO_PATH_CHANGES: &str = "no path changes: the candidate gives the same outcome as the current configuration on every path and image.";

    /// Whether a candidate was compared and every path on every image
    /// came out `same`: nothing else (not even not-modelled) counts.
    pub fn none_changed(comparisons: &[Comparison]) -> bool {
        !comparisons.is_empty() && comparisons.iter().all(|c| c.verdict == Some(Verdict::Same))
    }
}

/// One side of a gating verdict in words; the credentials are named
/// because they are what the wire tap alone saw.
fn summary(a: &crate::run::Attempt) -> String {
    let mut s = attempt_summary(a);
    if a.wire.plaintext_auth {
        s.push_str(" [SASL credentials sent in plaintext]");
    }
    s
}

/// The terminal report.
pub fn render(report: &CheckReport, sources: &[(String, String)]) -> String {
    let comparisons = compare_sides(report);
    let mut out = String::new();
    what_was_compared(&mut out, report, sources);
    let mut images: Vec<&str> = comparisons.iter().map(|c| c.image.as_str()).collect();
    images.dedup();
    let with_candidate = comparisons.iter().any(|c| c.candidate.is_some());
    for image in &images {
        let rows: Vec<&Comparison> = comparisons.iter().filter(|c| c.image == *image).collect();
        image_table(&mut out, image, &rows, with_candidate);
    }
    if images.len() > 1 {
        across_versions(&mut out, report);
    }
    if with_candidate {
        verdicts(&mut out, &comparisons);
    }
    out
}

/// Each side's source, what the candidate changes, and what the harness
/// changed in each configuration to run it.
fn what_was_compared(out: &mut String, report: &CheckReport, sources: &[(String, String)]) {
    for (side, source) in sources {
        let _ = writeln!(out, "{side}: {source}");
    }
    if let [(_, current), (_, candidate)] = report.parameters.as_slice() {
        let diff = parameter_diff(current, candidate);
        let _ = writeln!(
            out,
            "\nWhat the candidate changes (postconf -n of each side):"
        );
        if diff.is_empty() {
            let _ = writeln!(out, "  main.cf: both sides set the same parameters");
        }
        for d in diff.iter().chain(&report.file_changes) {
            let _ = writeln!(out, "  {d}");
        }
    }
    let same_changes = report.changes.windows(2).all(|w| w[0].1 == w[1].1);
    for (side, changes) in &report.changes {
        let whose = if same_changes && report.changes.len() > 1 {
            "both configurations".to_owned()
        } else {
            format!("the {side} configuration")
        };
        let _ = writeln!(out, "\nWhat the harness changed in {whose} to run it here:");
        for c in changes {
            let _ = writeln!(out, "  - {c}");
        }
        if same_changes {
            break;
        }
    }
}

/// One image's table: Postfix's warnings and policies, then a line per
/// path with each side's cell and the verdict.
fn image_table(out: &mut String, image: &str, rows: &[&Comparison], with_candidate: bool) {
    let Some(first) = rows.first() else { return };
    let _ = writeln!(out, "\n{image} (Postfix {})", first.current.mta_version);
    for side in ["current", "candidate"] {
        for words in first.warnings.get(side).into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {side}: Postfix {} warns: {words}",
                first.current.mta_version
            );
        }
    }
    let currents: Vec<&Row> = rows.iter().map(|r| &r.current).collect();
    let candidates: Vec<&Row> = rows.iter().filter_map(|r| r.candidate.as_ref()).collect();
    policy_lines(out, "current", &currents);
    if with_candidate {
        policy_lines(out, "candidate", &candidates);
    }
    let cur_head = side_head("current", &currents);
    let cand_head = if with_candidate {
        side_head("candidate", &candidates)
    } else {
        String::new()
    };
    let w0 = rows
        .iter()
        .map(|r| r.current.name().chars().count())
        .chain([8])
        .max()
        .unwrap_or(8);
    let w1 = rows
        .iter()
        .map(|r| cell(&r.current).chars().count())
        .chain([cur_head.len()])
        .max()
        .unwrap_or(0);
    let w2 = rows
        .iter()
        .filter_map(|r| r.candidate.as_ref().map(|c| cell(c).chars().count()))
        .chain([cand_head.len()])
        .max()
        .unwrap_or(0);
    let mut head = format!("  {:w0$}  {:w1$}", "scenario", cur_head);
    if with_candidate {
        let _ = write!(head, "  {cand_head:w2$}  verdict");
    }
    let _ = writeln!(out, "{}", head.trim_end());
    for r in rows {
        path_line(out, r, (w0, w1, w2));
    }
}

/// One path's line at the table's column widths, and its notes.
fn path_line(out: &mut String, r: &Comparison, (w0, w1, w2): (usize, usize, usize)) {
    let c1 = cell(&r.current);
    let mut line = format!(
        "  {:w0$}  {}{}",
        r.current.name(),
        c1,
        " ".repeat(w1 - c1.chars().count())
    );
    if let Some(c) = &r.candidate {
        let c2 = cell(c);
        let _ = write!(
            line,
            "  {}{}  {}",
            c2,
            " ".repeat(w2 - c2.chars().count()),
            r.verdict.map(|v| v.to_string()).unwrap_or_default()
        );
    }
    let _ = writeln!(out, "{}", line.trim_end());
    if let Some(why) = &r.why {
        let _ = writeln!(out, "    why: {why}");
    }
    for (side, row) in [
        ("current", Some(&r.current)),
        ("candidate", r.candidate.as_ref()),
    ] {
        if let Some(refused) = row.and_then(|row| row.refused.as_ref()) {
            let _ = writeln!(out, "    {side}: {refused}");
        }
    }
    if !r.current.dropped_settings.is_empty() {
        let _ = writeln!(
            out,
            "    note: the scenario's {} not applied; your configuration decided",
            r.current.dropped_settings.join(" ")
        );
    }
}

/// Differences between Postfix versions, per side.
fn across_versions(out: &mut String, report: &CheckReport) {
    let mut differs: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in &report.rows {
        differs
            .entry((r.side.clone(), r.name()))
            .or_default()
            .push(format!("{}: {}", r.image, cell(r)));
    }
    let mut any = false;
    let _ = writeln!(out, "\nAcross Postfix versions:");
    for ((side, scenario), cells) in &differs {
        let texts: Vec<&str> = cells
            .iter()
            .map(|c| c.split_once(": ").map_or("", |x| x.1))
            .collect();
        if texts.windows(2).any(|w| w[0] != w[1]) {
            any = true;
            let _ = writeln!(out, "  {scenario} ({side}) differs: {}", cells.join("; "));
        }
    }
    if !any {
        let _ = writeln!(
            out,
            "  no differences: every scenario gave the same result on every image"
        );
    }
}

/// The verdicts counted, then each gating one with both sides in words.
fn verdicts(out: &mut String, comparisons: &[Comparison]) {
    let count = |verdict: Verdict| {
        comparisons
            .iter()
            .filter(|c| c.verdict == Some(verdict))
            .count()
    };
    let down = count(Verdict::Downgrade);
    let outage = count(Verdict::Outage);
    let bounce = count(Verdict::Bounce);
    let not_modelled = count(Verdict::NotModelled);
    let _ = writeln!(
        out,
        "\n{down} downgrade(s), {bounce} bounce(s), {outage} outage(s), {not_modelled} not-modelled in {} path(s).",
        comparisons.len()
    );
    if Comparison::none_changed(comparisons) {
        let _ = writeln!(out, "{}", Comparison::NO_PATH_CHANGES);
    }
    if not_modelled > 0 {
        let _ = writeln!(
            out,
            "Not modelled: the scenario does not say what happens on the port one side relays to, so that path says nothing about the change (state it in the scenario: a service, relay.elsewhere = \"refused\", or the path's block/drop)."
        );
    }
    for c in comparisons
        .iter()
        .filter(|c| c.verdict.is_some_and(Verdict::gates))
    {
        let cand = c.candidate.as_ref().expect("a verdict has a candidate");
        let _ = writeln!(
            out,
            "\n{} {} on {}:\n  current:   {}\n  candidate: {}",
            c.verdict.expect("filtered"),
            c.current.name(),
            c.image,
            summary(&c.current.attempt),
            summary(&cand.attempt)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Attempt, Wire};

    fn row(side: &str, attempt: Attempt) -> Row {
        Row {
            scenario: "starttls-relay".to_owned(),
            mail: None,
            route: "smtp:[a]:587".to_owned(),
            side: side.to_owned(),
            image: "tlsharness/postfix:bookworm".to_owned(),
            mta_version: "3.7.11".to_owned(),
            level: "may".to_owned(),
            tls_policy: None,
            dropped_settings: Vec::new(),
            refused: None,
            port: 587,
            not_modelled: None,
            findings: Vec::new(),
            attempt,
            expected: None,
            log: Vec::new(),
            transcript: String::new(),
            behaviours: Vec::new(),
        }
    }

    #[test]
    fn each_side_s_overridden_settings_reach_every_comparison() {
        let ok = || {
            let mut a = Attempt::failed(String::new(), Wire::default());
            a.outcome = Some(crate::outcome::Outcome::DeliveredTls);
            a
        };
        let bind = "master.cf service smtp: -o smtp_bind_address=192.0.2.7 overridden with 127.0.0.1 (containment)";
        let report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![row("current", ok()), row("candidate", ok())],
            changes: vec![
                (
                    "current".to_owned(),
                    vec![
                        "relayhost [a]:587 -> a fake relay".to_owned(),
                        bind.to_owned(),
                    ],
                ),
                (
                    "candidate".to_owned(),
                    vec!["relayhost [a]:587 -> a fake relay".to_owned()],
                ),
            ],
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: Vec::new(),
        };
        let comparisons = compare_sides(&report);
        assert_eq!(
            comparisons[0].overridden,
            BTreeMap::from([("current".to_owned(), vec![bind.to_owned()])])
        );
        let json = serde_json::to_value(&comparisons[0]).unwrap();
        assert_eq!(json["overridden"]["current"][0], bind);
        assert!(json["overridden"].get("candidate").is_none(), "{json}");
        // The text report lists it among the changes.
        assert!(render(&report, &[]).contains(&format!("  - {bind}\n")));
    }

    fn delivered() -> Attempt {
        let mut a = Attempt::failed(String::new(), Wire::default());
        a.outcome = Some(crate::outcome::Outcome::DeliveredTls);
        a.error = None;
        a
    }

    fn trixie(mut r: Row) -> Row {
        r.image = "tlsharness/postfix:trixie".to_owned();
        r.mta_version = "3.10.13".to_owned();
        r
    }

    #[test]
    fn every_path_the_same_is_said_in_words_and_postfix_s_warnings_stand_under_their_image() {
        let enforce = "/etc/postfix/main.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\"";
        let mut report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![
                row("current", delivered()),
                row("candidate", delivered()),
                trixie(row("current", delivered())),
                trixie(row("candidate", delivered())),
            ],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: ["candidate", "current"]
                .into_iter()
                .map(|side| crate::check::PostfixWarning {
                    side: side.to_owned(),
                    image: "tlsharness/postfix:trixie".to_owned(),
                    words: enforce.to_owned(),
                })
                .collect(),
        };
        let text = render(&report, &[]);
        assert!(
            text.contains(&format!("\n{}\n", Comparison::NO_PATH_CHANGES)),
            "{text}"
        );
        let (bookworm, trixie) = text
            .split_once("tlsharness/postfix:trixie (Postfix 3.10.13)\n")
            .expect("a trixie section");
        // The current side's first, as everywhere in the report.
        let lines = format!(
            "  current: Postfix 3.10.13 warns: {enforce}\n  candidate: Postfix 3.10.13 warns: {enforce}\n"
        );
        assert!(trixie.starts_with(&lines), "{text}");
        assert!(!bookworm.contains("warns"), "{text}");
        // In the JSON, beside the comparison of that image only.
        let comparisons = compare_sides(&report);
        assert!(comparisons[0].warnings.is_empty());
        let json = serde_json::to_value(&comparisons[1]).unwrap();
        assert_eq!(json["warnings"]["candidate"][0], enforce, "{json}");
        assert!(
            serde_json::to_value(&comparisons[0])
                .unwrap()
                .get("warnings")
                .is_none()
        );
        // One path that is not `same` (here a harness failure) and the
        // words are gone.
        report.rows[3].attempt = Attempt::failed("timed out".to_owned(), Wire::default());
        assert!(!render(&report, &[]).contains("no path changes"));
        // So are they without a candidate.
        report.rows.retain(|r| r.side == "current");
        assert!(!render(&report, &[]).contains("no path changes"));
    }

    #[test]
    fn a_witness_disagreement_shows_as_unknown() {
        let mut delivered = Attempt::failed(String::new(), Wire::default());
        delivered.outcome = Some(crate::outcome::Outcome::DeliveredPlaintext);
        delivered.status = Some(crate::mta::log::Status::Sent);
        delivered.error = None;
        let report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![
                row("current", delivered),
                row("candidate", crate::check::compare::tests::disagreeing()),
            ],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: Vec::new(),
        };
        let comparisons = compare_sides(&report);
        assert_eq!(comparisons.len(), 1);
        assert_eq!(comparisons[0].verdict, Some(Verdict::Unknown));
        let text = render(&report, &[]);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("starttls-relay "))
            .expect("a row for the scenario");
        assert!(line.ends_with("UNKNOWN (harness error)"), "{text}");
        assert!(
            text.contains("0 downgrade(s), 0 bounce(s), 0 outage(s), 0 not-modelled in 1 path(s)."),
            "{text}"
        );
    }
}

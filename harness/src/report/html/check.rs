//! check's page: the verdict table, and both sides of every path.

use super::view::{CaseView, CheckPage, CheckRow, CheckTable, Page, attempt_views, category};
use crate::check::{CheckReport, Comparison, Row, compare_sides, parameter_diff};
use crate::report::matrix::attempt_cell;

fn row_view(r: &Row, key: String) -> CaseView {
    let a = &r.attempt;
    let (attempts, log) = attempt_views(std::slice::from_ref(a), &r.log);
    let mut cell = match r.not_modelled {
        Some(_) => format!("not modelled (port {})", r.port),
        None => attempt_cell(a),
    };
    if r.findings
        .contains(&crate::run::Finding::PlaintextCredentials)
        && !cell.contains("CREDENTIALS")
    {
        cell.push_str(" +CREDENTIALS");
    }
    let level = r
        .tls_policy
        .as_ref()
        .map_or(r.level.clone(), |p| p.level.clone());
    CaseView {
        title: format!("{} ({}, TLS level {})", r.name(), r.side, level),
        scenario: r.name(),
        name: r.side.clone(),
        level,
        mta: crate::check::MTA.title(),
        image: r.image.clone(),
        version: r.mta_version.clone(),
        cat: if r.not_modelled.is_some() {
            "not-modelled"
        } else {
            category(Some(a))
        },
        intercepted: a.wire.intercepted,
        cell,
        dsn: a.dsn.clone(),
        mark: if a.outcome.is_none() && r.not_modelled.is_none() {
            "error"
        } else {
            "none"
        },
        failure: r.not_modelled.clone(),
        expected: r.expected.iter().map(|e| e.to_string()).collect(),
        relay: a.relay.clone(),
        behaviours: r.behaviours.clone(),
        findings: r.findings.iter().map(|f| f.describe()).collect(),
        attempts,
        log,
        key,
    }
}

pub(super) fn check_page(report: &CheckReport, sources: &[(String, String)]) -> Page {
    let comparisons = compare_sides(report);
    let mut images: Vec<&str> = Vec::new();
    for c in &comparisons {
        if !images.contains(&c.image.as_str()) {
            images.push(&c.image);
        }
    }
    let several = images.len() > 1;
    let mut cases = Vec::new();
    let mut tables = Vec::new();
    for image in &images {
        let of_image: Vec<&Comparison> = comparisons.iter().filter(|c| c.image == *image).collect();
        let mut rows = Vec::new();
        for c in of_image.iter() {
            let key = if several {
                format!("{}@{}", c.current.name(), c.image)
            } else {
                c.current.name()
            };
            let current = cases.len();
            cases.push(row_view(&c.current, format!("current/{key}")));
            let candidate = c.candidate.as_ref().map(|r| {
                cases.push(row_view(r, format!("candidate/{key}")));
                cases.len() - 1
            });
            rows.push(CheckRow {
                key,
                scenario: c.current.name(),
                current,
                candidate,
                verdict: c.verdict.map(|v| v.to_string()),
                vclass: c.verdict.map(|v| {
                    serde_json::to_value(v)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                }),
                gates: c.verdict.is_some_and(|v| v.gates()),
                why: c.why.clone(),
            });
        }
        tables.push(CheckTable {
            image: image.to_string(),
            version: of_image
                .first()
                .map_or(String::new(), |c| c.current.mta_version.clone()),
            rows,
        });
    }
    let diff = match report.parameters.as_slice() {
        [(_, current), (_, candidate)] => parameter_diff(current, candidate)
            .into_iter()
            .chain(report.file_changes.iter().cloned())
            .collect(),
        _ => Vec::new(),
    };
    let with_candidate = comparisons.iter().any(|c| c.candidate.is_some());
    let gating = comparisons
        .iter()
        .filter(|c| c.verdict.is_some_and(|v| v.gates()))
        .count();
    let mut facts = vec![format!(
        "check {}: {} path(s) on {} image(s), {} not modelled",
        report.run_id,
        comparisons.len(),
        images.len(),
        comparisons
            .iter()
            .filter(|c| c.verdict == Some(crate::check::Verdict::NotModelled))
            .count()
    )];
    facts.extend(
        report
            .warnings
            .iter()
            .map(|w| format!("{} on {}: Postfix warns: {}", w.side, w.image, w.words)),
    );
    Page {
        kind: "check",
        title: if Comparison::none_changed(&comparisons) {
            format!("tlsharness check: {}", Comparison::NO_PATH_CHANGES)
        } else if with_candidate {
            format!(
                "tlsharness check: {gating} path(s) downgraded, bounced or stopped by the candidate"
            )
        } else {
            "tlsharness check".to_owned()
        },
        facts,
        tables: Vec::new(),
        check: Some(CheckPage {
            sources: sources.to_vec(),
            diff,
            changes: report.changes.clone(),
            with_candidate,
            images: tables,
        }),
        cases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::html::fixtures::{attempt, incident, row};
    use crate::report::html::page::SCRIPT;
    use crate::run::{Attempt, Wire};

    #[test]
    fn check_pages_pair_both_sides_of_each_path_with_their_verdict() {
        let mut deferred = attempt(Some(Outcome::Deferred), vec![incident()]);
        deferred.dsn = "4.7.4".into();
        let report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![
                row("current", deferred),
                row(
                    "candidate",
                    attempt(Some(Outcome::DeliveredPlaintext), vec![incident()]),
                ),
            ],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: Vec::new(),
        };
        let page = serde_json::to_value(check_page(&report, &[])).unwrap();
        let r = &page["check"]["images"][0]["rows"][0];
        assert_eq!(r["key"], "incident-587-strip");
        assert_eq!(r["vclass"], "downgrade");
        assert_eq!(r["verdict"], "DOWNGRADE");
        assert_eq!(r["gates"], true);
        let side = |i: &serde_json::Value| &page["cases"][i.as_u64().unwrap() as usize];
        assert_eq!(side(&r["current"])["key"], "current/incident-587-strip");
        assert_eq!(side(&r["current"])["cat"], "deferred");
        let candidate = side(&r["candidate"]);
        assert_eq!(candidate["key"], "candidate/incident-587-strip");
        assert_eq!(candidate["cat"], "plaintext");
        let steps = &candidate["attempts"][0]["conns"][0]["steps"];
        assert!(
            steps
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["x"] == "250 STARTTLS"
                    && s["d"] == "removed"
                    && s["b"] == "strip-starttls"),
            "{steps}"
        );
        assert_eq!(candidate["attempts"][0]["log"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_candidate_that_changes_no_path_says_so_in_the_title_with_postfix_s_warnings() {
        let delivered = || attempt(Some(Outcome::DeliveredTls), vec![]);
        let mut report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![row("current", delivered()), row("candidate", delivered())],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: vec![crate::check::PostfixWarning {
                side: "candidate".into(),
                image: "tlsharness/postfix:trixie".into(),
                words: "/etc/postfix/main.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\"".into(),
            }],
        };
        let page = serde_json::to_value(check_page(&report, &[])).unwrap();
        assert_eq!(
            page["title"],
            "tlsharness check: no path changes: the candidate gives the same outcome as the current configuration on every path and image."
        );
        assert_eq!(
            page["facts"][1],
            "candidate on tlsharness/postfix:trixie: Postfix warns: /etc/postfix/main.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\""
        );
        // Without a candidate there is nothing to have changed.
        report.rows.pop();
        let page = serde_json::to_value(check_page(&report, &[])).unwrap();
        assert_eq!(page["title"], "tlsharness check");
    }

    #[test]
    fn a_path_not_modelled_on_one_side_is_grey_and_does_not_gate() {
        let mut unstated = row(
            "candidate",
            Attempt::failed("not modelled".into(), Wire::default()),
        );
        unstated.port = 465;
        unstated.not_modelled = Some("the scenario does not say what happens on port 465".into());
        let report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![
                row("current", attempt(Some(Outcome::DeliveredTls), vec![])),
                unstated,
            ],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: Vec::new(),
        };
        let page = serde_json::to_value(check_page(&report, &[])).unwrap();
        let r = &page["check"]["images"][0]["rows"][0];
        assert_eq!(r["vclass"], "not-modelled");
        assert_eq!(r["verdict"], "not-modelled");
        assert_eq!(r["gates"], false);
        let candidate = &page["cases"][r["candidate"].as_u64().unwrap() as usize];
        assert_eq!(candidate["cat"], "not-modelled");
        assert_eq!(candidate["cell"], "not modelled (port 465)");
        assert_eq!(candidate["mark"], "none");
        assert!(
            page["facts"][0]
                .as_str()
                .unwrap()
                .ends_with(", 1 not modelled"),
            "{}",
            page["facts"]
        );
        // The legend knows the class.
        assert!(SCRIPT.contains("['not-modelled',"));
    }
}

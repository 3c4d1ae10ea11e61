//! The run page: one matrix per image and repetition.

use super::view::{CaseView, Page, Table, attempt_views, category};
use crate::report::matrix::attempt_cell;
use crate::run::{CaseResult, RunReport, findings};

fn case_view(c: &CaseResult, key: String) -> CaseView {
    let (attempts, log) = attempt_views(&c.attempts, &c.log);
    let cat = if c.is_error() {
        "error"
    } else {
        category(c.attempts.last())
    };
    let cells: Vec<String> = c.attempts.iter().map(attempt_cell).collect();
    CaseView {
        title: format!("{}/{}", c.scenario, c.level),
        scenario: c.scenario.clone(),
        name: c.name.clone(),
        level: c.level.as_str().to_owned(),
        mta: c.mta.title(),
        image: c.image.clone(),
        version: c.mta_version.clone(),
        cat,
        intercepted: c.attempts.iter().any(|a| a.wire.intercepted),
        cell: if cells.is_empty() {
            "error".into()
        } else {
            cells.join(" → ")
        },
        dsn: c.attempts.last().map_or(String::new(), |a| a.dsn.clone()),
        mark: if c.is_error() {
            "error"
        } else if c.is_inconclusive() {
            "inconclusive"
        } else if c.passed {
            "pass"
        } else {
            "fail"
        },
        failure: c.inconclusive.clone().or_else(|| c.failure.clone()),
        expected: c.expected.attempts.iter().map(|a| a.to_string()).collect(),
        relay: c.relay.clone(),
        behaviours: c.behaviours.clone(),
        findings: findings(&c.attempts)
            .into_iter()
            .map(|f| f.describe())
            .collect(),
        attempts,
        log,
        key,
    }
}

/// The fragment that opens a case: `scenario/level`, then `@image` when
/// the run has several, then `~K` for repetition K of several.
fn case_key(c: &CaseResult, several_images: bool, repetition: Option<usize>) -> String {
    let mut key = format!("{}/{}", c.scenario, c.level);
    if several_images {
        key.push('@');
        key.push_str(&c.image);
    }
    if let Some(k) = repetition {
        key.push_str(&format!("~{k}"));
    }
    key
}

pub(super) fn run_page(reports: &[RunReport]) -> Page {
    let several = reports.len() > 1;
    let mut tables = Vec::new();
    let mut cases = Vec::new();
    let mut facts = Vec::new();
    for (k, report) in reports.iter().enumerate() {
        let repetition = several.then_some(k + 1);
        let mut images: Vec<&str> = Vec::new();
        for c in &report.cases {
            if !images.contains(&c.image.as_str()) {
                images.push(&c.image);
            }
        }
        for image in &images {
            let of_image: Vec<&CaseResult> =
                report.cases.iter().filter(|c| c.image == *image).collect();
            let mut levels: Vec<crate::policy::Policy> = of_image.iter().map(|c| c.level).collect();
            levels.sort();
            levels.dedup();
            let mut rows: Vec<(String, String, Vec<Option<usize>>)> = Vec::new();
            for c in &of_image {
                if !rows.iter().any(|(s, _, _)| *s == c.scenario) {
                    rows.push((c.scenario.clone(), c.name.clone(), vec![None; levels.len()]));
                }
                let row = rows
                    .iter_mut()
                    .find(|(s, _, _)| *s == c.scenario)
                    .expect("row pushed");
                let col = levels
                    .iter()
                    .position(|l| *l == c.level)
                    .expect("level listed");
                row.2[col] = Some(cases.len());
                cases.push(case_view(c, case_key(c, images.len() > 1, repetition)));
            }
            let version = of_image.first().map_or("", |c| c.mta_version.as_str());
            let mut title = format!("{} {version} ({image})", report.mta.title());
            if let Some(k) = repetition {
                title = format!("repetition {k}: {title}");
            }
            tables.push(Table {
                title,
                levels: levels.iter().map(|l| l.as_str().to_owned()).collect(),
                rows,
            });
        }
        let failed = report.cases.iter().filter(|c| c.is_failure()).count();
        let passed = report.cases.iter().filter(|c| c.passed).count();
        let mut fact = format!(
            "run {}: {} cases, {} passed, {} failed, {} without a verdict, {} inconclusive; {} ready in {:.1}s, run took {:.1}s",
            report.run_id,
            report.cases.len(),
            passed,
            failed,
            report.errors(),
            report.inconclusive(),
            report.mta.title(),
            report.startup_ms as f64 / 1000.0,
            report.total_ms as f64 / 1000.0,
        );
        if let Some(k) = repetition {
            fact = format!("repetition {k}: {fact}");
        }
        facts.push(fact);
    }
    let passed = reports.iter().all(RunReport::passed);
    Page {
        kind: "run",
        title: format!(
            "tlsharness run: {}",
            if passed {
                "every case as expected"
            } else {
                "some cases not as expected"
            }
        ),
        facts,
        tables,
        check: None,
        cases,
    }
}

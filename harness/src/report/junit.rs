//! JUnit XML: one `<testsuite>` per scenario, one `<testcase>` per level;
//! under `--repeat`, that layout once per repetition. The layout follows
//! the format CI systems read (Jenkins' junit-10 schema, GitLab, GitHub
//! test reporters); `fixtures/schemas/junit.xsd` states it and the tests
//! validate against it. quick-junit (nextest's writer) does the XML.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite, XmlString,
};

use super::matrix::attempt_summary;
use crate::run::{CaseResult, RunReport};

/// Text for an element or attribute. quick-junit drops control characters
/// but keeps U+FFFE and U+FFFF, which XML 1.0 forbids as well.
fn text(s: &str) -> XmlString {
    XmlString::new(s.replace(['\u{fffe}', '\u{ffff}'], "\u{fffd}"))
}

fn case_details(c: &CaseResult) -> String {
    let mut out = String::new();
    let expected: Vec<String> = c.expected.attempts.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(out, "expected: {}", expected.join(" -> "));
    for (i, a) in c.attempts.iter().enumerate() {
        let _ = writeln!(out, "got #{}: {}", i + 1, attempt_summary(a));
        if !a.log_line.is_empty() {
            let _ = writeln!(out, "  {}: {}", c.mta, a.log_line);
        }
    }
    out
}

fn system_out(c: &CaseResult) -> String {
    let mut out = String::new();
    if !c.log.is_empty() {
        let _ = writeln!(out, "{} log:", c.mta.as_str());
        for l in &c.log {
            let _ = writeln!(out, "  {l}");
        }
    }
    if !c.transcript.is_empty() {
        out.push_str("wire transcript:\n");
        out.push_str(&c.transcript);
    }
    out
}

/// Where the report was written: every suite's timestamp and host name.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub timestamp: DateTime<FixedOffset>,
    pub hostname: String,
}

impl Stamp {
    /// The current time (UTC) and this machine's host name.
    pub fn now() -> Stamp {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        Stamp {
            timestamp: DateTime::<Utc>::from(std::time::SystemTime::now()).fixed_offset(),
            hostname,
        }
    }
}

fn testcase(c: &CaseResult, at: &str, suffix: &str) -> TestCase {
    let status = if c.passed {
        TestCaseStatus::success()
    } else if let Some(why) = &c.inconclusive {
        // JUnit has no verdict between pass and failure; a skipped case
        // is one that reached none, which is what this is.
        let mut status = TestCaseStatus::skipped();
        status
            .set_message(text(why))
            .set_type("inconclusive")
            .set_description(text(&case_details(c)));
        status
    } else {
        let (kind, ty) = if c.is_error() {
            (NonSuccessKind::Error, "harness")
        } else {
            (NonSuccessKind::Failure, "expectation")
        };
        let mut status = TestCaseStatus::non_success(kind);
        status
            .set_message(text(c.failure.as_deref().unwrap_or("failed")))
            .set_type(ty)
            .set_description(text(&case_details(c)));
        status
    };
    let mut case = TestCase::new(
        text(&format!("{}/{}{at}{suffix}", c.scenario, c.level)),
        status,
    );
    case.set_classname(text(&format!("tlsharness.{}", c.scenario)))
        .set_time(Duration::from_millis(c.duration_ms));
    if !c.passed {
        case.set_system_out(text(&system_out(c)));
    }
    case
}

/// The suites of one run: one per scenario (and image, when there are
/// several), named with `suffix`; ids count on from `first_id`.
fn suites(
    report: &RunReport,
    repetition: Option<usize>,
    first_id: usize,
    stamp: &Stamp,
) -> Vec<TestSuite> {
    let suffix = repetition.map_or(String::new(), |k| format!(" (repetition {k})"));
    let several_images = report
        .cases
        .iter()
        .any(|c| c.image != report.cases[0].image);
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for c in &report.cases {
        if !keys.contains(&(c.scenario.as_str(), c.image.as_str())) {
            keys.push((&c.scenario, &c.image));
        }
    }
    let mut out = Vec::new();
    for (n, (scenario, image)) in keys.into_iter().enumerate() {
        let cases: Vec<&CaseResult> = report
            .cases
            .iter()
            .filter(|c| c.scenario == scenario && c.image == image)
            .collect();
        let at = if several_images {
            format!("@{image}")
        } else {
            String::new()
        };
        let mut suite = TestSuite::new(text(&format!("{scenario}{at}{suffix}")));
        suite.set_timestamp(stamp.timestamp);
        // The cases of a scenario run side by side: the suite takes as long
        // as its slowest case.
        let slowest = cases.iter().map(|c| c.duration_ms).max().unwrap_or(0);
        suite.set_time(Duration::from_millis(slowest));
        for (name, value) in [
            ("id", (first_id + n).to_string()),
            ("package", "tlsharness".to_owned()),
            ("hostname", stamp.hostname.clone()),
        ] {
            suite.extra.insert(name.into(), text(&value));
        }
        let first = cases[0];
        suite.add_properties(
            [
                ("file", first.file.as_str()),
                ("description", first.name.as_str()),
                ("relay", first.relay.as_str()),
                ("mta", first.mta.as_str()),
                ("postfix_version", first.mta_version.as_str()),
                ("image", first.image.as_str()),
            ]
            .map(|(name, value)| Property::new(name, text(value))),
        );
        if let Some(k) = repetition {
            suite.add_property(Property::new("repetition", k.to_string()));
        }
        suite.add_test_cases(cases.iter().map(|c| testcase(c, &at, &suffix)));
        out.push(suite);
    }
    out
}

/// Renders one run as JUnit XML.
pub fn junit(report: &RunReport, stamp: &Stamp) -> io::Result<String> {
    junit_runs(std::slice::from_ref(report), stamp)
}

/// Renders the runs of `run --repeat` as JUnit XML: each run's suites,
/// suite and case names suffixed ` (repetition K)` when there are several
/// runs so that every case stays distinct.
pub fn junit_runs(reports: &[RunReport], stamp: &Stamp) -> io::Result<String> {
    if reports.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no run to report",
        ));
    }
    let mut out = Report::new("tlsharness");
    out.set_time(Duration::from_millis(
        reports.iter().map(|r| r.total_ms).sum(),
    ));
    let several = reports.len() > 1;
    let mut next_id = 0;
    for (k, report) in reports.iter().enumerate() {
        let suites = suites(report, several.then_some(k + 1), next_id, stamp);
        next_id += suites.len();
        out.add_test_suites(suites);
    }
    out.to_string().map_err(io::Error::other)
}

/// Writes one run's JUnit report, stamped now.
pub fn write_junit(report: &RunReport, path: &Path) -> io::Result<()> {
    write_junit_runs(std::slice::from_ref(report), path)
}

/// Writes the JUnit report of every run, stamped now.
pub fn write_junit_runs(reports: &[RunReport], path: &Path) -> io::Result<()> {
    std::fs::write(path, junit_runs(reports, &Stamp::now())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_markup_and_drops_what_xml_cannot_hold() {
        let mut suite = TestSuite::new("s");
        suite.set_system_out(text("a<b & \"c\"\u{1}\u{fffe}\n"));
        let mut report = Report::new("r");
        report.add_test_suite(suite);
        let xml = report.to_string().unwrap();
        assert!(
            xml.contains("<system-out>a&lt;b &amp; &quot;c&quot;\u{fffd}\n</system-out>"),
            "{xml}"
        );
    }

    #[test]
    fn refuses_to_report_no_run() {
        let stamp = Stamp::now();
        let e = junit_runs(&[], &stamp).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}

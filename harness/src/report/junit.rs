//! JUnit XML: one `<testsuite>` per scenario, one `<testcase>` per level.
//! The layout follows the format CI systems read (Jenkins' junit-10
//! schema, GitLab, GitHub test reporters); `fixtures/schemas/junit.xsd`
//! states it and the tests validate against it.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::matrix::attempt_summary;
use crate::run::{CaseResult, RunReport};

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows tab, LF, CR and printable characters only.
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// Whether a failed case is an error (no verdict could be reached) rather
/// than a verdict that differs from the expectation.
fn is_error(c: &CaseResult) -> bool {
    c.attempts.is_empty() || c.attempts.iter().any(|a| a.outcome.is_none())
}

fn case_details(c: &CaseResult) -> String {
    let mut out = String::new();
    let expected: Vec<String> = c.expected.attempts.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(out, "expected: {}", expected.join(" -> "));
    for (i, a) in c.attempts.iter().enumerate() {
        let _ = writeln!(out, "got #{}: {}", i + 1, attempt_summary(a));
        if !a.log_line.is_empty() {
            let _ = writeln!(out, "  postfix: {}", a.log_line);
        }
    }
    out
}

/// Renders the report as JUnit XML.
pub fn junit(report: &RunReport, timestamp: &str, hostname: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = report
        .cases
        .iter()
        .filter(|c| !c.passed && !is_error(c))
        .count();
    let errors = report
        .cases
        .iter()
        .filter(|c| !c.passed && is_error(c))
        .count();
    let _ = writeln!(
        out,
        "<testsuites name=\"tlsharness\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        report.cases.len(),
        seconds(report.total_ms)
    );
    let several_images = report
        .cases
        .iter()
        .any(|c| c.image != report.cases[0].image);
    // A suite per scenario (and image, when there are several).
    let mut suites: Vec<(String, &str, &str)> = Vec::new();
    for c in &report.cases {
        let name = if several_images {
            format!("{}@{}", c.scenario, c.image)
        } else {
            c.scenario.clone()
        };
        if !suites.iter().any(|(n, _, _)| *n == name) {
            suites.push((name, &c.scenario, &c.image));
        }
    }
    for (id, (suite, scenario, image)) in suites.iter().enumerate() {
        let scenario = *scenario;
        let cases: Vec<&CaseResult> = report
            .cases
            .iter()
            .filter(|c| c.scenario == scenario && c.image == *image)
            .collect();
        let f = cases.iter().filter(|c| !c.passed && !is_error(c)).count();
        let e = cases.iter().filter(|c| !c.passed && is_error(c)).count();
        let time: u64 = cases.iter().map(|c| c.duration_ms).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" id=\"{id}\" package=\"tlsharness\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"0\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
            escape(suite),
            cases.len(),
            seconds(time),
            escape(timestamp),
            escape(hostname),
        );
        let first = cases[0];
        out.push_str("    <properties>\n");
        for (name, value) in [
            ("file", first.file.as_str()),
            ("description", first.name.as_str()),
            ("relay", first.relay.as_str()),
            ("postfix_version", first.postfix_version.as_str()),
            ("image", first.image.as_str()),
        ] {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                escape(value)
            );
        }
        out.push_str("    </properties>\n");
        for c in &cases {
            let at = if several_images {
                format!("@{}", c.image)
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "    <testcase name=\"{}/{}{}\" classname=\"tlsharness.{}\" time=\"{}\"",
                escape(&c.scenario),
                c.level,
                escape(&at),
                escape(&c.scenario),
                seconds(c.duration_ms)
            );
            if c.passed {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            let tag = if is_error(c) { "error" } else { "failure" };
            let message = c.failure.as_deref().unwrap_or("failed");
            let _ = writeln!(
                out,
                "      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>",
                escape(message),
                if is_error(c) {
                    "harness"
                } else {
                    "expectation"
                },
                escape(&case_details(c))
            );
            let mut system_out = String::new();
            if !c.log.is_empty() {
                system_out.push_str("postfix log:\n");
                for l in &c.log {
                    let _ = writeln!(system_out, "  {l}");
                }
            }
            if !c.transcript.is_empty() {
                system_out.push_str("wire transcript:\n");
                system_out.push_str(&c.transcript);
            }
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&system_out)
            );
            out.push_str("    </testcase>\n");
        }
        out.push_str("    <system-out/>\n    <system-err/>\n  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Writes the JUnit report; the timestamp and host name are the current ones.
pub fn write_junit(report: &RunReport, path: &Path) -> io::Result<()> {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(io::Error::other)?;
    // JUnit's timestamp has no zone designator.
    let timestamp = timestamp
        .split(['Z', '+', '.'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    std::fs::write(path, junit(report, &timestamp, &hostname))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\\x01"
        );
    }
}

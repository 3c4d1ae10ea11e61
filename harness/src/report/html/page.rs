//! The page around its data, and the report's public entry points.

use std::io;
use std::path::Path;

use super::check::check_page;
use super::run::run_page;
use super::view::Page;
use crate::check::CheckReport;
use crate::run::RunReport;

const STYLE: &str = include_str!("page.css");
pub(super) const SCRIPT: &str = include_str!("page.js");

/// The page around its data. `<` is escaped inside the JSON so that no
/// string in it can end the script element.
fn page(data: &Page) -> String {
    let json = serde_json::to_string(data)
        .expect("the report's data serialises")
        .replace('<', "\\u003c");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>tlsharness report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <noscript>This report draws its matrix and ladders with its inline script; the JSON report (--json) holds the same results.</noscript>\n\
         <div id=\"errors\" hidden></div>\n<div id=\"app\"></div>\n\
         <script type=\"application/json\" id=\"data\">{json}</script>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    )
}

/// One run's HTML report.
pub fn html(report: &RunReport) -> String {
    html_runs(std::slice::from_ref(report))
}

/// The HTML report of every run of `run --repeat`: one matrix per run.
pub fn html_runs(reports: &[RunReport]) -> String {
    page(&run_page(reports))
}

/// check's HTML report: the verdict table, and both sides' ladders of
/// every path. `sources` names each side's configuration, as the terminal
/// report does.
pub fn check_html(report: &CheckReport, sources: &[(String, String)]) -> String {
    page(&check_page(report, sources))
}

/// Writes one run's HTML report.
pub fn write_html(report: &RunReport, path: &Path) -> io::Result<()> {
    write_html_runs(std::slice::from_ref(report), path)
}

/// Writes the HTML report of every run of `run --repeat`.
pub fn write_html_runs(reports: &[RunReport], path: &Path) -> io::Result<()> {
    if reports.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no run to report",
        ));
    }
    std::fs::write(path, html_runs(reports))
}

/// Writes check's HTML report.
pub fn write_check_html(
    report: &CheckReport,
    sources: &[(String, String)],
    path: &Path,
) -> io::Result<()> {
    std::fs::write(path, check_html(report, sources))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::html::fixtures::{attempt, incident, row};

    #[test]
    fn the_page_fetches_nothing_and_its_data_cannot_end_its_script() {
        let mut a = attempt(Some(Outcome::DeliveredPlaintext), vec![incident()]);
        a.log = vec!["</script><script>alert(1)</script>".into()];
        let report = CheckReport {
            run_id: "r".to_owned(),
            rows: vec![row("current", a)],
            changes: Vec::new(),
            parameters: Vec::new(),
            file_changes: Vec::new(),
            warnings: Vec::new(),
        };
        let html = check_html(&report, &[]);
        assert_eq!(html.matches("</script>").count(), 2, "{html}");
        assert!(html.contains("\\u003c/script>\\u003cscript>alert(1)"));
        // Nothing in the page's own style or script names anything to load;
        // its policy would refuse it anyway.
        for needle in ["url(", "@import", "http:", "https:", "//"] {
            assert!(!STYLE.contains(needle), "style has {needle}");
        }
        for needle in [
            "http:",
            "https:",
            "fetch(",
            "XMLHttpRequest",
            "import(",
            "src",
        ] {
            assert!(!SCRIPT.contains(needle), "script has {needle}");
        }
        assert!(html.contains("default-src 'none'"));
    }
}

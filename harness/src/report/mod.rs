//! Reports: the terminal matrix and progress, failure details, JSON
//! records, JUnit XML, the HTML report and failure artifacts. All read the same run report;
//! the `_runs` writers take every run of `run --repeat`, and the single-run
//! writers are those with one run.

mod artifacts;
mod flakes;
mod html;
mod json;
mod junit;
mod matrix;
mod progress;

pub use artifacts::{write_artifacts, write_artifacts_runs};
pub use flakes::{Flake, flake_report, flakes};
pub use html::{check_html, html, html_runs, write_check_html, write_html, write_html_runs};
pub use json::{CaseRecord, JsonReport, RunRecord, write_json, write_json_runs};
pub use junit::{Stamp, junit, junit_runs, write_junit, write_junit_runs};
pub use matrix::{attempt_cell, attempt_summary, cell, failure_details, matrix};
pub use progress::{Progress, Style};

//! Reports: the terminal matrix and progress, failure details, JSON
//! records, JUnit XML and failure artifacts. All read the same run report.

mod artifacts;
mod flakes;
mod json;
mod junit;
mod matrix;
mod progress;

pub use artifacts::write_artifacts;
pub use flakes::{Flake, flake_report, flakes};
pub use json::{CaseRecord, JsonReport, write_json};
pub use junit::{junit, write_junit};
pub use matrix::{attempt_cell, attempt_summary, cell, failure_details, matrix};
pub use progress::{Progress, Style};

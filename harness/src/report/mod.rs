//! Reports: the terminal matrix, failure details and JSON records.

mod json;
mod matrix;

pub use json::{CaseRecord, JsonReport, write_json};
pub use matrix::{cell, failure_details, matrix};

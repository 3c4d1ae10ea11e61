//! The HTML report: one self-contained page (inline style and script,
//! nothing fetched; a Content-Security-Policy says so to the browser) with
//! the matrix, or check's verdict table, and a ladder diagram of every
//! attempt of every case.
//!
//! The page carries its data as one JSON blob and its script draws a
//! ladder when its case is opened (a cell clicked, or the address's
//! `#scenario/level`): drawn in advance, the ladders of the built-in suite
//! would be several times the size of the data they are drawn from. What a
//! ladder shows is decided here, in [`ladder`]; the script only lays it out.

mod check;
#[cfg(test)]
mod fixtures;
mod ladder;
mod page;
mod run;
mod view;

pub use page::{check_html, html, html_runs, write_check_html, write_html, write_html_runs};

//! `tlsharness explain LOGFILE`: reads Postfix log lines, names the path
//! conditions their failures point to, flags deliveries that crossed in
//! plaintext, and says which built-in scenarios reproduce each, and how to
//! confirm from inside the affected network.
//!
//! A delivery is judged by its status line and the lines the same smtp
//! process logged before it for that delivery (the "context"): Postfix's
//! status reasons are terse ("Server certificate not verified"), the line
//! that says why (a self-signed certificate, a masked greeting) comes
//! before it.

mod confirm;
mod findings;
#[cfg(test)]
mod fixtures;
mod judge;
mod render;
mod rules;

pub use confirm::confirm_commands;
pub use findings::{ExplainReport, Explanation, Finding, Unrecognised, explain};
pub use render::render;

//! Running scenarios: plan the cases, execute them against one MTA,
//! classify what happened and compare it with what was expected.

mod classify;
mod execute;
mod head_start;
mod observe;
mod plan;
mod rig;
mod timing;

pub use classify::{Attempt, Finding, Wire, classify, compare, findings};
pub use execute::{CaseResult, Observer, RunError, RunEvent, RunOptions, RunReport, run};
pub use plan::{Case, Partition, Selection, check_patterns, glob, plan};
pub use rig::fingerprint;

pub(crate) use observe::{Delivery, observe};
pub(crate) use rig::{Placement, Workshop};

//! The binary's exit codes, and the one mapping from every error type to
//! them. Setup failures differ from failed expectations so that CI can
//! tell "the relay config regressed" from "Docker is down".

/// Every case ran and met its expectation.
pub const SUCCESS: i32 = 0;
/// At least one case did not meet its expectation.
pub const EXPECTATION_FAILED: i32 = 1;
/// A scenario file, a config file or the command line is invalid; nothing was started.
pub const BAD_INPUT: i32 = 2;
/// The environment is not usable: no Docker daemon, no image, no loopback.
pub const ENVIRONMENT: i32 = 3;
/// The harness failed mid-run (a bug), or a case got no verdict: its
/// witnesses disagreed or Postfix logged no status in time. (A Postfix
/// that stopped mid-run is an environment problem, 3.)
pub const HARNESS_ERROR: i32 = 4;
/// `check`: the candidate configuration downgrades mail, returns it to its
/// sender (bounces) or stops it on some path.
pub const REGRESSION: i32 = 5;
/// No case failed, but some were inconclusive: the MTA's timing was not
/// what their expectations assume (a machine too busy for the scenario's
/// backoff), on the case's run and its run again. Neither a pass nor a
/// failure.
pub const INCONCLUSIVE: i32 = 6;
/// `triage`: the mail log or the Postfix configuration could not be read
/// (missing, unreadable, no main.cf, `postconf` failed); nothing was probed.
pub const UNREADABLE: i32 = 7;
/// `triage`: the path was probed and diagnosed, the current configuration
/// is not predicted to deliver over TLS on it, and no standard candidate is
/// predicted to be an upgrade: the fix needs a person (see the output).
pub const NO_SAFE_FIX: i32 = 8;
/// Interrupted by SIGINT or SIGTERM; everything was cleaned up.
pub const INTERRUPTED: i32 = 130;

/// An error that knows which exit code it means. The binary maps every
/// error through this one trait, so a kind of failure exits the same way
/// from every command.
pub trait Code {
    fn exit_code(&self) -> i32;
}

impl Code for crate::run::RunError {
    fn exit_code(&self) -> i32 {
        use crate::run::RunError;
        match self {
            RunError::Interrupted => INTERRUPTED,
            RunError::NothingToRun(_) => BAD_INPUT,
            e if e.is_environment() => ENVIRONMENT,
            _ => HARNESS_ERROR,
        }
    }
}

impl Code for crate::check::CheckError {
    fn exit_code(&self) -> i32 {
        match self {
            crate::check::CheckError::Interrupted => INTERRUPTED,
            e if e.is_bad_input() => BAD_INPUT,
            e if e.is_environment() => ENVIRONMENT,
            _ => HARNESS_ERROR,
        }
    }
}

impl Code for crate::bench::BenchError {
    fn exit_code(&self) -> i32 {
        use crate::bench::BenchError;
        match self {
            BenchError::Load(e) => e.exit_code(),
            BenchError::NoTemplates => BAD_INPUT,
            BenchError::Run(e) => e.exit_code(),
        }
    }
}

impl Code for crate::scenario::LoadErrors {
    fn exit_code(&self) -> i32 {
        BAD_INPUT
    }
}

impl Code for crate::probe::ProbeError {
    /// The relay cannot be resolved or reached, or does not speak SMTP.
    fn exit_code(&self) -> i32 {
        ENVIRONMENT
    }
}

impl Code for crate::probe::ScenarioError {
    fn exit_code(&self) -> i32 {
        match self {
            crate::probe::ScenarioError::Hostname(_) => BAD_INPUT,
            crate::probe::ScenarioError::NothingAnswered { .. } => ENVIRONMENT,
            _ => HARNESS_ERROR,
        }
    }
}

//! The binary's exit codes, and the trait through which every error names
//! its code (each implements it beside its own definition). Setup failures
//! differ from failed expectations so that CI can tell "the relay config
//! regressed" from "Docker is down".

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

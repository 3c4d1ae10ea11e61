//! The binary's exit codes. Setup failures differ from failed expectations
//! so that CI can tell "the relay config regressed" from "Docker is down".

/// Every case ran and met its expectation.
pub const SUCCESS: i32 = 0;
/// At least one case did not meet its expectation.
pub const EXPECTATION_FAILED: i32 = 1;
/// A scenario file, a config file or the command line is invalid; nothing was started.
pub const BAD_INPUT: i32 = 2;
/// The environment is not usable: no Docker daemon, no image, no loopback.
pub const ENVIRONMENT: i32 = 3;
/// The harness itself failed mid-run (a bug, or Postfix stopped).
pub const HARNESS_ERROR: i32 = 4;
/// `check`: the candidate configuration downgrades or stops mail on some path.
pub const REGRESSION: i32 = 5;
/// Interrupted by SIGINT or SIGTERM; everything was cleaned up.
pub const INTERRUPTED: i32 = 130;

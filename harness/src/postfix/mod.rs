//! The MTA under test: its image, its container, its configuration and
//! its log.

pub mod config;
pub mod containment;
pub mod docker;
pub mod image;
mod instance;
pub mod log;

pub use instance::{DeliveryEvent, Instance, Ran, StartOptions, run_once};

/// Failures around Postfix and Docker.
#[derive(Debug, thiserror::Error)]
pub enum PostfixError {
    #[error(
        "no Docker daemon answers at {endpoint} ({detail}); run `ci/setup-docker.sh` to install and start one, or set DOCKER_HOST"
    )]
    NoDocker { endpoint: String, detail: String },
    #[error(
        "the Postfix image {image} is not present and nothing can be pulled; build it with `tlsharness image build{suite_arg}`"
    )]
    ImageMissing { image: String, suite_arg: String },
    #[error("failed to build the Postfix image: {0}")]
    Image(String),
    #[error("{0}")]
    Docker(String),
    #[error("failed to start the Postfix container: {0}")]
    Start(String),
    #[error("Postfix did not start within {secs}s; its last log lines:\n{log}")]
    NotReady { secs: u64, log: String },
    #[error("Postfix refused to start: {why}\n{log}")]
    Refused { why: String, log: String },
    #[error("failed to inject a message: {0}")]
    Inject(String),
    #[error("failed to run a command in the Postfix container: {0}")]
    Exec(String),
    #[error("{0}")]
    RunDir(String),
}

impl PostfixError {
    /// Whether this is a problem of the machine rather than of the run.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            PostfixError::NoDocker { .. }
                | PostfixError::ImageMissing { .. }
                | PostfixError::Image(_)
                | PostfixError::Docker(_)
                | PostfixError::Start(_)
                | PostfixError::RunDir(_)
        )
    }
}

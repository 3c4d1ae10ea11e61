//! Why a probe produced no observation.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// The target could not be probed; nothing can be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("failed to resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error(
        "connection refused by {addr}: nothing listens on that port, or a firewall rejects the connection"
    )]
    Refused { addr: SocketAddr },
    #[error(
        "timed out connecting to {addr} after {}s (--timeout sets the limit): the path drops the connection silently (a firewall), or the host is down",
        after.as_secs_f64()
    )]
    ConnectTimeout { addr: SocketAddr, after: Duration },
    #[error("failed to connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error(
        "timed out {step} after {}s (--timeout sets the limit): a firewall may be dropping the packets, or the server is stuck",
        after.as_secs_f64()
    )]
    Timeout { step: String, after: Duration },
    #[error("the TLS handshake with {addr} (implicit TLS, before any SMTP) failed: {detail}")]
    ImplicitTls { addr: SocketAddr, detail: String },
    #[error("{addr} does not speak SMTP: {detail}")]
    NotSmtp { addr: SocketAddr, detail: String },
    #[error("{addr} refused the session: its greeting is `{reply}`")]
    SessionRefused { addr: SocketAddr, reply: String },
    #[error("the server closed the connection {step}")]
    Closed { step: String },
    #[error("the server reset the connection {step}")]
    Reset { step: String },
    #[error("i/o error {step}: {source}")]
    Io { step: String, source: io::Error },
    #[error("the server's reply {step} is not usable: {detail}")]
    Protocol { step: String, detail: String },
}

impl crate::exit::Code for ProbeError {
    /// The relay cannot be resolved or reached, or does not speak SMTP.
    fn exit_code(&self) -> i32 {
        crate::exit::ENVIRONMENT
    }
}

impl ProbeError {
    /// The port accepted the connection but said nothing: perhaps it
    /// waits for a TLS ClientHello (implicit TLS).
    pub fn is_silent_greeting(&self) -> bool {
        matches!(self, ProbeError::Timeout { step, .. } if step == "waiting for the greeting")
    }
}

//! What a probe saw on the path, step by step.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use time::OffsetDateTime;

use super::certs::ChainSummary;
use super::target::Target;
use crate::tls::HandshakeBreak;
use crate::upstream::RecordedReply;

/// One probe of one relay.
#[derive(Clone, Debug)]
pub struct Observation {
    pub target: Target,
    /// The address the probe reached.
    pub addr: SocketAddr,
    /// The name sent as SNI and checked against the certificate.
    pub server_name: String,
    pub ehlo_name: String,
    pub at: OffsetDateTime,
    /// The deadline of each step.
    pub step_timeout: Duration,
    /// Set when the port speaks TLS from the first byte (RFC 8314, as on
    /// 465): the session's TLS facts. Then `greeting` and `ehlo` were said
    /// inside TLS, `starttls` is `NotOffered` (never sent inside TLS) and
    /// the TLS EHLO reply is `ehlo`.
    pub implicit_tls: Option<TlsObservation>,
    pub greeting: RecordedReply,
    pub ehlo: RecordedReply,
    pub starttls: Starttls,
    /// Bytes that came right behind the 220 answer to STARTTLS, before the
    /// handshake (printable), set aside as Postfix sets them aside.
    pub behind_starttls_reply: Option<String>,
    /// The conversation: `C:` sent, `S:` received, `--` events.
    pub transcript: Vec<String>,
}

/// What became of STARTTLS.
#[derive(Clone, Debug)]
pub enum Starttls {
    /// The EHLO reply did not list it; the probe did not send it.
    NotOffered,
    /// Answered with a reply that is not 2xx.
    Refused(RecordedReply),
    /// Not answered at all.
    NoReply(Lost),
    /// Accepted, then the handshake failed.
    HandshakeFailed {
        reply: RecordedReply,
        failure: HandshakeFailure,
    },
    /// Accepted, and a TLS session began.
    Established {
        reply: RecordedReply,
        tls: TlsObservation,
    },
}

/// How a command went unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    Closed,
    Reset,
    /// The connection stayed open and silent past the deadline.
    Silent,
}

/// How a TLS handshake failed, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeFailure {
    /// How the server side broke it, read from the client's side: a TLS
    /// alert (or TLS the client cannot speak) reads as `Alert`, no answer
    /// within the deadline as `Silence`.
    pub kind: HandshakeBreak,
    /// The TLS library's words.
    pub detail: String,
}

/// A TLS session the probe began.
#[derive(Clone, Debug)]
pub struct TlsObservation {
    /// e.g. `TLSv1.3`.
    pub version: String,
    pub cipher: String,
    pub chain: ChainSummary,
    /// The EHLO reply inside TLS, or what happened instead.
    pub ehlo: Result<RecordedReply, String>,
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reached = if self.target.to_string() == self.addr.to_string() {
            String::new()
        } else {
            format!(" ({})", self.addr)
        };
        writeln!(
            f,
            "probed {}{reached} as {}, checking certificates for {}",
            self.target, self.ehlo_name, self.server_name
        )?;
        if let Some(tls) = &self.implicit_tls {
            writeln!(
                f,
                "TLS:       implicit (from the first byte): {}, {}",
                tls.version, tls.cipher
            )?;
            writeln!(f, "greeting:  {} (inside TLS)", self.greeting)?;
            writeln!(f, "EHLO:      {} (inside TLS)", self.ehlo)?;
            return chain_lines(f, tls);
        }
        writeln!(f, "greeting:  {}", self.greeting)?;
        writeln!(f, "EHLO:      {}", self.ehlo)?;
        let step = self.step_timeout.as_secs_f64();
        let starttls = match &self.starttls {
            Starttls::NotOffered => "not offered".to_owned(),
            Starttls::Refused(r) => format!("refused: {r}"),
            Starttls::NoReply(Lost::Closed) => "no reply: the connection was closed".into(),
            Starttls::NoReply(Lost::Reset) => "no reply: the connection was reset".into(),
            Starttls::NoReply(Lost::Silent) => format!("no reply within {step}s"),
            Starttls::HandshakeFailed { reply, failure } => {
                format!("{reply}, then the handshake failed: {}", failure.detail)
            }
            Starttls::Established { reply, .. } => format!("{reply}"),
        };
        writeln!(f, "STARTTLS:  {starttls}")?;
        if let Some(early) = &self.behind_starttls_reply {
            writeln!(f, "behind it: {early} (discarded before the handshake)")?;
        }
        if let Starttls::Established { tls, .. } = &self.starttls {
            writeln!(f, "TLS:       {}, {}", tls.version, tls.cipher)?;
            match &tls.ehlo {
                Ok(r) => writeln!(f, "TLS EHLO:  {r}")?,
                Err(e) => writeln!(f, "TLS EHLO:  {e}")?,
            }
            chain_lines(f, tls)?;
        }
        Ok(())
    }
}

fn chain_lines(f: &mut fmt::Formatter<'_>, tls: &TlsObservation) -> fmt::Result {
    for (i, line) in tls.chain.to_string().lines().enumerate() {
        let label = if i == 0 { "chain:" } else { "" };
        writeln!(f, "{label:<11}{line}")?;
    }
    Ok(())
}

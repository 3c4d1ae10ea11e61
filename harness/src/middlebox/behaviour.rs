//! The contract every middlebox behaviour implements. Behaviours are small
//! and composable (in the manner of Toxiproxy's toxics): replies pass
//! through each in order; for commands and for the TLS hand-over, the
//! first behaviour that does not pass wins (as turmoil's fault rules do).

use std::sync::Arc;
use std::time::Duration;

use crate::smtp::Reply;
use crate::tls::HandshakeBreak;

/// What a behaviour does with a client command.
#[derive(Debug)]
pub enum CommandVerdict {
    /// Forward it to the relay.
    Pass,
    /// Do not forward; answer the client with this reply.
    Answer(Reply),
    /// Do not forward; end the connection.
    Close(CloseKind),
}

/// How the middlebox ends a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// An orderly close (FIN).
    Fin,
    /// An abortive close (RST).
    Reset,
}

/// The middlebox's own end of an intercepted TLS session.
#[derive(Clone, Debug)]
pub struct Interception {
    /// What Postfix is shown: the middlebox's certificate.
    pub acceptor: Arc<rustls::ServerConfig>,
    /// Whether the middlebox speaks TLS to the relay (it sent STARTTLS on).
    pub upstream_tls: bool,
}

/// What happens when both ends are about to start TLS.
#[derive(Debug)]
pub enum TlsVerdict {
    /// Let the handshake through untouched.
    Pass,
    /// Break the handshake.
    Break(HandshakeBreak),
    /// Terminate TLS in the middlebox and read the dialogue.
    Intercept(Interception),
}

/// The SMTP context of a reply.
#[derive(Clone, Copy, Debug)]
pub struct ReplyContext<'a> {
    /// The verb of the command this reply answers; `None` for the greeting.
    pub answering: Option<&'a str>,
}

/// Byte-level shaping of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Direction {
    /// Added before every write.
    pub delay: Duration,
    /// Forward this many bytes, then hold everything after them.
    pub stall_after: Option<u64>,
}

/// Byte-level shaping of a connection, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shaping {
    /// What the middlebox writes to the client (Postfix).
    pub to_client: Direction,
    /// What the middlebox writes to the server (the relay).
    pub to_server: Direction,
}

/// One named way of tampering with the SMTP dialogue.
pub trait Behaviour: Send {
    /// The name used in scenario files and transcripts.
    fn name(&self) -> &'static str;

    /// May rewrite a relay reply on its way to Postfix. Returns a note for
    /// the transcript when it changed something.
    fn on_reply(&mut self, _ctx: ReplyContext<'_>, _reply: &mut Reply) -> Option<String> {
        None
    }

    /// Bytes to send to Postfix right behind a reply, in the same write.
    fn after_reply(&mut self, _ctx: ReplyContext<'_>, _reply: &Reply) -> Option<Vec<u8>> {
        None
    }

    /// Decides the fate of a client command.
    fn on_command(&mut self, _verb: &str, _line: &[u8]) -> CommandVerdict {
        CommandVerdict::Pass
    }

    /// Bytes to send to the relay right behind a forwarded command, in the
    /// same write.
    fn after_command(&mut self, _verb: &str) -> Option<Vec<u8>> {
        None
    }

    /// Decides what happens to the TLS handshake once STARTTLS succeeded.
    fn on_tls(&mut self) -> TlsVerdict {
        TlsVerdict::Pass
    }

    /// Adds this behaviour's byte-level shaping.
    fn shape(&self, _shaping: &mut Shaping) {}
}

//! The contract every middlebox behaviour implements. Behaviours are small
//! and composable: replies pass through each in order; for commands and
//! for the TLS hand-over, the first behaviour that does not pass wins.

use crate::smtp::Reply;

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

/// What happens when both ends are about to start TLS.
#[derive(Debug)]
pub enum TlsVerdict {
    /// Let the handshake through untouched.
    Pass,
}

/// The SMTP context of a reply.
#[derive(Clone, Copy, Debug)]
pub struct ReplyContext<'a> {
    /// The verb of the command this reply answers; `None` for the greeting.
    pub answering: Option<&'a str>,
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

    /// Decides the fate of a client command.
    fn on_command(&mut self, _verb: &str, _line: &[u8]) -> CommandVerdict {
        CommandVerdict::Pass
    }

    /// Decides what happens to the TLS handshake after STARTTLS succeeded.
    fn on_tls(&mut self) -> TlsVerdict {
        TlsVerdict::Pass
    }
}

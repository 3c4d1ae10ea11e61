//! The wire transcript of one connection through the middlebox: what the
//! relay sent, what Postfix received, and where TLS began.

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::smtp::printable;

/// Who wrote a transcript line, and whether it reached the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dir {
    /// Postfix to relay, forwarded unchanged (`C:`).
    Client,
    /// Postfix sent it; the middlebox kept it from the relay (`C~`).
    ClientHeld,
    /// Relay to Postfix, forwarded unchanged (`S:`).
    Server,
    /// The relay sent it; Postfix never saw it in this form (`S~`).
    ServerHeld,
    /// The middlebox sent it to Postfix (`M:`), e.g. a rewritten reply.
    ToClient,
    /// The middlebox sent it to the relay (`M>`).
    ToServer,
    /// An event, such as the start of TLS (`--`).
    Note,
}

impl Dir {
    fn marker(self) -> &'static str {
        match self {
            Dir::Client => "C:",
            Dir::ClientHeld => "C~",
            Dir::Server => "S:",
            Dir::ServerHeld => "S~",
            Dir::ToClient => "M:",
            Dir::ToServer => "M>",
            Dir::Note => "--",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the connection was accepted.
    pub at_ms: u64,
    pub dir: Dir,
    pub text: String,
    /// Which behaviour acted, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How the notes that mark a change in a connection begin: readers of a
/// transcript (the HTML report's ladders) find those changes by them.
pub const TLS_BEGAN: &str = "TLS began: ";
pub const TLS_ENDED: &str = "TLS ended: ";
pub const INTERCEPTED: &str = "intercept-tls: TLS with the MTA ";
pub const CONTENT: &str = "message content: ";
pub const CLOSED: &str = "closed: ";

/// The most entries one transcript keeps; later ones are counted only.
const MAX_ENTRIES: usize = 2000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Transcript {
    pub entries: Vec<Entry>,
    pub dropped: usize,
    #[serde(skip)]
    start: Option<Instant>,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new()
    }
}

impl Transcript {
    pub fn new() -> Self {
        Transcript {
            entries: Vec::new(),
            dropped: 0,
            start: Some(Instant::now()),
        }
    }

    fn elapsed(&self) -> Duration {
        self.start.map(|s| s.elapsed()).unwrap_or_default()
    }

    pub fn push(&mut self, dir: Dir, bytes: &[u8], note: Option<String>) {
        if self.entries.len() >= MAX_ENTRIES {
            self.dropped += 1;
            return;
        }
        let at_ms = self.elapsed().as_millis() as u64;
        self.entries.push(Entry {
            at_ms,
            dir,
            text: printable(bytes),
            note,
        });
    }

    /// One entry per line of `bytes`.
    pub fn push_lines(&mut self, dir: Dir, bytes: &[u8], note: Option<&str>) {
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            self.push(dir, line, note.map(str::to_owned));
        }
    }

    pub fn note(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        self.push(Dir::Note, text.as_bytes(), None);
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            write!(
                f,
                "{:>4}.{:03} {} {}",
                e.at_ms / 1000,
                e.at_ms % 1000,
                e.dir.marker(),
                e.text
            )?;
            if let Some(note) = &e.note {
                write!(f, "   [{note}]")?;
            }
            writeln!(f)?;
        }
        if self.dropped > 0 {
            writeln!(f, "... {} more entries not kept", self.dropped)?;
        }
        Ok(())
    }
}

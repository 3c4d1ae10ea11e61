//! What the harness understands of an MTA's log, whichever MTA wrote it:
//! typed delivery events (status, dsn, reason, TLS summary with trust).
//! Each MTA's module parses its own log into these.

use std::fmt;

use serde::Serialize;

use crate::outcome::Trust;

/// One line of the MTA's log, with what the harness understood of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLine {
    pub raw: String,
    /// The program that wrote it: `postfix/smtp`, `exim`, ...
    pub program: String,
    /// The writing process (0 when the line names none).
    pub pid: u32,
    /// The text after the line's header.
    pub message: String,
    /// The message (queue id) the line is about, if any.
    #[serde(skip)]
    pub queue_id: Option<String>,
    #[serde(skip)]
    pub event: LogEvent,
}

impl LogLine {
    /// A line the MTA's parser did not recognise.
    pub fn other(raw: &str) -> LogLine {
        LogLine {
            raw: raw.to_owned(),
            program: String::new(),
            pid: 0,
            message: raw.to_owned(),
            queue_id: None,
            event: LogEvent::Other,
        }
    }

    /// The queue id this line is about, if any.
    pub fn queue_id(&self) -> Option<&str> {
        self.queue_id.as_deref()
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub enum LogEvent {
    /// The status of one recipient after one delivery attempt.
    Delivery(Delivery),
    /// A TLS session the MTA's client established, logged on its own line
    /// (Postfix); an MTA that logs it on the status line puts it in
    /// [`Delivery::tls`] instead.
    Tls(TlsSession),
    /// The MTA is up and has said which version it is.
    Started { version: String },
    /// The MTA refused to go on.
    Fatal(String),
    /// The client gave up on TLS with a host and delivers to it in clear
    /// on a new connection (Exim's `delivering unencrypted to H=...
    /// (not in hosts_require_tls)`, after a failed handshake).
    RetriedInClear(String),
    /// The MTA took the message (this line's queue id) up for a delivery
    /// attempt (Postfix: qmgr's `(queue active)` line). An MTA whose retry
    /// request can do nothing while the message is busy logs this, so the
    /// request can be confirmed, and repeated until it takes.
    Active,
    #[default]
    Other,
}

/// What became of a recipient at one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Sent,
    Deferred,
    Bounced,
    /// Postfix: returned because it stayed queued too long.
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Deferred => "deferred",
            Status::Bounced => "bounced",
            Status::Expired => "expired",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of one recipient after one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub queue_id: String,
    pub to: String,
    /// The host that took (or failed) the attempt: `name[addr]:port`.
    pub relay: String,
    /// The enhanced status code, where the MTA names one (Exim's log
    /// gives one only when the server's reply carried it).
    pub dsn: String,
    pub status: Status,
    /// The MTA's own words about the outcome.
    pub reason: String,
    /// The TLS session of the delivery, when the MTA logs it on the
    /// status line (Exim's `X=` and `CV=`).
    pub tls: Option<TlsSession>,
    /// How long the message had waited in the queue when this attempt
    /// began, in milliseconds, as the MTA logs it (Postfix: the first field
    /// of `delays=`, arrival to entering the active queue, which it rounds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
}

/// One TLS session, as the MTA's client logged it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsSession {
    pub trust: Trust,
    pub host: String,
    pub addr: String,
    pub port: u16,
    /// e.g. `TLSv1.3`
    pub protocol: String,
    pub cipher: String,
}

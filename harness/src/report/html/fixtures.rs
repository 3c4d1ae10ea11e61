//! Reports and connections the page's tests build from.

use crate::check::Row;
use crate::middlebox::{ConnectionRecord, Dir, Transcript};
use crate::outcome::Outcome;
use crate::run::{Attempt, Wire};

/// A connection whose transcript is `lines`: (direction, text, note).
pub(super) fn record(lines: &[(Dir, &str, Option<&str>)]) -> ConnectionRecord {
    let mut transcript = Transcript::new();
    for (dir, text, note) in lines {
        transcript.push(*dir, text.as_bytes(), note.map(str::to_owned));
    }
    ConnectionRecord {
        transcript,
        ..Default::default()
    }
}

const STRIPPED: &str = "strip-starttls: removed STARTTLS from the EHLO reply";

/// The incident: the relay's STARTTLS removed, the message in plaintext.
pub(super) fn incident() -> ConnectionRecord {
    use Dir::*;
    record(&[
        (
            Note,
            "connection from a to b; behaviours: strip-starttls",
            None,
        ),
        (Server, "220 smtp.sendgrid.net ESMTP", None),
        (Client, "EHLO postfix.tlsharness.test", None),
        (
            ServerHeld,
            "250-server offers extensions:",
            Some("as the relay sent it"),
        ),
        (ServerHeld, "250-8BITMIME", Some("as the relay sent it")),
        (ServerHeld, "250 STARTTLS", Some("as the relay sent it")),
        (ToClient, "250-server offers extensions:", Some(STRIPPED)),
        (ToClient, "250 8BITMIME", Some(STRIPPED)),
        (Client, "MAIL FROM:<a@b>", None),
        (Server, "250 OK", None),
        (Client, "DATA", None),
        (Server, "354 go ahead", None),
        (Client, "Subject: x", None),
        (Client, ".", None),
        (Server, "250 2.0.0 Ok", None),
        (Client, "QUIT", None),
    ])
}

pub(super) fn attempt(outcome: Option<Outcome>, connections: Vec<ConnectionRecord>) -> Attempt {
    let mut a = Attempt::failed(String::new(), Wire::default());
    a.outcome = outcome;
    a.error = None;
    a.dsn = "2.0.0".into();
    a.connections = connections;
    a.log = vec!["postfix/smtp[1]: ABC: to=<x>, status=sent (250 ok)".into()];
    a
}

pub(super) fn row(side: &str, attempt: Attempt) -> Row {
    Row {
        mail: None,
        route: "smtp:[smtp.sendgrid.net]:587".to_owned(),
        scenario: "incident-587-strip".to_owned(),
        side: side.to_owned(),
        image: "tlsharness/postfix:bookworm".to_owned(),
        mta_version: "3.7.11".to_owned(),
        level: "may".to_owned(),
        tls_policy: None,
        dropped_settings: Vec::new(),
        refused: None,
        port: 587,
        not_modelled: None,
        findings: Vec::new(),
        attempt,
        expected: None,
        log: Vec::new(),
        transcript: String::new(),
        behaviours: vec!["strip-starttls".to_owned()],
    }
}

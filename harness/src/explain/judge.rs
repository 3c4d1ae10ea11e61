//! Each status line judged: which rule explains it, given the lines the
//! same process logged before it for the same delivery.

use std::collections::BTreeMap;

use super::rules::{RULES, Rule, Status};
use crate::mta::log::{Delivery, LogEvent, LogLine};

/// What became of one status line.
#[derive(Clone, Copy)]
pub(super) enum Verdict {
    /// Sent by something other than the smtp client (local, lmtp, ...).
    Ignored,
    SentTls,
    Explained(&'static Rule),
    Unrecognised,
}

/// A verdict for each status line, by its index in `lines`.
pub(super) fn judge(lines: &[LogLine]) -> Vec<(usize, Verdict)> {
    // Each process's lines, so finding the context does not rescan the log.
    let mut by_process: BTreeMap<(&str, u32), Vec<usize>> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        by_process
            .entry((line.program.as_str(), line.pid))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let LogEvent::Delivery(d) = &line.event else {
            continue;
        };
        let own = &by_process[&(line.program.as_str(), line.pid)];
        let context = context(lines, own, i, d);
        let status = match d.status.as_str() {
            "sent" if !is_smtp(line) || d.relay == "none" => {
                out.push((i, Verdict::Ignored));
                continue;
            }
            "sent" if has_tls_session(&context, &d.relay) => {
                out.push((i, Verdict::SentTls));
                continue;
            }
            "sent" => Status::SentPlaintext,
            _ => Status::Failed,
        };
        let verdict = match RULES.iter().find(|r| r.applies(status, d, &context)) {
            Some(rule) => Verdict::Explained(rule),
            None => Verdict::Unrecognised,
        };
        out.push((i, verdict));
    }
    out
}

fn is_smtp(line: &LogLine) -> bool {
    line.program.ends_with("/smtp")
}

/// The lines the same process logged for this delivery, newest first:
/// back to the previous delivery of another message. Status lines of the
/// same message just before (its other recipients) share the session.
fn context<'a>(lines: &'a [LogLine], own: &[usize], at: usize, d: &Delivery) -> Vec<&'a LogLine> {
    let mut out = Vec::new();
    let mut recipients_of_this_session = true;
    for &j in own.iter().rev().skip_while(|&&j| j >= at) {
        let line = &lines[j];
        if let LogEvent::Delivery(other) = &line.event {
            if other.queue_id == d.queue_id && recipients_of_this_session {
                continue;
            }
            break;
        }
        recipients_of_this_session = false;
        if queue_id(line).is_some_and(|q| q != d.queue_id) {
            break;
        }
        out.push(line);
    }
    out
}

/// The queue id a line starts with; `warning:` and friends are not ids.
fn queue_id(line: &LogLine) -> Option<&str> {
    line.queue_id()
        .filter(|q| !q.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Whether the context has a TLS session to `relay` (`host[addr]:port`):
/// a new one, or one reused from the connection cache.
fn has_tls_session(context: &[&LogLine], relay: &str) -> bool {
    context.iter().any(|l| match &l.event {
        LogEvent::Tls(s) => format!("{}[{}]:{}", s.host, s.addr, s.port) == relay,
        _ => l
            .message
            .split_once(" TLS connection reused to ")
            .is_some_and(|(_, rest)| rest.starts_with(&format!("{relay}:"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::explain;
    use crate::explain::fixtures::{RELAY, SENT, is_plaintext, line, status, tls, verdicts};

    #[test]
    fn a_sent_line_is_plaintext_unless_its_process_logged_tls_to_that_relay_for_it() {
        let other = "mx2.relay.test[127.0.0.2]:25";
        let cases = [
            // TLS to the relay, then the status line: not flagged.
            (
                tls(5, RELAY) + &status(5, "AAAAAA1", RELAY, "sent", SENT),
                false,
            ),
            // The TLS line is another process's.
            (
                tls(6, RELAY) + &status(5, "AAAAAA1", RELAY, "sent", SENT),
                true,
            ),
            // TLS to the first address, plaintext to the second.
            (
                tls(5, RELAY) + &status(5, "AAAAAA1", other, "sent", SENT),
                true,
            ),
            // The TLS session was the previous message's.
            (
                tls(5, RELAY)
                    + &status(5, "AAAAAA1", RELAY, "sent", SENT)
                    + &status(5, "BBBBBB2", RELAY, "sent", SENT),
                true,
            ),
            // A second recipient of the same message shares the session.
            (
                tls(5, RELAY)
                    + &status(5, "AAAAAA1", RELAY, "sent", SENT)
                    + &status(5, "AAAAAA1", RELAY, "sent", SENT),
                false,
            ),
            // A session from the connection cache.
            (
                line(
                    5,
                    &format!("Verified TLS connection reused to {RELAY}: TLSv1.3 with cipher X"),
                ) + &status(5, "AAAAAA1", RELAY, "sent", SENT),
                false,
            ),
        ];
        for (log, plaintext) in cases {
            let judged = verdicts(&log);
            let (raw, v) = judged.last().unwrap();
            assert_eq!(is_plaintext(v), plaintext, "{log}\n-> {raw}");
            assert_eq!(matches!(v, Verdict::SentTls), !plaintext, "{log}");
        }
    }

    #[test]
    fn pix_context_wins_over_the_status_reason() {
        let log = "Nov 27 21:45:06 h postfix/smtp[9]: BB908FE09E: enabling PIX workarounds: disable_esmtp for smtp.relay.test[127.0.0.1]:32971\nNov 27 21:45:06 h postfix/smtp[9]: BB908FE09E: to=<a@b>, relay=smtp.relay.test[127.0.0.1]:32971, delay=1, delays=1/0/0/0, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host smtp.relay.test[127.0.0.1])\n";
        let found = explain(log).found;
        assert!(found[0].condition.contains("PIX"), "{found:?}");
    }

    #[test]
    fn a_clue_from_another_delivery_is_not_used() {
        // The PIX line belongs to the previous message of the same process.
        let log = line(9, "AAAAAA1: enabling PIX workarounds: disable_esmtp for x")
            + &status(
                9,
                "AAAAAA1",
                RELAY,
                "deferred",
                "TLS is required, but was not offered by host x",
            )
            + &status(
                9,
                "BBBBBB2",
                RELAY,
                "deferred",
                "TLS is required, but was not offered by host x",
            );
        let found = explain(&log).found;
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[1].condition.starts_with("STARTTLS was not offered"));
    }
}

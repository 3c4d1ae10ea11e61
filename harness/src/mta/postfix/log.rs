//! Parsing Postfix's mail log (`maillog_file = /dev/stdout`) into the
//! MTA-neutral events of [`crate::mta::log`].

use crate::mta::log::{Delivery, LogEvent, LogLine, Status, TlsSession};
use crate::outcome::Trust;

/// Parses one line of Postfix's log; lines not from a Postfix program
/// come back with an empty program and [`LogEvent::Other`].
pub fn parse(raw: &str) -> LogLine {
    let raw = raw.trim_end_matches(['\r', '\n']);
    let Some((program, pid, message)) = split_header(raw) else {
        return LogLine::other(raw);
    };
    let event = parse_event(&program, &message);
    let queue_id = message
        .split_once(": ")
        .map(|(id, _)| id)
        .filter(|id| is_queue_id(id))
        .map(str::to_owned);
    LogLine {
        raw: raw.to_owned(),
        program,
        pid,
        message,
        queue_id,
        event,
    }
}

/// `... host program[pid]: message` -> (program, pid, message).
fn split_header(raw: &str) -> Option<(String, u32, String)> {
    let mut offset = 0;
    for token in raw.split(' ') {
        let start = offset;
        offset += token.len() + 1;
        let Some(head) = token.strip_suffix("]:") else {
            continue;
        };
        let (program, pid) = head.rsplit_once('[')?;
        let pid: u32 = pid.parse().ok()?;
        let message = raw.get(start + token.len() + 1..).unwrap_or("").to_owned();
        return Some((program.to_owned(), pid, message));
    }
    None
}

fn is_queue_id(s: &str) -> bool {
    // Short ids are hex; long ids (enable_long_queue_ids) are base 52 with a 'z'.
    s.len() >= 6 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn parse_event(program: &str, message: &str) -> LogEvent {
    if let Some(rest) = message
        .strip_prefix("fatal: ")
        .or_else(|| message.strip_prefix("panic: "))
    {
        return LogEvent::Fatal(rest.to_owned());
    }
    if program.ends_with("/master")
        && let Some(rest) = message.strip_prefix("daemon started -- version ")
    {
        let version = rest.split(',').next().unwrap_or("").to_owned();
        return LogEvent::Started { version };
    }
    if let Some(tls) = parse_tls(message) {
        return LogEvent::Tls(tls);
    }
    if let Some(d) = parse_delivery(message) {
        return LogEvent::Delivery(d);
    }
    // qmgr, each time it moves the message into its active queue:
    //   4ABC123: from=<harness@tlsharness.test>, size=512, nrcpt=1 (queue active)
    if program.ends_with("/qmgr")
        && message.ends_with(" (queue active)")
        && message
            .split_once(": ")
            .is_some_and(|(id, rest)| is_queue_id(id) && rest.starts_with("from=<"))
    {
        return LogEvent::Active;
    }
    LogEvent::Other
}

fn parse_tls(message: &str) -> Option<TlsSession> {
    let (trust, rest) = message.split_once(" TLS connection established to ")?;
    let trust = Trust::from_log_word(trust)?;
    // host[addr]:port: TLSv1.3 with cipher NAME (...)
    let (peer, rest) = rest.split_once(": ")?;
    let (host_addr, port) = peer.rsplit_once(':')?;
    let (host, addr) = host_addr.split_once('[')?;
    let addr = addr.strip_suffix(']')?;
    let port: u16 = port.parse().ok()?;
    let mut words = rest.split(' ');
    let protocol = words.next()?.to_owned();
    let cipher = match (words.next(), words.next(), words.next()) {
        (Some("with"), Some("cipher"), Some(c)) => c.to_owned(),
        _ => String::new(),
    };
    Some(TlsSession {
        trust,
        host: host.to_owned(),
        addr: addr.to_owned(),
        port,
        protocol,
        cipher,
    })
}

fn parse_delivery(message: &str) -> Option<Delivery> {
    let (queue_id, rest) = message.split_once(": ")?;
    if !is_queue_id(queue_id) {
        return None;
    }
    let to = rest.strip_prefix("to=<")?.split_once('>')?.0.to_owned();
    let field = |name: &str| -> Option<String> {
        let start = rest.find(&format!(", {name}="))? + name.len() + 3;
        let tail = &rest[start..];
        let end = tail.find(", ").unwrap_or(tail.len());
        Some(tail[..end].to_owned())
    };
    let relay = field("relay")?;
    let dsn = field("dsn")?;
    // delays=a/b/c/d: a is arrival to the active queue, the age Postfix's
    // plaintext fallback judges (smtp_proto.c, PREACTIVE_DELAY).
    let waited_ms = field("delays")
        .and_then(|d| d.split('/').next().and_then(|a| a.parse::<f64>().ok()))
        .map(|a| (a * 1000.0).round() as u64);
    let status_at = rest.find(", status=")? + ", status=".len();
    let tail = &rest[status_at..];
    let (word, reason) = match tail.split_once(' ') {
        Some((status, reason)) => (
            status,
            reason
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or(reason),
        ),
        None => (tail, ""),
    };
    let status = match word {
        "sent" => Status::Sent,
        "deferred" => Status::Deferred,
        "bounced" => Status::Bounced,
        "expired" => Status::Expired,
        _ => return None,
    };
    Some(Delivery {
        queue_id: queue_id.to_owned(),
        to,
        relay,
        dsn,
        status,
        reason: reason.to_owned(),
        tls: None,
        waited_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_incident_line() {
        let l = parse(
            "Nov 27 21:22:02 tlsharness postfix/smtp[102]: 7F8D2D809E: to=<r@a.test>, relay=relay.test[127.0.0.1]:10026, delay=0.04, delays=0.01/0.03/0/0, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host relay.test[127.0.0.1])",
        );
        assert_eq!(l.program, "postfix/smtp");
        assert_eq!(l.pid, 102);
        assert_eq!(l.queue_id(), Some("7F8D2D809E"));
        let LogEvent::Delivery(d) = l.event else {
            panic!("{l:?}")
        };
        assert_eq!(d.to, "r@a.test");
        assert_eq!(d.relay, "relay.test[127.0.0.1]:10026");
        assert_eq!(d.dsn, "4.7.4");
        assert_eq!(d.status, Status::Deferred);
        assert_eq!(
            d.reason,
            "TLS is required, but was not offered by host relay.test[127.0.0.1]"
        );
    }

    #[test]
    fn parses_orig_to_and_sent() {
        let l = parse(
            "Jun  8 04:29:57 hogepmail postfix/smtp[7]: 000AB00000: to=<root@h.net>, orig_to=<root>, relay=smtp.sendgrid.net[1.2.3.4]:587, delay=948, delays=947/0.12/0.28/0, dsn=2.0.0, status=sent (250 Ok)",
        );
        let LogEvent::Delivery(d) = l.event else {
            panic!()
        };
        assert_eq!(d.relay, "smtp.sendgrid.net[1.2.3.4]:587");
        assert_eq!(d.status, Status::Sent);
        assert_eq!(d.reason, "250 Ok");
        assert_eq!(d.waited_ms, Some(947_000));
    }

    #[test]
    fn the_queue_manager_taking_a_message_up_is_an_attempt_beginning() {
        let l = parse(
            "Dec  7 04:01:02 postfix postfix/qmgr[88]: 4F2A91C0D3: from=<harness@tlsharness.test>, size=402, nrcpt=1 (queue active)",
        );
        assert_eq!(l.event, LogEvent::Active);
        assert_eq!(l.queue_id(), Some("4F2A91C0D3"));
        // The same words from another program, or about no message, are not.
        let other = parse(
            "Dec  7 04:01:02 postfix postfix/cleanup[90]: 4F2A91C0D3: from=<a@b>, size=1, nrcpt=1 (queue active)",
        );
        assert_eq!(other.event, LogEvent::Other);
    }

    #[test]
    fn parses_tls_summary() {
        let l = parse(
            "Nov 27 21:30:00 h postfix/smtp[9]: Verified TLS connection established to smtp.relay.test[127.0.0.1]:41234: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (P-256) server-digest SHA256",
        );
        let LogEvent::Tls(t) = l.event else {
            panic!("{l:?}")
        };
        assert_eq!(t.trust, Trust::Verified);
        assert_eq!(t.host, "smtp.relay.test");
        assert_eq!(t.port, 41234);
        assert_eq!(t.protocol, "TLSv1.3");
        assert_eq!(t.cipher, "TLS_AES_256_GCM_SHA384");
    }

    #[test]
    fn parses_master_start_and_fatal() {
        let l = parse(
            "Nov 27 21:21:58 tlsharness postfix/master[1]: daemon started -- version 3.7.11, configuration /etc/postfix",
        );
        assert_eq!(
            l.event,
            LogEvent::Started {
                version: "3.7.11".into()
            }
        );
        let f = parse("Nov 27 21:21:58 h postfix/postfix-script[5]: fatal: bad config");
        assert_eq!(f.event, LogEvent::Fatal("bad config".into()));
    }

    #[test]
    fn a_status_word_postfix_does_not_write_is_no_delivery() {
        let l = parse(
            "Nov 27 21:22:02 h postfix/smtp[102]: 7F8D2D809E: to=<r@a.test>, relay=none, delay=0, delays=0/0/0/0, dsn=4.0.0, status=undeliverable (x)",
        );
        assert_eq!(l.event, LogEvent::Other);
    }

    #[test]
    fn unrelated_text_is_kept() {
        let l = parse("random text");
        assert_eq!(l.event, LogEvent::Other);
        assert_eq!(l.message, "random text");
    }
}

//! Parsing Postfix's mail log (`maillog_file = /dev/stdout`).

use serde::Serialize;

use crate::outcome::Trust;

/// One line of the mail log, with what the harness understood of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLine {
    pub raw: String,
    /// `postfix/smtp`, `postfix/master`, ...
    pub program: String,
    pub pid: u32,
    /// The text after `program[pid]: `.
    pub message: String,
    #[serde(skip)]
    pub event: LogEvent,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub enum LogEvent {
    /// `QUEUEID: to=<...>, relay=..., dsn=..., status=...`
    Delivery(Delivery),
    /// `Verified TLS connection established to host[addr]:port: TLSv1.3 ...`
    Tls(TlsSession),
    /// `daemon started -- version 3.7.11, configuration /etc/postfix`
    Started { version: String },
    /// `fatal: ...` or `panic: ...`
    Fatal(String),
    #[default]
    Other,
}

/// The status of one recipient after one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub queue_id: String,
    pub to: String,
    pub relay: String,
    pub dsn: String,
    /// `sent`, `deferred`, `bounced` or `expired`.
    pub status: String,
    /// The text in parentheses after the status.
    pub reason: String,
}

/// One TLS session, as the smtp client logs it.
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

impl LogLine {
    /// Parses one log line; lines not from a Postfix program come back
    /// with an empty program and [`LogEvent::Other`].
    pub fn parse(raw: &str) -> LogLine {
        let raw = raw.trim_end_matches(['\r', '\n']).to_owned();
        let Some((program, pid, message)) = split_header(&raw) else {
            return LogLine {
                program: String::new(),
                pid: 0,
                message: raw.clone(),
                raw,
                event: LogEvent::Other,
            };
        };
        let event = parse_event(&program, &message);
        LogLine {
            raw,
            program,
            pid,
            message,
            event,
        }
    }

    /// The queue id this line is about, if it starts with one.
    pub fn queue_id(&self) -> Option<&str> {
        let (id, _) = self.message.split_once(": ")?;
        is_queue_id(id).then_some(id)
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
    let status_at = rest.find(", status=")? + ", status=".len();
    let tail = &rest[status_at..];
    let (status, reason) = match tail.split_once(' ') {
        Some((status, reason)) => (
            status,
            reason
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or(reason),
        ),
        None => (tail, ""),
    };
    Some(Delivery {
        queue_id: queue_id.to_owned(),
        to,
        relay,
        dsn,
        status: status.to_owned(),
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_incident_line() {
        let l = LogLine::parse(
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
        assert_eq!(d.status, "deferred");
        assert_eq!(
            d.reason,
            "TLS is required, but was not offered by host relay.test[127.0.0.1]"
        );
    }

    #[test]
    fn parses_orig_to_and_sent() {
        let l = LogLine::parse(
            "Jun  8 04:29:57 hogepmail postfix/smtp[7]: 000AB00000: to=<root@h.net>, orig_to=<root>, relay=smtp.sendgrid.net[1.2.3.4]:587, delay=948, delays=947/0.12/0.28/0, dsn=2.0.0, status=sent (250 Ok)",
        );
        let LogEvent::Delivery(d) = l.event else {
            panic!()
        };
        assert_eq!(d.relay, "smtp.sendgrid.net[1.2.3.4]:587");
        assert_eq!(d.status, "sent");
        assert_eq!(d.reason, "250 Ok");
    }

    #[test]
    fn parses_tls_summary() {
        let l = LogLine::parse(
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
        let l = LogLine::parse(
            "Nov 27 21:21:58 tlsharness postfix/master[1]: daemon started -- version 3.7.11, configuration /etc/postfix",
        );
        assert_eq!(
            l.event,
            LogEvent::Started {
                version: "3.7.11".into()
            }
        );
        let f = LogLine::parse("Nov 27 21:21:58 h postfix/postfix-script[5]: fatal: bad config");
        assert_eq!(f.event, LogEvent::Fatal("bad config".into()));
    }

    #[test]
    fn unrelated_text_is_kept() {
        let l = LogLine::parse("random text");
        assert_eq!(l.event, LogEvent::Other);
        assert_eq!(l.message, "random text");
    }
}

//! Parsing Exim's main log (`log_file_path`, followed by the entry point)
//! into the MTA-neutral events of [`crate::mta::log`].
//!
//! Exim writes one line per recipient and attempt, flagged `=>`
//! (delivered), `==` (deferred) or `**` (bounced), with the host as
//! `H=name [addr]:port`, the TLS session on the same line (`X=` protocol
//! and cipher, `CV=` whether the certificate verified) and the server's
//! confirmation as `C="..."`. Debian's Exim is built with GnuTLS, so `X=`
//! names GnuTLS's protocol (`TLS1.3`) and cipher suite spelling
//! (`ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM`), not OpenSSL's.

use crate::mta::log::{Delivery, LogEvent, LogLine, Status, TlsSession};
use crate::outcome::Trust;

/// Parses one line of Exim's main log (with `log_selector = +pid`):
/// `2026-11-30 10:29:29 [22] 1xXydV-00000K-0m => ...`.
pub fn parse(raw: &str) -> LogLine {
    let raw = raw.trim_end_matches(['\r', '\n']);
    let mut words = raw.splitn(4, ' ');
    let (Some(date), Some(time), Some(rest)) = (words.next(), words.next(), words.next()) else {
        return LogLine::other(raw);
    };
    let rest = match words.next() {
        Some(more) => format!("{rest} {more}"),
        None => rest.to_owned(),
    };
    if date.len() != 10 || !date.starts_with(|c: char| c.is_ascii_digit()) || time.len() < 8 {
        return LogLine::other(raw);
    }
    let (pid, message) = match rest
        .strip_prefix('[')
        .and_then(|r| r.split_once("] "))
        .and_then(|(pid, m)| Some((pid.parse::<u32>().ok()?, m)))
    {
        Some((pid, m)) => (pid, m.to_owned()),
        None => (0, rest.clone()),
    };
    let (queue_id, body) = match message.split_once(' ') {
        Some((id, body)) if is_message_id(id) => (Some(id.to_owned()), body),
        _ => (None, message.as_str()),
    };
    let event = parse_event(queue_id.as_deref(), body);
    LogLine {
        raw: raw.to_owned(),
        program: "exim".to_owned(),
        pid,
        message: message.clone(),
        queue_id,
        event,
    }
}

/// Exim 4.96's message ids: `1xXydV-00000K-0m` (base 62, 6-6-2; 4.97
/// and later: 6-11-4).
fn is_message_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), [a, b, c]
        if a.len() == 6 && (b.len() == 6 || b.len() == 11) && (c.len() == 2 || c.len() == 4)
            && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric())))
}

fn parse_event(queue_id: Option<&str>, body: &str) -> LogEvent {
    if let Some(rest) = body.strip_prefix("exim ")
        && let Some((version, _)) = rest.split_once(" daemon started")
    {
        return LogEvent::Started {
            version: version.to_owned(),
        };
    }
    if body.contains("configuration error") || body.starts_with("PANIC") {
        return LogEvent::Fatal(body.to_owned());
    }
    if let Some(host) = body
        .split_once("delivering unencrypted to ")
        .map(|(_, h)| h)
    {
        return LogEvent::RetriedInClear(host.to_owned());
    }
    let Some(queue_id) = queue_id else {
        return LogEvent::Other;
    };
    let (status, rest) = match body.split_once(' ') {
        Some(("=>", rest)) => (Status::Sent, rest),
        Some(("==", rest)) => (Status::Deferred, rest),
        Some(("**", rest)) => (Status::Bounced, rest),
        _ => return LogEvent::Other,
    };
    // A redirected address (a case by MX) is logged with its parent:
    // `=> local@ZONE <local@cN.tlsharness.test> R=...`; the parent is the
    // recipient the harness sent.
    let mut words = rest.split(' ');
    let first = words.next().unwrap_or_default();
    let to = match words
        .next()
        .and_then(|w| w.strip_prefix('<')?.strip_suffix('>'))
    {
        Some(parent) => parent.to_owned(),
        None => first.to_owned(),
    };
    let relay = host(rest).unwrap_or_default();
    let reason = match status {
        Status::Sent => quoted(rest, "C=").unwrap_or_default(),
        _ => failure_reason(rest),
    };
    let dsn = enhanced_code(&reason).unwrap_or_default();
    let tls = match status {
        Status::Sent => tls_session(rest, &relay),
        _ => None,
    };
    LogEvent::Delivery(Delivery {
        queue_id: queue_id.to_owned(),
        to,
        relay,
        dsn,
        status,
        reason,
        tls,
        // Every Exim delivery is forced by the harness (`exim -M`): its
        // age is not what decides anything.
        waited_ms: None,
    })
}

/// `H=name [addr]:port` as `name[addr]:port` (Postfix's `relay=` shape).
fn host(rest: &str) -> Option<String> {
    let (_, after) = rest.split_once(" H=")?;
    let (name, after) = after.split_once(" [")?;
    let (addr, after) = after.split_once(']')?;
    let port: String = after
        .strip_prefix(':')
        .map(|p| p.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    Some(if port.is_empty() {
        format!("{name}[{addr}]")
    } else {
        format!("{name}[{addr}]:{port}")
    })
}

/// The text of a `KEY="..."` field (Exim escapes quotes inside with `\`).
fn quoted(rest: &str, key: &str) -> Option<String> {
    let start = rest.find(&format!(" {key}\""))? + key.len() + 2;
    let mut out = String::new();
    let mut chars = rest[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    Some(out)
}

/// What follows the fields of a `==` or `**` line: after `defer (N)`
/// and the host, the text after the first `: `.
fn failure_reason(rest: &str) -> String {
    let after = rest
        .split_once(" defer (")
        .and_then(|(_, r)| r.split_once(')'))
        .map_or(rest, |(_, r)| r);
    match after.split_once(": ") {
        Some((_, reason)) => reason.to_owned(),
        None => after.trim().to_owned(),
    }
}

/// The enhanced status code (`4.7.0`) after a reply code in `text`.
fn enhanced_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for i in 0..bytes.len().saturating_sub(4) {
        let code = &text[i..];
        let reply = code.get(..3)?;
        let starts = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if starts
            && reply.bytes().all(|b| b.is_ascii_digit())
            && matches!(reply.as_bytes()[0], b'2' | b'4' | b'5')
            && matches!(code.as_bytes().get(3), Some(b' ' | b'-'))
        {
            let word: &str = code[4..].split(' ').next().unwrap_or_default();
            let parts: Vec<&str> = word.split('.').collect();
            if parts.len() == 3
                && parts[0] == &reply[..1]
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Some(word.to_owned());
            }
        }
    }
    None
}

/// The TLS session of a `=>` line: `X=TLS1.3:CIPHER:BITS CV=yes`.
fn tls_session(rest: &str, relay: &str) -> Option<TlsSession> {
    let x = field(rest, "X=")?;
    let mut parts = x.splitn(2, ':');
    let protocol = parts.next()?;
    let cipher = parts
        .next()
        .map(|c| c.rsplit_once(':').map_or(c, |(c, _bits)| c))
        .unwrap_or_default();
    let trust = match field(rest, "CV=").as_deref() {
        Some("yes") | Some("dane") => Trust::Verified,
        _ => Trust::Untrusted,
    };
    let (name, addr_port) = relay.split_once('[').unwrap_or((relay, ""));
    let (addr, port) = addr_port.split_once(']').unwrap_or((addr_port, ""));
    Some(TlsSession {
        trust,
        host: name.to_owned(),
        addr: addr.to_owned(),
        port: port.trim_start_matches(':').parse().unwrap_or(0),
        // GnuTLS's `TLS1.3` in OpenSSL's (and Postfix's) spelling.
        protocol: protocol.replacen("TLS1", "TLSv1", 1),
        cipher: cipher.to_owned(),
    })
}

/// The value of a ` KEY=value` field, up to the next space.
fn field(rest: &str, key: &str) -> Option<String> {
    let (_, after) = rest.split_once(&format!(" {key}"))?;
    Some(after.split(' ').next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_delivery_over_tls() {
        let l = parse(
            r#"2026-11-30 10:41:02 [57] 1xXyoc-00000U-2N => r@c0.tlsharness.test R=tlsh T=tlsh_try H=smtp.relay.test [127.0.1.1]:587 I=[127.1.0.1] X=TLS1.3:ECDHE_SECP256R1__ECDSA_SECP256R1_SHA256__AES_256_GCM:256 CV=yes DN="CN=smtp.relay.test" C="250 2.0.0 Ok: \"queued\""#,
        );
        assert_eq!(l.pid, 57);
        assert_eq!(l.queue_id(), Some("1xXyoc-00000U-2N"));
        let LogEvent::Delivery(d) = l.event else {
            panic!("{l:?}")
        };
        assert_eq!(d.status, Status::Sent);
        assert_eq!(d.to, "r@c0.tlsharness.test");
        assert_eq!(d.relay, "smtp.relay.test[127.0.1.1]:587");
        assert_eq!(d.reason, r#"250 2.0.0 Ok: "queued""#);
        assert_eq!(d.dsn, "2.0.0");
        let t = d.tls.expect("a TLS session");
        assert_eq!(t.protocol, "TLSv1.3");
        assert_eq!(t.trust, Trust::Verified);
        assert_eq!(t.port, 587);
        assert_eq!(
            t.cipher,
            "ECDHE_SECP256R1__ECDSA_SECP256R1_SHA256__AES_256_GCM"
        );
    }

    #[test]
    fn parses_a_deferral_and_the_daemon_start() {
        let l = parse(
            "2026-11-30 10:29:29 [22] 1xXydV-00000K-0m == r@c0.tlsharness.test R=tlsh T=tlsh_require defer (-38) H=smtp.relay.test [127.0.1.1]:587: a TLS session is required, but the server did not offer TLS support",
        );
        let LogEvent::Delivery(d) = l.event else {
            panic!("{l:?}")
        };
        assert_eq!(d.status, Status::Deferred);
        assert_eq!(
            d.reason,
            "a TLS session is required, but the server did not offer TLS support"
        );
        assert_eq!(d.dsn, "");
        assert!(d.tls.is_none());
        let s = parse(
            "2026-11-30 10:29:27 [16] exim 4.96 daemon started: pid=16, no queue runs, listening for SMTP on [127.0.0.1]:25",
        );
        assert_eq!(
            s.event,
            LogEvent::Started {
                version: "4.96".into()
            }
        );
    }

    #[test]
    fn a_redirected_address_is_the_parent_s_and_a_bounce_is_typed() {
        let l = parse(
            "2026-11-30 11:20:14 [878] 1xXzQr-00006z-0N ** d.dane@d-dane.hoge.example <d.dane@c53.tlsharness.test> R=tlsh_mx T=tlsh5_dane: DANE error: mx1.d-dane.hoge.example lookup not DNSSEC",
        );
        let LogEvent::Delivery(d) = l.event else {
            panic!("{l:?}")
        };
        assert_eq!(d.status, Status::Bounced);
        assert_eq!(d.to, "d.dane@c53.tlsharness.test");
        assert_eq!(d.relay, "");
        assert_eq!(
            d.reason,
            "DANE error: mx1.d-dane.hoge.example lookup not DNSSEC"
        );
        let note = parse(
            "2026-11-30 10:35:28 [133] 1xXyjI-00000X-1A TLS session: (gnutls_handshake): Handshake failed: delivering unencrypted to H=smtp.relay.test [127.0.1.1] (not in hosts_require_tls)",
        );
        assert_eq!(note.queue_id(), Some("1xXyjI-00000X-1A"));
        assert_eq!(
            note.event,
            LogEvent::RetriedInClear(
                "H=smtp.relay.test [127.0.1.1] (not in hosts_require_tls)".into()
            )
        );
    }

    #[test]
    fn finds_enhanced_codes_only_after_reply_codes() {
        assert_eq!(
            enhanced_code(
                "SMTP error from remote mail server after pipelined STARTTLS: 454 4.7.0 TLS not available"
            ),
            Some("4.7.0".into())
        );
        assert_eq!(enhanced_code("250 OK id=1xXydV"), None);
        assert_eq!(enhanced_code("host 127.0.1.1 said 2.0.0"), None);
    }
}

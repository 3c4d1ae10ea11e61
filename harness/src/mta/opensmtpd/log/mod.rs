//! Parsing smtpd's log (`smtpd -d`, on standard error) into the
//! MTA-neutral events of [`crate::mta::log`].
//!
//! smtpd writes one line per event of a session, prefixed by the
//! session's id (`383495a3306584e3 mta connecting address=smtp://...`),
//! and the status of a recipient on the session's `mta delivery` line,
//! with the TLS session on earlier lines of it (`mta tls ciphers=...`,
//! `mta server-cert-check result=...`). A session that fails before a
//! recipient disables its route (`smtp-out: Disabling route SRC <-> ADDR
//! (HOST)`) and the envelope's TempFail comes later, from no session
//! (`0000000000000000 mta delivery ... source="-" ... stat="Network error
//! on destination MXs"`): the parser remembers each route's last error, so
//! that status carries its reason and its session. A route is a case's
//! source address (the `sources` file the harness renders says whose).

use std::collections::HashMap;

use crate::mta::log::{Delivery, LogEvent, LogLine, Status, TlsSession};
use crate::outcome::Trust;

/// One outgoing session, as far as its lines have told.
#[derive(Clone, Debug, Default)]
struct Session {
    host: String,
    addr: String,
    port: u16,
    /// Protocol and cipher, once TLS is up.
    tls: Option<(String, String)>,
    /// `server-cert-check result=...`: whether the chain verified.
    verified: Option<bool>,
    /// `ssl_check_name: no match`: the chain verified, the name did not.
    name_mismatch: bool,
}

/// A session's last error and the session it ended.
#[derive(Clone, Debug)]
struct Failure {
    session: String,
    reason: String,
}

/// The parser of one smtpd's log.
#[derive(Default)]
pub struct Parser {
    /// A case's recipient domain → its source address.
    sources: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    /// The last session error, until its route is disabled.
    last_error: Option<Failure>,
    /// A source address → the error that disabled its route.
    routes: HashMap<String, Failure>,
}

impl Parser {
    /// A parser for the instance whose rendered files are `files` (its
    /// `sources` say which case each source address is).
    pub fn new(files: &[(String, Vec<u8>)]) -> Parser {
        let sources = files
            .iter()
            .find(|(name, _)| name == "sources")
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(d, s)| (d.to_owned(), s.trim().to_owned()))
            .collect();
        Parser {
            sources,
            ..Parser::default()
        }
    }

    /// Parses one line, remembering what later lines need.
    pub fn parse(&mut self, raw: &str) -> LogLine {
        let raw = raw.trim_end_matches(['\r', '\n']);
        let mut line = LogLine::other(raw);
        line.program = "smtpd".into();
        if let Some(version) = raw
            .strip_prefix("tlsharness: OpenSMTPD ")
            .and_then(|r| r.strip_suffix(" accepting mail on 127.0.0.1:25"))
        {
            line.event = LogEvent::Started {
                version: version.to_owned(),
            };
            return line;
        }
        if is_fatal(raw) {
            line.event = LogEvent::Fatal(raw.to_owned());
            return line;
        }
        if let Some(rest) = raw.strip_prefix("smtp-out: ") {
            self.smtp_out(rest, &mut line);
            return line;
        }
        line.queue_id = queue_id(raw);
        let Some((session, body)) = raw.split_once(' ').filter(|(s, _)| is_session_id(s)) else {
            return line;
        };
        line.pid = pid(session);
        line.message = body.to_owned();
        if let Some(rest) = body.strip_prefix("mta ") {
            self.mta(session, rest, &mut line);
        }
        line
    }

    /// `smtp-out:` lines: a route disabled after a session's error, and
    /// the opportunistic client's fallback to a connection in clear.
    fn smtp_out(&mut self, rest: &str, line: &mut LogLine) {
        if let Some(route) = rest.strip_prefix("Disabling route ") {
            let src = route.split(' ').next().unwrap_or_default().to_owned();
            if let Some(failure) = self.last_error.take() {
                line.pid = pid(&failure.session);
                self.routes.insert(src, failure);
            }
        } else if let Some(route) = rest.strip_prefix("Enabling route ") {
            // Shown with the session whose error disabled the route.
            let src = route.split(' ').next().unwrap_or_default();
            if let Some(failure) = self.routes.get(src) {
                line.pid = pid(&failure.session);
            }
        } else if let Some((session, why)) = rest
            .strip_prefix("Error on session ")
            .and_then(|r| r.split_once(": "))
            && why.contains("downgrading to plain")
        {
            line.pid = pid(session);
            let host = self
                .sessions
                .get(session)
                .map(|s| format!("{}[{}]:{}", s.host, s.addr, s.port))
                .unwrap_or_default();
            line.event = LogEvent::RetriedInClear(host);
        }
    }

    /// A session's `mta` line.
    fn mta(&mut self, session: &str, rest: &str, line: &mut LogLine) {
        if let Some(connecting) = rest.strip_prefix("connecting ") {
            let url = field(connecting, "address").unwrap_or_default();
            let host = field(connecting, "host").unwrap_or_default();
            let authority = url.split_once("://").map_or(url.as_str(), |(_, a)| a);
            let (addr, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
            self.sessions.insert(
                session.to_owned(),
                Session {
                    host,
                    addr: addr.to_owned(),
                    port: port.parse().unwrap_or(0),
                    ..Session::default()
                },
            );
            return;
        }
        if let Some(reason) = rest.strip_prefix("error reason=") {
            // A failed check logs no `server-cert-check` line of its own.
            if reason == "SSL certificate check failed" {
                self.sessions
                    .entry(session.to_owned())
                    .or_default()
                    .verified = Some(false);
            }
            self.last_error = Some(Failure {
                session: session.to_owned(),
                reason: reason.to_owned(),
            });
            return;
        }
        if let Some(fields) = rest.strip_prefix("delivery ") {
            line.event = self.delivery(session, fields, line);
            return;
        }
        let s = self.sessions.entry(session.to_owned()).or_default();
        if let Some(ciphers) = rest.strip_prefix("tls ciphers=") {
            let mut parts = ciphers.split(':');
            let protocol = parts.next().unwrap_or_default().to_owned();
            let cipher = parts.next().unwrap_or_default().to_owned();
            s.tls = Some((protocol, cipher));
        } else if rest.starts_with("ssl_check_name: no match") {
            s.name_mismatch = true;
        } else if let Some(result) = rest.strip_prefix("server-cert-check ") {
            s.verified = Some(field(result, "result").as_deref() == Some("success"));
        }
    }

    /// A recipient's status after an attempt.
    fn delivery(&self, session: &str, fields: &str, line: &mut LogLine) -> LogEvent {
        let to = field(fields, "to").unwrap_or_default();
        let to = to.trim_matches(['<', '>']).to_owned();
        let status = match field(fields, "result").as_deref() {
            Some("Ok") => Status::Sent,
            Some("PermFail") => Status::Bounced,
            _ => Status::Deferred,
        };
        let stat = field(fields, "stat").unwrap_or_default();
        // From no session: the route's error is the reason, its session
        // the attempt's.
        let (session, reason) = match is_null_session(session)
            .then(|| self.route_failure(&to))
            .flatten()
        {
            Some(f) => (f.session, f.reason),
            None => (session.to_owned(), stat.clone()),
        };
        line.pid = pid(&session);
        let s = self.sessions.get(&session).cloned().unwrap_or_default();
        let relay = if s.host.is_empty() {
            field(fields, "relay").unwrap_or_default()
        } else {
            format!("{}[{}]:{}", s.host, s.addr, s.port)
        };
        let tls = s.tls.as_ref().map(|(protocol, cipher)| TlsSession {
            trust: match (s.verified, s.name_mismatch) {
                (_, true) => Trust::Trusted,
                (Some(true), false) => Trust::Verified,
                (Some(false), false) => Trust::Untrusted,
                (None, false) => Trust::Anonymous,
            },
            host: s.host.clone(),
            addr: s.addr.clone(),
            port: s.port,
            protocol: protocol.clone(),
            cipher: cipher.clone(),
        });
        LogEvent::Delivery(Delivery {
            queue_id: line.queue_id.clone().unwrap_or_default(),
            to,
            relay,
            dsn: enhanced_code(&stat).unwrap_or_default(),
            status,
            reason,
            tls,
            waited_ms: None,
        })
    }

    /// The error that disabled the route of `recipient`'s case.
    fn route_failure(&self, recipient: &str) -> Option<Failure> {
        let domain = recipient.rsplit_once('@')?.1;
        self.routes.get(self.sources.get(domain)?).cloned()
    }
}

/// What the entry point and smtpd say when they give up: a refused
/// configuration (`/etc/smtpd.conf:3: syntax error`), a fatal error, a
/// process gone.
fn is_fatal(raw: &str) -> bool {
    raw.starts_with("fatal")
        || raw.starts_with("tlsharness: smtpd ")
        || raw.contains("socket closed")
        || raw.starts_with("/etc/smtpd.conf:")
}

/// smtpd's ids are 16 hex digits.
fn is_session_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_null_session(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// A session's id as a process number for the neutral log's grouping.
fn pid(session: &str) -> u32 {
    let id = u64::from_str_radix(session, 16).unwrap_or(0);
    (id ^ (id >> 32)) as u32
}

/// The message a line is about: `msgid=`, or an envelope's (`evpid=`,
/// `Remove for EVPID:`) first 8 digits, the message's id.
fn queue_id(raw: &str) -> Option<String> {
    let id = field(raw, "msgid")
        .or_else(|| field(raw, "evpid"))
        .or_else(|| {
            raw.split_once("Remove for ")
                .and_then(|(_, r)| r.split(':').next())
                .map(str::to_owned)
        })?;
    (id.len() >= 8 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id[..8].to_owned())
}

/// `key=value` or `key="quoted value"` in a line.
fn field(text: &str, key: &str) -> Option<String> {
    let start = text
        .match_indices(&format!("{key}="))
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b' ')?
        .0
        + key.len()
        + 1;
    let rest = &text[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().map(str::to_owned),
        None => rest.split(' ').next().map(str::to_owned),
    }
}

/// The enhanced status code in a server's reply: `550 5.1.1 ...`.
fn enhanced_code(reply: &str) -> Option<String> {
    let code = reply.split(' ').nth(1)?;
    let parts: Vec<&str> = code.split('.').collect();
    (parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then(|| code.to_owned())
}

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
use mailin_embedded::{Handler, Response};
use serde::{Deserialize, Serialize};

/// A message the relay accepted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Received {
    pub peer: SocketAddr,
    pub helo: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Whether the session was inside TLS when the message arrived.
    pub tls: bool,
    pub size: usize,
    pub message_id: Option<String>,
    /// The user the client authenticated as, if it did.
    pub auth_user: Option<String>,
    /// Whether that authentication happened inside TLS.
    pub auth_over_tls: Option<bool>,
}

/// One SMTP session the relay served.
#[derive(Clone, Debug, Serialize)]
pub struct SessionRecord {
    pub peer: SocketAddr,
    pub tls: bool,
    /// Why the session ended, in words.
    pub end: String,
}

/// Everything a relay saw.
#[derive(Debug)]
pub(crate) struct RelayLog {
    pub received: Mutex<Vec<Received>>,
    pub sessions: Mutex<Vec<SessionRecord>>,
    /// How many sessions have ended.
    pub ended: tokio::sync::watch::Sender<usize>,
}

impl Default for RelayLog {
    fn default() -> Self {
        RelayLog {
            received: Mutex::default(),
            sessions: Mutex::default(),
            ended: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// The part of a message kept to find its Message-ID.
const HEAD_LIMIT: usize = 16 * 1024;

/// What the relay demands of its clients.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Refuse MAIL before STARTTLS.
    pub require_tls: bool,
    /// Accepted credentials, when AUTH is offered.
    pub credentials: Option<(String, String)>,
    /// Accept any credentials (and record them), as when checking a user's
    /// own configuration whose secrets the scenario cannot know.
    pub any_credentials: bool,
}

/// mailin's per-connection handler: accepts what the policy allows and
/// records it.
pub(crate) struct Recorder {
    pub peer: SocketAddr,
    pub tls: Arc<AtomicBool>,
    /// Set once the client has authenticated.
    pub authenticated: Arc<AtomicBool>,
    pub log: Arc<RelayLog>,
    pub hostname: String,
    policy: Policy,
    helo: String,
    auth: Option<(String, bool)>,
    current: Option<Received>,
    head: Vec<u8>,
}

impl Recorder {
    pub fn new(
        peer: SocketAddr,
        tls: Arc<AtomicBool>,
        authenticated: Arc<AtomicBool>,
        log: Arc<RelayLog>,
        hostname: String,
        policy: Policy,
    ) -> Self {
        Recorder {
            peer,
            tls,
            authenticated,
            log,
            hostname,
            policy,
            helo: String::new(),
            auth: None,
            current: None,
            head: Vec::new(),
        }
    }

    fn check_credentials(&mut self, user: &str, password: &str) -> Response {
        let ok = self.policy.any_credentials
            || self
                .policy
                .credentials
                .as_ref()
                .is_some_and(|(u, p)| u == user && p == password);
        if ok {
            self.auth = Some((user.to_owned(), self.tls.load(Ordering::SeqCst)));
            self.authenticated.store(true, Ordering::SeqCst);
            AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }
}

impl Handler for Recorder {
    fn helo(&mut self, _ip: IpAddr, domain: &str) -> Response {
        self.helo = domain.to_owned();
        OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        if self.policy.require_tls && !self.tls.load(Ordering::SeqCst) {
            return Response::custom(530, "5.7.0 Must issue a STARTTLS command first".into());
        }
        OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.check_credentials(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check_credentials(user, password)
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.head.clear();
        self.current = Some(Received {
            peer: self.peer,
            helo: self.helo.clone(),
            mail_from: from.to_owned(),
            rcpt_to: to.to_vec(),
            tls: self.tls.load(Ordering::SeqCst),
            size: 0,
            message_id: None,
            auth_user: self.auth.as_ref().map(|(u, _)| u.clone()),
            auth_over_tls: self.auth.as_ref().map(|(_, t)| *t),
        });
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.size += buf.len();
            let room = HEAD_LIMIT.saturating_sub(self.head.len());
            self.head.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let Some(mut received) = self.current.take() else {
            return OK;
        };
        received.message_id = message_id(&self.head);
        let how = if received.tls {
            "over TLS"
        } else {
            "in plaintext"
        };
        let reply = format!(
            "2.0.0 Ok: accepted {how} by tlsharness relay {}",
            self.hostname
        );
        self.log
            .received
            .lock()
            .expect("relay log poisoned")
            .push(received);
        Response::custom(250, reply)
    }
}

/// The Message-ID header's value, if the header block has one.
fn message_id(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    for line in text.split("\r\n") {
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("message-id")
        {
            return Some(value.trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_message_id_in_headers_only() {
        assert_eq!(
            message_id(b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody").as_deref(),
            Some("<a@b>")
        );
        assert_eq!(message_id(b"Subject: x\r\n\r\nMessage-ID: <a@b>\r\n"), None);
    }
}

//! What Postfix would do on the probed path, for the current
//! configuration and each standard candidate, as predictions: the probe's
//! knowledge (`probe::predict`) on the port each side uses, compared as
//! `check` compares attempts it ran (`check::verdict_at`, `check::why`).

use super::hops::NextHop;
use super::path::{PathObservation, PortPlan, PortSeen};
use crate::check::{Verdict, verdict_at, why};
use crate::level::Level;
use crate::mta::log::{Status, TlsSession};
use crate::outcome::{Outcome, Trust};
use crate::probe::{self, Observation};
use crate::run::{Attempt, Wire};
use crate::scenario::{AttemptExpectation, Dsn, Hop};

/// The port and level one configuration uses toward a next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side {
    pub port: PortPlan,
    pub level: Level,
}

impl Side {
    /// The current configuration's side of `hop`, if its level is one the
    /// probe predicts.
    pub fn current(hop: &NextHop) -> Result<Side, String> {
        let level = hop
            .level
            .parse::<Level>()
            .ok()
            .filter(|l| Level::REQUIRED.contains(l))
            .ok_or_else(|| {
                format!(
                    "triage predicts the levels none, may, encrypt, verify and secure, not `{}`",
                    hop.level
                )
            })?;
        Ok(Side {
            port: PortPlan {
                port: hop.relay.port,
                implicit_tls: hop.wrapper_mode,
            },
            level,
        })
    }
}

/// One side's predicted attempt, with the reasoning behind it.
#[derive(Clone, Debug)]
pub struct Predicted {
    pub side: Side,
    /// Attempt-shaped, so that `check`'s own rules compare it.
    pub attempt: Attempt,
    pub why: Vec<String>,
}

impl Predicted {
    /// The prediction in a few words, as `check`'s table writes a result.
    pub fn words(&self) -> String {
        crate::check::state(&self.attempt)
    }
}

/// Candidate against current, as `check` would judge them.
pub fn compare(current: &Predicted, candidate: &Predicted) -> (Verdict, Option<String>) {
    let level = current.side.level.as_str();
    let v = verdict_at(&current.attempt, &candidate.attempt, Some(level));
    (v, why(&current.attempt, &candidate.attempt, v))
}

/// What Postfix would do on `side` of the path. `sasl` is whether the
/// configuration authenticates (`smtp_sasl_auth_enable = yes`): in
/// plaintext, its credentials cross the wire in the clear.
pub fn predict_side(path: &PathObservation, side: Side, sasl: bool) -> Predicted {
    let host = &path.server_name;
    let port = side.port.port;
    let seen = path.ports.iter().find(|(plan, _)| *plan == side.port);
    let (expect, why) = match seen.map(|(_, s)| s) {
        None => {
            return Predicted {
                side,
                attempt: unknown(format!("port {port} was not probed")),
                why: vec![format!("port {port} was not probed: no prediction")],
            };
        }
        Some(PortSeen::Answered(obs)) => {
            let d = probe::diagnose(obs);
            let found = probe::predict(obs, &d)
                .into_iter()
                .find(|p| p.level == side.level);
            match found {
                Some(p) => (p.expect, p.why),
                None => {
                    return Predicted {
                        side,
                        attempt: unknown(format!("no prediction at {}", side.level)),
                        why: Vec::new(),
                    };
                }
            }
        }
        Some(PortSeen::Refused) => connect_failure(host, port, "Connection refused"),
        Some(PortSeen::Dropped) => connect_failure(host, port, "Connection timed out"),
        Some(PortSeen::Failed(e)) => (
            deferred("4.4.2", &e.to_string()),
            vec![format!("the probe of port {port} failed: {e}")],
        ),
    };
    let obs = match seen.map(|(_, s)| s) {
        Some(PortSeen::Answered(o)) => Some(o),
        _ => None,
    };
    let leaks =
        sasl && expect.outcome == Outcome::DeliveredPlaintext && obs.is_some_and(offers_auth);
    Predicted {
        side,
        attempt: attempt(&expect, host, port, leaks),
        why,
    }
}

fn connect_failure(host: &str, port: u16, what: &str) -> (AttemptExpectation, Vec<String>) {
    let reason = format!("connect to {host}[...]:{port}: {what}");
    (
        deferred("4.4.1", &reason),
        vec![format!("  ... dsn=4.4.1, status=deferred ({reason})")],
    )
}

fn deferred(dsn: &str, reason: &str) -> AttemptExpectation {
    let mut e = AttemptExpectation::outcome(Outcome::Deferred);
    e.dsn = Dsn::parse(dsn).ok();
    e.reason = Some(reason.to_owned());
    e
}

/// Whether the EHLO reply Postfix acts on lists AUTH.
fn offers_auth(obs: &Observation) -> bool {
    obs.ehlo.lines().iter().skip(1).any(|l| {
        l.get(4..)
            .and_then(|t| t.split_whitespace().next())
            .is_some_and(|k| k.eq_ignore_ascii_case("AUTH"))
    })
}

/// An attempt as the classifier would have recorded the expected one.
fn attempt(e: &AttemptExpectation, host: &str, port: u16, leaks: bool) -> Attempt {
    let tls = e.outcome == Outcome::DeliveredTls;
    let plaintext = e.outcome == Outcome::DeliveredPlaintext;
    Attempt {
        outcome: Some(e.outcome),
        status: Some(match e.outcome {
            Outcome::DeliveredTls | Outcome::DeliveredPlaintext => Status::Sent,
            Outcome::Deferred => Status::Deferred,
            Outcome::Bounced => Status::Bounced,
        }),
        dsn: e
            .dsn
            .as_ref()
            .map_or_else(|| "2.0.0".to_owned(), ToString::to_string),
        reason: e.reason.clone().unwrap_or_default(),
        relay: format!("{host}[...]:{port}"),
        tls: tls.then(|| TlsSession {
            trust: e.trust.unwrap_or(Trust::Untrusted),
            host: host.to_owned(),
            addr: String::new(),
            port,
            protocol: e.protocol.clone().unwrap_or_default(),
            cipher: String::new(),
        }),
        retried_in_clear: None,
        wire: Wire {
            connections: 1,
            tls_started: tls,
            plaintext_mail: plaintext,
            plaintext_data: plaintext,
            plaintext_auth: leaks,
            ..Default::default()
        },
        received: None,
        relay_hop: e.relay.or(match e.outcome {
            Outcome::DeliveredTls => Some(Hop::Tls),
            Outcome::DeliveredPlaintext => Some(Hop::Plaintext),
            _ => None,
        }),
        log_line: String::new(),
        waited_ms: None,
        error: None,
        connections: Vec::new(),
        log: Vec::new(),
    }
}

fn unknown(error: String) -> Attempt {
    let mut a = attempt(&deferred("4.0.0", ""), "", 0, false);
    a.outcome = None;
    a.status = None;
    a.error = Some(error);
    a
}

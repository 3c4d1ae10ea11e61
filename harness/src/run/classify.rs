//! Turning evidence into an outcome, and comparing it with the expectation.
//!
//! Three witnesses are consulted for every attempt: the MTA's log (its
//! typed delivery event: status, TLS summary), the middlebox's wire tap
//! (did the message cross in plaintext?), and the relay (did it receive
//! the message, over TLS?). A delivery is classified only when the
//! witnesses agree.

use serde::Serialize;

use crate::middlebox::ConnectionRecord;
use crate::mta::log::{Delivery, Status, TlsSession};
use crate::outcome::Outcome;
use crate::scenario::{AttemptExpectation, Expectation, Hop};
use crate::upstream::Received;

/// What the wire showed during one attempt (all its connections).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Wire {
    pub connections: usize,
    pub relay_offered_starttls: bool,
    /// Whether the MTA's client saw STARTTLS offered (the report format's
    /// published key names the first MTA it had).
    #[serde(rename = "postfix_saw_starttls")]
    pub client_saw_starttls: bool,
    /// Whether the MTA's client sent STARTTLS.
    #[serde(rename = "postfix_sent_starttls")]
    pub client_sent_starttls: bool,
    pub tls_started: bool,
    /// The middlebox broke a TLS handshake.
    pub tls_broken: bool,
    /// The middlebox terminated the MTA's TLS and read the dialogue.
    pub intercepted: bool,
    pub plaintext_mail: bool,
    pub plaintext_data: bool,
    pub plaintext_auth: bool,
    /// The middlebox could read the message (plaintext, or intercepted).
    pub middlebox_read_data: bool,
    /// The message crossed the relay side of the wire in plaintext.
    pub relay_side_plaintext_data: bool,
    /// Some connection of the attempt had not closed by the deadline: what
    /// it carried after the record was taken is unknown.
    pub incomplete: bool,
    /// How many of the attempt's connections were still open then.
    pub still_open: usize,
}

impl Wire {
    pub fn from_records(records: &[ConnectionRecord]) -> Wire {
        let any = |f: fn(&ConnectionRecord) -> bool| records.iter().any(f);
        Wire {
            connections: records.len(),
            relay_offered_starttls: any(|r| r.relay_offered_starttls),
            client_saw_starttls: any(|r| r.client_saw_starttls),
            client_sent_starttls: any(|r| r.client_sent_starttls),
            tls_started: any(|r| r.tls_started),
            tls_broken: any(|r| r.tls_broken.is_some()),
            intercepted: any(|r| r.intercepted),
            plaintext_mail: any(|r| r.plaintext_mail),
            plaintext_data: any(|r| r.plaintext_data),
            plaintext_auth: any(|r| r.plaintext_auth),
            middlebox_read_data: any(|r| r.middlebox_read_data),
            relay_side_plaintext_data: any(|r| r.relay_side_plaintext_data),
            incomplete: false,
            still_open: 0,
        }
    }

    /// Marks the record as taken while `open` connections were still open.
    pub fn with_open(mut self, open: usize) -> Wire {
        self.incomplete = open > 0;
        self.still_open = open;
        self
    }
}

/// One delivery attempt, observed.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// `None` when the attempt could not be classified; see `error`.
    pub outcome: Option<Outcome>,
    /// The MTA's status; `None` (written `""`) when it logged none.
    #[serde(serialize_with = "status_word")]
    pub status: Option<Status>,
    pub dsn: String,
    pub reason: String,
    pub relay: String,
    /// The MTA's TLS summary for the session that ended the attempt.
    pub tls: Option<TlsSession>,
    /// The MTA gave up TLS with this host after a failed handshake and
    /// delivered in clear on a new connection, within the attempt (Exim's
    /// `tls_tempfail_tryclear`); the wire saw both connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retried_in_clear: Option<String>,
    pub wire: Wire,
    /// The relay's record of the message, when it received one.
    pub received: Option<Received>,
    /// How the relay received the message (differs from the MTA's side
    /// when the middlebox intercepted TLS).
    pub relay_hop: Option<Hop>,
    /// The status line, verbatim.
    pub log_line: String,
    /// How long the message had waited in the MTA's queue when the attempt
    /// began, in milliseconds, where the MTA logs it (Postfix's `delays=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The attempt's connections through the middlebox, line by line, for
    /// the HTML report's ladders; the JSON report keeps the transcript
    /// rendered as text, as it always has.
    #[serde(skip)]
    pub connections: Vec<ConnectionRecord>,
    /// The MTA's log lines about this attempt.
    #[serde(skip)]
    pub log: Vec<String>,
}

fn status_word<S: serde::Serializer>(status: &Option<Status>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.map_or("", Status::as_str))
}

impl Attempt {
    /// An attempt that produced no status line.
    pub fn failed(error: String, wire: Wire) -> Attempt {
        Attempt {
            outcome: None,
            status: None,
            dsn: String::new(),
            reason: String::new(),
            relay: String::new(),
            tls: None,
            retried_in_clear: None,
            wire,
            received: None,
            relay_hop: None,
            log_line: String::new(),
            waited_ms: None,
            error: Some(error),
            connections: Vec::new(),
            log: Vec::new(),
        }
    }
}

/// Something about a case worth a reviewer's attention, whatever the
/// expectation said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// The message crossed the wire between the MTA and the relay in plaintext.
    PlaintextDelivery,
    /// An AUTH exchange (credentials) crossed the wire in plaintext.
    PlaintextCredentials,
    /// A middlebox terminated the MTA's TLS and could read the message.
    TlsIntercepted,
    /// The relay received the message in plaintext although the MTA used TLS.
    RelayHopPlaintext,
}

impl Finding {
    pub fn describe(self) -> &'static str {
        match self {
            Finding::PlaintextDelivery => "delivered in plaintext",
            Finding::PlaintextCredentials => "credentials sent in plaintext",
            Finding::TlsIntercepted => "TLS intercepted: a middlebox read the message",
            Finding::RelayHopPlaintext => "the relay received it in plaintext",
        }
    }
}

/// The findings of a case's attempts, in a fixed order.
pub fn findings(attempts: &[Attempt]) -> Vec<Finding> {
    let any = |f: &dyn Fn(&Attempt) -> bool| attempts.iter().any(f);
    let mut out = Vec::new();
    if any(&|a| a.outcome == Some(Outcome::DeliveredPlaintext)) {
        out.push(Finding::PlaintextDelivery);
    }
    if any(&|a| a.wire.plaintext_auth) {
        out.push(Finding::PlaintextCredentials);
    }
    if any(&|a| a.wire.intercepted && a.wire.middlebox_read_data) {
        out.push(Finding::TlsIntercepted);
    }
    if any(&|a| a.outcome == Some(Outcome::DeliveredTls) && a.relay_hop == Some(Hop::Plaintext)) {
        out.push(Finding::RelayHopPlaintext);
    }
    out
}

/// Classifies one attempt from its three witnesses. `received` is the
/// relay's record of this message from this attempt, whatever the MTA
/// logged; an outcome is given only when all three agree, and any
/// disagreement is a harness error, never a verdict.
pub fn classify(
    delivery: &Delivery,
    log_line: &str,
    tls: Option<TlsSession>,
    wire: Wire,
    received: Option<Received>,
    retried_in_clear: Option<String>,
) -> Attempt {
    let verdict = match delivery.status {
        Status::Sent => delivered(tls.is_some(), &wire, received.as_ref()),
        status @ (Status::Deferred | Status::Bounced | Status::Expired) => {
            not_delivered(status, &wire, received.as_ref())
        }
    };
    // The MTA says it gave up TLS and opened a second connection in clear:
    // the wire must have seen a connection on which it tried TLS (a
    // handshake that broke, or a STARTTLS that got no further), and another.
    let tried_tls = wire.tls_broken || wire.client_sent_starttls;
    let verdict = match (&retried_in_clear, verdict) {
        (Some(host), Ok(_)) if wire.connections < 2 || !tried_tls => Err(format!(
            "the witnesses disagree: the MTA logged delivering unencrypted to {host} after TLS failed, but the wire saw {} connection(s){}",
            wire.connections,
            if tried_tls {
                ""
            } else {
                " and no STARTTLS or broken handshake"
            }
        )),
        (_, v) => v,
    };
    let (outcome, error) = match verdict {
        Ok(o) => (Some(o), None),
        Err(e) => (None, Some(e)),
    };
    let relay_hop = received
        .as_ref()
        .map(|r| if r.tls { Hop::Tls } else { Hop::Plaintext });
    Attempt {
        outcome,
        relay_hop,
        status: Some(delivery.status),
        dsn: delivery.dsn.clone(),
        reason: delivery.reason.clone(),
        relay: delivery.relay.clone(),
        tls,
        retried_in_clear,
        wire,
        received,
        log_line: log_line.to_owned(),
        waited_ms: delivery.waited_ms,
        error,
        connections: Vec::new(),
        log: Vec::new(),
    }
}

/// `sent`: delivered over TLS when the MTA logged a TLS session, TLS
/// began on the wire and the message did not cross it in plaintext, and
/// the relay received it; in plaintext when the MTA logged no TLS, the
/// message crossed the wire in plaintext and the relay received it so.
fn delivered(mta_tls: bool, wire: &Wire, received: Option<&Received>) -> Result<Outcome, String> {
    let Some(r) = received else {
        return Err("the MTA logged status=sent but the relay recorded no message".to_owned());
    };
    if wire.incomplete {
        return Err(format!(
            "the MTA logged status=sent but {} of the attempt's connections was still open at the deadline, so the wire record is incomplete",
            wire.still_open
        ));
    }
    let tls_on_wire = wire.tls_started || wire.intercepted;
    // Intercepted: the MTA's side is TLS; the relay's side is whatever the
    // middlebox chose, reported as the relay hop.
    let relay_agrees = if wire.intercepted {
        r.tls != wire.relay_side_plaintext_data
    } else {
        r.tls
    };
    if mta_tls && tls_on_wire && !wire.plaintext_data && relay_agrees {
        return Ok(Outcome::DeliveredTls);
    }
    if !mta_tls && wire.plaintext_data && !r.tls {
        return Ok(Outcome::DeliveredPlaintext);
    }
    Err(format!(
        "the witnesses disagree: the MTA logged status=sent and {} TLS session; the wire {} TLS begin and {} the message in plaintext; the relay received it {}",
        if mta_tls { "a" } else { "no" },
        if tls_on_wire { "saw" } else { "did not see" },
        if wire.plaintext_data {
            "carried"
        } else {
            "did not carry"
        },
        if r.tls { "over TLS" } else { "in plaintext" },
    ))
}

/// `status=deferred`, `bounced` or `expired`: the relay must not have the
/// message.
fn not_delivered(
    status: Status,
    wire: &Wire,
    received: Option<&Received>,
) -> Result<Outcome, String> {
    if wire.incomplete {
        return Err(format!(
            "the MTA logged status={status} but {} of the attempt's connections was still open at the deadline, so the relay may still receive the message",
            wire.still_open
        ));
    }
    if let Some(r) = received {
        return Err(format!(
            "the witnesses disagree: the MTA logged status={status} but the relay received the message ({} from {}, {} connection(s) on the wire)",
            if r.tls { "over TLS" } else { "in plaintext" },
            r.peer,
            wire.connections
        ));
    }
    Ok(if status == Status::Deferred {
        Outcome::Deferred
    } else {
        Outcome::Bounced
    })
}

/// Why the observed attempts do not meet the expectation, if they don't.
pub fn compare(expect: &Expectation, got: &[Attempt]) -> Option<String> {
    for (i, (e, a)) in expect.attempts.iter().zip(got).enumerate() {
        if let Some(why) = compare_attempt(e, a) {
            return Some(if expect.attempts.len() > 1 {
                format!("attempt {}: {why}", i + 1)
            } else {
                why
            });
        }
    }
    if got.len() != expect.attempts.len() {
        return Some(format!(
            "expected {} delivery attempt(s), saw {}",
            expect.attempts.len(),
            got.len()
        ));
    }
    None
}

fn compare_attempt(e: &AttemptExpectation, a: &Attempt) -> Option<String> {
    let Some(outcome) = a.outcome else {
        return Some(format!(
            "expected {e}, but the attempt could not be classified: {}",
            a.error.as_deref().unwrap_or("unknown error")
        ));
    };
    if outcome != e.outcome {
        return Some(format!("expected {}, got {outcome}", e.outcome));
    }
    if let Some(dsn) = &e.dsn
        && dsn.as_str() != a.dsn
    {
        return Some(format!("expected dsn {dsn}, got {}", a.dsn));
    }
    if let Some(reason) = &e.reason
        && !a.reason.contains(reason.as_str())
    {
        return Some(format!(
            "expected the reason to contain {reason:?}, got {:?}",
            a.reason
        ));
    }
    if let Some(hop) = e.relay
        && a.relay_hop != Some(hop)
    {
        return Some(format!(
            "expected the relay to receive it over {hop}, got {}",
            a.relay_hop.map_or("nothing".to_owned(), |h| h.to_string())
        ));
    }
    if let Some(protocol) = &e.protocol {
        let got = a.tls.as_ref().map(|t| t.protocol.as_str());
        if got != Some(protocol.as_str()) {
            return Some(format!(
                "expected {protocol}, got {}",
                got.unwrap_or("no TLS session")
            ));
        }
    }
    if let Some(trust) = e.trust {
        let got = a.tls.as_ref().map(|t| t.trust);
        if got != Some(trust) {
            return Some(format!(
                "expected a {trust} TLS session, got {}",
                got.map_or("none".to_owned(), |t| t.to_string())
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Trust;

    fn classify5(
        d: &Delivery,
        line: &str,
        tls: Option<TlsSession>,
        wire: Wire,
        received: Option<Received>,
    ) -> Attempt {
        classify(d, line, tls, wire, received, None)
    }

    fn delivery(status: &str) -> Delivery {
        Delivery {
            queue_id: "ABCDEF123".into(),
            to: "x@c0.tlsharness.test".into(),
            relay: "smtp.relay.test[127.0.0.1]:4000".into(),
            dsn: "2.0.0".into(),
            status: match status {
                "sent" => Status::Sent,
                "deferred" => Status::Deferred,
                "bounced" => Status::Bounced,
                "expired" => Status::Expired,
                other => panic!("no status {other}"),
            },
            reason: "250 ok".into(),
            tls: None,
            waited_ms: None,
        }
    }

    fn received(tls: bool) -> Option<Received> {
        Some(Received {
            peer: "127.0.0.1:1".parse().unwrap(),
            helo: String::new(),
            mail_from: String::new(),
            rcpt_to: vec![],
            tls,
            size: 1,
            message_id: None,
            auth_user: None,
            auth_over_tls: None,
        })
    }

    fn session() -> Option<TlsSession> {
        Some(TlsSession {
            trust: Trust::Verified,
            host: "h".into(),
            addr: "127.0.0.1".into(),
            port: 4000,
            protocol: "TLSv1.3".into(),
            cipher: "X".into(),
        })
    }

    fn plain_wire() -> Wire {
        Wire {
            connections: 1,
            plaintext_mail: true,
            plaintext_data: true,
            ..Default::default()
        }
    }

    fn tls_wire() -> Wire {
        Wire {
            connections: 1,
            tls_started: true,
            ..Default::default()
        }
    }

    fn error_of(a: Attempt) -> String {
        assert_eq!(
            a.outcome, None,
            "expected a harness error, got {:?}",
            a.outcome
        );
        a.error.expect("an unclassified attempt says why")
    }

    #[test]
    fn agreeing_witnesses_classify() {
        let a = classify5(&delivery("sent"), "", None, plain_wire(), received(false));
        assert_eq!(a.outcome, Some(Outcome::DeliveredPlaintext));
        let a = classify5(&delivery("sent"), "", session(), tls_wire(), received(true));
        assert_eq!(a.outcome, Some(Outcome::DeliveredTls));
        let a = classify5(&delivery("deferred"), "", None, Wire::default(), None);
        assert_eq!(a.outcome, Some(Outcome::Deferred));
        let a = classify5(&delivery("bounced"), "", None, plain_wire(), None);
        assert_eq!(a.outcome, Some(Outcome::Bounced));
        let a = classify5(&delivery("expired"), "", None, Wire::default(), None);
        assert_eq!(a.outcome, Some(Outcome::Bounced));
    }

    #[test]
    fn interception_counts_as_tls_on_postfix_side() {
        let wire = Wire {
            connections: 1,
            intercepted: true,
            middlebox_read_data: true,
            relay_side_plaintext_data: true,
            ..Default::default()
        };
        let a = classify5(&delivery("sent"), "", session(), wire, received(false));
        assert_eq!(a.outcome, Some(Outcome::DeliveredTls));
        assert_eq!(a.relay_hop, Some(Hop::Plaintext));
    }

    #[test]
    fn sent_without_the_relay_having_it_is_an_error() {
        let e = error_of(classify5(
            &delivery("sent"),
            "",
            session(),
            tls_wire(),
            None,
        ));
        assert!(e.contains("relay recorded no message"), "{e}");
        let e = error_of(classify5(&delivery("sent"), "", None, plain_wire(), None));
        assert!(e.contains("relay recorded no message"), "{e}");
    }

    #[test]
    fn tls_sent_needs_tls_on_the_wire() {
        // Postfix and the relay say TLS, but no connection of the attempt
        // began TLS (e.g. an empty wire record).
        let e = error_of(classify5(
            &delivery("sent"),
            "",
            session(),
            Wire::default(),
            received(true),
        ));
        assert!(e.contains("did not see TLS begin"), "{e}");
    }

    #[test]
    fn tls_sent_with_plaintext_data_on_the_wire_is_an_error() {
        let wire = Wire {
            plaintext_data: true,
            ..tls_wire()
        };
        let e = error_of(classify5(
            &delivery("sent"),
            "",
            session(),
            wire,
            received(true),
        ));
        assert!(e.contains("carried the message in plaintext"), "{e}");
    }

    #[test]
    fn tls_sent_that_the_relay_got_in_plaintext_is_an_error() {
        let e = error_of(classify5(
            &delivery("sent"),
            "",
            session(),
            tls_wire(),
            received(false),
        ));
        assert!(e.contains("received it in plaintext"), "{e}");
    }

    #[test]
    fn plaintext_sent_needs_plaintext_data_on_the_wire() {
        let e = error_of(classify5(
            &delivery("sent"),
            "",
            None,
            Wire::default(),
            received(false),
        ));
        assert!(e.contains("did not carry the message in plaintext"), "{e}");
    }

    #[test]
    fn plaintext_sent_that_the_relay_got_over_tls_is_an_error() {
        let e = error_of(classify5(
            &delivery("sent"),
            "",
            None,
            plain_wire(),
            received(true),
        ));
        assert!(e.contains("received it over TLS"), "{e}");
    }

    #[test]
    fn sent_with_a_connection_still_open_is_an_error() {
        let e = error_of(classify5(
            &delivery("sent"),
            "",
            session(),
            tls_wire().with_open(1),
            received(true),
        ));
        assert!(e.contains("still open"), "{e}");
    }

    #[test]
    fn not_delivered_but_the_relay_has_it_is_an_error() {
        for status in ["deferred", "bounced", "expired"] {
            let e = error_of(classify5(
                &delivery(status),
                "",
                None,
                plain_wire(),
                received(false),
            ));
            assert!(
                e.contains(&format!("status={status} but the relay received")),
                "{e}"
            );
        }
    }

    #[test]
    fn not_delivered_with_a_connection_still_open_is_an_error() {
        let e = error_of(classify5(
            &delivery("deferred"),
            "",
            None,
            tls_wire().with_open(1),
            None,
        ));
        assert!(e.contains("still open"), "{e}");
    }

    #[test]
    fn a_clear_retry_the_wire_did_not_see_is_a_disagreement() {
        // The MTA says it gave up TLS and went on in clear on a new
        // connection; a wire with one connection contradicts it.
        let e = error_of(classify(
            &delivery("sent"),
            "",
            None,
            plain_wire(),
            received(false),
            Some("H=smtp.relay.test [127.0.1.1] (not in hosts_require_tls)".into()),
        ));
        assert!(e.contains("delivering unencrypted"), "{e}");
        let both = Wire {
            connections: 2,
            tls_broken: true,
            ..plain_wire()
        };
        let a = classify(
            &delivery("sent"),
            "",
            None,
            both,
            received(false),
            Some("H=smtp.relay.test [127.0.1.1] (not in hosts_require_tls)".into()),
        );
        assert_eq!(a.outcome, Some(Outcome::DeliveredPlaintext));
    }

    #[test]
    fn compare_checks_dsn_reason_and_trust() {
        let mut d = delivery("deferred");
        d.dsn = "4.7.4".into();
        d.reason = "TLS is required, but was not offered by host x".into();
        let got = vec![classify5(&d, "", None, Wire::default(), None)];
        let mut e = AttemptExpectation::outcome(Outcome::Deferred);
        e.dsn = Some(crate::scenario::Dsn::parse("4.7.4").unwrap());
        e.reason = Some("was not offered".into());
        let expect = Expectation {
            attempts: vec![e.clone()],
        };
        assert_eq!(compare(&expect, &got), None);
        e.reason = Some("refused".into());
        let expect = Expectation { attempts: vec![e] };
        assert!(compare(&expect, &got).unwrap().contains("reason"));
        let tls = Expectation {
            attempts: vec![AttemptExpectation {
                trust: Some(Trust::Verified),
                ..AttemptExpectation::outcome(Outcome::Deferred)
            }],
        };
        assert!(compare(&tls, &got).unwrap().contains("verified"));
    }
}

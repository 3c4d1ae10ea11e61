//! Current against candidate: what changed on each path, whether the
//! change makes mail less safe (DOWNGRADE), returns it to its sender
//! (BOUNCE) or stops it (OUTAGE), and why, in one line.

use std::fmt;

use serde::Serialize;

use crate::outcome::{Outcome, Trust};
use crate::run::Attempt;
use crate::scenario::Hop;

/// How a path's result changed from the current to the candidate config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Same,
    /// Less protection: plaintext where there was TLS or no delivery,
    /// weaker trust, credentials or the relay hop newly in plaintext.
    Downgrade,
    /// Mail that was delivered or waiting in the queue is now returned to
    /// its sender: unlike a deferral, nothing retries it.
    Bounce,
    /// Mail that was delivered now waits in the queue.
    Outage,
    /// More protection, and mail still flows.
    Upgrade,
    /// Different, neither safer nor less safe (e.g. bounced -> deferred,
    /// or a deferral with another reason).
    Changed,
    /// The scenario does not say what happens on the port one side's
    /// configuration relays to: no finding either way, and never a gate.
    NotModelled,
    /// One side has no classified outcome (the attempt timed out or the
    /// witnesses disagreed): a harness failure, not a finding about the
    /// configurations.
    Unknown,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Same => "same",
            Verdict::Downgrade => "DOWNGRADE",
            Verdict::Bounce => "BOUNCE",
            Verdict::Outage => "OUTAGE",
            Verdict::Upgrade => "upgrade",
            Verdict::Changed => "changed",
            Verdict::NotModelled => "not-modelled",
            Verdict::Unknown => "UNKNOWN (harness error)",
        })
    }
}

fn trust_rank(t: Option<Trust>) -> u8 {
    match t {
        None | Some(Trust::Anonymous) => 0,
        Some(Trust::Untrusted) => 1,
        Some(Trust::Trusted) => 2,
        Some(Trust::Verified) => 3,
    }
}

/// How well protected a delivered message was; `None` when not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Protection {
    /// 0 plaintext, 1 TLS to the first hop only, 2 TLS to the relay too.
    hop: u8,
    trust: u8,
    /// Whether credentials stayed off the plaintext wire.
    credentials_safe: bool,
}

impl Protection {
    /// Delivered over TLS the harness verified end to end, with credentials
    /// safe: the only way a newly flowing path is not a downgrade.
    const FULL: Protection = Protection {
        hop: 2,
        trust: 3,
        credentials_safe: true,
    };

    fn of(a: &Attempt) -> Option<Protection> {
        let credentials_safe = !a.wire.plaintext_auth;
        match a.outcome? {
            Outcome::DeliveredPlaintext => Some(Protection {
                hop: 0,
                trust: 0,
                credentials_safe,
            }),
            Outcome::DeliveredTls => Some(Protection {
                hop: 1 + u8::from(a.relay_hop != Some(Hop::Plaintext)),
                trust: trust_rank(a.tls.as_ref().map(|t| t.trust)),
                credentials_safe,
            }),
            Outcome::Deferred | Outcome::Bounced => None,
        }
    }

    /// Field by field: any part weaker is a downgrade, even when another
    /// part got stronger; otherwise any part stronger is an upgrade.
    fn compare(self, candidate: Protection) -> Verdict {
        let weaker = candidate.hop < self.hop
            || candidate.trust < self.trust
            || (self.credentials_safe && !candidate.credentials_safe);
        let stronger = candidate.hop > self.hop
            || candidate.trust > self.trust
            || (!self.credentials_safe && candidate.credentials_safe);
        if weaker {
            Verdict::Downgrade
        } else if stronger {
            Verdict::Upgrade
        } else {
            Verdict::Changed
        }
    }
}

impl Verdict {
    /// Whether the verdict fails a gate (exit 5) unless allowed.
    pub fn gates(self) -> bool {
        matches!(self, Verdict::Downgrade | Verdict::Bounce | Verdict::Outage)
    }
}

/// Whether the candidate newly sends the credentials in plaintext: a
/// secret lost whatever then happens to the message.
fn leaks_credentials(current: &Attempt, candidate: &Attempt) -> bool {
    candidate.wire.plaintext_auth && !current.wire.plaintext_auth
}

/// Compares one path's attempt under both configurations.
pub fn verdict(current: &Attempt, candidate: &Attempt) -> Verdict {
    verdict_at(current, candidate, None)
}

/// The least a delivery must have for mail the current configuration
/// deferred to count as an upgrade once it flows: what the current TLS
/// level itself demands of any path. `encrypt` asks for TLS and checks no
/// certificate (Postfix logs such a session `Trusted` or `Untrusted`, never
/// `Verified`), so TLS to the relay itself, credentials safe, is all it
/// would have accepted; every other level (or none known) keeps the
/// strictest bar.
fn bar(current_level: Option<&str>) -> Protection {
    match current_level {
        Some("encrypt") => Protection {
            hop: 2,
            trust: 0,
            credentials_safe: true,
        },
        _ => Protection::FULL,
    }
}

impl Protection {
    fn meets(self, bar: Protection) -> bool {
        self.hop >= bar.hop
            && self.trust >= bar.trust
            && (self.credentials_safe || !bar.credentials_safe)
    }
}

/// As [`verdict`], knowing the TLS level the current configuration applied
/// on the path (Postfix's own answer, e.g. `encrypt`).
pub fn verdict_at(current: &Attempt, candidate: &Attempt, current_level: Option<&str>) -> Verdict {
    if current.outcome.is_none() || candidate.outcome.is_none() {
        return Verdict::Unknown;
    }
    let same = current.outcome == candidate.outcome
        && current.dsn == candidate.dsn
        && current.tls.as_ref().map(|t| t.trust) == candidate.tls.as_ref().map(|t| t.trust)
        && current.relay_hop == candidate.relay_hop
        && current.wire.plaintext_auth == candidate.wire.plaintext_auth;
    if same {
        return Verdict::Same;
    }
    if leaks_credentials(current, candidate) {
        return Verdict::Downgrade;
    }
    if candidate.outcome == Some(Outcome::Bounced) && current.outcome != Some(Outcome::Bounced) {
        return Verdict::Bounce;
    }
    match (Protection::of(current), Protection::of(candidate)) {
        (Some(_), None) => Verdict::Outage,
        // Mail now flows where it used to wait: fine only when it flows
        // as protected as the current level demands (verified end to end
        // unless that level is `encrypt`); otherwise the candidate accepts
        // a path the current config refused (plaintext, or TLS it cannot
        // vouch for).
        (None, Some(p)) if p.meets(bar(current_level)) => Verdict::Upgrade,
        (None, Some(_)) => Verdict::Downgrade,
        (None, None) => Verdict::Changed,
        (Some(a), Some(b)) => a.compare(b),
    }
}

/// One side's result as the report's cell shows it, credentials included.
pub fn state(a: &Attempt) -> String {
    let mut text = crate::report::attempt_cell(a);
    if a.wire.plaintext_auth && !text.contains("CREDENTIALS") {
        text.push_str(" +CREDENTIALS");
    }
    text
}

/// Why the verdict is what it is, in one line (`None` for `same`):
/// both results, then what the change means for the mail.
pub fn why(current: &Attempt, candidate: &Attempt, v: Verdict) -> Option<String> {
    let meaning = match v {
        Verdict::Same => return None,
        // Said by the comparison, which knows the rows (check::report).
        Verdict::NotModelled => return None,
        Verdict::Unknown => {
            let (side, a) = if current.outcome.is_none() {
                ("current", current)
            } else {
                ("candidate", candidate)
            };
            return Some(format!(
                "the {side} side has no classified outcome ({}): a harness failure, not a finding about the configurations",
                a.error.as_deref().unwrap_or("no status line")
            ));
        }
        Verdict::Downgrade => downgrade_meaning(current, candidate),
        Verdict::Bounce => {
            if current.outcome == Some(Outcome::Deferred) {
                "mail is returned to the sender instead of waiting in the queue".to_owned()
            } else {
                "mail that was delivered is returned to the sender".to_owned()
            }
        }
        Verdict::Outage => "mail that was delivered now waits in the queue".to_owned(),
        Verdict::Upgrade => match current.outcome {
            Some(Outcome::Deferred | Outcome::Bounced)
                if Protection::of(candidate) == Some(Protection::FULL) =>
            {
                "mail that was not delivered now is, over TLS verified end to end".to_owned()
            }
            Some(Outcome::Deferred | Outcome::Bounced) => {
                "mail that was not delivered now is, over TLS to the relay itself, as much as the current TLS level (encrypt) demands".to_owned()
            }
            _ => "mail is still delivered, better protected".to_owned(),
        },
        Verdict::Changed => match (current.outcome, candidate.outcome) {
            (Some(Outcome::Bounced), Some(Outcome::Deferred)) => {
                "mail waits in the queue instead of being returned to the sender".to_owned()
            }
            (Some(Outcome::Deferred), Some(Outcome::Deferred)) => {
                "still waiting in the queue, for another reason".to_owned()
            }
            (Some(Outcome::Bounced), Some(Outcome::Bounced)) => {
                "still returned to the sender, for another reason".to_owned()
            }
            _ => "delivered either way, neither better nor worse protected".to_owned(),
        },
    };
    Some(format!(
        "{} -> {}: {meaning}",
        state(current),
        state(candidate)
    ))
}

fn downgrade_meaning(current: &Attempt, candidate: &Attempt) -> String {
    if leaks_credentials(current, candidate) {
        return match candidate.outcome {
            Some(Outcome::DeliveredPlaintext) => {
                "the SASL credentials and the mail now cross the network in plaintext".to_owned()
            }
            _ => "the SASL credentials now cross the network in plaintext".to_owned(),
        };
    }
    match (Protection::of(current), Protection::of(candidate)) {
        (None, Some(p)) if p.hop == 0 => {
            "mail that waited in the queue is now delivered in plaintext".to_owned()
        }
        (None, Some(_)) => {
            "mail that waited in the queue is now delivered over TLS not verified end to end"
                .to_owned()
        }
        (Some(a), Some(b)) if b.hop < a.hop && b.hop == 0 => {
            "mail now crosses the network in plaintext".to_owned()
        }
        (Some(a), Some(b)) if b.hop < a.hop => {
            "the hop to the relay now carries the mail in plaintext".to_owned()
        }
        (Some(a), Some(b)) if b.trust < a.trust => {
            "the relay's certificate is now checked less strictly".to_owned()
        }
        _ => "mail is less protected".to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mta::log::TlsSession;
    use crate::run::Wire;

    fn attempt(outcome: Outcome, trust: Option<Trust>) -> Attempt {
        let mut a = Attempt::failed(String::new(), Wire::default());
        a.outcome = Some(outcome);
        a.error = None;
        a.tls = trust.map(|trust| TlsSession {
            trust,
            host: String::new(),
            addr: String::new(),
            port: 0,
            protocol: String::new(),
            cipher: String::new(),
        });
        a
    }

    #[test]
    fn the_incident_change_is_a_downgrade() {
        let deferred = attempt(Outcome::Deferred, None);
        let plain = attempt(Outcome::DeliveredPlaintext, None);
        assert_eq!(verdict(&deferred, &plain), Verdict::Downgrade);
        assert_eq!(verdict(&plain, &deferred), Verdict::Outage);
    }

    #[test]
    fn deferred_to_delivered_is_an_upgrade_only_at_the_current_level_s_bar() {
        // The incident's fix that works: encrypt on 587 deferred (STARTTLS
        // stripped); encrypt on 465 delivers over TLS to the relay itself.
        // encrypt checks no certificate, so `Trusted` is all it asks.
        let deferred = attempt(Outcome::Deferred, None);
        let trusted = attempt(Outcome::DeliveredTls, Some(Trust::Trusted));
        let untrusted = attempt(Outcome::DeliveredTls, Some(Trust::Untrusted));
        let plain = attempt(Outcome::DeliveredPlaintext, None);
        let at = |a, b, level| verdict_at(a, b, Some(level));
        assert_eq!(at(&deferred, &trusted, "encrypt"), Verdict::Upgrade);
        assert_eq!(at(&deferred, &untrusted, "encrypt"), Verdict::Upgrade);
        assert_eq!(at(&deferred, &plain, "encrypt"), Verdict::Downgrade);
        // Where the current level verifies, the candidate must too.
        assert_eq!(at(&deferred, &trusted, "verify"), Verdict::Downgrade);
        assert_eq!(at(&deferred, &trusted, "secure"), Verdict::Downgrade);
        assert_eq!(verdict(&deferred, &trusted), Verdict::Downgrade);
        // TLS only as far as an intercepting middlebox is not TLS to the
        // relay, whatever the level.
        let mut intercepted = trusted.clone();
        intercepted.relay_hop = Some(Hop::Plaintext);
        assert_eq!(at(&deferred, &intercepted, "encrypt"), Verdict::Downgrade);
        let v = at(&deferred, &trusted, "encrypt");
        let said = why(&deferred, &trusted, v).unwrap();
        assert!(said.contains("over TLS to the relay itself"), "{said}");
    }

    #[test]
    fn trust_and_protection_order() {
        let verified = attempt(Outcome::DeliveredTls, Some(Trust::Verified));
        let trusted = attempt(Outcome::DeliveredTls, Some(Trust::Trusted));
        let plain = attempt(Outcome::DeliveredPlaintext, None);
        assert_eq!(verdict(&verified, &trusted), Verdict::Downgrade);
        assert_eq!(verdict(&trusted, &verified), Verdict::Upgrade);
        assert_eq!(verdict(&plain, &trusted), Verdict::Upgrade);
        assert_eq!(verdict(&trusted, &trusted.clone()), Verdict::Same);
        let bounced = attempt(Outcome::Bounced, None);
        let deferred = attempt(Outcome::Deferred, None);
        assert_eq!(verdict(&bounced, &deferred), Verdict::Changed);
    }

    fn with_dsn(mut a: Attempt, dsn: &str) -> Attempt {
        a.dsn = dsn.to_owned();
        a
    }

    #[test]
    fn a_delivery_or_deferral_turned_bounce_is_its_own_gating_verdict() {
        let deferred = with_dsn(attempt(Outcome::Deferred, None), "4.7.4");
        let bounced = with_dsn(attempt(Outcome::Bounced, None), "5.7.0");
        let delivered = attempt(Outcome::DeliveredTls, Some(Trust::Trusted));
        assert_eq!(verdict(&deferred, &bounced), Verdict::Bounce);
        assert_eq!(verdict(&delivered, &bounced), Verdict::Bounce);
        assert!(Verdict::Bounce.gates());
        assert_eq!(
            why(&deferred, &bounced, Verdict::Bounce).unwrap(),
            "deferred 4.7.4 -> bounced 5.7.0: mail is returned to the sender instead of waiting in the queue"
        );
        assert_eq!(
            why(&delivered, &bounced, Verdict::Bounce).unwrap(),
            "tls trusted -> bounced 5.7.0: mail that was delivered is returned to the sender"
        );
        assert_eq!(
            why(&bounced, &deferred, Verdict::Changed).unwrap(),
            "bounced 5.7.0 -> deferred 4.7.4: mail waits in the queue instead of being returned to the sender"
        );
    }

    #[test]
    fn credentials_newly_in_plaintext_are_a_downgrade_whatever_the_outcome() {
        let deferred = with_dsn(attempt(Outcome::Deferred, None), "4.7.4");
        let mut leaked = attempt(Outcome::DeliveredPlaintext, None);
        leaked.wire.plaintext_auth = true;
        let v = verdict(&deferred, &leaked);
        assert_eq!(v, Verdict::Downgrade);
        assert_eq!(
            why(&deferred, &leaked, v).unwrap(),
            "deferred 4.7.4 -> PLAINTEXT +CREDENTIALS: the SASL credentials and the mail now cross the network in plaintext"
        );
        let mut leaked_then_bounced = with_dsn(attempt(Outcome::Bounced, None), "5.7.8");
        leaked_then_bounced.wire.plaintext_auth = true;
        assert_eq!(verdict(&deferred, &leaked_then_bounced), Verdict::Downgrade);
    }

    #[test]
    fn every_verdict_but_same_says_why() {
        let plain = attempt(Outcome::DeliveredPlaintext, None);
        let verified = attempt(Outcome::DeliveredTls, Some(Trust::Verified));
        let deferred = with_dsn(attempt(Outcome::Deferred, None), "4.7.4");
        let failed = Attempt::failed("timed out".to_owned(), Wire::default());
        assert_eq!(why(&plain, &plain, Verdict::Same), None);
        for (a, b) in [
            (&deferred, &plain),
            (&plain, &deferred),
            (&plain, &verified),
            (&verified, &plain),
            (&plain, &failed),
        ] {
            let v = verdict(a, b);
            let text = why(a, b, v).unwrap_or_default();
            assert!(!text.is_empty() && !text.contains('\n'), "{v}: {text:?}");
        }
        assert_eq!(
            why(&verified, &plain, Verdict::Downgrade).unwrap(),
            "tls verified -> PLAINTEXT: mail now crosses the network in plaintext"
        );
        assert!(
            why(&plain, &failed, Verdict::Unknown)
                .unwrap()
                .starts_with("the candidate side has no classified outcome (timed out)")
        );
    }

    #[test]
    fn credentials_in_plaintext_outweigh_stronger_trust() {
        let trusted = attempt(Outcome::DeliveredTls, Some(Trust::Trusted));
        let mut verified = attempt(Outcome::DeliveredTls, Some(Trust::Verified));
        verified.wire.plaintext_auth = true;
        assert_eq!(verdict(&trusted, &verified), Verdict::Downgrade);
    }

    /// What classification makes of a status line its other witnesses
    /// contradict: the line is kept, the outcome is not.
    pub(crate) fn disagreeing() -> Attempt {
        let mut a = attempt(Outcome::DeliveredTls, Some(Trust::Verified));
        a.status = Some(crate::mta::log::Status::Sent);
        a.outcome = None;
        a.error = Some(
            "the witnesses disagree: Postfix logged a TLS session, the wire carried the message in plaintext, the relay received it in plaintext".to_owned(),
        );
        a
    }

    #[test]
    fn a_witness_disagreement_on_either_side_is_unknown() {
        let disagreeing = disagreeing();
        for other in [
            attempt(Outcome::DeliveredTls, Some(Trust::Verified)),
            attempt(Outcome::DeliveredPlaintext, None),
            attempt(Outcome::Deferred, None),
            disagreeing.clone(),
        ] {
            assert_eq!(verdict(&other, &disagreeing), Verdict::Unknown);
            assert_eq!(verdict(&disagreeing, &other), Verdict::Unknown);
        }
        assert_eq!(Verdict::Unknown.to_string(), "UNKNOWN (harness error)");
    }

    #[test]
    fn an_unclassified_side_is_unknown_not_an_outage() {
        let plain = attempt(Outcome::DeliveredPlaintext, None);
        let failed = Attempt::failed("timed out".to_owned(), Wire::default());
        assert_eq!(verdict(&plain, &failed), Verdict::Unknown);
        assert_eq!(verdict(&failed, &plain), Verdict::Unknown);
    }
}

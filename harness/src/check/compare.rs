//! Current against candidate: what changed on each path, and whether the
//! change makes mail less safe (DOWNGRADE) or stops it (OUTAGE).

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
    /// Mail that was delivered is now deferred or bounced.
    Outage,
    /// More protection, and mail still flows.
    Upgrade,
    /// Different, neither safer nor less safe (e.g. deferred -> bounced).
    Changed,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Same => "same",
            Verdict::Downgrade => "DOWNGRADE",
            Verdict::Outage => "OUTAGE",
            Verdict::Upgrade => "upgrade",
            Verdict::Changed => "changed",
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
fn protection(a: &Attempt) -> Option<(u8, u8, u8)> {
    let creds = u8::from(!a.wire.plaintext_auth);
    match a.outcome? {
        Outcome::DeliveredPlaintext => Some((0, 0, creds)),
        Outcome::DeliveredTls => {
            let relay = u8::from(a.relay_hop != Some(Hop::Plaintext));
            Some((
                1 + relay,
                trust_rank(a.tls.as_ref().map(|t| t.trust)),
                creds,
            ))
        }
        Outcome::Deferred | Outcome::Bounced => None,
    }
}

/// Compares one path's attempt under both configurations.
pub fn verdict(current: &Attempt, candidate: &Attempt) -> Verdict {
    let same = current.outcome == candidate.outcome
        && current.dsn == candidate.dsn
        && current.tls.as_ref().map(|t| t.trust) == candidate.tls.as_ref().map(|t| t.trust)
        && current.relay_hop == candidate.relay_hop
        && current.wire.plaintext_auth == candidate.wire.plaintext_auth;
    if same {
        return Verdict::Same;
    }
    match (protection(current), protection(candidate)) {
        (Some(_), None) => Verdict::Outage,
        // Mail now flows where it used to wait: fine only when it flows
        // verified end to end; otherwise the candidate accepts a path the
        // current config refused (plaintext, or TLS it cannot vouch for).
        (None, Some((2, 3, 1))) => Verdict::Upgrade,
        (None, Some(_)) => Verdict::Downgrade,
        (None, None) => Verdict::Changed,
        (Some(a), Some(b)) if b < a => Verdict::Downgrade,
        (Some(a), Some(b)) if b > a => Verdict::Upgrade,
        (Some(_), Some(_)) => Verdict::Changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postfix::log::TlsSession;
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
        assert_eq!(verdict(&deferred, &bounced), Verdict::Changed);
    }
}

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
            Verdict::Outage => "OUTAGE",
            Verdict::Upgrade => "upgrade",
            Verdict::Changed => "changed",
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

/// Compares one path's attempt under both configurations.
pub fn verdict(current: &Attempt, candidate: &Attempt) -> Verdict {
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
    match (Protection::of(current), Protection::of(candidate)) {
        (Some(_), None) => Verdict::Outage,
        // Mail now flows where it used to wait: fine only when it flows
        // verified end to end; otherwise the candidate accepts a path the
        // current config refused (plaintext, or TLS it cannot vouch for).
        (None, Some(p)) if p == Protection::FULL => Verdict::Upgrade,
        (None, Some(_)) => Verdict::Downgrade,
        (None, None) => Verdict::Changed,
        (Some(a), Some(b)) => a.compare(b),
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
        a.status = "sent".to_owned();
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

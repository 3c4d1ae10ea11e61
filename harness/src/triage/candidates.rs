//! The standard candidates, what each changes, and how each is predicted
//! to fare against the current configuration on every next hop.

use super::hops::NextHop;
use super::path::{PathObservation, PortPlan};
use super::predict::{Predicted, Side, compare, predict_side};
use crate::check::Verdict;
use crate::level::Level;
use crate::outcome::Outcome;

/// A change people make (or should make) after a TLS failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// (a) `smtp_tls_security_level = may`: the incident's own "fix".
    May,
    /// (b) the relayhost on 465, wrapper mode, `encrypt`.
    Wrapper465Encrypt,
    /// (c) the same with `secure`, where the 465 certificate verifies.
    Wrapper465Secure,
}

impl Candidate {
    pub const ALL: [Candidate; 3] = [
        Candidate::May,
        Candidate::Wrapper465Encrypt,
        Candidate::Wrapper465Secure,
    ];

    /// The candidate's directory name under `--out-dir`.
    pub fn slug(self) -> &'static str {
        match self {
            Candidate::May => "candidate-may",
            Candidate::Wrapper465Encrypt => "candidate-465-encrypt",
            Candidate::Wrapper465Secure => "candidate-465-secure",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Candidate::May => "(a) smtp_tls_security_level = may",
            Candidate::Wrapper465Encrypt => {
                "(b) relayhost on 465, smtp_tls_wrappermode = yes, encrypt"
            }
            Candidate::Wrapper465Secure => {
                "(c) relayhost on 465, smtp_tls_wrappermode = yes, secure"
            }
        }
    }

    /// The main.cf parameters it sets, given the relayhost's hop (if any).
    pub fn changes(self, relayhost: Option<&NextHop>) -> Option<Vec<(String, String)>> {
        let set = |k: &str, v: String| (k.to_owned(), v);
        match self {
            Candidate::May => Some(vec![set("smtp_tls_security_level", "may".into())]),
            Candidate::Wrapper465Encrypt | Candidate::Wrapper465Secure => {
                let hop = relayhost?;
                let level = self.level().as_str().to_owned();
                Some(vec![
                    set("relayhost", format!("[{}]:465", hop.relay.host)),
                    set("smtp_tls_wrappermode", "yes".into()),
                    set("smtp_tls_security_level", level),
                ])
            }
        }
    }

    /// Whether the candidate moves the relayhost (and so its SASL key).
    pub fn moves_relayhost(self) -> bool {
        self != Candidate::May
    }

    fn level(self) -> Level {
        match self {
            Candidate::May => Level::May,
            Candidate::Wrapper465Encrypt => Level::Encrypt,
            Candidate::Wrapper465Secure => Level::Secure,
        }
    }

    /// The side the candidate takes toward `hop`: `None` when the
    /// candidate leaves that hop alone.
    fn side(self, hop: &NextHop, current: Side) -> Option<Side> {
        match self {
            Candidate::May => Some(Side {
                level: Level::May,
                ..current
            }),
            _ if !hop.is_relayhost() => None,
            _ => Some(Side {
                port: PortPlan {
                    port: 465,
                    implicit_tls: true,
                },
                level: self.level(),
            }),
        }
    }
}

/// One candidate on one hop.
#[derive(Clone, Debug)]
pub struct CandidateOutlook {
    pub candidate: Candidate,
    pub predicted: Predicted,
    pub verdict: Verdict,
    pub why: Option<String>,
}

/// Everything predicted about one next hop.
#[derive(Clone, Debug)]
pub struct HopOutlook {
    pub hop: NextHop,
    /// The current configuration's prediction, or why there is none.
    pub current: Result<Predicted, String>,
    pub candidates: Vec<CandidateOutlook>,
    /// Candidates not offered on this hop, and why.
    pub withheld: Vec<(Candidate, String)>,
}

impl HopOutlook {
    /// The candidate to take: the strongest upgrade, `secure` before
    /// `encrypt`; never one predicted to downgrade or stop mail.
    pub fn recommended(&self) -> Option<&CandidateOutlook> {
        self.candidates
            .iter()
            .rev()
            .find(|c| c.verdict == Verdict::Upgrade)
    }

    /// Whether the current configuration already delivers over TLS here.
    pub fn current_is_fine(&self) -> bool {
        self.current
            .as_ref()
            .is_ok_and(|p| p.attempt.outcome == Some(Outcome::DeliveredTls))
    }
}

impl NextHop {
    pub fn is_relayhost(&self) -> bool {
        self.mail.ends_with("(relayhost)")
    }
}

/// The ports the path is probed on: the standard ones and every port a
/// side (current or candidate) uses.
pub fn ports_for(hop: &NextHop, standard: Vec<PortPlan>) -> Vec<PortPlan> {
    let mut ports = standard;
    let own = PortPlan {
        port: hop.relay.port,
        implicit_tls: hop.wrapper_mode,
    };
    if !ports.contains(&own) {
        ports.insert(0, own);
    }
    ports
}

/// The current configuration and every candidate on `hop`'s path.
pub fn outlook(hop: &NextHop, path: &PathObservation, sasl: bool) -> HopOutlook {
    let mut out = HopOutlook {
        hop: hop.clone(),
        current: Err(String::new()),
        candidates: Vec::new(),
        withheld: Vec::new(),
    };
    let side = match Side::current(hop) {
        Ok(s) => s,
        Err(why) => {
            out.current = Err(why);
            return out;
        }
    };
    let current = predict_side(path, side, sasl);
    for candidate in Candidate::ALL {
        let Some(cand_side) = candidate.side(hop, side) else {
            out.withheld.push((
                candidate,
                "it changes relayhost, which does not carry this mail".into(),
            ));
            continue;
        };
        if cand_side == side {
            out.withheld.push((
                candidate,
                "the current configuration already does this".into(),
            ));
            continue;
        }
        let predicted = predict_side(path, cand_side, sasl);
        if let Some(error) = predicted.attempt.error.clone() {
            out.withheld
                .push((candidate, format!("no prediction: {error}")));
            continue;
        }
        if candidate == Candidate::Wrapper465Secure
            && predicted.attempt.outcome != Some(Outcome::DeliveredTls)
        {
            out.withheld.push((
                candidate,
                format!(
                    "the certificate on 465 is not predicted to verify for {} (secure would defer: {})",
                    path.server_name,
                    predicted.words()
                ),
            ));
            continue;
        }
        let (verdict, why) = compare(&current, &predicted);
        out.candidates.push(CandidateOutlook {
            candidate,
            predicted,
            verdict,
            why,
        });
    }
    out.current = Ok(current);
    out
}

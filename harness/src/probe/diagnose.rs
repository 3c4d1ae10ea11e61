//! From what the probe saw to a relay that replays it: the replay itself,
//! the certificate kind and TLS versions that reproduce the session, and
//! the differences from a clean relay, in words, each at its place.

use super::certs::CertProblem;
use super::observation::{Lost, Observation, Starttls, TlsObservation};
use crate::pki::CertKind;
use crate::tls::{HandshakeBreak, TlsVersions};
use crate::upstream::{DropKind, Handshake, RecordedReply, ReplaySpec, StarttlsAnswer};

/// Where a finding is written in the scenario file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Greeting,
    Ehlo,
    Starttls,
    Certificate,
    TlsVersions,
    TlsEhlo,
}

/// One difference from a clean relay, or a caveat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub place: Place,
    pub text: String,
}

/// The relay that replays the observation.
#[derive(Clone, Debug)]
pub struct Diagnosis {
    pub replay: ReplaySpec,
    /// Whether Postfix sees STARTTLS in the EHLO reply (and says EHLO at all).
    pub postfix_sees_starttls: bool,
    /// Set when a TLS session completes.
    pub certificate: Option<CertKind>,
    /// Whether Postfix trusts the run's CA.
    pub trust_ca: bool,
    pub tls_versions: TlsVersions,
    /// smtp client settings the scenario needs, with the reason.
    pub settings: Vec<(String, String, String)>,
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    pub fn at(&self, place: Place) -> impl Iterator<Item = &str> {
        self.findings
            .iter()
            .filter(move |f| f.place == place)
            .map(|f| f.text.as_str())
    }
}

/// How long Postfix is to wait for a path that never answers.
const SHORT_STARTTLS_TIMEOUT: &str = "5s";

pub fn diagnose(obs: &Observation) -> Diagnosis {
    let mut d = Diagnosis {
        replay: ReplaySpec {
            greeting: obs.greeting.clone(),
            ehlo: obs.ehlo.clone(),
            starttls: None,
            tls_ehlo: None,
        },
        postfix_sees_starttls: false,
        certificate: None,
        trust_ca: true,
        tls_versions: TlsVersions::Any,
        settings: Vec::new(),
        findings: Vec::new(),
    };
    if let Some(tls) = &obs.implicit_tls {
        d.implicit_tls(obs, tls);
        return d;
    }
    let pix = pix_banner(&obs.greeting);
    if pix {
        d.note(
            Place::Greeting,
            "the greeting is all asterisks: consistent with mask-banner (Cisco PIX \"SMTP fixup\"); Postfix turns on its PIX workarounds and says HELO, so it never learns of STARTTLS (the probe said EHLO anyway)",
        );
    }
    let ehlo_ok = obs.ehlo.code() / 100 == 2;
    if !ehlo_ok {
        d.note(
            Place::Ehlo,
            format!(
                "EHLO was refused (`{}`): Postfix falls back to HELO and sees no extensions, STARTTLS included",
                obs.ehlo
            ),
        );
    } else if !obs.ehlo.lists_starttls() {
        d.note(Place::Ehlo, missing_starttls(&obs.ehlo));
    }
    d.postfix_sees_starttls = !pix && obs.ehlo.lists_starttls();

    let step = obs.step_timeout.as_secs_f64();
    d.replay.starttls = match &obs.starttls {
        Starttls::NotOffered => None,
        Starttls::Refused(reply) => {
            d.note(
                Place::Starttls,
                format!(
                    "STARTTLS answered `{reply}`: consistent with reject-starttls (a device that advertises STARTTLS but refuses it), or the relay's own refusal"
                ),
            );
            Some(StarttlsAnswer::Refuse {
                reply: reply.clone(),
            })
        }
        Starttls::NoReply(lost) => {
            let (kind, text) = match lost {
                Lost::Closed => (
                    DropKind::Close,
                    "the connection was closed when the probe sent STARTTLS: consistent with drop-on-starttls (a firewall that drops commands it does not allow)".to_owned(),
                ),
                Lost::Reset => (
                    DropKind::Reset,
                    "the connection was reset when the probe sent STARTTLS: consistent with drop-on-starttls (how = \"reset\")".to_owned(),
                ),
                Lost::Silent => (
                    DropKind::Silence,
                    format!("STARTTLS got no reply within {step}s: consistent with stall (a half-dead middlebox)"),
                ),
            };
            d.note(Place::Starttls, text);
            if kind == DropKind::Silence {
                d.shorten_starttls_timeout();
            }
            Some(StarttlsAnswer::Drop(kind))
        }
        Starttls::HandshakeFailed { reply, failure } => {
            let mode = failure.kind.as_str();
            d.note(
                Place::Starttls,
                format!(
                    "STARTTLS was accepted (`{reply}`), then the TLS handshake failed ({}): consistent with fail-handshake (mode = \"{mode}\")",
                    failure.detail
                ),
            );
            let detail = failure.detail.to_ascii_lowercase();
            if failure.kind == HandshakeBreak::Alert
                && (detail.contains("incompatible") || detail.contains("protocolversion"))
            {
                d.note(
                    Place::Starttls,
                    "the probe speaks TLS 1.2 and 1.3 only: a relay limited to older versions fails here too, and Postfix may fare differently",
                );
            }
            if failure.kind == HandshakeBreak::Silence {
                d.shorten_starttls_timeout();
            }
            Some(StarttlsAnswer::Accept {
                reply: reply.clone(),
                handshake: Handshake::Broken(failure.kind),
            })
        }
        Starttls::Established { reply, tls } => {
            d.established(obs, tls);
            Some(StarttlsAnswer::Accept {
                reply: reply.clone(),
                handshake: Handshake::Complete,
            })
        }
    };
    if let Some(early) = &obs.behind_starttls_reply {
        d.note(
            Place::Starttls,
            format!(
                "`{early}` came right behind the STARTTLS reply: consistent with inject (STARTTLS response injection); Postfix discards input buffered before the handshake, so the replay leaves it out"
            ),
        );
    }
    d
}

impl Diagnosis {
    fn note(&mut self, place: Place, text: impl Into<String>) {
        self.findings.push(Finding {
            place,
            text: text.into(),
        });
    }

    fn shorten_starttls_timeout(&mut self) {
        self.settings.push((
            "smtp_starttls_timeout".into(),
            SHORT_STARTTLS_TIMEOUT.into(),
            "the path never answers; Postfix waits smtp_starttls_timeout (300s by default), shortened so a run takes seconds".into(),
        ));
    }

    /// A port that speaks TLS from the first byte: the replay is what was
    /// said inside TLS, and Postfix needs wrapper mode to say anything.
    fn implicit_tls(&mut self, obs: &Observation, tls: &TlsObservation) {
        self.note(
            Place::Greeting,
            "this port speaks TLS from the first byte (implicit TLS, RFC 8314): the greeting and EHLO reply were said inside TLS",
        );
        if obs.ehlo.code() / 100 != 2 {
            self.note(
                Place::Ehlo,
                format!("EHLO was refused inside TLS (`{}`)", obs.ehlo),
            );
        }
        self.settings.push((
            "smtp_tls_wrappermode".into(),
            "yes".into(),
            "the relay speaks TLS from the first byte: without wrapper mode Postfix waits for a plaintext greeting and times out (scenarios/relay-implicit-tls-465-no-wrappermode.toml)".into(),
        ));
        self.certificate(obs, tls);
    }

    fn established(&mut self, obs: &Observation, tls: &TlsObservation) {
        self.certificate(obs, tls);
        match &tls.ehlo {
            Ok(ehlo) => self.replay.tls_ehlo = Some(ehlo.clone()),
            Err(what) => self.note(
                Place::TlsEhlo,
                format!(
                    "inside TLS, EHLO got no usable reply ({what}); the replay answers it with the relay's own, so Postfix may fare better here than on the real path"
                ),
            ),
        }
    }

    /// The certificate kind and TLS versions that reproduce the session.
    fn certificate(&mut self, obs: &Observation, tls: &TlsObservation) {
        let chain = &tls.chain;
        let leaf = chain.leaf().cloned().unwrap_or_default();
        let mut kinds = Vec::new();
        for problem in &chain.problems {
            let (kind, text) = match problem {
                CertProblem::SelfSigned => (
                    CertKind::SelfSigned,
                    format!(
                        "certificate issuer not trusted: self-signed or TLS interception (subject {})",
                        leaf.subject
                    ),
                ),
                CertProblem::UntrustedIssuer if leaf.names_issuer_url && chain.certs.len() == 1 => {
                    (
                        CertKind::MissingIntermediate,
                        format!(
                            "certificate issuer not trusted ({}): the server sent its certificate alone, and it names where its issuer can be fetched: consistent with a missing intermediate",
                            leaf.issuer
                        ),
                    )
                }
                CertProblem::UntrustedIssuer => (
                    CertKind::Trusted,
                    format!(
                        "certificate issuer not trusted ({}): an unknown CA, a missing intermediate, or TLS interception; replayed as a relay whose CA Postfix does not know (trust_ca = false)",
                        leaf.issuer
                    ),
                ),
                CertProblem::Expired => (
                    CertKind::Expired,
                    format!("the certificate expired on {}", leaf.not_after),
                ),
                CertProblem::NotYetValid => (
                    CertKind::NotYetValid,
                    format!("the certificate is not valid before {}", leaf.not_before),
                ),
                CertProblem::WrongName => (
                    CertKind::WrongName,
                    format!(
                        "the certificate does not name {} (it names {}): consistent with a wrong-name certificate, or TLS interception",
                        obs.server_name,
                        if leaf.names.is_empty() {
                            "nothing".to_owned()
                        } else {
                            leaf.names.join(", ")
                        }
                    ),
                ),
            };
            if *problem == CertProblem::UntrustedIssuer && kind == CertKind::Trusted {
                self.trust_ca = false;
            }
            kinds.push(kind);
            self.note(Place::Certificate, text);
        }
        // The first problem decides Postfix's verdict; the replay has one.
        if kinds.len() > 1 {
            self.note(
                Place::Certificate,
                format!(
                    "the replay reproduces the first of these ({}), which is enough for Postfix's verdict",
                    chain.problems[0].as_str()
                ),
            );
        }
        if chain.problems.is_empty() {
            self.note(
                Place::Certificate,
                format!(
                    "the certificate is verified for {} ({}), as a clean relay's is",
                    obs.server_name, leaf.subject
                ),
            );
        }
        self.certificate = Some(kinds.first().copied().unwrap_or(CertKind::Trusted));
        if tls.version == "TLSv1.2" {
            self.tls_versions = TlsVersions::Tls12Only;
            self.note(
                Place::TlsVersions,
                "the relay chose TLS 1.2 although the probe offered TLS 1.3: replayed as a relay without TLS 1.3",
            );
        }
    }
}

/// Postfix's test for a PIX-masked banner: every character of the reply,
/// codes included, is one of "20 *" (or a tab), lines joined by newlines.
pub fn pix_banner(greeting: &RecordedReply) -> bool {
    greeting
        .lines()
        .iter()
        .all(|l| l.bytes().all(|b| b"20 *\t".contains(&b)))
}

/// What a STARTTLS-less EHLO reply suggests.
fn missing_starttls(ehlo: &RecordedReply) -> String {
    let masked: Vec<String> = ehlo
        .reply()
        .lines
        .iter()
        .skip(1)
        .map(|l| l.keyword())
        .filter(|k| k.len() > 1 && k.ends_with('A') && k[..k.len() - 1].bytes().all(|b| b == b'X'))
        .collect();
    if masked.iter().any(|k| k.len() == "STARTTLS".len()) {
        let others = masked.len() - 1;
        let also = if others > 0 {
            format!("; {others} other extension(s) masked too")
        } else {
            String::new()
        };
        format!(
            "STARTTLS masked as XXXXXXXA: consistent with mask-starttls (Cisco ASA ESMTP inspection){also}"
        )
    } else {
        "STARTTLS missing from the EHLO reply: consistent with strip-starttls (a firewall's SMTP inspection), or a relay that does not offer it".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lines: &[&str]) -> RecordedReply {
        RecordedReply::parse(lines).unwrap()
    }

    #[test]
    fn pix_banner_is_postfixs_test() {
        assert!(pix_banner(&reply(&["220 *****"])));
        assert!(pix_banner(&reply(&["220 ** 2 **"])));
        assert!(!pix_banner(&reply(&["220 smtp.relay.test ESMTP"])));
        // A dash is not among Postfix's characters.
        assert!(!pix_banner(&reply(&["220-****", "220 ****"])));
    }

    #[test]
    fn masked_and_missing_starttls_read_differently() {
        let masked = missing_starttls(&reply(&["250-relay", "250-XXXXA", "250 XXXXXXXA"]));
        assert!(
            masked.starts_with("STARTTLS masked as XXXXXXXA"),
            "{masked}"
        );
        assert!(masked.contains("1 other extension(s)"), "{masked}");
        let missing = missing_starttls(&reply(&["250-relay", "250 8BITMIME"]));
        assert!(
            missing.starts_with("STARTTLS missing from the EHLO reply"),
            "{missing}"
        );
    }
}

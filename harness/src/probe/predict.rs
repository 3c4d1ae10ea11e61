//! What Postfix is expected to do on the probed path, level by level. The
//! knowledge is the built-in suite's: its expectations were obtained from
//! a real Postfix 3.7 and its comments quote the log lines. Each
//! prediction is for one delivery attempt of a fresh message.

use super::diagnose::{Diagnosis, pix_banner};
use super::observation::Observation;
use crate::level::Level;
use crate::outcome::{Outcome, Trust};
use crate::pki::CertKind;
use crate::scenario::{AttemptExpectation, Dsn};
use crate::upstream::{DropKind, Handshake, RecordedReply, StarttlsAnswer};

/// The expectation at one level, and why.
#[derive(Clone, Debug)]
pub struct Prediction {
    pub level: Level,
    pub expect: AttemptExpectation,
    /// Comment lines: the Postfix log lines behind it, and their source.
    pub why: Vec<String>,
}

/// Predictions for the levels every scenario states.
pub fn predict(obs: &Observation, d: &Diagnosis) -> Vec<Prediction> {
    let host = &obs.server_name;
    if obs.implicit_tls.is_some() {
        return implicit_tls(host, d);
    }
    let mut out = Vec::new();
    let mut at = |level: Level, expect: AttemptExpectation, why: Vec<String>| {
        out.push(Prediction { level, expect, why });
    };
    if obs.ehlo.code() == 421 {
        ehlo_refused(host, &obs.ehlo, &mut at);
        return out;
    }
    at(
        Level::None,
        plaintext(),
        vec!["`none` never starts TLS; the relay takes the message in plaintext.".into()],
    );
    if !d.postfix_sees_starttls {
        starttls_not_seen(host, obs, &mut at);
        return out;
    }
    match &d.replay.starttls {
        // Not reached: Postfix sees STARTTLS only when the reply lists it,
        // and then the probe recorded how it was answered.
        None => {}
        Some(StarttlsAnswer::Refuse { reply }) => starttls_refused(host, reply, &mut at),
        Some(StarttlsAnswer::Drop(kind)) => starttls_dropped(host, *kind, &mut at),
        Some(StarttlsAnswer::Accept { handshake, .. }) if *handshake != Handshake::Complete => {
            handshake_failed(&mut at)
        }
        Some(StarttlsAnswer::Accept { .. }) => {
            let why = vec![
                "`may` and `encrypt` use TLS whatever the certificate; the summary line says how far Postfix trusted it:".into(),
                format!("  {} TLS connection established to {host}[...]: TLSv1.3 ...", trust_word(d)),
                "(scenarios/relay-cert-*.toml, intercept-tls-self-signed.toml)".into(),
            ];
            tls_levels(&[Level::May, Level::Encrypt], why, host, d, &mut at);
        }
    }
    out
}

fn plaintext() -> AttemptExpectation {
    expect(Outcome::DeliveredPlaintext, None, None, None)
}

/// A 421 answer to EHLO: every level defers.
fn ehlo_refused(
    host: &str,
    ehlo: &RecordedReply,
    at: &mut impl FnMut(Level, AttemptExpectation, Vec<String>),
) {
    let dsn = postfix_dsn(ehlo);
    let why = vec![format!(
        "Postfix gives up on a 421 answer to EHLO: ... status=deferred (host {host}[...] refused to talk to me: {ehlo})"
    )];
    for level in Level::REQUIRED {
        at(
            level,
            expect(
                Outcome::Deferred,
                Some(dsn.clone()),
                Some("refused to talk to me"),
                None,
            ),
            if level == Level::None {
                why.clone()
            } else {
                Vec::new()
            },
        );
    }
}

/// Postfix does not see STARTTLS: `may` goes ahead in plaintext, the
/// levels that need TLS defer.
fn starttls_not_seen(
    host: &str,
    obs: &Observation,
    at: &mut impl FnMut(Level, AttemptExpectation, Vec<String>),
) {
    let mut may_why =
        vec!["Postfix does not see STARTTLS, so `may` goes ahead without TLS.".to_owned()];
    if pix_banner(&obs.greeting) {
        may_why.push(format!(
            "  QUEUEID: enabling PIX workarounds: disable_esmtp for {host}[...] (scenarios/mask-banner.toml)"
        ));
    }
    at(Level::May, plaintext(), may_why);
    let reason = "TLS is required, but was not offered by host";
    for level in [Level::Encrypt, Level::Verify, Level::Secure] {
        let why = if level == Level::Encrypt {
            vec![
                format!("  ... dsn=4.7.4, status=deferred ({reason} {host}[...])"),
                "(scenarios/incident-587-strip.toml, mask-starttls.toml, mask-banner.toml, no-starttls-relay.toml)".into(),
            ]
        } else {
            Vec::new()
        };
        at(level, deferred("4.7.4", reason), why);
    }
}

/// The relay refused STARTTLS with `reply`: `may` carries on in
/// plaintext, the levels that need TLS defer or bounce by its code.
fn starttls_refused(
    host: &str,
    reply: &RecordedReply,
    at: &mut impl FnMut(Level, AttemptExpectation, Vec<String>),
) {
    at(
        Level::May,
        plaintext(),
        vec![
            "`may` carries on in plaintext in the same session after the refusal (scenarios/reject-starttls-454.toml)."
                .into(),
        ],
    );
    let dsn = postfix_dsn(reply);
    let outcome = if dsn.as_str().starts_with('5') {
        Outcome::Bounced
    } else {
        Outcome::Deferred
    };
    let class = reply.code() / 100;
    let mut why = vec![format!(
        "  ... dsn={dsn}, status={} ({}TLS is required, but host {host}[...] refused to start TLS: {reply})",
        if outcome == Outcome::Bounced {
            "bounced"
        } else {
            "deferred"
        },
        if class == 4 || class == 5 {
            ""
        } else {
            "Protocol error: "
        }
    )];
    why.push(if outcome == Outcome::Bounced {
        "A 5xx refusal of STARTTLS bounces the message at once (scenarios/reject-starttls-502.toml).".into()
    } else {
        "(scenarios/reject-starttls-454.toml)".into()
    });
    for level in [Level::Encrypt, Level::Verify, Level::Secure] {
        at(
            level,
            expect(
                outcome,
                Some(dsn.clone()),
                Some("refused to start TLS"),
                None,
            ),
            if level == Level::Encrypt {
                why.clone()
            } else {
                Vec::new()
            },
        );
    }
}

/// The relay dropped the connection at STARTTLS: every level from `may`
/// defers.
fn starttls_dropped(
    host: &str,
    kind: DropKind,
    at: &mut impl FnMut(Level, AttemptExpectation, Vec<String>),
) {
    let (reason, why) = match kind {
        DropKind::Close | DropKind::Reset => (
            "while receiving the STARTTLS response",
            vec![
                format!("  ... dsn=4.4.2, status=deferred (lost connection with {host}[...] while receiving the STARTTLS response)"),
                "A lost connection is no reason to retry in plaintext: `may` defers too, even on a retry (scenarios/drop-on-starttls.toml).".into(),
            ],
        ),
        DropKind::Silence => (
            "timed out while receiving the STARTTLS response",
            vec![
                format!("  ... dsn=4.4.2, status=deferred (conversation with {host}[...] timed out while receiving the STARTTLS response)"),
                "(scenarios/replay-starttls-unanswered.toml)".into(),
            ],
        ),
    };
    for level in [Level::May, Level::Encrypt, Level::Verify, Level::Secure] {
        let why = if level == Level::May {
            why.clone()
        } else {
            Vec::new()
        };
        at(level, deferred("4.4.2", reason), why);
    }
}

/// The handshake after STARTTLS did not complete: a fresh message defers
/// at every level from `may`.
fn handshake_failed(at: &mut impl FnMut(Level, AttemptExpectation, Vec<String>)) {
    let reason = "Cannot start TLS: handshake failure";
    let why = vec![
        format!("  ... dsn=4.7.5, status=deferred ({reason})"),
        "A fresh message at `may` is deferred too; a retry once it is minimal_backoff_time old goes out in plaintext (scenarios/fail-handshake-alert.toml, fail-handshake-immediate-retry.toml).".into(),
    ];
    for level in [Level::May, Level::Encrypt, Level::Verify, Level::Secure] {
        let why = if level == Level::May {
            why.clone()
        } else {
            Vec::new()
        };
        at(level, deferred("4.7.5", reason), why);
    }
}

/// Predictions for a relay spoken to in wrapper mode (the scenario sets
/// `smtp_tls_wrappermode = yes`): TLS from the first byte, at `encrypt`
/// and above only.
fn implicit_tls(host: &str, d: &Diagnosis) -> Vec<Prediction> {
    let mut out = Vec::new();
    let mut at = |level: Level, expect: AttemptExpectation, why: Vec<String>| {
        out.push(Prediction { level, expect, why });
    };
    let reason = "server unavailable or unable to receive mail";
    at(
        Level::None,
        deferred("4.3.0", reason),
        vec![
            "Wrapper mode refuses to run below `encrypt`, before connecting:".into(),
            "  warning: smtp_tls_wrappermode requires \"smtp_tls_security_level = encrypt\" (or stronger)".into(),
            format!("  ... relay=none, ..., dsn=4.3.0, status=deferred ({reason})"),
            "(scenarios/relay-implicit-tls-465.toml)".into(),
        ],
    );
    at(Level::May, deferred("4.3.0", reason), Vec::new());
    let why = vec![
        "`encrypt` uses TLS whatever the certificate; the summary line says how far Postfix trusted it:".into(),
        format!("  {} TLS connection established to {host}[...]: TLSv1.3 ...", trust_word(d)),
    ];
    tls_levels(&[Level::Encrypt], why, host, d, &mut at);
    out
}

fn chain_trusted(d: &Diagnosis) -> bool {
    d.trust_ca
        && matches!(
            d.certificate,
            Some(CertKind::Trusted | CertKind::Intermediate | CertKind::WrongName)
        )
}

fn trust_word(d: &Diagnosis) -> &'static str {
    if chain_trusted(d) {
        "Trusted"
    } else {
        "Untrusted"
    }
}

/// A TLS session that completes: delivered over TLS at `unchecked` (with
/// `why` at the first), and at `verify` and `secure` as the certificate
/// allows.
fn tls_levels(
    unchecked: &[Level],
    why: Vec<String>,
    host: &str,
    d: &Diagnosis,
    at: &mut impl FnMut(Level, AttemptExpectation, Vec<String>),
) {
    let verified = d.trust_ca
        && matches!(
            d.certificate,
            Some(CertKind::Trusted | CertKind::Intermediate)
        );
    let trust = if chain_trusted(d) {
        Trust::Trusted
    } else {
        Trust::Untrusted
    };
    let mut why = Some(why);
    for level in unchecked {
        at(
            *level,
            expect(Outcome::DeliveredTls, None, None, Some(trust)),
            why.take().unwrap_or_default(),
        );
    }
    for level in [Level::Verify, Level::Secure] {
        if verified {
            let why = if level == Level::Verify {
                vec![format!(
                    "  Verified TLS connection established to {host}[...]: TLSv1.3 ... (scenarios/starttls-relay.toml)"
                )]
            } else {
                Vec::new()
            };
            at(
                level,
                expect(Outcome::DeliveredTls, None, None, Some(Trust::Verified)),
                why,
            );
        } else {
            let reason = "Server certificate not verified";
            let why = if level == Level::Verify {
                vec![
                    format!("  ... dsn=4.7.5, status=deferred ({reason})"),
                    "(scenarios/relay-cert-*.toml, starttls-relay-unknown-ca.toml)".into(),
                ]
            } else {
                Vec::new()
            };
            at(level, deferred("4.7.5", reason), why);
        }
    }
}

fn expect(
    outcome: Outcome,
    dsn: Option<Dsn>,
    reason: Option<&str>,
    trust: Option<Trust>,
) -> AttemptExpectation {
    let mut e = AttemptExpectation::outcome(outcome);
    e.dsn = dsn;
    e.reason = reason.map(str::to_owned);
    e.trust = trust;
    e
}

fn deferred(dsn: &str, reason: &str) -> AttemptExpectation {
    expect(
        Outcome::Deferred,
        Some(Dsn::parse(dsn).expect("a literal DSN")),
        Some(reason),
        None,
    )
}

/// The DSN Postfix takes from a reply: the enhanced status code at the
/// start of the last line when its class matches the reply code, else
/// `X.0.0` (smtp_chat_resp()). A reply of any class but 4 or 5 that fails
/// a session is a protocol error, `5.5.0` (smtp_site_fail() in
/// smtp_trouble.c: "Protocol error: ...").
pub fn postfix_dsn(reply: &RecordedReply) -> Dsn {
    let class = reply.code() / 100;
    if class != 4 && class != 5 {
        return Dsn::parse("5.5.0").expect("a literal DSN");
    }
    let last = reply
        .reply()
        .lines
        .last()
        .map(|l| l.text.clone())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&last);
    let word = text.trim_start_matches(' ').split(' ').next().unwrap_or("");
    Dsn::parse(word)
        .ok()
        .filter(|d| d.as_str().starts_with(&class.to_string()))
        .unwrap_or_else(|| Dsn::parse(&format!("{class}.0.0")).expect("class 4 or 5"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_comes_from_the_last_line_or_the_class() {
        let dsn = |lines: &[&str]| postfix_dsn(&RecordedReply::parse(lines).unwrap()).to_string();
        assert_eq!(dsn(&["454 4.7.0 TLS not available"]), "4.7.0");
        assert_eq!(dsn(&["502 5.5.1 command not recognized"]), "5.5.1");
        assert_eq!(dsn(&["454 TLS not available"]), "4.0.0");
        // Out of sync with the reply code: ignored, as Postfix does.
        assert_eq!(dsn(&["454 5.7.0 odd"]), "4.0.0");
        assert_eq!(dsn(&["554-first", "554 5.7.1 second"]), "5.7.1");
        // Neither 4xx nor 5xx where a refusal was due: a protocol error.
        assert_eq!(dsn(&["354 go ahead"]), "5.5.0");
        assert_eq!(dsn(&["250 2.0.0 fine"]), "5.5.0");
    }
}

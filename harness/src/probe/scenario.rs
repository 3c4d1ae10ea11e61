//! The scenario file a probe writes: a relay that replays the observation,
//! the differences from a clean relay as comments at their keys, and
//! predicted expectations to be confirmed by `tlsharness run`.

use std::fmt::Write;
use std::path::Path;

use super::diagnose::{Diagnosis, Place, diagnose};
use super::observation::Observation;
use super::predict::{Prediction, predict};
use crate::scenario::{AttemptExpectation, Hostname, LoadError, Scenario, load_bytes};
use crate::tls::TlsVersions;
use crate::upstream::{RecordedReply, StarttlsAnswer};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}; give the relay's name with --name")]
    Hostname(String),
    /// A bug: the file written does not load.
    #[error("the generated scenario does not load: {0}")]
    Invalid(#[from] LoadError),
}

/// The scenario text, checked by loading it as `path` would be loaded.
pub fn scenario_text(obs: &Observation, path: &Path) -> Result<(String, Scenario), ScenarioError> {
    let hostname = Hostname::parse(&obs.server_name).map_err(ScenarioError::Hostname)?;
    let d = diagnose(obs);
    let predictions = predict(obs, &d);
    let text = render(obs, &hostname, &d, &predictions);
    let scenario = load_bytes(path, text.as_bytes())?;
    Ok((text, scenario))
}

fn render(
    obs: &Observation,
    hostname: &Hostname,
    d: &Diagnosis,
    predictions: &[Prediction],
) -> String {
    let mut out = String::new();
    let w = &mut out;
    let when = obs
        .at
        .replace_nanosecond(0)
        .unwrap_or(obs.at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut command = format!("tlsharness probe {}", obs.target);
    if obs.server_name != obs.target.host.to_ascii_lowercase() {
        let _ = write!(command, " --name {}", obs.server_name);
    }
    line(w, &format!("# Written by `{command}` on {when}."));
    for text in [
        "The relay below replays what the probe saw on this network path: the",
        "greeting, the EHLO replies and the answer to STARTTLS. The comments at",
        "its keys say how the path differs from a clean relay. Review them, then",
        "confirm the predicted expectations at the end with `tlsharness run FILE`.",
        "",
        "What the probe saw (C: the probe, S: the server, --: events):",
    ] {
        comment(w, text);
    }
    for t in &obs.transcript {
        comment(w, &format!("  {t}"));
    }
    line(w, "");
    line(
        w,
        &format!(
            "name = {}",
            quote(&format!(
                "{}:{} as probed on {when}",
                hostname, obs.target.port
            ))
        ),
    );
    line(
        w,
        &format!(
            "description = {}",
            quote(&format!(
                "Recorded by tlsharness probe from the host the probe ran on (reached {}). Say here which network this is.",
                obs.addr
            ))
        ),
    );

    line(w, "");
    line(w, "[relay]");
    line(w, &format!("hostname = {}", quote(hostname.as_str())));
    line(w, &format!("port = {}", obs.target.port));
    for f in d.at(Place::Ehlo) {
        comment(w, f);
    }
    line(w, &format!("starttls = {}", d.replay.ehlo.lists_starttls()));
    if let Some(kind) = d.certificate {
        for f in d.at(Place::Certificate) {
            comment(w, f);
        }
        line(w, &format!("certificate = {}", quote(kind.as_str())));
    }
    if d.tls_versions != TlsVersions::Any {
        for f in d.at(Place::TlsVersions) {
            comment(w, f);
        }
        line(w, "tls_versions = \"tls12-only\"");
    }

    line(w, "");
    line(w, "[relay.replay]");
    for f in d.at(Place::Greeting) {
        comment(w, f);
    }
    reply_key(w, "greeting", &d.replay.greeting);
    reply_key(w, "ehlo", &d.replay.ehlo);
    if let Some(answer) = &d.replay.starttls {
        for f in d.at(Place::Starttls) {
            comment(w, f);
        }
        line(w, &format!("starttls = {}", starttls(answer)));
    }
    for f in d.at(Place::TlsEhlo) {
        comment(w, f);
    }
    if let Some(tls_ehlo) = &d.replay.tls_ehlo {
        reply_key(w, "tls_ehlo", tls_ehlo);
    }

    if !d.trust_ca || !d.settings.is_empty() {
        line(w, "");
        line(w, "[postfix]");
        if !d.trust_ca {
            comment(
                w,
                "Postfix does not know the relay's CA, as this host does not.",
            );
            line(w, "trust_ca = false");
        }
        if !d.settings.is_empty() {
            for (_, _, why) in &d.settings {
                comment(w, why);
            }
            let pairs: Vec<String> = d
                .settings
                .iter()
                .map(|(k, v, _)| format!("{k} = {}", quote(v)))
                .collect();
            line(w, &format!("settings = {{ {} }}", pairs.join(", ")));
        }
    }

    line(w, "");
    line(w, "[expect]");
    for text in [
        "Predictions, not observations: what Postfix 3.7 did on paths like this one",
        "in the built-in scenarios (scenarios/*.toml). Confirm them with",
        "`tlsharness run FILE`, and correct them if Postfix disagrees. Each is for",
        "one delivery attempt. The probe sent no MAIL, so whether the real relay",
        "requires AUTH or TLS before MAIL is unknown: the replayed relay takes any",
        "message.",
    ] {
        comment(w, text);
    }
    for p in predictions {
        for why in &p.why {
            comment(w, why);
        }
        line(w, &format!("{} = {}", p.level, expectation(&p.expect)));
    }
    out
}

fn line(w: &mut String, text: &str) {
    let _ = writeln!(w, "{text}");
}

/// A comment line. Whatever the text holds (it may quote the peer), it
/// cannot end the comment: line breaks and other controls become `?`.
fn comment(w: &mut String, text: &str) {
    if text.is_empty() {
        line(w, "#");
    } else {
        line(w, &format!("# {}", crate::smtp::censor(text)));
    }
}

/// A TOML string, escaped as TOML requires.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn reply_key(w: &mut String, key: &str, reply: &RecordedReply) {
    let lines: Vec<String> = reply.lines().iter().map(|l| quote(l)).collect();
    if lines.len() == 1 {
        line(w, &format!("{key} = [{}]", lines[0]));
    } else {
        line(w, &format!("{key} = ["));
        for l in lines {
            line(w, &format!("    {l},"));
        }
        line(w, "]");
    }
}

fn starttls(answer: &StarttlsAnswer) -> String {
    let lines = |r: &RecordedReply| {
        let quoted: Vec<String> = r.lines().iter().map(|l| quote(l)).collect();
        format!("[{}]", quoted.join(", "))
    };
    match answer {
        StarttlsAnswer::Accept { reply, handshake } if handshake.as_str() == "complete" => {
            format!("{{ reply = {} }}", lines(reply))
        }
        StarttlsAnswer::Accept { reply, handshake } => format!(
            "{{ reply = {}, handshake = {} }}",
            lines(reply),
            quote(handshake.as_str())
        ),
        StarttlsAnswer::Refuse { reply } => format!("{{ reply = {} }}", lines(reply)),
        StarttlsAnswer::Drop(kind) => format!("{{ drop = {} }}", quote(kind.as_str())),
    }
}

fn expectation(e: &AttemptExpectation) -> String {
    let mut parts = vec![format!("outcome = {}", quote(e.outcome.as_str()))];
    if let Some(dsn) = &e.dsn {
        parts.push(format!("dsn = {}", quote(dsn.as_str())));
    }
    if let Some(reason) = &e.reason {
        parts.push(format!("reason = {}", quote(reason)));
    }
    if let Some(trust) = &e.trust {
        parts.push(format!("trust = {}", quote(trust.as_str())));
    }
    if parts.len() == 1 {
        quote(e.outcome.as_str())
    } else {
        format!("{{ {} }}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the peer put in a reply or a certificate, a comment
        /// stays one comment: the file around it gains no keys.
        #[test]
        fn a_comment_cannot_add_keys(text in any::<String>()) {
            let mut w = String::new();
            comment(&mut w, &text);
            prop_assert_eq!(w.lines().count(), 1);
            let table: toml::Table = w.parse().expect("a comment is valid TOML");
            prop_assert!(table.is_empty());
        }
    }

    #[test]
    fn a_line_break_in_a_comment_is_censored() {
        let mut w = String::new();
        comment(&mut w, "name\n[relay]\r\nport = 1\u{1b}[2J");
        assert_eq!(w, "# name?[relay]??port = 1?[2J\n");
    }
}

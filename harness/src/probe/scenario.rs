//! The scenario file a probe writes: a relay that replays the observation,
//! the differences from a clean relay as comments at their keys, and
//! predicted expectations to be confirmed by `tlsharness run`.
//!
//! The data goes through serde into a `toml_edit` document, so every value
//! is written as TOML requires; the comments are the document's decor, so
//! they sit at the keys they explain.

use std::path::Path;

use serde::{Serialize, Serializer};
use toml_edit::{Array, Item, Table};

use super::diagnose::{Diagnosis, Place, diagnose};
use super::observation::Observation;
use super::predict::{Prediction, predict};
use crate::pki::CertKind;
use crate::scenario::{AttemptExpectation, Hostname, LoadError, Scenario, load_bytes};
use crate::tls::TlsVersions;
use crate::upstream::ReplaySpec;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}; give the relay's name with --name")]
    Hostname(String),
    #[error(
        "no port of {host} answered SMTP: there is nothing to replay (each port's fate is above)"
    )]
    NothingAnswered { host: String },
    /// A bug: the data has no TOML form.
    #[error(
        "the generated scenario cannot be written as TOML: {0} (a bug: please report it with the probe's output)"
    )]
    Encode(#[from] toml_edit::ser::Error),
    /// A bug: the file written does not load.
    #[error(
        "the generated scenario does not load: {0} (a bug: please report it with the probe's output)"
    )]
    Invalid(#[from] LoadError),
}

impl crate::exit::Code for ScenarioError {
    fn exit_code(&self) -> i32 {
        match self {
            ScenarioError::Hostname(_) => crate::exit::BAD_INPUT,
            ScenarioError::NothingAnswered { .. } => crate::exit::ENVIRONMENT,
            _ => crate::exit::HARNESS_ERROR,
        }
    }
}

/// The scenario text, checked by loading it as `path` would be loaded.
pub fn scenario_text(obs: &Observation, path: &Path) -> Result<(String, Scenario), ScenarioError> {
    let hostname = Hostname::parse(&obs.server_name).map_err(ScenarioError::Hostname)?;
    let d = diagnose(obs);
    let predictions = predict(obs, &d);
    let text = render(obs, &hostname, &d, &predictions)?;
    let scenario = load_bytes(path, text.as_bytes())?;
    Ok((text, scenario))
}

/// The file's data, in the order the file shows it.
#[derive(Serialize)]
struct File<'a> {
    name: String,
    description: String,
    relay: RelayData<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postfix: Option<PostfixData<'a>>,
    expect: Expectations<'a>,
}

#[derive(Serialize)]
struct RelayData<'a> {
    hostname: &'a Hostname,
    port: u16,
    starttls: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    implicit_tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<CertKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_versions: Option<TlsVersions>,
    replay: &'a ReplaySpec,
}

#[derive(Serialize)]
pub(super) struct PostfixData<'a> {
    /// Written only when false: true is the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_ca: Option<bool>,
    #[serde(skip_serializing_if = "Settings::is_empty")]
    pub settings: Settings<'a>,
}

/// `settings = { name = "value", ... }`, in the diagnosis's order.
pub(super) struct Settings<'a>(pub &'a [(String, String, String)]);

impl Settings<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Settings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, value, _)| (name, value)))
    }
}

/// `[expect]`: one key per predicted level, in the predictions' order.
pub(super) struct Expectations<'a>(pub &'a [Prediction]);

impl Serialize for Expectations<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.0
                .iter()
                .map(|p| (p.level.as_str(), Expectation(&p.expect))),
        )
    }
}

/// An expectation with nothing but an outcome is written as the outcome
/// alone (`none = "delivered-plaintext"`).
struct Expectation<'a>(&'a AttemptExpectation);

impl Serialize for Expectation<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        if e == &AttemptExpectation::outcome(e.outcome) {
            e.outcome.serialize(s)
        } else {
            e.serialize(s)
        }
    }
}

fn render(
    obs: &Observation,
    hostname: &Hostname,
    d: &Diagnosis,
    predictions: &[Prediction],
) -> Result<String, ScenarioError> {
    let when = when(obs.at);
    let mut command = format!("tlsharness probe {}", obs.target);
    if obs.server_name != obs.target.host.to_ascii_lowercase() {
        command.push_str(&format!(" --name {}", obs.server_name));
    }
    let file = File {
        name: format!("{hostname}:{} as probed on {when}", obs.target.port),
        description: format!(
            "Recorded by tlsharness probe from the host the probe ran on (reached {}). Say here which network this is.",
            obs.addr
        ),
        relay: RelayData {
            hostname,
            port: obs.target.port,
            starttls: obs.implicit_tls.is_none() && d.replay.ehlo.lists_starttls(),
            implicit_tls: obs.implicit_tls.is_some(),
            certificate: d.certificate,
            tls_versions: (d.tls_versions != TlsVersions::Any).then_some(d.tls_versions),
            replay: &d.replay,
        },
        postfix: (!d.trust_ca || !d.settings.is_empty()).then_some(PostfixData {
            trust_ca: (!d.trust_ca).then_some(false),
            settings: Settings(&d.settings),
        }),
        expect: Expectations(predictions),
    };
    let mut doc = toml_edit::ser::to_document(&file)?;

    let mut head = Comments::default();
    head.line(&format!("Written by `{command}` on {when}."));
    head.extend([
        "The relay below replays what the probe saw on this network path: the",
        "greeting, the EHLO replies and the answer to STARTTLS. The comments at",
        "its keys say how the path differs from a clean relay. Review them, then",
        "confirm the predicted expectations at the end with `tlsharness run FILE`.",
        "",
        "What the probe saw (C: the probe, S: the server, --: events):",
    ]);
    for t in &obs.transcript {
        head.line(&format!("  {t}"));
    }
    head.blank();
    head.before_key(doc.as_table_mut(), "name");

    let relay = table(&mut doc["relay"]);
    Comments::of(d.at(Place::Ehlo)).before_key(relay, "starttls");
    Comments::of(d.at(Place::Certificate)).before_key(relay, "certificate");
    Comments::of(d.at(Place::TlsVersions)).before_key(relay, "tls_versions");
    let replay = table(&mut relay["replay"]);
    for key in ["greeting", "ehlo", "tls_ehlo"] {
        if let Some(lines) = replay.get_mut(key).and_then(Item::as_array_mut) {
            one_per_line(lines);
        }
    }
    Comments::of(d.at(Place::Greeting)).before_key(replay, "greeting");
    Comments::of(d.at(Place::Starttls)).before_key(replay, "starttls");
    // Said even when the TLS EHLO reply is not replayed: then they close
    // the table, just above the next one.
    let mut after_replay = Comments::of(d.at(Place::TlsEhlo));
    if replay.contains_key("tls_ehlo") {
        std::mem::take(&mut after_replay).before_key(replay, "tls_ehlo");
    }

    if let Some(postfix) = doc.get_mut("postfix") {
        let postfix = table(postfix);
        std::mem::take(&mut after_replay).before_header(postfix);
        Comments::of(["Postfix does not know the relay's CA, as this host does not."])
            .before_key(postfix, "trust_ca");
        Comments::of(d.settings.iter().map(|(_, _, why)| why.as_str()))
            .before_key(postfix, "settings");
    }

    let expect = table(&mut doc["expect"]);
    after_replay.before_header(expect);
    let mut preface = Comments::of([
        "Predictions, not observations: what Postfix 3.7 did on paths like this one",
        "in the built-in scenarios (scenarios/*.toml). Confirm them with",
        "`tlsharness run FILE`, and correct them if Postfix disagrees. Each is for",
        "one delivery attempt. The probe sent no MAIL, so whether the real relay",
        "requires AUTH or TLS before MAIL is unknown: the replayed relay takes any",
        "message.",
    ]);
    for p in predictions {
        let mut why = std::mem::take(&mut preface);
        why.extend(p.why.iter().map(String::as_str));
        why.before_key(expect, p.level.as_str());
    }
    if !preface.is_empty() {
        // No key to stand before: the comments end the file.
        doc.set_trailing(preface.0);
    }
    Ok(doc.to_string())
}

/// A probe's time as the file shows it.
pub(super) fn when(at: time::OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The table an item serialised as (inline), made a `[table]` of its own.
pub(super) fn table(item: &mut Item) -> &mut Table {
    *item = match std::mem::take(item).into_table() {
        Ok(t) => Item::Table(t),
        Err(other) => other,
    };
    item.as_table_mut()
        .expect("the probe's data serialises as tables")
}

/// A reply of several lines is written one line per line, as it crossed
/// the wire.
pub(super) fn one_per_line(lines: &mut Array) {
    if lines.len() < 2 {
        return;
    }
    for line in lines.iter_mut() {
        line.decor_mut().set_prefix("\n    ");
    }
    lines.set_trailing_comma(true);
    lines.set_trailing("\n");
}

/// Comment lines for the decor in front of a key or a table header.
#[derive(Debug, Default)]
pub(super) struct Comments(pub String);

impl Comments {
    pub(super) fn of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Comments {
        let mut c = Comments::default();
        c.extend(texts);
        c
    }

    pub(super) fn extend<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) {
        for text in texts {
            self.line(text);
        }
    }

    /// One comment line. Whatever the text holds (it may quote the peer),
    /// it cannot end the comment: line breaks and other controls become `?`.
    pub(super) fn line(&mut self, text: &str) {
        if text.is_empty() {
            self.0.push_str("#\n");
        } else {
            self.0.push_str("# ");
            self.0.push_str(&crate::smtp::censor(text));
            self.0.push('\n');
        }
    }

    pub(super) fn blank(&mut self) {
        self.0.push('\n');
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes the comments on the lines above `key`; nothing when the
    /// table does not have it.
    pub(super) fn before_key(self, table: &mut Table, key: &str) {
        if let (false, Some(mut k)) = (self.is_empty(), table.key_mut(key)) {
            k.leaf_decor_mut().set_prefix(self.0);
        }
    }

    /// Writes the comments above a table's header, a blank line between.
    pub(super) fn before_header(self, table: &mut Table) {
        if !self.is_empty() {
            table.decor_mut().set_prefix(format!("{}\n", self.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::probe::{Finding, Starttls, Target};
    use crate::upstream::RecordedReply;
    use proptest::prelude::*;

    /// A relay that does not offer STARTTLS, probed from 127.0.0.1.
    fn observation() -> Observation {
        Observation {
            target: "relay.example:587".parse::<Target>().unwrap(),
            addr: "127.0.0.1:587".parse().unwrap(),
            server_name: "relay.example".into(),
            ehlo_name: "probe.tlsharness.test".into(),
            at: time::OffsetDateTime::UNIX_EPOCH,
            step_timeout: Duration::from_secs(3),
            implicit_tls: None,
            greeting: RecordedReply::parse(&["220 relay.example ESMTP"]).unwrap(),
            ehlo: RecordedReply::parse(&["250-relay.example", "250 8BITMIME"]).unwrap(),
            starttls: Starttls::NotOffered,
            behind_starttls_reply: None,
            transcript: vec!["S: 220 relay.example ESMTP".into()],
        }
    }

    fn text(obs: &Observation, d: &Diagnosis) -> String {
        let hostname = Hostname::parse(&obs.server_name).unwrap();
        let text = render(obs, &hostname, d, &predict(obs, d)).unwrap();
        load_bytes(Path::new("probed.toml"), text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        text
    }

    #[test]
    fn every_comment_stands_at_its_key() {
        let obs = observation();
        let mut d = diagnose(&obs);
        for (place, text) in [
            (Place::Greeting, "about the greeting"),
            (Place::Ehlo, "about the EHLO reply"),
            (Place::TlsEhlo, "about the EHLO reply inside TLS"),
        ] {
            d.findings.push(Finding {
                place,
                text: text.into(),
            });
        }
        d.trust_ca = false;
        d.settings = vec![
            (
                "smtp_starttls_timeout".into(),
                "5s".into(),
                "why one".into(),
            ),
            ("smtp_helo_timeout".into(), "7s".into(), "why two".into()),
        ];
        let text = text(&obs, &d);
        for expected in [
            "\n\nname = \"relay.example:587 as probed on 1970-01-01T00:00:00Z\"\n",
            "\n[relay.replay]\n# about the greeting\ngreeting = [\"220 relay.example ESMTP\"]\nehlo = [\n    \"250-relay.example\",\n    \"250 8BITMIME\",\n]\n",
            "# about the EHLO reply\nstarttls = false\n",
            // With no TLS EHLO reply to stand at, its comment ends the table.
            "]\n# about the EHLO reply inside TLS\n\n[postfix]\n",
            "trust_ca = false\n# why one\n# why two\nsettings = { smtp_starttls_timeout = \"5s\", smtp_helo_timeout = \"7s\" }\n\n[expect]\n# Predictions, not observations",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }

        d.trust_ca = true;
        d.settings.clear();
        let text = self::text(&obs, &d);
        assert!(!text.contains("[postfix]"), "{text}");
        assert!(
            text.contains("# about the EHLO reply inside TLS\n\n[expect]\n"),
            "{text}"
        );
    }

    /// `a = 1`, with `text` as a comment above it.
    fn commented(text: &str) -> String {
        let mut doc = toml_edit::DocumentMut::new();
        doc["a"] = toml_edit::value(1);
        Comments::of([text]).before_key(doc.as_table_mut(), "a");
        doc.to_string()
    }

    proptest! {
        /// Whatever the peer put in a reply or a certificate, a comment
        /// stays one comment: the file around it gains no keys.
        #[test]
        fn a_comment_cannot_add_keys(text in any::<String>()) {
            prop_assert_eq!(Comments::of([text.as_str()]).0.lines().count(), 1);
            let text = commented(&text);
            let table: toml::Table = text.parse().expect("a commented key is valid TOML");
            prop_assert_eq!(table.len(), 1, "{}", text);
            prop_assert_eq!(table.get("a").and_then(toml::Value::as_integer), Some(1));
        }
    }

    #[test]
    fn a_line_break_in_a_comment_is_censored() {
        assert_eq!(
            commented("name\n[relay]\r\nport = 1\u{1b}[2J"),
            "# name?[relay]??port = 1?[2J\na = 1\n"
        );
    }
}

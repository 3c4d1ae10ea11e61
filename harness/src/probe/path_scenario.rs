//! The scenario `tlsharness probe HOST` writes: one relay with a service
//! per port that answered, each replaying its own recording; the ports the
//! path refused are its middlebox's `block`, those it dropped silently its
//! `drop`; comments quote what each
//! port showed. `[expect]` predicts for the first service, the one `run`
//! delivers to.

use std::path::Path;

use serde::Serialize;
use toml_edit::{ArrayOfTables, Item, Table};

use super::diagnose::{Diagnosis, Place, diagnose};
use super::observation::Observation;
use super::ports::{PathObservation, PortSeen};
use super::predict::predict;
use super::scenario::{
    Comments, Expectations, PostfixData, ScenarioError, Settings, one_per_line, table, when,
};
use crate::pki::CertKind;
use crate::scenario::{Hostname, Scenario, ServiceMode, load_bytes};
use crate::tls::TlsVersions;
use crate::upstream::ReplaySpec;

#[derive(Serialize)]
struct File<'a> {
    name: String,
    description: String,
    relay: Relay<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    middlebox: Option<Middlebox>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postfix: Option<PostfixData<'a>>,
    expect: Expectations<'a>,
}

#[derive(Serialize)]
struct Relay<'a> {
    hostname: &'a Hostname,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<CertKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_versions: Option<TlsVersions>,
    services: Vec<Service<'a>>,
}

#[derive(Serialize)]
struct Service<'a> {
    port: u16,
    mode: ServiceMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<CertKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replay: Option<&'a ReplaySpec>,
}

#[derive(Serialize)]
struct Middlebox {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    block: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    drop: Vec<u16>,
}

/// One answered port and the relay that replays it.
struct Answered<'a> {
    obs: &'a Observation,
    d: Diagnosis,
}

impl Answered<'_> {
    fn mode(&self) -> ServiceMode {
        if self.obs.implicit_tls.is_some() {
            ServiceMode::ImplicitTls
        } else if self.d.replay.ehlo.lists_starttls() {
            ServiceMode::Starttls
        } else {
            ServiceMode::None
        }
    }
}

/// The scenario text for the whole path, checked by loading it as `path`
/// would be loaded.
pub fn path_scenario_text(
    obs: &PathObservation,
    path: &Path,
) -> Result<(String, Scenario), ScenarioError> {
    let hostname = Hostname::parse(&obs.server_name).map_err(ScenarioError::Hostname)?;
    let answered: Vec<Answered> = obs
        .answered()
        .into_iter()
        .map(|o| Answered {
            obs: o,
            d: diagnose(o),
        })
        .collect();
    if answered.is_empty() {
        return Err(ScenarioError::NothingAnswered {
            host: obs.host.clone(),
        });
    }
    let text = render(obs, &hostname, &answered)?;
    let scenario = load_bytes(path, text.as_bytes())?;
    Ok((text, scenario))
}

fn render(
    obs: &PathObservation,
    hostname: &Hostname,
    answered: &[Answered],
) -> Result<String, ScenarioError> {
    let first = &answered[0];
    let when = when(first.obs.at);
    // The relay's certificate is the first TLS session's; a port that
    // presented another keeps its own.
    let certificate = answered.iter().find_map(|a| a.d.certificate);
    let services: Vec<Service> = answered
        .iter()
        .map(|a| Service {
            port: a.obs.target.port,
            mode: a.mode(),
            certificate: a.d.certificate.filter(|c| Some(*c) != certificate),
            replay: Some(&a.d.replay),
        })
        .collect();
    let closed = |want: fn(&PortSeen) -> bool| -> Vec<u16> {
        obs.ports
            .iter()
            .filter(|(_, seen)| want(seen))
            .map(|(plan, _)| plan.port)
            .collect()
    };
    let refused = closed(|s| matches!(s, PortSeen::Refused));
    let dropped = closed(|s| matches!(s, PortSeen::Dropped));
    let d = &first.d;
    let file = File {
        name: format!("{hostname} as probed on {when}"),
        description: format!(
            "Recorded by tlsharness probe from the host the probe ran on (reached {}). Say here which network this is.",
            first.obs.addr.ip()
        ),
        relay: Relay {
            hostname,
            certificate,
            tls_versions: (d.tls_versions != TlsVersions::Any).then_some(d.tls_versions),
            services,
        },
        middlebox: (!refused.is_empty() || !dropped.is_empty()).then_some(Middlebox {
            block: refused,
            drop: dropped,
        }),
        postfix: (!d.trust_ca || !d.settings.is_empty()).then_some(PostfixData {
            trust_ca: (!d.trust_ca).then_some(false),
            settings: Settings(&d.settings),
        }),
        expect: Expectations(&[]),
    };
    let predictions = predict(first.obs, d);
    let file = File {
        expect: Expectations(&predictions),
        ..file
    };
    let mut doc = toml_edit::ser::to_document(&file)?;
    header(obs, first, &when).before_key(doc.as_table_mut(), "name");

    let relay = table(&mut doc["relay"]);
    if let Some(source) = answered.iter().find(|a| a.d.certificate.is_some()) {
        let mut why = Comments::default();
        if answered.len() > 1 {
            why.line(&format!("As presented on port {}:", source.obs.target.port));
        }
        why.extend(source.d.at(Place::Certificate));
        why.before_key(relay, "certificate");
    }
    Comments::of(d.at(Place::TlsVersions)).before_key(relay, "tls_versions");
    let mut list = ArrayOfTables::new();
    let items = std::mem::take(&mut relay["services"]);
    let inline = match items.into_value() {
        Ok(toml_edit::Value::Array(a)) => a,
        _ => toml_edit::Array::new(),
    };
    for (i, value) in inline.into_iter().enumerate() {
        let toml_edit::Value::InlineTable(t) = value else {
            continue;
        };
        let mut t = t.into_table();
        if let Some(a) = answered.get(i) {
            service_comments(&mut t, a, i == 0);
        }
        list.push(t);
    }
    relay.insert("services", Item::ArrayOfTables(list));

    if let Some(m) = doc.get_mut("middlebox") {
        let m = table(m);
        Comments::of(["The ports the path refused (a TCP RST on connect): Postfix's connection is refused there too."])
            .before_key(m, "block");
        Comments::of(["The ports the path dropped (the connection attempt timed out): Postfix's connect times out there too."])
            .before_key(m, "drop");
    }
    if let Some(postfix) = doc.get_mut("postfix") {
        let postfix = table(postfix);
        Comments::of(["Postfix does not know the relay's CA, as this host does not."])
            .before_key(postfix, "trust_ca");
        Comments::of(d.settings.iter().map(|(_, _, why)| why.as_str()))
            .before_key(postfix, "settings");
    }
    let expect = table(&mut doc["expect"]);
    let mut preface = Comments::default();
    preface.line(&format!(
        "Predictions, not observations, for port {} (the first service, the one `tlsharness run` delivers to):",
        first.obs.target.port
    ));
    preface.extend([
        "what Postfix 3.7 did on paths like this one in the built-in scenarios",
        "(scenarios/*.toml). Confirm them with `tlsharness run FILE`, and correct",
        "them if Postfix disagrees. The probe sent no MAIL: the replayed relay takes",
        "any message.",
    ]);
    for p in &predictions {
        let mut why = std::mem::take(&mut preface);
        why.extend(p.why.iter().map(String::as_str));
        why.before_key(expect, p.level.as_str());
    }
    Ok(doc.to_string())
}

/// The file's opening comments: the command, and what each port did.
fn header(obs: &PathObservation, first: &Answered, when: &str) -> Comments {
    let mut command = format!("tlsharness probe {}", obs.host);
    let ports: Vec<String> = obs.ports.iter().map(|(p, _)| p.port.to_string()).collect();
    command.push_str(&format!(" --ports {}", ports.join(",")));
    let implicit: Vec<String> = obs
        .ports
        .iter()
        .filter(|(p, _)| p.implicit_tls && p.port != crate::scenario::SUBMISSIONS_PORT)
        .map(|(p, _)| format!(" --implicit-tls {}", p.port))
        .collect();
    command.push_str(&implicit.concat());
    if obs.server_name != obs.host.to_ascii_lowercase() {
        command.push_str(&format!(" --name {}", obs.server_name));
    }
    let mut head = Comments::default();
    head.line(&format!("Written by `{command}` on {when}."));
    head.extend([
        "The relay below has one service per port that answered, each replaying what",
        "the probe saw there on this network path; the comments at each service say",
        "how it differs from a clean relay. Review them, then confirm the predicted",
        "expectations at the end with `tlsharness run FILE`.",
        "",
        "What each port did:",
    ]);
    for (plan, seen) in &obs.ports {
        let how = if plan.implicit_tls {
            "implicit TLS"
        } else {
            "STARTTLS"
        };
        head.line(&format!("  {} (probed with {how}): {seen}", plan.port));
    }
    head.line("");
    head.line(&format!(
        "`tlsharness run` delivers to port {}; `tlsharness check` meets each configuration on its own relayhost port.",
        first.obs.target.port
    ));
    head.blank();
    head
}

/// A service's comments: the port's transcript above its header, the
/// diagnosis at the keys of its replay.
fn service_comments(t: &mut Table, a: &Answered, first: bool) {
    let port = a.obs.target.port;
    let mut above = Comments::default();
    let which = if first {
        " (the first service: `tlsharness run` delivers here)"
    } else {
        ""
    };
    above.line(&format!(
        "Port {port}{which}. What the probe saw (C: the probe, S: the server, --: events):"
    ));
    for line in &a.obs.transcript {
        above.line(&format!("  {line}"));
    }
    above.before_header(t);
    let d = &a.d;
    Comments::of(d.at(Place::Ehlo)).before_key(t, "mode");
    if t.contains_key("certificate") {
        Comments::of(d.at(Place::Certificate)).before_key(t, "certificate");
    }
    let Some(replay) = t.get_mut("replay") else {
        return;
    };
    let replay = table(replay);
    for key in ["greeting", "ehlo", "tls_ehlo"] {
        if let Some(lines) = replay.get_mut(key).and_then(Item::as_array_mut) {
            one_per_line(lines);
        }
    }
    Comments::of(d.at(Place::Greeting)).before_key(replay, "greeting");
    Comments::of(d.at(Place::Starttls)).before_key(replay, "starttls");
    Comments::of(d.at(Place::TlsEhlo)).before_key(replay, "tls_ehlo");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::probe::{
        CertProblem, CertSummary, ChainSummary, PortPlan, Starttls, TlsObservation,
    };
    use crate::upstream::RecordedReply;

    fn answered(port: u16, implicit: bool) -> Observation {
        let tls = implicit.then(|| TlsObservation {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            chain: ChainSummary {
                certs: vec![CertSummary {
                    subject: "CN=smtp.relay.test".into(),
                    ..CertSummary::default()
                }],
                problems: vec![CertProblem::SelfSigned],
                issuer_detail: None,
            },
            ehlo: Ok(RecordedReply::parse(&["250-inside", "250 AUTH PLAIN"]).unwrap()),
        });
        let (greeting, ehlo) = if implicit {
            (vec!["220 inside TLS"], vec!["250-inside", "250 AUTH PLAIN"])
        } else {
            (vec!["220 relay ESMTP"], vec!["250-relay", "250 8BITMIME"])
        };
        Observation {
            target: format!("relay.example:{port}").parse().unwrap(),
            addr: format!("127.0.0.77:{port}").parse().unwrap(),
            server_name: "relay.example".into(),
            ehlo_name: "probe.tlsharness.test".into(),
            at: time::OffsetDateTime::UNIX_EPOCH,
            step_timeout: Duration::from_secs(3),
            implicit_tls: tls,
            greeting: RecordedReply::parse(&greeting).unwrap(),
            ehlo: RecordedReply::parse(&ehlo).unwrap(),
            starttls: Starttls::NotOffered,
            behind_starttls_reply: None,
            transcript: vec![format!("S: {}", greeting[0]), format!("-- port {port}")],
        }
    }

    fn path(ports: Vec<(PortPlan, PortSeen)>) -> PathObservation {
        PathObservation {
            host: "127.0.0.77".into(),
            server_name: "relay.example".into(),
            addrs: vec!["127.0.0.77:0".parse().unwrap()],
            ports,
        }
    }

    #[test]
    fn one_scenario_holds_every_port_with_its_comments() {
        let obs = path(vec![
            (
                PortPlan::usual(465),
                PortSeen::Answered(answered(465, true)),
            ),
            (PortPlan::usual(25), PortSeen::Refused),
            (
                PortPlan::usual(587),
                PortSeen::Answered(answered(587, false)),
            ),
            (PortPlan::usual(2525), PortSeen::Dropped),
        ]);
        let (text, s) =
            path_scenario_text(&obs, Path::new("probed.toml")).unwrap_or_else(|e| panic!("{e}"));
        // 587 first: it is the one `run` delivers to.
        let ports: Vec<(u16, ServiceMode)> =
            s.relay.services.iter().map(|s| (s.port, s.mode)).collect();
        assert_eq!(
            ports,
            [(587, ServiceMode::None), (465, ServiceMode::ImplicitTls)],
            "{text}"
        );
        assert_eq!(s.relay.certificate, CertKind::SelfSigned);
        assert_eq!(s.paths[0].block, [25]);
        assert_eq!(s.paths[0].drop, [2525]);
        let wrapped = s.relay.service(465).unwrap().replay.unwrap();
        assert_eq!(wrapped.greeting.lines(), ["220 inside TLS"]);
        assert!(wrapped.starttls.is_none() && wrapped.tls_ehlo.is_none());
        for expected in [
            "#   587 (probed with STARTTLS): answered: 220 relay ESMTP\n",
            "#   25 (probed with STARTTLS): refused: the connection was reset (TCP RST)\n",
            "#   2525 (probed with STARTTLS): dropped: ",
            "# Port 587 (the first service: `tlsharness run` delivers here). What the probe saw",
            "#   -- port 587\n\n[[relay.services]]\nport = 587\n# STARTTLS missing from the EHLO reply",
            "# Port 465. What the probe saw (C: the probe, S: the server, --: events):\n#   S: 220 inside TLS\n#   -- port 465\n\n[[relay.services]]\n",
            "certificate = \"self-signed\"\n",
            "# certificate issuer not trusted: self-signed or TLS interception (subject CN=smtp.relay.test)\ncertificate = \"self-signed\"\n",
            "# this port speaks TLS from the first byte (implicit TLS, RFC 8314)",
            "# The ports the path dropped (the connection attempt timed out): Postfix's connect times out there too.\ndrop = [2525]\n",
            "[middlebox]\n# The ports the path refused",
            "Predictions, not observations, for port 587",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        // The first service speaks plaintext: no wrapper mode.
        assert!(!text.contains("smtp_tls_wrappermode"), "{text}");
    }

    #[test]
    fn an_implicit_tls_first_service_puts_postfix_in_wrapper_mode() {
        let obs = path(vec![
            (PortPlan::usual(587), PortSeen::Refused),
            (
                PortPlan::usual(465),
                PortSeen::Answered(answered(465, true)),
            ),
        ]);
        let (text, s) = path_scenario_text(&obs, Path::new("probed.toml")).unwrap();
        assert_eq!(s.relay.port, 465);
        assert!(s.relay.implicit_tls);
        assert!(
            text.contains("# the relay speaks TLS from the first byte: without wrapper mode Postfix waits for a plaintext greeting and times out"),
            "{text}"
        );
        assert!(
            text.contains("settings = { smtp_tls_wrappermode = \"yes\" }"),
            "{text}"
        );
        assert!(
            text.contains("none = { outcome = \"deferred\", dsn = \"4.3.0\""),
            "{text}"
        );
        assert!(
            text.contains("encrypt = { outcome = \"delivered-tls\", trust = \"untrusted\" }"),
            "{text}"
        );
    }

    #[test]
    fn nothing_answered_is_an_error_not_a_file() {
        let obs = path(vec![
            (PortPlan::usual(587), PortSeen::Refused),
            (PortPlan::usual(465), PortSeen::Dropped),
        ]);
        let e = path_scenario_text(&obs, Path::new("probed.toml")).unwrap_err();
        assert!(matches!(e, ScenarioError::NothingAnswered { .. }), "{e}");
    }
}

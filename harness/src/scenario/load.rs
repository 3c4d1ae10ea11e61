//! Strict loading: every problem is reported with file, line, column and
//! the path of the key, before anything is started.

use std::path::{Path, PathBuf};

use super::checks;
use super::error::{LoadError, LoadErrors, SourceFile, clean_path, invalid};
use super::model::{MtaTables, RawScenario};
use super::validated::Scenario;

/// Loads scenario files and directories (every `*.toml` directly inside,
/// sorted by name). All files are checked; every problem is returned.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Scenario>, LoadErrors> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match expand(path) {
            Ok(found) => files.extend(found),
            Err(e) => errors.push(e),
        }
    }
    let mut scenarios: Vec<Scenario> = Vec::new();
    for file in files {
        match load_file(&file) {
            Ok(s) => {
                if let Some(other) = scenarios.iter().find(|o| o.id == s.id) {
                    errors.push(LoadError::NoScenarios {
                        path: file.clone(),
                        message: format!(
                            "scenario id `{}` is already used by {}; rename one of the files",
                            s.id,
                            other.path.display()
                        ),
                    });
                } else {
                    scenarios.push(s);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(scenarios)
    } else {
        Err(LoadErrors(errors))
    }
}

fn expand(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(LoadError::NoScenarios {
            path: path.to_owned(),
            message: "no scenario files (*.toml) in this directory".into(),
        });
    }
    Ok(files)
}

/// Loads one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_bytes(path, &bytes)
}

/// Loads a scenario from bytes; `path` names it in errors and gives its id.
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Scenario, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        invalid(
            path,
            bytes,
            at..at,
            "",
            "the file is not valid UTF-8".into(),
        )
    })?;
    // The MTAs' tables first: they also refuse any key no part reads.
    let tables = parse::<MtaTables>(path, text)?;
    let raw = parse::<RawScenario>(path, text)?;
    validate(path, text, raw, tables)
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, LoadError> {
    let de = toml::Deserializer::parse(text).map_err(|e| {
        invalid(
            path,
            text.as_bytes(),
            e.span().unwrap_or(0..0),
            "",
            e.message().trim().to_owned(),
        )
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = clean_path(&e.path().to_string());
        let inner = e.into_inner();
        invalid(
            path,
            text.as_bytes(),
            inner.span().unwrap_or(0..0),
            &key,
            inner.message().trim().to_owned(),
        )
    })
}

/// The checks across keys, section by section; the first problem found
/// is the one reported, so their order is the order errors come in.
fn validate(
    path: &Path,
    text: &str,
    raw: RawScenario,
    raw_tables: MtaTables,
) -> Result<Scenario, LoadError> {
    let file = SourceFile { path, text };
    let (expect, raw_versions) = checks::expectations(&file, raw.expect, !raw_tables.0.is_empty())?;
    let tables = checks::mta_tables(&file, raw_tables.0, raw.dns.is_some())?;
    let versions = checks::versions(&file, raw_versions, &expect)?;
    let relay_span = raw.relay.span();
    let relay = checks::relay(&file, relay_span.clone(), raw.relay.into_inner())?;
    let paths = checks::paths(&file, raw.middlebox, raw.paths, &relay, relay_span)?;
    name(&file, &raw.name)?;
    let dns = checks::dns(&file, raw.dns, &relay, paths.len())?;
    let mta_sts = checks::mta_sts(&file, raw.mta_sts, dns.as_ref())?;
    Ok(Scenario {
        id: scenario_id(path),
        name: raw.name,
        description: raw.description,
        path: path.to_owned(),
        relay,
        paths,
        dns,
        mta_sts,
        postfix: raw.postfix,
        delivery: raw.delivery,
        expect,
        versions,
        tables,
    })
}

/// `name`: it names the scenario in reports, so it says something.
fn name(file: &SourceFile, name: &str) -> Result<(), LoadError> {
    if name.trim().is_empty() {
        return Err(file.error(0..0, "name", "the scenario needs a non-empty name".into()));
    }
    Ok(())
}

/// The scenario's id: its file stem.
pub fn scenario_id(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Level;
    use crate::outcome::Outcome;
    use crate::policy::{Mta, Policy};
    use crate::scenario::model::{ServiceMode, ServiceSpec};

    const GOOD: &str = r#"
name = "incident"
[relay]
hostname = "smtp.relay.test"
port = 587
starttls = true
[middlebox]
behaviour = ["strip-starttls"]
[expect]
none = "delivered-plaintext"
may = "delivered-plaintext"
encrypt = { outcome = "deferred", dsn = "4.7.4", reason = "TLS is required, but was not offered" }
verify = "deferred"
secure = ["deferred"]
"#;

    fn load(text: &str) -> Result<Scenario, LoadError> {
        load_bytes(Path::new("scenarios/x.toml"), text.as_bytes())
    }

    fn error(text: &str) -> (usize, String, String) {
        match load(text).unwrap_err() {
            LoadError::Invalid {
                line, key, message, ..
            } => (line, key, message),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn exim_expectations_load_by_exim_s_policy_names() {
        let text = format!(
            "{GOOD}\n[exim]\ntry = \"delivered-plaintext\"\nrequire = {{ outcome = \"deferred\", reason = \"a TLS session is required\" }}\nsettings = {{ command_timeout = \"2s\" }}\n"
        );
        let s = load(&text).unwrap();
        let exim = &s.tables[&Mta::Exim];
        assert_eq!(exim.expect.len(), 2);
        assert_eq!(
            exim.expect[&Policy::parse(Mta::Exim, "try").unwrap()].attempts[0].outcome,
            Outcome::DeliveredPlaintext
        );
        assert_eq!(s.settings(Mta::Exim)["command_timeout"], "2s");
        let policies: Vec<String> = s
            .policies(Mta::Exim)
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(policies, ["try", "require"]);
        assert_eq!(s.policies(Mta::Postfix).len(), 5);
        // Without [exim], no Exim case.
        assert!(load(GOOD).unwrap().policies(Mta::Exim).is_empty());
    }

    #[test]
    fn exim_mistakes_are_located() {
        let at = |extra: &str| error(&format!("{GOOD}\n[exim]\n{extra}\n"));
        // A Postfix level under [exim]: Exim has no `encrypt`.
        let (line, key, message) = at("encrypt = \"deferred\"");
        let text = format!("{GOOD}\n[exim]\nencrypt");
        assert_eq!(line, text.lines().count(), "{key}: {message}");
        assert!(
            message.contains("unknown Exim policy `encrypt`"),
            "{message}"
        );
        let (_, key, message) =
            at("try = \"delivered-plaintext\"\nsettings = { hosts_require_tls = \"*\" }");
        assert_eq!(key, "exim.settings.hosts_require_tls");
        assert!(message.contains("command_timeout"), "{message}");
        let (_, key, message) = at("");
        assert_eq!(key, "exim");
        assert!(message.contains("states no policy"), "{message}");
        let (_, key, message) = at("try = [\"delivered-plaintext\", \"deferred\"]");
        assert_eq!(key, "exim.try");
        assert!(message.contains("leaves the queue"), "{message}");
    }

    #[test]
    fn opensmtpd_tables_load_and_their_mistakes_are_located() {
        let text = format!(
            "{GOOD}\n[opensmtpd]\nopportunistic = \"delivered-plaintext\"\ntls = {{ outcome = \"deferred\", reason = \"TLS required but not supported by remote host\" }}\n"
        );
        let s = load(&text).unwrap();
        let policies: Vec<String> = s
            .policies(Mta::Opensmtpd)
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(policies, ["opportunistic", "tls"]);
        assert!(s.policies(Mta::Exim).is_empty());
        let at = |extra: &str| error(&format!("{GOOD}\n[opensmtpd]\n{extra}\n"));
        let (line, key, message) = at("try = \"deferred\"");
        assert_eq!(line, format!("{GOOD}\n[opensmtpd]\ntry").lines().count());
        assert_eq!(key, "opensmtpd.try");
        assert!(
            message.contains("unknown OpenSMTPD policy `try`"),
            "{message}"
        );
        let (_, key, message) = at("tls = \"deferred\"\nsettings = { helo = \"x\" }");
        assert_eq!(key, "opensmtpd.settings.helo");
        assert!(message.contains("takes no client options"), "{message}");
    }

    /// A key that is neither the scenario's nor an MTA's table is refused
    /// where it is, with every key the file may have.
    #[test]
    fn an_unknown_top_level_key_is_refused_where_it_is() {
        let (line, key, message) = error(&format!("{GOOD}\n[sendmail]\nmay = \"deferred\"\n"));
        assert_eq!(line, format!("{GOOD}\n[sendmail]").lines().count());
        assert_eq!(key, "sendmail");
        assert!(
            message.starts_with("unknown field `sendmail`, expected one of `name`,"),
            "{message}"
        );
        assert!(
            message.ends_with("`expect`, `exim`, `opensmtpd`"),
            "{message}"
        );
    }

    #[test]
    fn version_entries_override_per_level() {
        let text = format!(
            "{GOOD}\n[expect.postfix.\"3.5\"]\nverify = {{ outcome = \"deferred\", reason = \"not trusted\" }}\n[expect.postfix.\"3.5.1\"]\nverify = \"bounced\"\n[expect.postfix.\"3\"]\nverify = \"delivered-tls\"\nmay = \"deferred\"\n"
        );
        let s = load(&text).unwrap();
        let outcome = |level, version| s.expectation(level, version).unwrap().attempts[0].outcome;
        assert_eq!(outcome(Level::Verify, "3.7.11"), Outcome::DeliveredTls);
        assert_eq!(outcome(Level::Verify, "3.5.25"), Outcome::Deferred);
        assert_eq!(outcome(Level::Verify, "3.5.1"), Outcome::Bounced);
        assert_eq!(outcome(Level::Verify, "3.55.0"), Outcome::DeliveredTls);
        assert_eq!(outcome(Level::Verify, "2.11.3"), Outcome::Deferred);
        assert_eq!(outcome(Level::May, "3.5.25"), Outcome::Deferred);
        assert_eq!(outcome(Level::May, "4.0.0"), Outcome::DeliveredPlaintext);
        assert_eq!(outcome(Level::Encrypt, "3.5.25"), Outcome::Deferred);
        assert!(s.expectation(Level::Dane, "3.5.25").is_none());
    }

    #[test]
    fn bad_version_entries_are_located() {
        let with = |table: &str| format!("{GOOD}\n{table}\n");
        let (line, key, message) = error(&with("[expect.postfix.\"3.x\"]\nverify = \"bounced\""));
        assert_eq!(line, 16, "{key}: {message}");
        assert!(message.contains("not a Postfix version"), "{message}");
        let (_, key, message) = error(&with("[expect.postfix.\"3.5\"]\ndane = \"bounced\""));
        assert_eq!(key, "expect.postfix.\"3.5\".dane");
        assert!(message.contains("states nothing for `dane`"), "{message}");
        let (_, _, message) = error(&with("[expect.postfix.\"03.5\"]\nverify = \"bounced\""));
        assert!(message.contains("not a Postfix version"), "{message}");
        // An entry may undo a less specific one; it must differ from that.
        let undo = with(
            "[expect.postfix.\"3\"]\nverify = \"bounced\"\n[expect.postfix.\"3.5\"]\nverify = \"deferred\"",
        );
        let s = load(&undo).unwrap();
        assert_eq!(
            s.expectation(Level::Verify, "3.5.2").unwrap().attempts[0].outcome,
            Outcome::Deferred
        );
        assert_eq!(
            s.expectation(Level::Verify, "3.11-20250101")
                .unwrap()
                .attempts[0]
                .outcome,
            Outcome::Bounced
        );
        let (_, key, message) = error(&with(
            "[expect.postfix.\"3\"]\nverify = \"bounced\"\n[expect.postfix.\"3.5\"]\nverify = \"bounced\"",
        ));
        assert_eq!(key, "expect.postfix.\"3.5\".verify");
        assert!(
            message.contains("the same as [expect.postfix.\"3\"]"),
            "{message}"
        );
        let (_, key, message) = error(&with("[expect.postfix.\"3.5\"]\nverify = \"deferred\""));
        assert_eq!(key, "expect.postfix.\"3.5\".verify");
        assert!(message.contains("the same as [expect]"), "{message}");
        let (_, key, message) = error(&with("[expect.postfix.\"3.5\"]"));
        assert_eq!(key, "expect.postfix.\"3.5\"");
        assert!(message.contains("states no level"), "{message}");
        let (_, key, _) = error(&with(
            "[expect.postfix.\"3.5\"]\nverify = \"bounced\"\n[expect.postfix.\"3.5\".postfix.\"3.5.1\"]\nverify = \"deferred\"",
        ));
        assert!(key.ends_with(".postfix"), "{key}");
        let (_, key, message) = error(&with("[expect.postfix.\"3.5\"]\nverfy = \"bounced\""));
        assert!(key.contains("verfy"), "{key}: {message}");
    }

    /// GOOD with a relay serving 587 (STARTTLS) and 465 (implicit TLS),
    /// the inspection on 587 only.
    fn two_services(extra_relay: &str, middlebox: &str) -> String {
        GOOD.replace(
            "port = 587\nstarttls = true\n",
            &format!(
                "services = [\n  {{ port = 587, mode = \"starttls\" }},\n  {{ port = 465, mode = \"implicit-tls\" }},\n]\n{extra_relay}"
            ),
        )
        .replace("behaviour = [\"strip-starttls\"]\n", middlebox)
    }

    #[test]
    fn a_relay_has_services_and_a_path_acts_per_port() {
        let s = load(&two_services(
            "",
            "behaviour = [\"strip-starttls\"]\nports = [587]\n",
        ))
        .unwrap();
        // The first service is the one `run` delivers to.
        assert_eq!(s.relay.port, 587);
        assert!(s.relay.starttls && !s.relay.implicit_tls);
        assert_eq!(s.relay.service(465).unwrap().mode, ServiceMode::ImplicitTls);
        assert!(s.relay.service(25).is_none());
        assert_eq!(s.paths[0].on_port(587).unwrap().len(), 1);
        assert_eq!(s.paths[0].on_port(465), Some(Vec::new()));
        // The single-port form means one service.
        let single = load(GOOD).unwrap();
        assert_eq!(
            single.relay.services,
            vec![ServiceSpec::new(587, ServiceMode::Starttls)]
        );
        // check: a single-port relay follows the configuration's port as
        // it always has, but never across the implicit-TLS port; one with
        // services answers on those only.
        let follows = |s: &Scenario, port| s.relay.service_for(port).map(|s| (s.port, s.mode));
        assert_eq!(follows(&single, 25), Some((25, ServiceMode::Starttls)));
        assert_eq!(follows(&single, 2525), Some((2525, ServiceMode::Starttls)));
        assert_eq!(follows(&single, 465), None);
        assert_eq!(follows(&s, 25), None);
        assert_eq!(follows(&s, 465), Some((465, ServiceMode::ImplicitTls)));
        let wrapped = load(
            &GOOD
                .replace(
                    "port = 587\nstarttls = true\n",
                    "port = 465\nstarttls = false\nimplicit_tls = true\n",
                )
                .replace("behaviour = [\"strip-starttls\"]\n", ""),
        )
        .unwrap();
        assert_eq!(
            follows(&wrapped, 465),
            Some((465, ServiceMode::ImplicitTls))
        );
        assert_eq!(follows(&wrapped, 587), None);
        let blocked = load(&two_services("", "block = [465]\n")).unwrap();
        assert_eq!(blocked.paths[0].on_port(465), None);
        assert_eq!(blocked.paths[0].on_port(587), Some(Vec::new()));
    }

    #[test]
    fn a_scenario_states_a_port_or_says_nothing_about_it() {
        use crate::scenario::PortStatement;
        let s = load(&two_services("", "block = [2525]\ndrop = [25]\n")).unwrap();
        assert!(matches!(s.port_statement(465), PortStatement::Served(..)));
        assert!(matches!(s.port_statement(2525), PortStatement::Refused(_)));
        assert!(matches!(s.port_statement(25), PortStatement::Dropped(_)));
        let PortStatement::NotModelled(why) = s.port_statement(26) else {
            panic!("26 is not stated");
        };
        assert!(
            why.contains("does not say what happens on port 26"),
            "{why}"
        );
        let closed = load(&two_services("elsewhere = \"refused\"\n", "")).unwrap();
        let PortStatement::Refused(why) = closed.port_statement(26) else {
            panic!("nothing else listens");
        };
        assert!(why.contains("nothing else listens"), "{why}");
        // The single-port form follows the configuration, but not onto
        // the implicit-TLS port.
        let single = load(GOOD).unwrap();
        assert!(matches!(
            single.port_statement(25),
            PortStatement::Served(..)
        ));
        assert!(matches!(
            single.port_statement(465),
            PortStatement::NotModelled(_)
        ));
    }

    #[test]
    fn bad_services_are_located() {
        let (line, key, message) = error(&GOOD.replace(
            "port = 587\nstarttls = true\n",
            "services = [{ port = 465, mode = \"implicit\" }]\n",
        ));
        assert_eq!(line, 5, "{key}: {message}");
        assert!(key.starts_with("relay.services"), "{key}");
        assert!(message.contains("unknown variant `implicit`"), "{message}");
        let (line, key, message) = error(&GOOD.replace(
            "port = 587\nstarttls = true\n",
            "services = [{ port = 587, mode = \"starttls\" }, { port = 587, mode = \"implicit-tls\" }]\n",
        ));
        assert_eq!((line, key.as_str()), (3, "relay.services[1].port"));
        assert!(message.contains("port 587 is listed twice"), "{message}");
        let (_, key, message) = error(&GOOD.replace(
            "starttls = true\n",
            "services = [{ port = 465, mode = \"implicit-tls\" }]\n",
        ));
        assert_eq!(key, "relay");
        assert!(message.contains("`port` and `services`"), "{message}");
        let (_, key, message) = error(&GOOD.replace("starttls = true\n", ""));
        assert_eq!(key, "relay");
        assert!(message.contains("missing field `starttls`"), "{message}");
        // A behaviour for a port the relay does not serve.
        let (line, key, message) = error(&two_services(
            "",
            "behaviour = [\"strip-starttls\"]\nports = [25]\n",
        ));
        assert_eq!((line, key.as_str()), (9, "middlebox.ports"), "{message}");
        assert_eq!(
            message,
            "the relay does not serve port 25 (its ports: 587, 465)"
        );
        // A path may refuse or drop a port the relay does not serve (a
        // probe saw it so), but not both, nor drop where `run` delivers.
        load(&two_services("", "block = [2525]\ndrop = [25]\n")).unwrap();
        let (_, key, message) = error(&two_services("", "block = [25]\ndrop = [25]\n"));
        assert_eq!(key, "middlebox.drop");
        assert!(
            message.contains("both refused (block) and dropped"),
            "{message}"
        );
        let (_, key, message) = error(&two_services("", "drop = [587]\n"));
        assert_eq!(key, "middlebox.drop");
        assert!(message.contains("where `run` delivers"), "{message}");
        let (_, key, message) = error(&two_services("", "drop = [0]\n"));
        assert_eq!(key, "middlebox.drop");
        assert!(message.contains("port 0 is not a port"), "{message}");
        let (_, key, message) = error(&two_services("elsewhere = \"closed\"\n", ""));
        assert!(key.starts_with("relay"), "{key}");
        assert!(message.contains("unknown variant `closed`"), "{message}");
        // STARTTLS stripping on 465, where there is no plaintext dialogue.
        let (_, key, message) = error(&two_services("", "behaviour = [\"strip-starttls\"]\n"));
        assert_eq!(key, "relay");
        assert!(message.contains("on port 465"), "{message}");
        let (_, _, message) = error(&two_services("", "ports = [587]\nblock = [587]\n"));
        assert!(message.contains("both refused and inspected"), "{message}");
    }

    #[test]
    fn loads_a_good_file() {
        let s = load(GOOD).unwrap();
        assert_eq!(s.id, "x");
        assert_eq!(s.relay.port, 587);
        assert_eq!(s.paths.len(), 1);
        assert_eq!(s.paths[0].behaviour.len(), 1);
        let enc = &s.expect[&Level::Encrypt].attempts[0];
        assert_eq!(enc.outcome, Outcome::Deferred);
        assert_eq!(enc.dsn.as_ref().unwrap().as_str(), "4.7.4");
        assert_eq!(s.expect.len(), 5);
    }

    #[test]
    fn unknown_key_is_located() {
        let text = GOOD.replace("port = 587", "prot = 587");
        let (line, key, message) = error(&text);
        assert_eq!(line, 5);
        assert!(key.starts_with("relay"), "{key}");
        assert!(message.contains("unknown field `prot`"), "{message}");
    }

    #[test]
    fn a_setting_postfix_does_not_know_is_located_with_a_hint() {
        let text = GOOD.replace(
            "[expect]",
            "[postfix.settings]\nsmtp_helo_timeout = \"2s\"\nsmtp_tls_mandatry_protocols = \">=TLSv1.2\"\n[expect]",
        );
        let e = load(&text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "scenarios/x.toml:11:1: postfix.settings.smtp_tls_mandatry_protocols: `smtp_tls_mandatry_protocols` is not a Postfix parameter (no built-in image's Postfix knows it); did you mean `smtp_tls_mandatory_protocols`?"
        );
    }

    #[test]
    fn a_setting_the_harness_owns_is_still_refused_for_that() {
        let text = GOOD.replace(
            "[expect]",
            "[postfix]\nsettings = { smtp_tls_CAfile = \"/x\" }\n[expect]",
        );
        let e = load(&text).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "postfix.settings.smtp_tls_CAfile: `smtp_tls_CAfile` is set by the harness: use [postfix] trust_ca"
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_outcome_is_located() {
        let text = GOOD.replace("verify = \"deferred\"", "verify = \"delivered\"");
        let (line, key, message) = error(&text);
        assert_eq!(line, 13);
        assert_eq!(key, "expect.verify");
        assert!(message.contains("unknown outcome `delivered`"), "{message}");
    }

    #[test]
    fn bad_value_inside_a_table_is_located() {
        let text = GOOD.replace("dsn = \"4.7.4\"", "dsn = \"4.7\"");
        let (line, key, message) = error(&text);
        assert_eq!(line, 12);
        assert!(key.starts_with("expect.encrypt"), "{key}");
        assert!(message.contains("not a DSN"), "{message}");
    }

    #[test]
    fn unknown_behaviour_is_located() {
        let text = GOOD.replace("strip-starttls", "strip-startls");
        let (line, key, message) = error(&text);
        assert_eq!(line, 8);
        assert!(key.starts_with("middlebox.behaviour"), "{key}");
        assert!(message.contains("strip-startls"), "{message}");
    }

    #[test]
    fn missing_level_is_located() {
        let text = GOOD.replace("verify = \"deferred\"\n", "");
        let (line, key, message) = error(&text);
        assert_eq!(line, 9);
        assert_eq!(key, "expect");
        assert!(message.contains("`verify`"), "{message}");
    }

    #[test]
    fn missing_section_is_reported() {
        let text = GOOD.replace("[relay]", "[relai]");
        let (_, _, message) = error(&text);
        assert!(message.contains("relai"), "{message}");
    }

    #[test]
    fn syntax_error_is_located() {
        let text = GOOD.replace("port = 587", "port = = 587");
        let (line, _, _) = error(&text);
        assert_eq!(line, 5);
    }

    #[test]
    fn final_attempt_cannot_be_followed() {
        let text = GOOD.replace(
            "secure = [\"deferred\"]",
            "secure = [\"delivered-tls\", \"deferred\"]",
        );
        let (line, key, message) = error(&text);
        assert_eq!(line, 14);
        assert_eq!(key, "expect.secure");
        assert!(message.contains("attempt 1"), "{message}");
    }

    const REPLAY: &str = r#"
name = "replay"
[relay]
hostname = "smtp.relay.test"
starttls = true
certificate = "self-signed"
[relay.replay]
greeting = ["220 smtp.relay.test ESMTP"]
ehlo = ["250-smtp.relay.test", "250 STARTTLS"]
starttls = { reply = ["220 2.0.0 Ready to start TLS"] }
[expect]
none = "delivered-plaintext"
may = "delivered-tls"
encrypt = "delivered-tls"
verify = "deferred"
secure = "deferred"
"#;

    #[test]
    fn loads_a_replayed_relay() {
        let s = load(REPLAY).unwrap();
        let replay = s.relay.replay.expect("a replay");
        assert!(replay.completes_tls());
        assert_eq!(replay.ehlo.lines(), ["250-smtp.relay.test", "250 STARTTLS"]);
    }

    #[test]
    fn a_replay_must_agree_with_the_relay() {
        let (_, key, message) = error(&REPLAY.replace("starttls = true", "starttls = false"));
        assert_eq!(key, "relay.replay");
        assert!(message.contains("set starttls = true"), "{message}");
        let (_, _, message) = error(&REPLAY.replace(
            "starttls = { reply = [\"220 2.0.0 Ready to start TLS\"] }\n",
            "",
        ));
        assert!(message.contains("say how it was answered"), "{message}");
        let (_, _, message) = error(&REPLAY.replace("\"250 STARTTLS\"", "\"250 8BITMIME\""));
        assert!(message.contains("does not list STARTTLS"), "{message}");
        let (line, key, message) = error(&REPLAY.replace("\"250 STARTTLS\"", "\"250-STARTTLS\""));
        assert_eq!(line, 9);
        assert!(key.starts_with("relay.replay.ehlo"), "{key}");
        assert!(
            message.contains("the last line ends the reply"),
            "{message}"
        );
        let (_, key, message) = error(&REPLAY.replace("greeting", "greting"));
        assert!(key.starts_with("relay.replay"), "{key}");
        assert!(message.contains("unknown field `greting`"), "{message}");
    }

    /// A relay whose 587 and 465 each replay their own recording.
    const REPLAYED_SERVICES: &str = r#"
name = "replayed services"
[relay]
hostname = "smtp.relay.test"
[[relay.services]]
port = 587
mode = "none"
replay = { greeting = ["220 smtp.relay.test ESMTP"], ehlo = ["250-smtp.relay.test", "250 8BITMIME"] }
[[relay.services]]
port = 465
mode = "implicit-tls"
certificate = "self-signed"
replay = { greeting = ["220 inside TLS"], ehlo = ["250-inside", "250 AUTH PLAIN"] }
[expect]
none = "delivered-plaintext"
may = "delivered-plaintext"
encrypt = "deferred"
verify = "deferred"
secure = "deferred"
"#;

    #[test]
    fn each_service_replays_its_own_recording() {
        let s = load(REPLAYED_SERVICES).unwrap();
        assert!(s.relay.replay.is_none());
        let plain = s.relay.service(587).unwrap();
        assert_eq!(plain.certificate, None);
        assert_eq!(
            plain.replay.unwrap().greeting.lines(),
            ["220 smtp.relay.test ESMTP"]
        );
        let wrapped = s.relay.service_for(465).unwrap();
        assert_eq!(wrapped.certificate, Some(crate::pki::CertKind::SelfSigned));
        assert_eq!(
            wrapped.replay.unwrap().ehlo.lines(),
            ["250-inside", "250 AUTH PLAIN"]
        );
    }

    #[test]
    fn a_service_replay_must_agree_with_its_service() {
        let (_, key, message) =
            error(&REPLAYED_SERVICES.replace("mode = \"none\"", "mode = \"starttls\""));
        assert_eq!(key, "relay.services[0].replay");
        assert!(message.contains("set mode = \"none\""), "{message}");
        let (_, key, message) = error(&REPLAYED_SERVICES.replace(
            "\"250 AUTH PLAIN\"] }",
            "\"250 STARTTLS\"], starttls = { reply = [\"220 go\"] } }",
        ));
        assert_eq!(key, "relay.services[1].replay");
        assert!(message.contains("no STARTTLS to answer"), "{message}");
        let (_, key, message) = error(&REPLAYED_SERVICES.replace(
            "\"250 AUTH PLAIN\"] }",
            "\"250 AUTH PLAIN\"], tls_ehlo = [\"250 x\"] }",
        ));
        assert_eq!(key, "relay.services[1].replay");
        assert!(message.contains("remove tls_ehlo"), "{message}");
        let (_, key, message) = error(&REPLAYED_SERVICES.replace(
            "mode = \"none\"\n",
            "mode = \"none\"\ncertificate = \"expired\"\n",
        ));
        assert_eq!(key, "relay.services[0].certificate");
        assert!(message.contains("never starts TLS"), "{message}");
        // The single-port table cannot say which listener it recorded.
        let (_, key, message) = error(&REPLAYED_SERVICES.replace(
            "[[relay.services]]\nport = 587",
            "[relay.replay]\ngreeting = [\"220 x\"]\nehlo = [\"250 x\"]\n[[relay.services]]\nport = 587",
        ));
        assert_eq!(key, "relay");
        assert!(message.contains("in its own entry"), "{message}");
    }

    #[test]
    fn a_single_port_relay_replays_over_implicit_tls() {
        let text = REPLAY
            .replace(
                "starttls = true",
                "port = 465\nstarttls = false\nimplicit_tls = true",
            )
            .replace("\"250 STARTTLS\"", "\"250 AUTH PLAIN\"")
            .replace(
                "starttls = { reply = [\"220 2.0.0 Ready to start TLS\"] }\n",
                "",
            );
        let s = load(&text).unwrap();
        assert!(s.relay.implicit_tls && s.relay.replay.is_some());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = include_str!("../../../scenarios/incident-587-strip-sasl.toml");

    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        match load_bytes(Path::new("fuzz.toml"), bytes) {
            Ok(_) => Ok(()),
            Err(LoadError::Invalid { line, column, .. }) => {
                // Every error is located inside the file.
                let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
                prop_assert!(line >= 1 && line <= lines, "line {line} of {lines}");
                prop_assert!(column >= 1);
                Ok(())
            }
            Err(other) => Err(TestCaseError::fail(format!("unlocated error: {other}"))),
        }
    }

    proptest! {
        /// Any bytes at all: no panic, and any error names a line.
        #[test]
        fn any_bytes_load_or_fail_located(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check(&bytes)?;
        }

        /// A real scenario with bytes replaced, removed or inserted.
        #[test]
        fn mutated_scenarios_load_or_fail_located(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8)
        ) {
            let mut bytes = VALID.as_bytes().to_vec();
            for (at, byte, kind) in edits {
                let at = at % (bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => { bytes.remove(at); }
                    _ => bytes.insert(at, byte),
                }
            }
            check(&bytes)?;
        }
    }
}

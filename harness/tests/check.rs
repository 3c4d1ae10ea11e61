//! `tlsharness check` and `explain` as a user runs them: the incident's
//! rollout decision, several Postfix versions, a configuration Postfix
//! refuses.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::tlsharness;
use tlsharness::exit;

fn check(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tlsharness().arg("check").args(args).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn row<'a>(stdout: &'a str, scenario: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("{scenario} ")))
        .collect()
}

#[test]
fn the_incident_fix_is_a_downgrade_on_the_stripping_path_only() {
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-after",
        "scenarios/incident-587-strip.toml",
        "scenarios/starttls-relay.toml",
    ]);
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    let strip = row(&stdout, "incident-587-strip");
    assert!(strip[0].contains("deferred 4.7.4"), "{strip:?}");
    assert!(strip[0].contains("PLAINTEXT"), "{strip:?}");
    assert!(strip[0].ends_with("DOWNGRADE"), "{strip:?}");
    let clean = row(&stdout, "starttls-relay");
    assert!(clean[0].ends_with("same"), "{clean:?}");
    // The redirection is stated, name kept.
    assert!(
        stdout.contains("relayhost [smtp.sendgrid.net]:587 -> a fake relay"),
        "{stdout}"
    );
    assert!(
        stdout.contains("current: fixtures/configs/incident-before"),
        "{stdout}"
    );
}

#[test]
fn a_clean_path_shows_no_difference_and_passes() {
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-after",
        "scenarios/starttls-relay.toml",
    ]);
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 downgrade(s), 0 outage(s)"), "{stdout}");
}

#[test]
fn a_downgrade_can_be_allowed() {
    let (code, stdout, _) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-after",
        "--allow-downgrade",
        "scenarios/incident-587-strip.toml",
    ]);
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}");
    assert!(stdout.contains("DOWNGRADE"), "{stdout}");
}

#[test]
fn the_same_scenarios_run_on_all_three_postfix_versions() {
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-after",
        "--all-versions",
        "scenarios/incident-587-strip.toml",
        "scenarios/relay-two-addresses-first-stripped.toml",
    ]);
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    for (image, version) in [
        ("tlsharness/postfix:bullseye", "Postfix 3.5."),
        ("tlsharness/postfix:bookworm", "Postfix 3.7."),
        ("tlsharness/postfix:trixie", "Postfix 3.10."),
    ] {
        assert!(
            stdout.contains(&format!("{image} ({version}")),
            "{image}: {stdout}"
        );
    }
    assert_eq!(row(&stdout, "incident-587-strip").len(), 3, "{stdout}");
    assert!(stdout.contains("Across Postfix versions:"), "{stdout}");
}

/// A copy of the incident's "after" configuration with `edit` applied to
/// its main.cf, in a fresh directory.
fn edited_config(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = common::root().join("fixtures/configs/incident-after");
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let mut bytes = std::fs::read_to_string(entry.path()).unwrap();
        if entry.file_name() == "main.cf" {
            bytes = edit(bytes);
        }
        std::fs::write(dir.path().join(entry.file_name()), bytes).unwrap();
    }
    dir
}

/// How long the slow scenario's one case takes, at least.
const SLOW_CASE: Duration = Duration::from_secs(120);

/// A scenario whose case takes [`SLOW_CASE`] under any configuration (the
/// relay's greeting never comes; Postfix waits out smtp_helo_timeout): a
/// check that ends sooner ran no case to its end.
fn slow_scenario(dir: &Path) -> String {
    let text = std::fs::read_to_string(common::root().join("scenarios/stall-greeting.toml"))
        .unwrap()
        .replace(
            r#"smtp_helo_timeout = "2s""#,
            &format!(r#"smtp_helo_timeout = "{}s""#, SLOW_CASE.as_secs()),
        );
    assert!(text.contains("smtp_helo_timeout = \"120s\""), "{text}");
    let path = dir.join("stall-greeting-slow.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Checks `current` against `candidate` on the slow scenario; the exit
/// code, stdout, stderr and how long it took.
fn check_slow(current: &str, candidate: &str) -> (Option<i32>, String, String, Duration) {
    let scenarios = tempfile::tempdir().unwrap();
    let scenario = slow_scenario(scenarios.path());
    let attempt_timeout = (SLOW_CASE * 3 / 2).as_secs().to_string();
    let t = Instant::now();
    let (code, stdout, stderr) = check(&[
        "--config",
        current,
        "--candidate",
        candidate,
        "--attempt-timeout",
        &attempt_timeout,
        &scenario,
    ]);
    (code, stdout, stderr, t.elapsed())
}

#[test]
fn a_configuration_postfix_refuses_is_reported_in_its_words() {
    let dir = tempfile::tempdir().unwrap();
    let main =
        std::fs::read_to_string(common::root().join("fixtures/configs/incident-before/main.cf"))
            .unwrap()
            .replace("biff = no", "biff = no\ndefault_process_limit = lots");
    std::fs::write(dir.path().join("main.cf"), main).unwrap();
    let (code, stdout, stderr) = check(&[
        "--config",
        dir.path().to_str().unwrap(),
        "scenarios/starttls-relay.toml",
    ]);
    assert_eq!(code, Some(exit::BAD_INPUT), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused the current configuration"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fatal: bad numerical configuration: default_process_limit = lots"),
        "{stderr}"
    );
    assert!(!stdout.contains("scenario"), "no case ran: {stdout}");
}

#[test]
fn a_candidate_postfix_refuses_at_start_ends_the_check_before_any_case() {
    let candidate =
        edited_config(|m| m.replace("biff = no", "biff = no\ndefault_process_limit = lots"));
    let (code, stdout, stderr, took) = check_slow(
        "fixtures/configs/incident-before",
        candidate.path().to_str().unwrap(),
    );
    assert_eq!(code, Some(exit::BAD_INPUT), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused the candidate configuration") && stderr.contains(" at start:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fatal: bad numerical configuration: default_process_limit = lots"),
        "{stderr}"
    );
    assert!(!stderr.contains("current configuration"), "{stderr}");
    // The current side's case would have taken SLOW_CASE; none ran.
    assert_eq!(stdout, "", "no case ran");
    assert!(took < SLOW_CASE / 2, "took {took:?}: {stderr}");
}

#[test]
fn a_candidate_whose_smtp_client_postfix_refuses_ends_the_check_before_any_case() {
    // Postfix starts with this; only its smtp client refuses it, at its
    // first delivery, and every case would wait out the attempt timeout.
    let candidate = edited_config(|m| {
        m.replace(
            "smtp_tls_security_level = may",
            "smtp_tls_security_level = encrpyt",
        )
    });
    let (code, stdout, stderr, took) = check_slow(
        "fixtures/configs/incident-before",
        candidate.path().to_str().unwrap(),
    );
    assert_eq!(code, Some(exit::BAD_INPUT), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "refused the candidate configuration {} when its smtp client started, before any case ran:",
            candidate.path().display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"postfix/smtp["#)
            && stderr.contains(r#"]: fatal: Invalid TLS level "encrpyt""#),
        "{stderr}"
    );
    assert!(!stderr.contains("current configuration"), "{stderr}");
    assert_eq!(stdout, "", "no case ran");
    assert!(took < SLOW_CASE / 2, "took {took:?}: {stderr}");
}

#[test]
fn a_configuration_without_relayhost_is_refused_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.cf"), "myhostname = a.example\n").unwrap();
    let (code, _, stderr) = check(&["--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(exit::BAD_INPUT), "{stderr}");
    assert!(stderr.contains("relayhost is empty"), "{stderr}");
}

#[test]
fn explain_names_the_condition_scenarios_and_commands() {
    let out = tlsharness()
        .args(["explain", "fixtures/logs/incident.log"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("2 delivery line(s)"), "{stdout}");
    assert!(
        stdout.contains("something on the path removed or masked it"),
        "{stdout}"
    );
    assert!(
        stdout.contains("scenarios/incident-587-strip.toml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("openssl s_client -starttls smtp -connect smtp.sendgrid.net:587"),
        "{stdout}"
    );
}

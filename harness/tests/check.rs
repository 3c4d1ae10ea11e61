//! `tlsharness check` and `explain` as a user runs them: the incident's
//! rollout decision, several Postfix versions, a configuration Postfix
//! refuses.

mod common;

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
        stderr.contains("fatal: bad numerical configuration: default_process_limit = lots"),
        "{stderr}"
    );
    assert!(!stdout.contains("scenario"), "no case ran: {stdout}");
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

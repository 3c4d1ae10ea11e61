//! `tlsharness check` and `explain` as a user runs them: the incident's
//! rollout decision, several Postfix versions, a configuration Postfix
//! refuses.

mod common;

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

/// `check` from `current` to `candidate` on the incident's two paths:
/// the stripping firewall and the clean one.
fn on_the_incident_paths(current: &str, candidate: &str) -> (Option<i32>, String, String) {
    check(&[
        "--config",
        current,
        "--candidate",
        candidate,
        "scenarios/incident-587-strip.toml",
        "scenarios/starttls-relay.toml",
    ])
}

#[test]
fn the_incident_fix_is_a_downgrade_on_the_stripping_path_only() {
    let (code, stdout, stderr) = on_the_incident_paths(
        "fixtures/configs/incident-before",
        "fixtures/configs/incident-after",
    );
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    let strip = common::row(&stdout, "incident-587-strip");
    assert!(strip[0].contains("deferred 4.7.4"), "{strip:?}");
    assert!(strip[0].contains("PLAINTEXT"), "{strip:?}");
    assert!(strip[0].ends_with("DOWNGRADE"), "{strip:?}");
    let clean = common::row(&stdout, "starttls-relay");
    assert!(clean[0].ends_with("same"), "{clean:?}");
    // The redirection is stated, name kept.
    assert!(
        stdout.contains("all mail: Postfix's address resolver sends it to smtp:[smtp.sendgrid.net]:587; that next hop -> a fake relay"),
        "{stdout}"
    );
    assert!(
        stdout.contains("current: fixtures/configs/incident-before"),
        "{stdout}"
    );
}

#[test]
fn the_fix_that_works_is_an_upgrade_on_the_incident_path_and_the_same_on_the_clean_one() {
    // 465 with wrapper mode and encrypt: the firewall inspects 587 only,
    // so on 465 there is no STARTTLS to strip. Postfix on 465 logs
    //   Trusted TLS connection established to smtp.sendgrid.net[127.0.1.1]:465: TLSv1.3 ...
    // where on 587 the current configuration deferred (4.7.4).
    let (code, stdout, stderr) = on_the_incident_paths(
        "fixtures/configs/incident-before",
        "fixtures/configs/incident-465",
    );
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    let strip = common::row(&stdout, "incident-587-strip");
    assert!(strip[0].contains("deferred 4.7.4"), "{strip:?}");
    assert!(strip[0].contains("tls trusted"), "{strip:?}");
    assert!(strip[0].ends_with("upgrade"), "{strip:?}");
    let clean = common::row(&stdout, "starttls-relay");
    assert!(clean[0].ends_with("same"), "{clean:?}");
    assert!(
        stdout.contains("all mail: Postfix's address resolver sends it to smtp:[smtp.sendgrid.net]:465; that next hop -> a fake relay"),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 downgrade(s), 0 bounce(s), 0 outage(s)"),
        "{stdout}"
    );
}

#[test]
fn a_port_the_scenario_refuses_or_drops_is_an_outage_and_one_it_never_mentions_is_not_modelled() {
    // Postfix, where nothing listens (the path's block, or the relay's
    // `elsewhere = "refused"`):
    //   connect to smtp.sendgrid.net[127.0.1.1]:465: Connection refused
    //   ... relay=none, ..., dsn=4.4.1, status=deferred (connect to ...:465: Connection refused)
    // and where the path drops the SYN, after smtp_connect_timeout (30s):
    //   connect to smtp.sendgrid.net[127.0.1.1]:465: Connection timed out
    //   ... relay=none, ..., dsn=4.4.1, status=deferred (connect to ...:465: Connection timed out)
    // incident-587-strip runs first and listens on 465: a later scenario
    // without it must still find the port closed, not reset.
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-465",
        "scenarios/incident-587-strip.toml",
        "scenarios/relay-465-blocked.toml",
        "harness/tests/data/ports/relay-587-nothing-else-listens.toml",
        "harness/tests/data/ports/relay-465-dropped.toml",
        "harness/tests/data/ports/relay-587-says-nothing-of-465.toml",
    ]);
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    for (scenario, said, postfix) in [
        (
            "relay-465-blocked",
            "candidate: the path's firewall blocks port 465, so the connection is refused",
            "(connect to smtp.sendgrid.net[127.0.1.1]:465: Connection refused)",
        ),
        (
            "relay-587-nothing-else-listens",
            "candidate: no service on port 465: the scenario's relay serves 587 and nothing else listens (relay.elsewhere = \"refused\"), so the connection is refused",
            "(connect to smtp.sendgrid.net[127.0.1.1]:465: Connection refused)",
        ),
        (
            "relay-465-dropped",
            "candidate: the path drops connections to port 465 silently, so the connection times out",
            "(connect to smtp.sendgrid.net[127.0.1.1]:465: Connection timed out)",
        ),
    ] {
        let row = common::row(&stdout, scenario);
        assert!(row[0].contains("deferred 4.4.1"), "{row:?}");
        assert!(row[0].ends_with("OUTAGE"), "{row:?}");
        assert!(stdout.contains(said), "{stdout}");
        assert!(stdout.contains(postfix), "{stdout}");
    }
    let row = common::row(&stdout, "relay-587-says-nothing-of-465");
    assert!(row[0].contains("not modelled (port 465)"), "{row:?}");
    assert!(row[0].ends_with("not-modelled"), "{row:?}");
    assert!(
        stdout.contains(
            "candidate: the scenario does not say what happens on port 465: its relay serves 587"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 downgrade(s), 0 bounce(s), 3 outage(s), 1 not-modelled in 5 path(s)."),
        "{stdout}"
    );
}

#[test]
fn a_path_the_scenario_does_not_model_never_gates() {
    let json = tempfile::NamedTempFile::new().unwrap();
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-465",
        "--json",
        json.path().to_str().unwrap(),
        "harness/tests/data/ports/relay-587-says-nothing-of-465.toml",
    ]);
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("0 downgrade(s), 0 bounce(s), 0 outage(s), 1 not-modelled in 1 path(s).")
            && stdout.contains("Not modelled: the scenario does not say"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json.path()).unwrap()).unwrap();
    assert_eq!(v[0]["verdict"], "not-modelled", "{v}");
    assert_eq!(v[0]["candidate"]["port"], 465, "{v}");
    assert!(
        v[0]["candidate"]["not_modelled"]
            .as_str()
            .is_some_and(|w| w.contains("port 465")),
        "{v}"
    );
    // Nothing ran on the side the scenario says nothing about.
    assert_eq!(v[0]["candidate"]["log"], serde_json::json!([]), "{v}");
    assert_eq!(v[0]["current"]["port"], 587, "{v}");
}

#[test]
fn the_465_fix_on_the_whole_library_is_an_outage_only_where_465_is_blocked() {
    // Every relay scenario states 465 (each file quotes what Postfix 3.5,
    // 3.7 and 3.10 logged there); by-MX scenarios do not run on a
    // relayhost's route.
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-465",
    ]);
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    let verdicts: std::collections::BTreeMap<String, String> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("tlsharness/postfix:"))
        .filter(|l| l.starts_with("  ") && !l.starts_with("    ") && !l.starts_with("  scenario "))
        .filter(|l| {
            !l.trim_start().starts_with("current:") && !l.trim_start().starts_with("candidate:")
        })
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?.to_owned();
            let last = l.split_whitespace().last()?.to_owned();
            Some((name, last))
        })
        .collect();
    let upgrade = [
        "drop-on-starttls",
        "drop-on-starttls-reset",
        "fail-handshake-alert",
        "fail-handshake-close",
        "fail-handshake-garbage",
        "fail-handshake-immediate-retry",
        "fail-handshake-reset",
        "fail-handshake-silence",
        "incident-587-strip",
        "incident-587-strip-sasl",
        "incident-587-strip-sasl-auth-before-tls",
        "intercept-tls-trusted-ca",
        "mask-banner",
        "mask-starttls",
        "reject-starttls-454",
        "reject-starttls-502",
        "relay-implicit-tls-465",
        "relay-implicit-tls-465-no-wrappermode",
        "relay-policy-secure-stripped-path",
        "relay-require-tls-stripped",
        "replay-starttls-unanswered",
        "stall-greeting",
    ];
    let same = [
        "delay",
        "inject-command",
        "inject-response",
        "intercept-tls-self-signed",
        "relay-auth-587",
        "relay-auth-587-postfix-defaults",
        "relay-cert-expired",
        "relay-cert-intermediate",
        "relay-cert-missing-intermediate",
        "relay-cert-not-yet-valid",
        "relay-cert-self-signed",
        "relay-cert-trusted",
        "relay-cert-wrong-name",
        "relay-policy-encrypt-overrides-level",
        "relay-require-tls",
        "relay-tls12-only",
        "relay-tls12-only-postfix-requires-tls13",
        "relay-tls13-only",
        "relay-two-addresses-first-stripped",
        "starttls-relay",
        "starttls-relay-unknown-ca",
        "starttls-relay-wrong-name",
    ];
    let mut expected: std::collections::BTreeMap<String, String> = upgrade
        .iter()
        .map(|s| (s.to_string(), "upgrade".to_owned()))
        .chain(same.iter().map(|s| (s.to_string(), "same".to_owned())))
        .collect();
    // No TLS at all, so no 465 either: still waiting, for another reason.
    expected.insert("no-starttls-relay".into(), "changed".into());
    expected.insert("relay-465-blocked".into(), "OUTAGE".into());
    assert_eq!(verdicts, expected, "{stdout}");
    assert!(
        stdout.contains("0 downgrade(s), 0 bounce(s), 1 outage(s), 0 not-modelled in 46 path(s)."),
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
    assert!(
        stdout.contains("0 downgrade(s), 0 bounce(s), 0 outage(s)"),
        "{stdout}"
    );
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
    assert_eq!(
        common::row(&stdout, "incident-587-strip").len(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("Across Postfix versions:"), "{stdout}");
}

/// The line under `scenario`'s row that says why its verdict is what it
/// is.
fn why_line<'a>(stdout: &'a str, scenario: &str) -> &'a str {
    let mut lines = stdout.lines();
    lines
        .find(|l| l.trim_start().starts_with(&format!("{scenario} ")))
        .unwrap_or_else(|| panic!("no row for {scenario}: {stdout}"));
    lines
        .next()
        .filter(|l| l.trim_start().starts_with("why: "))
        .unwrap_or_else(|| panic!("no why under {scenario}: {stdout}"))
}

#[test]
fn the_incident_with_sasl_bounces_one_way_and_leaks_the_credentials_the_other() {
    let json = tempfile::tempdir().unwrap();
    let json_path = json.path().join("check.json");
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-after",
        "--json",
        json_path.to_str().unwrap(),
        "scenarios/incident-587-strip-sasl.toml",
        "scenarios/incident-587-strip-sasl-auth-before-tls.toml",
    ]);
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    // What changed, by Postfix's own postconf -n, and the level it applies.
    assert!(
        stdout.contains("What the candidate changes (postconf -n of each side):\n  smtp_tls_security_level: encrypt -> may\n\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("candidate: Postfix applies TLS level may to [smtp.sendgrid.net]:587 (set by smtp_tls_security_level in main.cf)"),
        "{stdout}"
    );
    let bounce = common::row(&stdout, "incident-587-strip-sasl");
    assert!(bounce[0].ends_with("BOUNCE"), "{bounce:?}");
    assert_eq!(
        why_line(&stdout, "incident-587-strip-sasl").trim(),
        "why: deferred 4.7.4 -> bounced 5.7.0: mail is returned to the sender instead of waiting in the queue"
    );
    let leak = common::row(&stdout, "incident-587-strip-sasl-auth-before-tls");
    assert!(leak[0].ends_with("DOWNGRADE"), "{leak:?}");
    assert_eq!(
        why_line(&stdout, "incident-587-strip-sasl-auth-before-tls").trim(),
        "why: deferred 4.7.4 -> PLAINTEXT +CREDENTIALS: the SASL credentials and the mail now cross the network in plaintext"
    );
    assert!(
        stdout.contains("1 downgrade(s), 1 bounce(s), 0 outage(s), 0 not-modelled in 2 path(s)."),
        "{stdout}"
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let by_id = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["scenario"] == id)
            .unwrap_or_else(|| panic!("no {id} in {rows}"))
            .clone()
    };
    let bounce = by_id("incident-587-strip-sasl");
    assert_eq!(bounce["verdict"], "bounce", "{bounce}");
    assert!(
        bounce["why"]
            .as_str()
            .unwrap()
            .contains("returned to the sender"),
        "{bounce}"
    );
    assert_eq!(
        bounce["candidate"]["tls_policy"]["level"], "may",
        "{bounce}"
    );
    let leak = by_id("incident-587-strip-sasl-auth-before-tls");
    assert_eq!(leak["verdict"], "downgrade", "{leak}");
    assert!(
        leak["why"].as_str().unwrap().contains("SASL credentials"),
        "{leak}"
    );
}

#[test]
fn a_deferral_turned_bounce_alone_gates_and_can_be_allowed() {
    let args = [
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-after",
        "scenarios/incident-587-strip-sasl.toml",
    ];
    let (code, stdout, stderr) = check(&args);
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("0 downgrade(s), 1 bounce(s), 0 outage(s), 0 not-modelled in 1 path(s)."),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nBOUNCE incident-587-strip-sasl on tlsharness/postfix:bookworm:\n"),
        "{stdout}"
    );
    let (code, stdout, stderr) = check(&[&args[..], &["--allow-bounce"]].concat());
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    assert!(
        common::row(&stdout, "incident-587-strip-sasl")[0].ends_with("BOUNCE"),
        "{stdout}"
    );
}

#[test]
fn the_header_shows_the_level_a_policy_map_imposes() {
    let candidate = edited_config(|m| m + "smtp_tls_policy_maps = hash:/etc/postfix/tls_policy\n");
    std::fs::write(
        candidate.path().join("tls_policy"),
        "[smtp.sendgrid.net]:587 encrypt\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        candidate.path().to_str().unwrap(),
        "scenarios/incident-587-strip-sasl.toml",
    ]);
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("  smtp_tls_policy_maps: (not set) -> hash:/etc/postfix/tls_policy\n  smtp_tls_security_level: encrypt -> may\n  tls_policy: only in the candidate\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("candidate: Postfix applies TLS level encrypt to [smtp.sendgrid.net]:587 (set by smtp_tls_policy_maps: postmap -q '[smtp.sendgrid.net]:587' hash:/etc/postfix/tls_policy answers 'encrypt')"),
        "{stdout}"
    );
    assert!(stdout.contains("candidate (encrypt)"), "{stdout}");
    assert!(
        common::row(&stdout, "incident-587-strip-sasl")[0].ends_with("same"),
        "{stdout}"
    );
}

#[test]
fn a_scenario_setting_that_is_not_a_timeout_does_not_change_checks_result() {
    // relay-auth-587 sets smtp_sasl_security_options = noanonymous;
    // -postfix-defaults is the same path without it. On a main.cf that
    // does not set it, the two must give the same result in check.
    let dir = tempfile::tempdir().unwrap();
    let from = common::root().join("fixtures/configs/incident-before");
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("smtp_sasl_security_options"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.path().join(entry.file_name()), text).unwrap();
    }
    let main = std::fs::read_to_string(dir.path().join("main.cf")).unwrap();
    assert!(!main.contains("smtp_sasl_security_options"), "{main}");
    let (code, stdout, stderr) = check(&[
        "--config",
        dir.path().to_str().unwrap(),
        "scenarios/relay-auth-587.toml",
        "scenarios/relay-auth-587-postfix-defaults.toml",
    ]);
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    let cell = |scenario: &str| {
        common::row(&stdout, scenario)[0]
            .trim_start()
            .strip_prefix(scenario)
            .unwrap()
            .trim()
            .to_owned()
    };
    // Postfix's default (noplaintext) leaves no mechanism inside TLS.
    assert_eq!(cell("relay-auth-587"), "deferred 4.7.0", "{stdout}");
    assert_eq!(
        cell("relay-auth-587"),
        cell("relay-auth-587-postfix-defaults")
    );
    assert!(
        stdout.contains("NOT applied, your configuration decides (the rows are marked): scenario settings relay-auth-587: smtp_sasl_security_options=noanonymous\n"),
        "{stdout}"
    );
    let mut lines = stdout.lines();
    lines.find(|l| l.trim_start().starts_with("relay-auth-587 "));
    assert_eq!(
        lines.next().map(str::trim),
        Some(
            "note: the scenario's smtp_sasl_security_options=noanonymous not applied; your configuration decided"
        ),
        "{stdout}"
    );
}

#[test]
fn a_user_s_own_way_out_is_overridden_listed_and_mail_reaches_only_the_fake_relay() {
    // The incident's configuration, with Debian's master.cf whose
    // outgoing service binds to a public address and has a fallback relay:
    // containment must win over both, and say so.
    let dir = tempfile::tempdir().unwrap();
    let from = common::root().join("fixtures/configs/incident-before");
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let service = "\nsmtp      unix  -       -       y       -       -       smtp\n";
    let master = std::fs::read_to_string(common::data("master.cf")).unwrap();
    assert!(master.contains(service), "{master}");
    std::fs::write(
        dir.path().join("master.cf"),
        master.replace(
            service,
            &format!(
                "{service}  -o smtp_bind_address=192.0.2.7 -o smtp_fallback_relay=[192.0.2.1]:25\n"
            ),
        ),
    )
    .unwrap();
    let config = dir.path().to_str().unwrap();
    let json_path = dir.path().join("check.json");
    let (code, stdout, stderr) = check(&[
        "--config",
        config,
        "--candidate",
        config,
        "--json",
        json_path.to_str().unwrap(),
        "scenarios/starttls-relay.toml",
    ]);
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    let overrides = [
        "master.cf service smtp: -o smtp_bind_address=192.0.2.7 overridden with 127.0.0.1 (containment)",
        "master.cf service smtp: -o smtp_fallback_relay=[192.0.2.1]:25 overridden with (none) (containment)",
    ];
    for line in overrides {
        assert!(
            stdout.contains(&format!("\n  - {line}\n")),
            "{line}: {stdout}"
        );
    }
    assert!(
        stdout.contains("What the harness changed in both configurations to run it here:"),
        "{stdout}"
    );
    let row = common::row(&stdout, "starttls-relay");
    assert!(row[0].ends_with("same"), "{row:?}");

    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let [row] = rows.as_array().unwrap().as_slice() else {
        panic!("one row: {rows}");
    };
    for side in ["current", "candidate"] {
        let listed: Vec<&str> = row["overridden"][side]
            .as_array()
            .unwrap_or_else(|| panic!("no overridden.{side}: {row}"))
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        for line in overrides {
            assert!(listed.contains(&line), "{side}: {line}: {listed:?}");
        }
        // Delivered as the scenario expects, to the fake relay on
        // loopback and nowhere else.
        let attempt = &row[side]["attempt"];
        assert_eq!(
            attempt["outcome"], row[side]["expected"]["outcome"],
            "{row}"
        );
        assert_eq!(attempt["outcome"], "delivered-tls", "{row}");
        let log: Vec<&str> = row[side]["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let relays: Vec<&str> = log
            .iter()
            .filter(|l| l.contains(" relay="))
            .copied()
            .collect();
        assert!(!relays.is_empty(), "{log:#?}");
        for l in relays {
            assert!(l.contains(" relay=smtp.sendgrid.net[127."), "{l}");
        }
        assert!(!log.iter().any(|l| l.contains("192.0.2.")), "{log:#?}");
    }
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

/// Checks `current` against `candidate` on the slow scenario; the exit
/// code, stdout, stderr and how long it took.
fn check_slow(current: &str, candidate: &str) -> (Option<i32>, String, String, Duration) {
    let scenarios = tempfile::tempdir().unwrap();
    let scenario = common::slow_scenario(scenarios.path());
    let attempt_timeout = (common::SLOW_CASE * 3 / 2).as_secs().to_string();
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
    // Its SASL map too: without it, check refuses before Postfix is asked.
    std::fs::copy(
        common::root().join("fixtures/configs/incident-before/sasl_passwd"),
        dir.path().join("sasl_passwd"),
    )
    .unwrap();
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
fn a_candidate_postfix_refuses_ends_the_check_before_any_case() {
    // Postfix's own tools refuse it already when asked where it sends
    // mail (`postmap: fatal: ...`), before any Postfix under test starts.
    let candidate =
        edited_config(|m| m.replace("biff = no", "biff = no\ndefault_process_limit = lots"));
    let (code, stdout, stderr, took) = check_slow(
        "fixtures/configs/incident-before",
        candidate.path().to_str().unwrap(),
    );
    assert_eq!(code, Some(exit::BAD_INPUT), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused the candidate configuration")
            && stderr.contains(" when asked where it sends mail, before any case ran:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fatal: bad numerical configuration: default_process_limit = lots"),
        "{stderr}"
    );
    assert!(!stderr.contains("current configuration"), "{stderr}");
    // The current side's case would have taken common::SLOW_CASE; none ran.
    assert_eq!(stdout, "", "no case ran");
    assert!(took < common::SLOW_CASE / 2, "took {took:?}: {stderr}");
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
    assert!(took < common::SLOW_CASE / 2, "took {took:?}: {stderr}");
}

#[test]
fn a_configuration_that_sends_no_mail_out_or_none_the_scenarios_apply_to_is_refused() {
    // Every message stays on the machine (default_transport = error):
    // Postfix's own resolver says so, and the check refuses (exit 2)
    // before any Postfix under test starts.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.cf"),
        "myhostname = a.example\ndefault_transport = error:5.7.1 no mail leaves\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check(&["--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(exit::BAD_INPUT), "{stderr}");
    assert!(
        stderr.contains("no mail leaves through an smtp client, to a named relay or by MX")
            && stderr.contains(
                "any other mail: not checked, because on the current side it goes to error:5.7.1 no mail leaves, a service of command error, not an smtp client"
            ),
        "{stderr}"
    );
    assert_eq!(stdout, "", "no case ran");
    // Mail by MX (no relayhost), and only a relay's scenario selected.
    std::fs::write(dir.path().join("main.cf"), "myhostname = a.example\n").unwrap();
    let (code, stdout, stderr) = check(&[
        "--config",
        dir.path().to_str().unwrap(),
        "scenarios/starttls-relay.toml",
    ]);
    assert_eq!(code, Some(exit::BAD_INPUT), "{stderr}");
    assert!(
        stderr.contains("no scenario selected runs on your configuration's routes")
            && stderr.contains("all mail: smtp:elsewhere.tlsharness.invalid"),
        "{stderr}"
    );
    assert_eq!(stdout, "", "no case ran");
}

/// The two paths of the fix, checked from `current` to `candidate`: the
/// verdict on each, and the whole stdout.
fn fix_paths(current: &str, candidate: &str) -> (Option<i32>, String, String, String, String) {
    let (code, stdout, stderr) = on_the_incident_paths(current, candidate);
    let last = |scenario: &str| {
        common::row(&stdout, scenario)
            .first()
            .map(|l| l.split_whitespace().last().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    let (strip, clean) = (last("incident-587-strip"), last("starttls-relay"));
    (code, strip, clean, stdout, stderr)
}

#[test]
fn routing_by_transport_maps_or_by_sender_runs_the_relayhost_s_paths_with_its_verdicts() {
    // relayhost empty; `* smtp:[smtp.sendgrid.net]:587` in transport_maps,
    // or `@hogepmail.hoge.example [smtp.sendgrid.net]:587` in
    // sender_dependent_relayhost_maps. Postfix's trivial-rewrite names the
    // same next hop as relayhost does, so the check runs the same paths.
    let runs: Vec<_> = ["transport-maps", "sender-relay"]
        .into_iter()
        .map(|routed| {
            std::thread::spawn(move || {
                let dir = format!("harness/tests/data/routing/{routed}");
                let same = fix_paths("fixtures/configs/incident-before", &dir);
                let fix = fix_paths(&dir, "fixtures/configs/incident-465");
                (routed, same, fix)
            })
        })
        .collect();
    for run in runs {
        let (routed, same, fix) = run.join().unwrap();
        let (code, strip, clean, stdout, stderr) = same;
        assert_eq!(code, Some(exit::SUCCESS), "{routed}: {stdout}\n{stderr}");
        assert_eq!(
            (strip.as_str(), clean.as_str()),
            ("same", "same"),
            "{routed}: {stdout}"
        );
        assert!(
            stdout.contains("Postfix's address resolver sends it to smtp:[smtp.sendgrid.net]:587"),
            "{routed}: {stdout}"
        );
        // As from the relayhost configuration: an upgrade where the
        // firewall strips STARTTLS on 587, the same on the clean path.
        let (code, strip, clean, stdout, stderr) = fix;
        assert_eq!(code, Some(exit::SUCCESS), "{routed}: {stdout}\n{stderr}");
        assert_eq!(
            (strip.as_str(), clean.as_str()),
            ("upgrade", "same"),
            "{routed}: {stdout}"
        );
    }
}

#[test]
fn a_wrapper_mode_service_of_its_own_picked_by_transport_maps_is_the_fix_that_works() {
    // master.cf's `smtps` service (smtp with -o smtp_tls_wrappermode=yes)
    // named by `* smtps:[smtp.sendgrid.net]:465`: each scenario's copy is
    // of that service, so Postfix speaks TLS from the first byte on 465.
    let (code, strip, clean, stdout, stderr) = fix_paths(
        "fixtures/configs/incident-before",
        "harness/tests/data/routing/smtps-transport",
    );
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    assert_eq!(
        (strip.as_str(), clean.as_str()),
        ("upgrade", "same"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Postfix's address resolver sends it to smtps:[smtp.sendgrid.net]:465")
            && stdout.contains("set by -o smtp_tls_security_level in master.cf on the service Postfix routes this mail to"),
        "{stdout}"
    );
}

#[test]
fn each_next_hop_of_a_per_domain_transport_map_is_a_path_of_its_own() {
    // `* smtp:[smtp.sendgrid.net]:587` and `partner.example
    // smtps:[smtp.sendgrid.net]:465`: two classes of mail, so every
    // scenario runs on both; mail to partner.example is what the firewall
    // can no longer strip.
    let json = tempfile::NamedTempFile::new().unwrap();
    let (code, stdout, stderr) = check(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "harness/tests/data/routing/per-domain",
        "scenarios/incident-587-strip.toml",
        "scenarios/starttls-relay.toml",
        "--json",
        json.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    let verdict = |name: &str| {
        let rows = common::row(&stdout, name);
        assert_eq!(rows.len(), 1, "{name}: {stdout}");
        rows[0].split_whitespace().last().unwrap().to_owned()
    };
    assert_eq!(verdict("incident-587-strip (any other mail)"), "same");
    assert_eq!(
        verdict("incident-587-strip (mail to partner.example)"),
        "upgrade"
    );
    assert_eq!(verdict("starttls-relay (any other mail)"), "same");
    assert_eq!(verdict("starttls-relay (mail to partner.example)"), "same");
    let comparisons: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json.path()).unwrap()).unwrap();
    let routes: Vec<(String, String, String)> = comparisons
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
            (
                s(&c["mail"]),
                s(&c["current"]["route"]),
                s(&c["candidate"]["route"]),
            )
        })
        .collect();
    let other = (
        "any other mail".to_owned(),
        "smtp:[smtp.sendgrid.net]:587".to_owned(),
        "smtp:[smtp.sendgrid.net]:587".to_owned(),
    );
    let partner = (
        "mail to partner.example".to_owned(),
        "smtp:[smtp.sendgrid.net]:587".to_owned(),
        "smtps:[smtp.sendgrid.net]:465".to_owned(),
    );
    assert_eq!(routes, [other.clone(), other, partner.clone(), partner]);
}

#[test]
fn mail_by_mx_runs_the_dns_scenarios_with_the_user_s_own_dane_and_mta_sts_settings() {
    // A server that delivers by MX itself (no relayhost): Postfix's
    // resolver names the recipient domain as the next hop, so the
    // scenarios with [dns] run, each zone standing in for the domain. The
    // candidate's own settings decide: smtp_dns_support_level = dnssec
    // with dane, or the MTA-STS resolver daemon's socketmap.
    let runs: Vec<_> = [
        (
            "fixtures/configs/mx-dane",
            [
                "scenarios/dane-strip-starttls.toml",
                "scenarios/dane-ee-self-signed.toml",
            ],
        ),
        (
            "fixtures/configs/mx-mta-sts",
            [
                "scenarios/mta-sts-enforce-strip-starttls.toml",
                "scenarios/mta-sts-testing-strip-starttls.toml",
            ],
        ),
    ]
    .into_iter()
    .map(|(candidate, scenarios)| {
        std::thread::spawn(move || {
            let mut args = vec![
                "--config",
                "fixtures/configs/mx-may",
                "--candidate",
                candidate,
                "scenarios/starttls-relay.toml",
            ];
            args.extend(scenarios);
            (candidate, check(&args))
        })
    })
    .collect();
    for run in runs {
        let (candidate, (code, stdout, stderr)) = run.join().unwrap();
        // Plaintext that now waits is an outage: the check gates on it.
        assert_eq!(
            code,
            Some(exit::REGRESSION),
            "{candidate}: {stdout}\n{stderr}"
        );
        let row = |scenario: &str| common::row(&stdout, scenario).join("\n");
        assert!(
            stdout.contains("the recipient domain's MX hosts: each scenario with [dns] stands in for that domain")
                && stdout.contains("not run: starttls-relay"),
            "{stdout}"
        );
        if candidate.ends_with("mx-dane") {
            // The signed TLSA record makes TLS mandatory: the stripped
            // STARTTLS is a deferral, not plaintext.
            let strip = row("dane-strip-starttls");
            assert!(
                strip.contains("PLAINTEXT")
                    && strip.contains("deferred 4.7.4")
                    && strip.ends_with("OUTAGE"),
                "{strip}"
            );
            let ee = row("dane-ee-self-signed");
            assert!(
                ee.contains("tls untrusted")
                    && ee.contains("tls verified")
                    && ee.ends_with("upgrade"),
                "{ee}"
            );
        } else {
            // An enforce policy overrides `may`; a testing one does not.
            let enforce = row("mta-sts-enforce-strip-starttls");
            assert!(
                enforce.contains("PLAINTEXT")
                    && enforce.contains("deferred 4.7.4")
                    && enforce.ends_with("OUTAGE"),
                "{enforce}"
            );
            let testing = row("mta-sts-testing-strip-starttls");
            assert!(testing.ends_with("same"), "{testing}");
        }
    }
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

//! The binary as a user meets it: exit codes, located errors, failure
//! details, and no leftovers after a failed or interrupted run.

mod common;

use std::time::Duration;

use common::{Watched, containers_of_run, data, run_dirs, run_id, tlsharness};
use tlsharness::exit;

#[test]
fn malformed_scenario_is_rejected_before_anything_starts() {
    // With no reachable Docker, reaching for it would be exit 3, not 2.
    let out = tlsharness()
        .args(["run"])
        .arg(data("malformed.toml"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{stderr}");
    assert!(
        stderr.contains("malformed.toml:6:1: relay.certifcate: unknown field `certifcate`"),
        "{stderr}"
    );
    assert!(!stderr.contains("starting Postfix"), "{stderr}");
}

/// `tlsharness run FILE` refuses the file with `said` (file, line, key
/// and why) and exit 2, with no Docker to reach: nothing was started.
fn refused_before_starting(file: &std::path::Path, said: &str) {
    let out = tlsharness()
        .args(["run"])
        .arg(file)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = file.display();
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{name}: {stderr}");
    assert!(stderr.contains(said), "{name}: {stderr}");
    assert!(!stderr.contains("starting Postfix"), "{stderr}");
}

#[test]
fn bad_relay_services_and_ports_are_located_before_anything_starts() {
    for (file, said) in [
        (
            "unknown-mode.toml",
            "unknown-mode.toml:8:24: relay.services[1].mode: unknown variant `implicit`, expected one of `starttls`, `implicit-tls`, `none`",
        ),
        (
            "duplicate-port.toml",
            "duplicate-port.toml:3:1: relay.services[1].port: port 587 is listed twice",
        ),
        (
            "unserved-port.toml",
            "unserved-port.toml:11:1: middlebox.ports: the relay does not serve port 25 (its ports: 587, 465)",
        ),
    ] {
        refused_before_starting(&data(&format!("services/{file}")), said);
    }
}

#[test]
fn bad_dns_sections_are_located_before_anything_starts() {
    for (file, said) in [
        (
            "bad-tlsa.toml",
            "bad-tlsa.toml:11:67: dns.mx[0].tlsa[0].usage: usage 4 is not a TLSA usage (0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE)",
        ),
        (
            "mx-nowhere.toml",
            "mx-nowhere.toml:8:1: dns.mx: 2 MX hosts but 1 path(s): each MX host is reached through its own path",
        ),
        (
            "mx-outside.toml",
            "mx-outside.toml:8:1: dns.mx[0].host: `mx.elsewhere.example` is not under the domain hoge.example",
        ),
        (
            "two-behaviours.toml",
            "two-behaviours.toml:8:1: dns.behaviour: give one DNS behaviour",
        ),
    ] {
        refused_before_starting(&data(&format!("dns/{file}")), said);
    }
}

#[test]
fn bad_mta_sts_policies_are_located_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = |mta_sts: &str| {
        format!(
            "name = \"an MTA-STS policy\"\n\
             \n\
             [relay]\n\
             hostname = \"mx1.hoge.example\"\n\
             port = 25\n\
             starttls = true\n\
             \n\
             [dns]\n\
             domain = \"hoge.example\"\n\
             mx = [{{ preference = 10, host = \"mx1.hoge.example\" }}]\n\
             \n\
             [mta_sts]\n\
             {mta_sts}\n\
             \n\
             [expect]\n\
             none = \"delivered-plaintext\"\n\
             may = \"delivered-tls\"\n\
             encrypt = \"delivered-tls\"\n\
             verify = \"delivered-tls\"\n\
             secure = \"delivered-tls\"\n"
        )
    };
    let huge = format!(
        "policy = \"\"\"\nversion: STSv1\nmode: enforce\nmx: mx1.hoge.example\nmax_age: 86400\n{}\"\"\"",
        "comment: padding\n".repeat(4_000)
    );
    for (file, text, said) in [
        (
            "garbled.toml",
            scenario("policy = \"version: STSv1\\nthis is not a policy\\n\""),
            "garbled.toml:12:1: mta_sts.policy: policy line 2: `this is not a policy` is not `key: value`",
        ),
        (
            "huge.toml",
            scenario(&huge),
            "huge.toml:12:1: mta_sts.policy: the policy file has 68065 bytes; RFC 8461 allows at most 65536 (64 KiB)",
        ),
        (
            "no-mx.toml",
            scenario("mode = \"enforce\"\nmx = []\npolicy = \"version: STSv1\\nmode: enforce\\nmax_age: 60\\n\""),
            "no-mx.toml:12:1: mta_sts.policy: a `enforce` policy needs at least one `mx:`",
        ),
        (
            "no-dns.toml",
            scenario("mode = \"enforce\"").replace(
                "[dns]\ndomain = \"hoge.example\"\nmx = [{ preference = 10, host = \"mx1.hoge.example\" }]\n",
                "",
            ),
            "no-dns.toml:9:1: mta_sts: MTA-STS is a policy of the recipient domain: give [dns] too",
        ),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        refused_before_starting(&path, said);
    }
}

#[test]
fn a_scenario_setting_that_would_let_mail_out_is_refused_at_load_time() {
    // Containment by rule: a scenario's settings become -o options on its
    // transport, which beat main.cf. The run refuses the file before
    // anything starts; with no reachable Docker, reaching for it would be
    // exit 3, not 2.
    let dir = tempfile::tempdir().unwrap();
    let scenario = |settings: &str| {
        format!(
            "name = \"a scenario that would let mail out\"\n\
             \n\
             [relay]\n\
             hostname = \"smtp.relay.test\"\n\
             starttls = true\n\
             \n\
             [postfix]\n\
             settings = {{ {settings} }}\n\
             \n\
             [expect]\n\
             may = \"delivered-tls\"\n"
        )
    };
    for (file, settings, key) in [
        (
            "both.toml",
            r#"smtp_bind_address = "", smtp_fallback_relay = "[192.0.2.1]:25""#,
            "smtp_bind_address",
        ),
        (
            "fallback.toml",
            r#"smtp_fallback_relay = "[192.0.2.1]:25""#,
            "smtp_fallback_relay",
        ),
        (
            "relayhost.toml",
            r#"relayhost = "[192.0.2.1]:25""#,
            "relayhost",
        ),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, scenario(settings)).unwrap();
        let out = tlsharness()
            .arg("run")
            .arg(&path)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{file}: {stderr}");
        let located = format!(
            "{}:8:14: postfix.settings.{key}: `{key}` is set by the harness: ",
            path.display()
        );
        assert!(stderr.contains(&located), "{file}: {stderr}");
        assert!(stderr.contains("(containment)"), "{file}: {stderr}");
        assert!(!stderr.contains("starting Postfix"), "{file}: {stderr}");
    }
}

#[test]
fn validate_reports_every_bad_file() {
    let out = tlsharness()
        .arg("validate")
        .arg(data("malformed.toml"))
        .arg(data("no-such-file.toml"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT));
    assert!(stderr.contains("malformed.toml:6:1"), "{stderr}");
    assert!(
        stderr.contains("no-such-file.toml: cannot read"),
        "{stderr}"
    );
}

#[test]
fn missing_docker_is_an_environment_error_with_a_remedy() {
    let out = tlsharness()
        .args(["run", "scenarios/starttls-relay.toml"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::ENVIRONMENT), "{stderr}");
    assert!(stderr.contains("ci/setup-docker.sh"), "{stderr}");
}

#[test]
fn wrong_expectation_fails_with_details_and_leaves_nothing() {
    let out = tlsharness()
        .arg("run")
        .arg(data("wrong-expectation.toml"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(exit::EXPECTATION_FAILED),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("FAIL wrong-expectation/encrypt"),
        "{stdout}"
    );
    assert!(stdout.contains("expected: delivered-tls"), "{stdout}");
    assert!(stdout.contains("got #1:   deferred dsn=4.7.4"), "{stdout}");
    // The Postfix log line and the tampering on the wire are both shown.
    assert!(
        stdout.contains(
            "status=deferred (TLS is required, but was not offered by host smtp.relay.test"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("S~ 250 STARTTLS"), "{stdout}");
    // The other four levels passed.
    assert_eq!(stdout.matches("FAIL ").count(), 1, "{stdout}");
    let id = run_id(
        stderr
            .lines()
            .find(|l| l.contains("starting Postfix"))
            .expect("the run started"),
    );
    assert!(containers_of_run(&id).is_empty());
    assert!(run_dirs(&id).is_empty());
}

fn interrupt(signal: &str) {
    let mut cmd = tlsharness();
    cmd.args(["run", "scenarios"]);
    let mut w = Watched::spawn(cmd);
    // Mid-run: the fakes listen and Docker is creating the container.
    let line = w.wait_for("starting Postfix", Duration::from_secs(60));
    let id = run_id(&line);
    let status = std::process::Command::new("kill")
        .args([signal, &w.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let status = w.wait(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(exit::INTERRUPTED),
        "{status:?} (signal {:?}); stderr:\n{}",
        std::os::unix::process::ExitStatusExt::signal(&status),
        w.seen.join("\n")
    );
    assert!(containers_of_run(&id).is_empty(), "containers left behind");
    assert!(run_dirs(&id).is_empty(), "run directory left behind");
}

#[test]
fn sigint_mid_run_leaves_no_container_or_directory() {
    interrupt("-INT");
}

#[test]
fn sigterm_mid_run_leaves_no_container_or_directory() {
    interrupt("-TERM");
}

fn list(args: &[&str]) -> Vec<String> {
    let out = tlsharness()
        .args(["run", "--list"])
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn partitions_together_list_every_case_exactly_once() {
    let all = list(&[]);
    assert!(all.len() > 50, "{all:?}");
    let mut union: Vec<String> = (1..=3)
        .flat_map(|k| list(&["--partition", &format!("{k}/3")]))
        .collect();
    union.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(union, expected);
    let bad = tlsharness()
        .args(["run", "--list", "--partition", "4/3"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn junit_and_json_reports_validate_with_one_entry_per_case() {
    let dir = tempfile::tempdir().unwrap();
    let (xml, json) = (dir.path().join("out.xml"), dir.path().join("out.json"));
    let selected = [
        "--scenario",
        "starttls-*",
        "--scenario",
        "incident-*",
        "--scenario",
        "relay-two-addresses-*",
    ];
    let out = tlsharness()
        .arg("run")
        .args(selected)
        .arg("--junit")
        .arg(&xml)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(exit::SUCCESS),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = list(&selected);
    assert_eq!(cases.len(), 38);

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let errors = common::report_schema_errors(&report);
    assert!(errors.is_empty(), "{errors:#?}");
    let names: Vec<String> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["scenario"].as_str().unwrap(),
                c["level"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, cases);

    if let Err(e) = common::junit_schema_check(&xml) {
        panic!("{e}");
    }
    let text = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(text.matches("<testcase ").count(), cases.len());
    for case in &cases {
        assert!(text.contains(&format!("name=\"{case}\"")), "{case}");
    }
}

#[test]
fn artifacts_hold_log_transcript_and_config_of_each_failed_case() {
    let dir = tempfile::tempdir().unwrap();
    let out = tlsharness()
        .arg("run")
        .arg(data("wrong-expectation.toml"))
        .arg("--artifacts")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(exit::EXPECTATION_FAILED));
    let case = dir.path().join("wrong-expectation/encrypt");
    let log = std::fs::read_to_string(case.join("postfix.log")).unwrap();
    assert!(log.contains("status=deferred (TLS is required"), "{log}");
    let transcript = std::fs::read_to_string(case.join("transcript.txt")).unwrap();
    assert!(transcript.contains("S~ 250 STARTTLS"), "{transcript}");
    let config = std::fs::read_to_string(case.join("postfix.conf")).unwrap();
    assert!(
        config.contains("-o smtp_tls_security_level=encrypt"),
        "{config}"
    );
    assert!(config.contains("transport_maps = texthash:"), "{config}");
    // Only the failed case has artifacts.
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("wrong-expectation"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(kept, vec![std::ffi::OsString::from("encrypt")]);
}

#[test]
fn repeat_writes_every_run_to_json_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    let (xml, json) = (dir.path().join("out.xml"), dir.path().join("out.json"));
    let out = tlsharness()
        .args(["run", "--scenario", "starttls-relay", "--repeat", "2"])
        .arg("--junit")
        .arg(&xml)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(exit::SUCCESS),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let errors = common::report_schema_errors(&report);
    assert!(errors.is_empty(), "{errors:#?}");
    let repetitions: Vec<u64> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["repetition"]
                .as_u64()
                .expect("every record has its repetition")
        })
        .collect();
    assert_eq!(repetitions.len(), 10, "5 levels, twice");
    assert_eq!(repetitions.iter().filter(|r| **r == 2).count(), 5);
    assert_eq!(report["runs"].as_array().map(Vec::len), Some(2));
    common::junit_schema_check(&xml).unwrap();
    let text = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(text.matches("<testcase ").count(), 10, "{text}");
    assert!(text.contains("(repetition 2)"), "{text}");
}

#[test]
fn an_empty_selection_is_bad_input_with_and_without_repeat() {
    // starttls-relay states no `dane` expectation: no case is left.
    for repeat in ["1", "3"] {
        let out = tlsharness()
            .args(["run", "--scenario", "starttls-relay", "--level", "dane"])
            .args(["--repeat", repeat])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(exit::BAD_INPUT),
            "--repeat {repeat}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no case selected"), "{stderr}");
    }
}

#[test]
fn a_scenario_pattern_that_selects_nothing_is_bad_input_with_a_hint() {
    let out = tlsharness()
        .args([
            "run",
            "--scenario",
            "starttls-relay",
            "--scenario",
            "incident-587-strip.toml",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--scenario incident-587-strip.toml: selects no scenario")
            && stderr.contains("try `incident-587-strip`"),
        "{stderr}"
    );
}

//! The reports against their schemas (fixtures/schemas/) for runs with a
//! passing, a failing and an erroring case, once and under `--repeat`.
//! The runs are built in-process, so every branch of the writers is
//! reached without Docker; `cli.rs` checks a real run's reports.

mod common;

use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, TestCaseStatus};
use serde_json::{Value, json};
use tlsharness::level::Level;
use tlsharness::mta::log::TlsSession;
use tlsharness::outcome::{Outcome, Trust};
use tlsharness::report;
use tlsharness::run::{Attempt, CaseResult, RunReport, Wire, compare};
use tlsharness::scenario::{Expectation, Hop};
use tlsharness::upstream::Received;

const IMAGE: &str = "tlsharness/postfix:bookworm";
const RELAY: &str = "smtp.relay.test[127.0.0.1]:4000";

fn expect(outcomes: &[Value]) -> Expectation {
    Expectation {
        attempts: outcomes
            .iter()
            .map(|o| serde_json::from_value(o.clone()).expect("a valid expectation"))
            .collect(),
    }
}

fn status_line(queue_id: &str, dsn: &str, status: &str, reason: &str) -> String {
    format!(
        "2024-05-01T10:00:00.000000+00:00 mail postfix/smtp[4242]: {queue_id}: to=<x@c0.tlsharness.test>, relay={RELAY}, delay=0.2, delays=0.01/0/0.1/0.09, dsn={dsn}, status={status} ({reason})"
    )
}

// Every attempt starts from `Attempt::failed` so that fields added to
// `Attempt` need no change here.

/// Postfix logged sent, over verified TLS; the relay received it over TLS.
fn delivered_tls() -> Attempt {
    let reason = "250 2.0.0 Ok: queued as 9F1";
    Attempt {
        outcome: Some(Outcome::DeliveredTls),
        status: Some(tlsharness::mta::log::Status::Sent),
        dsn: "2.0.0".into(),
        reason: reason.into(),
        relay: RELAY.into(),
        tls: Some(TlsSession {
            trust: Trust::Verified,
            host: "smtp.relay.test".into(),
            addr: "127.0.0.1".into(),
            port: 4000,
            protocol: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
        }),
        received: Some(Received {
            peer: "127.0.0.1:50000".parse().unwrap(),
            helo: "mail.tlsharness.test".into(),
            mail_from: "sender@tlsharness.test".into(),
            rcpt_to: vec!["x@c0.tlsharness.test".into()],
            tls: true,
            size: 321,
            message_id: Some("<1@tlsharness.test>".into()),
            auth_user: None,
            auth_over_tls: None,
        }),
        relay_hop: Some(Hop::Tls),
        log_line: status_line("A1B2C3", "2.0.0", "sent", reason),
        error: None,
        ..Attempt::failed(String::new(), wire(true))
    }
}

/// Postfix deferred the message: the relay did not offer STARTTLS.
fn deferred() -> Attempt {
    let reason = "TLS is required, but was not offered by host smtp.relay.test[127.0.0.1]";
    Attempt {
        outcome: Some(Outcome::Deferred),
        status: Some(tlsharness::mta::log::Status::Deferred),
        dsn: "4.7.4".into(),
        reason: reason.into(),
        relay: RELAY.into(),
        log_line: status_line("D4E5F6", "4.7.4", "deferred", reason),
        error: None,
        ..Attempt::failed(String::new(), wire(false))
    }
}

/// No verdict: the markup, control characters and terminal escapes in the
/// error must reach both reports intact or dropped, never as broken XML.
fn unclassified() -> Attempt {
    Attempt::failed(
        "no status line for <x@c2.tlsharness.test> & co within 30s \u{1b}[31m\u{1}".into(),
        Wire {
            connections: 1,
            ..Wire::default()
        },
    )
}

fn wire(tls: bool) -> Wire {
    Wire {
        connections: 1,
        relay_offered_starttls: tls,
        client_saw_starttls: tls,
        client_sent_starttls: tls,
        tls_started: tls,
        ..Wire::default()
    }
}

fn case(scenario: &str, level: Level, expected: Expectation, attempts: Vec<Attempt>) -> CaseResult {
    let failure = compare(&expected, &attempts);
    let log = attempts
        .iter()
        .filter(|a| !a.log_line.is_empty())
        .map(|a| a.log_line.clone())
        .collect();
    CaseResult {
        scenario: scenario.into(),
        name: format!("{scenario}: a relay as the scenario describes it"),
        file: format!("scenarios/{scenario}.toml"),
        level: level.into(),
        mta: tlsharness::policy::Mta::Postfix,
        image: IMAGE.into(),
        mta_version: "3.7.11".into(),
        expected,
        passed: failure.is_none(),
        failure,
        inconclusive: None,
        rerun: None,
        attempts,
        recipient: "x@c0.tlsharness.test".into(),
        queue_id: Some("A1B2C3".into()),
        relay: "smtp.relay.test:4000".into(),
        behaviours: vec!["strip-starttls".into()],
        log,
        transcript: "S: 220 smtp.relay.test ESMTP\nC: EHLO mail.tlsharness.test\nS~ 250 STARTTLS\n-- closed: client quit <bye> & gone\n".into(),
        duration_ms: 1234,
        group: 0,
        by_mx: false,
        transport: format!("tlsh0-{level}"),
        route: format!("c0.tlsharness.test tlsh0-{level}:[smtp.relay.test]:4000"),
    }
}

/// A run with a passing case, a failing one (deferred where TLS delivery
/// was expected) and an erroring one (no outcome, an error text).
fn mixed_run(run_id: &str) -> RunReport {
    let tls = || expect(&[json!({"outcome": "delivered-tls", "trust": "verified"})]);
    RunReport {
        run_id: run_id.into(),
        mta: tlsharness::policy::Mta::Postfix,
        image: IMAGE.into(),
        mta_version: "3.7.11".into(),
        cases: vec![
            case(
                "starttls-relay",
                Level::Verify,
                tls(),
                vec![delivered_tls()],
            ),
            case("starttls-relay", Level::Encrypt, tls(), vec![deferred()]),
            case("stripped-starttls", Level::May, tls(), vec![unclassified()]),
        ],
        startup_ms: 900,
        total_ms: 5000,
        configs: vec![(
            "transport_maps = texthash:/etc/postfix/transport\n".into(),
            "tlsh0-encrypt unix - - n - - smtp\n  -o smtp_tls_security_level=encrypt\n".into(),
        )],
        agent_peak_rss_kb: 0,
        dns_logs: Vec::new(),
    }
}

/// The same scenarios, all passing.
fn passing_run(run_id: &str) -> RunReport {
    let mut run = mixed_run(run_id);
    run.cases.truncate(1);
    run.total_ms = 3000;
    run
}

fn written(
    write: impl FnOnce(&Path) -> std::io::Result<()>,
    name: &str,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    write(&path).expect("the report is written");
    (dir, path)
}

fn json_of(reports: &[RunReport]) -> Value {
    let (_dir, path) = written(|p| report::write_json_runs(reports, p), "out.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_conforms(report: &Value) {
    let errors = common::report_schema_errors(report);
    assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
}

/// The JUnit file, checked against the xsd, and read back.
fn junit_of(reports: &[RunReport]) -> (String, quick_junit::Report) {
    let (_dir, path) = written(|p| report::write_junit_runs(reports, p), "out.xml");
    if let Err(e) = common::junit_schema_check(&path) {
        panic!("{e}\n{}", std::fs::read_to_string(&path).unwrap());
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&text).expect("quick-junit reads it");
    (text, parsed)
}

#[test]
fn json_of_a_failing_and_an_erroring_run_matches_the_schema() {
    let run = mixed_run("r1");
    let (_dir, path) = written(|p| report::write_json(&run, p), "out.json");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_conforms(&report);

    assert_eq!(report["passed"], false);
    assert!(report.get("runs").is_none(), "{report:#}");
    let cases = report["cases"].as_array().unwrap();
    assert!(cases.iter().all(|c| c.get("repetition").is_none()));
    let failing = &cases[1];
    assert_eq!(failing["outcome"], "deferred");
    assert_eq!(failing["dsn"], "4.7.4");
    assert_eq!(failing["failure"], "expected delivered-tls, got deferred");
    let erroring = &cases[2];
    assert_eq!(erroring["outcome"], Value::Null);
    assert_eq!(erroring["passed"], false);
    let error = erroring["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("no status line for <x@c2"), "{error}");
    assert_eq!(erroring["reason"], error);
    assert!(
        erroring["failure"]
            .as_str()
            .unwrap()
            .contains("could not be classified: no status line"),
        "{erroring:#}"
    );
}

#[test]
fn json_of_repeated_runs_numbers_every_record_and_matches_the_schema() {
    let runs = [passing_run("r1"), mixed_run("r2")];
    let report = json_of(&runs);
    assert_conforms(&report);

    assert_eq!(report["run_id"], "r1");
    assert_eq!(report["passed"], false);
    assert_eq!(report["total_ms"], 8000);
    assert_eq!(report["startup_ms"], 1800);
    let listed: Vec<(u64, &str, bool)> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["repetition"].as_u64().unwrap(),
                r["run_id"].as_str().unwrap(),
                r["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(1, "r1", true), (2, "r2", false)]);
    let cases: Vec<(u64, String)> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["repetition"].as_u64().unwrap(),
                format!(
                    "{}/{}",
                    c["scenario"].as_str().unwrap(),
                    c["level"].as_str().unwrap()
                ),
            )
        })
        .collect();
    let expected: Vec<(u64, String)> = [
        (1, "starttls-relay/verify"),
        (2, "starttls-relay/verify"),
        (2, "starttls-relay/encrypt"),
        (2, "stripped-starttls/may"),
    ]
    .map(|(k, n)| (k, n.to_owned()))
    .into();
    assert_eq!(cases, expected);
}

#[test]
fn the_schema_ties_repetitions_to_the_list_of_runs() {
    // A single run's record that names a repetition, and a repeated run's
    // record that does not, are both refused.
    let mut single = json_of(&[mixed_run("r1")]);
    single["cases"][0]["repetition"] = json!(1);
    assert!(!common::report_schema_errors(&single).is_empty());

    let mut repeated = json_of(&[passing_run("r1"), mixed_run("r2")]);
    repeated["cases"][1]
        .as_object_mut()
        .unwrap()
        .remove("repetition");
    assert!(!common::report_schema_errors(&repeated).is_empty());
}

#[test]
fn junit_of_a_failing_and_an_erroring_run_validates() {
    let run = mixed_run("r1");
    let (_dir, path) = written(|p| report::write_junit(&run, p), "out.xml");
    if let Err(e) = common::junit_schema_check(&path) {
        panic!("{e}");
    }
    let (text, parsed) = junit_of(std::slice::from_ref(&run));
    assert_eq!(
        (parsed.tests, parsed.failures, parsed.errors),
        (3, 1, 1),
        "{text}"
    );
    let suites: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(suites, ["starttls-relay", "stripped-starttls"]);
    let relay = &parsed.test_suites[0];
    let properties: Vec<(&str, &str)> = relay
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    assert!(properties.contains(&("file", "scenarios/starttls-relay.toml")));
    assert!(properties.contains(&("image", IMAGE)));

    let passing = &relay.test_cases[0];
    assert_eq!(passing.name.as_str(), "starttls-relay/verify");
    assert_eq!(
        passing.classname.as_deref(),
        Some("tlsharness.starttls-relay")
    );
    assert!(matches!(passing.status, TestCaseStatus::Success { .. }));
    assert!(passing.system_out.is_none());

    let failing = &relay.test_cases[1];
    assert_eq!(failing.name.as_str(), "starttls-relay/encrypt");
    let TestCaseStatus::NonSuccess {
        kind: NonSuccessKind::Failure,
        message,
        ty,
        description,
        ..
    } = &failing.status
    else {
        panic!("a failure: {:?}", failing.status);
    };
    assert_eq!(
        message.as_deref(),
        Some("expected delivered-tls, got deferred")
    );
    assert_eq!(ty.as_deref(), Some("expectation"));
    let description = description.as_deref().unwrap();
    assert!(
        description.contains("expected: delivered-tls"),
        "{description}"
    );
    assert!(description.contains("got #1: deferred dsn=4.7.4 (TLS is required"));
    assert!(
        description.contains("  postfix: 2024-05-01T10:00:00.000000+00:00 mail postfix/smtp[4242]: D4E5F6: to=<x@c0.tlsharness.test>"),
        "{description}"
    );
    let out = failing.system_out.as_deref().unwrap();
    assert!(out.contains("postfix log:\n  2024-05-01"), "{out}");
    assert!(
        out.contains("wire transcript:\nS: 220 smtp.relay.test ESMTP"),
        "{out}"
    );
    assert!(out.contains("closed: client quit <bye> & gone"), "{out}");

    let erroring = &parsed.test_suites[1].test_cases[0];
    let TestCaseStatus::NonSuccess {
        kind: NonSuccessKind::Error,
        message,
        ty,
        description,
        ..
    } = &erroring.status
    else {
        panic!("an error: {:?}", erroring.status);
    };
    assert_eq!(ty.as_deref(), Some("harness"));
    let message = message.as_deref().unwrap();
    assert!(
        message.contains(
            "could not be classified: no status line for <x@c2.tlsharness.test> & co within 30s"
        ),
        "{message}"
    );
    assert!(
        !message.contains('\u{1b}') && !message.contains('\u{1}'),
        "{message:?}"
    );
    assert!(
        description
            .as_deref()
            .unwrap()
            .contains("got #1: error: no status line")
    );
}

#[test]
fn junit_of_repeated_runs_holds_every_run() {
    let (text, parsed) = junit_of(&[passing_run("r1"), mixed_run("r2")]);
    assert_eq!(
        (parsed.tests, parsed.failures, parsed.errors),
        (4, 1, 1),
        "{text}"
    );
    let suites: Vec<(&str, Vec<&str>)> = parsed
        .test_suites
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.test_cases.iter().map(|c| c.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        suites,
        [
            (
                "starttls-relay (repetition 1)",
                vec!["starttls-relay/verify (repetition 1)"]
            ),
            (
                "starttls-relay (repetition 2)",
                vec![
                    "starttls-relay/verify (repetition 2)",
                    "starttls-relay/encrypt (repetition 2)"
                ]
            ),
            (
                "stripped-starttls (repetition 2)",
                vec!["stripped-starttls/may (repetition 2)"]
            ),
        ]
    );
    let ids: Vec<&str> = parsed
        .test_suites
        .iter()
        .map(|s| s.extra.get("id").unwrap().as_str())
        .collect();
    assert_eq!(ids, ["0", "1", "2"]);
    let repetition = parsed.test_suites[2]
        .properties
        .iter()
        .find(|p| p.name.as_str() == "repetition")
        .map(|p| p.value.as_str());
    assert_eq!(repetition, Some("2"));
}

#[test]
fn junit_schema_check_refuses_what_the_layout_forbids() {
    // A testcase without `classname` and `time`, directly under testsuites.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    std::fs::write(&path, "<testsuites><testcase name=\"x\"/></testsuites>\n").unwrap();
    assert!(common::junit_schema_check(&path).is_err());
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn artifacts_of_one_run_keep_their_layout() {
    let dir = tempfile::tempdir().unwrap();
    let written = report::write_artifacts(&mixed_run("r1"), dir.path()).unwrap();
    assert_eq!(
        written,
        [
            dir.path().join("starttls-relay/encrypt"),
            dir.path().join("stripped-starttls/may")
        ]
    );
    assert_eq!(
        files_under(dir.path()),
        [
            "starttls-relay/encrypt/postfix.conf",
            "starttls-relay/encrypt/postfix.log",
            "starttls-relay/encrypt/transcript.txt",
            "stripped-starttls/may/postfix.conf",
            "stripped-starttls/may/postfix.log",
            "stripped-starttls/may/transcript.txt",
        ]
    );
    let conf =
        std::fs::read_to_string(dir.path().join("starttls-relay/encrypt/postfix.conf")).unwrap();
    assert!(
        conf.starts_with("# Postfix 3.7.11 in tlsharness/postfix:bookworm"),
        "{conf}"
    );
    assert!(
        conf.contains("-o smtp_tls_security_level=encrypt"),
        "{conf}"
    );
}

#[test]
fn artifacts_of_repeated_runs_land_per_repetition() {
    let dir = tempfile::tempdir().unwrap();
    let written = report::write_artifacts_runs(
        &[mixed_run("r1"), passing_run("r2"), mixed_run("r3")],
        dir.path(),
    )
    .unwrap();
    assert_eq!(written.len(), 4);
    let dirs: Vec<String> = files_under(dir.path())
        .into_iter()
        .filter_map(|f| f.strip_suffix("/postfix.log").map(str::to_owned))
        .collect();
    assert_eq!(
        dirs,
        [
            "repetition-1/starttls-relay/encrypt",
            "repetition-1/stripped-starttls/may",
            "repetition-3/starttls-relay/encrypt",
            "repetition-3/stripped-starttls/may",
        ]
    );
}

#[test]
fn artifacts_of_a_run_on_several_images_do_not_overwrite_each_other() {
    let mut run = mixed_run("r1");
    let mut other = run.cases[1].clone();
    other.image = "tlsharness/postfix:trixie".into();
    other.mta_version = "3.10.5".into();
    run.cases.push(other);
    let dir = tempfile::tempdir().unwrap();
    report::write_artifacts(&run, dir.path()).unwrap();
    let bookworm = dir
        .path()
        .join("starttls-relay/encrypt@tlsharness_postfix_bookworm/postfix.conf");
    let trixie = dir
        .path()
        .join("starttls-relay/encrypt@tlsharness_postfix_trixie/postfix.conf");
    let conf = std::fs::read_to_string(&trixie).unwrap();
    assert!(
        conf.starts_with("# Postfix 3.10.5 in tlsharness/postfix:trixie"),
        "{conf}"
    );
    assert!(bookworm.exists());
    // JUnit names the image in the same way, and stays valid.
    let (_, parsed) = junit_of(&[run]);
    let names: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "starttls-relay@tlsharness/postfix:bookworm",
            "stripped-starttls@tlsharness/postfix:bookworm",
            "starttls-relay@tlsharness/postfix:trixie",
        ]
    );
}

#[test]
fn nothing_to_report_is_refused_not_written_empty() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let xml = dir.path().join("out.xml");
    assert!(report::write_json_runs(&[], &json).is_err());
    assert!(report::write_junit_runs(&[], &xml).is_err());
    assert!(!json.exists() && !xml.exists());
    assert!(
        report::write_artifacts_runs(&[], dir.path())
            .unwrap()
            .is_empty()
    );
}

/// A run whose one case was inconclusive: delivered in plaintext on its
/// first attempt because the message had waited past the backoff, on its
/// run and its run again.
fn inconclusive_run(run_id: &str) -> RunReport {
    let mut run = passing_run(run_id);
    let c = &mut run.cases[0];
    c.passed = false;
    c.failure = None;
    c.rerun = Some("attempt 1: the message had waited 11s in the queue before the MTA began the attempt; the scenario needs under 8s".into());
    c.inconclusive = Some("the MTA was too slow for this scenario's timing (attempt 1: the message had waited 12s ...)".into());
    c.attempts[0].waited_ms = Some(12_000);
    run
}

#[test]
fn an_inconclusive_case_is_neither_passed_nor_failed_in_every_report() {
    let run = inconclusive_run("r1");
    assert_eq!(run.exit_code(), tlsharness::exit::INCONCLUSIVE);
    assert_eq!((run.inconclusive(), run.errors()), (1, 0));
    let (_dir, path) = written(|p| report::write_json(&run, p), "out.json");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_conforms(&report);
    let case = &report["cases"][0];
    assert_eq!(case["passed"], false);
    assert_eq!(case["failure"], Value::Null);
    assert!(case["inconclusive"].as_str().unwrap().contains("too slow"));
    assert!(case["rerun"].as_str().unwrap().contains("waited 11s"));
    assert_eq!(case["attempts"][0]["waited_ms"], 12_000);

    let (text, parsed) = junit_of(std::slice::from_ref(&run));
    assert_eq!(
        (parsed.tests, parsed.failures, parsed.errors),
        (1, 0, 0),
        "{text}"
    );
    assert!(text.contains("<skipped"), "{text}");
    assert!(text.contains("inconclusive"), "{text}");

    let matrix = report::matrix(&run);
    assert!(matrix.contains("? ↻"), "{matrix}");
    assert!(matrix.contains("0 failed, 1 inconclusive"), "{matrix}");
    let details = report::failure_details(&run.cases[0]);
    assert!(details.starts_with("INCONCLUSIVE "), "{details}");
    assert!(
        details.contains("run again with a fresh message"),
        "{details}"
    );
}

/// The schema names every MTA and every policy of each (a run on any MTA
/// writes a report that validates).
#[test]
fn the_schema_names_every_mta_and_each_one_s_policies() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("fixtures/schemas/report.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let names = |def: &str| -> Vec<String> {
        schema["$defs"][def]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let mtas = names("mta");
    let levels = names("level");
    for mta in tlsharness::policy::Mta::ALL {
        assert!(mtas.contains(&mta.as_str().to_owned()), "{mta}");
        for p in mta.policies() {
            assert!(levels.contains(&p.as_str().to_owned()), "{mta} {p}");
        }
    }
}

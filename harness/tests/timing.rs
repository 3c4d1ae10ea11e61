//! Timing preconditions on real Postfix: a case whose expectation assumes
//! a fresh message is judged by Postfix's own `delays=`, and a case whose
//! timing cannot hold is inconclusive, never a pass or a failure.

mod common;

use common::tlsharness;
use tlsharness::exit;

/// The failed-handshake scenario with a one-second backoff: Postfix
/// compares whole seconds, so no first attempt can be sure to find the
/// message younger than that (the fallback may come at once). The
/// harness must say so, run the case again, and then call it
/// inconclusive, with its own exit code, whatever Postfix did.
#[test]
fn a_backoff_no_first_attempt_can_meet_is_inconclusive_after_a_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let original =
        std::fs::read_to_string(common::root().join("scenarios/fail-handshake-alert.toml"))
            .unwrap();
    let forced = original.replace("retry_after = \"3s\"", "retry_after = \"1s\"");
    assert_ne!(forced, original, "the scenario's backoff moved");
    std::fs::write(dir.path().join("fail-handshake-alert-1s.toml"), forced).unwrap();
    let json = dir.path().join("report.json");
    let out = tlsharness()
        .arg("run")
        .arg(dir.path())
        .args(["--level", "may,encrypt", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(exit::INCONCLUSIVE),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let errors = common::report_schema_errors(&report);
    assert!(errors.is_empty(), "{errors:#?}");
    let case = |level: &str| {
        report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["level"] == level)
            .unwrap()
            .clone()
    };
    let may = case("may");
    assert_eq!(may["passed"], false, "{may:#}");
    assert_eq!(may["failure"], serde_json::Value::Null, "{may:#}");
    let why = may["inconclusive"].as_str().unwrap();
    assert!(why.contains("too slow for this scenario's timing"), "{why}");
    assert!(why.contains("needs under 0s"), "{why}");
    assert!(
        may["rerun"].as_str().unwrap().contains("attempt 1"),
        "{may:#}"
    );
    // Postfix's own figure is what was judged.
    assert!(may["attempts"][0]["waited_ms"].is_u64(), "{may:#}");
    // Age decides nothing at `encrypt`: that case passes as ever.
    assert_eq!(case("encrypt")["passed"], true);
    assert!(
        stdout.contains("INCONCLUSIVE fail-handshake-alert-1s/may"),
        "{stdout}"
    );
    assert!(stdout.contains("1 inconclusive"), "{stdout}");
}

/// A case by MX that did not pass keeps the run's DNS logs beside its
/// MTA log: the resolver's own reasons for an answer (`log-servfail`)
/// are what explains a lookup that failed under load.
#[test]
fn a_dns_case_that_failed_keeps_the_resolver_s_and_name_server_s_logs() {
    let dir = tempfile::tempdir().unwrap();
    let original =
        std::fs::read_to_string(common::root().join("scenarios/dane-strip-starttls.toml")).unwrap();
    // Expect the wrong thing at `may`, so the case fails.
    let wrong = original.replacen(
        "may     = \"delivered-plaintext\"",
        "may     = \"delivered-tls\"",
        1,
    );
    assert_ne!(wrong, original, "the scenario's `may` line moved");
    std::fs::write(dir.path().join("dane-wrong.toml"), wrong).unwrap();
    let artifacts = dir.path().join("artifacts");
    let out = tlsharness()
        .arg("run")
        .arg(dir.path().join("dane-wrong.toml"))
        .args(["--level", "may", "--artifacts"])
        .arg(&artifacts)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(exit::EXPECTATION_FAILED),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dns = std::fs::read_to_string(artifacts.join("dane-wrong/may/dns.log")).unwrap();
    assert!(dns.contains("==> unbound.log <=="), "{dns}");
    assert!(dns.contains("==> nsd.log <=="), "{dns}");
}

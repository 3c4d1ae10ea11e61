//! The built-in scenarios' `[opensmtpd]` expectations against a real
//! OpenSMTPD (Debian bookworm's 6.8.0p2) in its container, on the same
//! private network as the other MTAs' runs; and what OpenSMTPD does that
//! the others do not. Needs Docker and tlsharness/opensmtpd:bookworm
//! (ci/test.sh builds both).

mod common;

use std::sync::Arc;

use tlsharness::mta::log::Status;
use tlsharness::mta::opensmtpd::OpensmtpdPolicy;
use tlsharness::outcome::{Outcome, Trust};
use tlsharness::policy::{Mta, Policy};
use tlsharness::run::{CaseResult, RunReport, Selection, plan, run};
use tlsharness::scenario::load_paths;
use tokio::sync::OnceCell;

static REPORT: OnceCell<RunReport> = OnceCell::const_new();

/// One run of every scenario with an `[opensmtpd]` section, shared by the
/// tests.
async fn report() -> &'static RunReport {
    REPORT
        .get_or_init(|| async {
            common::in_process();
            run(&common::library(), &common::on(Mta::Opensmtpd))
                .await
                .expect("the run completes (needs Docker and tlsharness/opensmtpd:bookworm: ci/test.sh sets both up)")
        })
        .await
}

fn case<'a>(r: &'a RunReport, scenario: &str, policy: OpensmtpdPolicy) -> &'a CaseResult {
    r.cases
        .iter()
        .find(|c| c.scenario == scenario && c.level == Policy::from(policy))
        .unwrap_or_else(|| panic!("no case {scenario}/{policy}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_opensmtpd_expectation_holds_on_real_opensmtpd() {
    let r = report().await;
    let failed: Vec<String> = r
        .cases
        .iter()
        .filter(|c| !c.passed)
        .map(tlsharness::report::failure_details)
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_eq!(r.mta, Mta::Opensmtpd);
    assert_eq!(r.mta_version, "6.8.0p2");
    let stated: usize = common::library()
        .iter()
        .map(|s| s.policies(Mta::Opensmtpd).len())
        .sum();
    assert_eq!(r.cases.len(), stated);
    assert!(
        stated >= 150,
        "the catalogue has OpenSMTPD expectations: {stated}"
    );
    assert!(r.cases.iter().all(|c| c.mta == Mta::Opensmtpd));
}

/// The incident on OpenSMTPD: `smtp+tls://` defers, `smtp://` delivers in
/// plaintext, as real smtpd logged it (fixtures/logs/opensmtpd/).
#[tokio::test(flavor = "multi_thread")]
async fn incident_tls_defers_and_opportunistic_delivers_in_plaintext() {
    let r = report().await;
    let tls = &case(r, "incident-587-strip", OpensmtpdPolicy::Tls).attempts[0];
    assert_eq!(tls.outcome, Some(Outcome::Deferred));
    assert_eq!(tls.status, Some(Status::Deferred));
    assert_eq!(tls.reason, "TLS required but not supported by remote host");
    // smtpd's own status line names no reason; the session's error does.
    assert!(
        tls.log_line
            .contains("result=\"TempFail\" stat=\"Network error on destination MXs\""),
        "{}",
        tls.log_line
    );
    assert!(tls.received.is_none());
    let opportunistic = &case(r, "incident-587-strip", OpensmtpdPolicy::Opportunistic).attempts[0];
    assert_eq!(opportunistic.outcome, Some(Outcome::DeliveredPlaintext));
    assert!(opportunistic.tls.is_none());
    assert!(opportunistic.wire.relay_offered_starttls && !opportunistic.wire.client_saw_starttls);
    let matrix = tlsharness::report::matrix(r);
    assert!(
        matrix.contains("smtps-no-verify"),
        "OpenSMTPD's names: {matrix}"
    );
    assert!(matrix.contains("OpenSMTPD 6.8.0p2"), "{matrix}");
}

/// smtpd's `opportunistic` reconnects in clear after TLS fails, and says
/// so; `smtp+tls://` defers on the same path.
#[tokio::test(flavor = "multi_thread")]
async fn opportunistic_reconnects_in_clear_after_tls_fails() {
    let r = report().await;
    for scenario in [
        "fail-handshake-garbage",
        "fail-handshake-reset",
        "drop-on-starttls-reset",
    ] {
        let c = case(r, scenario, OpensmtpdPolicy::Opportunistic);
        let a = &c.attempts[0];
        assert_eq!(a.outcome, Some(Outcome::DeliveredPlaintext), "{scenario}");
        assert_eq!(a.wire.connections, 2, "{scenario}: {}", c.transcript);
        assert!(a.retried_in_clear.is_some(), "{scenario}");
        assert!(
            c.log
                .iter()
                .any(|l| l.contains("opportunistic TLS failed, downgrading to plain")),
            "{scenario}: {:?}",
            c.log
        );
        let tls = &case(r, scenario, OpensmtpdPolicy::Tls).attempts[0];
        assert_eq!(tls.outcome, Some(Outcome::Deferred), "{scenario}");
        assert_eq!(tls.wire.connections, 1, "{scenario}");
    }
}

/// Trust from smtpd's checks: `server-cert-check result="success"` is
/// verified, a name that does not match (`ssl_check_name: no match`) is
/// trusted, another failure untrusted.
#[tokio::test(flavor = "multi_thread")]
async fn trust_comes_from_smtpd_s_certificate_checks() {
    let r = report().await;
    let trust = |s: &str, p| case(r, s, p).attempts[0].tls.as_ref().map(|t| t.trust);
    assert_eq!(
        trust("relay-cert-trusted", OpensmtpdPolicy::Tls),
        Some(Trust::Verified)
    );
    assert_eq!(
        trust("relay-cert-wrong-name", OpensmtpdPolicy::Opportunistic),
        Some(Trust::Trusted)
    );
    assert_eq!(
        trust("relay-cert-self-signed", OpensmtpdPolicy::Opportunistic),
        Some(Trust::Untrusted)
    );
    let wrong = &case(r, "relay-cert-wrong-name", OpensmtpdPolicy::Tls).attempts[0];
    assert_eq!(wrong.reason, "SSL certificate check failed");
    assert_eq!(wrong.tls.as_ref().map(|t| t.trust), Some(Trust::Trusted));
    let implicit = &case(r, "relay-implicit-tls-465", OpensmtpdPolicy::Smtps).attempts[0];
    assert_eq!(implicit.outcome, Some(Outcome::DeliveredTls));
    assert_eq!(implicit.tls.as_ref().map(|t| t.port), Some(465));
}

/// A retry reaches the relay again: the harness resumes the case's route
/// (disabled by smtpd after the first failure) before it schedules the
/// message, so the second attempt has a connection of its own rather than
/// smtpd's `No valid route`.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_message_reconnects_on_its_resumed_route() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("retry-self-signed.toml");
    std::fs::write(
        &path,
        r#"name = "a self-signed relay, twice"
[relay]
hostname = "smtp.relay.test"
port = 587
starttls = true
certificate = "self-signed"
# No [expect]: a scenario about OpenSMTPD alone is not run on Postfix.
[opensmtpd]
tls = [
  { outcome = "deferred", reason = "SSL certificate check failed" },
  { outcome = "deferred", reason = "SSL certificate check failed" },
]
"#,
    )
    .unwrap();
    common::in_process();
    let scenarios: Vec<_> = load_paths(&[path])
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect();
    let r = run(&scenarios, &common::on(Mta::Opensmtpd))
        .await
        .expect("the run completes");
    let c = &r.cases[0];
    assert!(c.passed, "{}", tlsharness::report::failure_details(c));
    assert_eq!(c.attempts.len(), 2);
    for (n, a) in c.attempts.iter().enumerate() {
        assert_eq!(
            a.wire.connections,
            1,
            "attempt {}: {}\n{}",
            n + 1,
            c.transcript,
            c.log.join("\n")
        );
    }
}

#[test]
fn only_scenarios_with_opensmtpd_expectations_have_opensmtpd_cases() {
    let cases = plan(
        &common::library(),
        &Selection {
            mta: Mta::Opensmtpd,
            ..Selection::default()
        },
    );
    assert!(
        cases
            .iter()
            .all(|c| !c.scenario.policies(Mta::Opensmtpd).is_empty())
    );
    assert!(
        !cases.iter().any(|c| c.scenario.id == "dane-strip-starttls"),
        "OpenSMTPD has no DANE: scenarios by MX are not run on it"
    );
    assert!(cases.iter().all(|c| c.level.mta() == Mta::Opensmtpd));
}

#[test]
fn the_cli_runs_opensmtpd_and_refuses_another_mta_s_policy_for_it() {
    let out = common::tlsharness()
        .args([
            "run",
            "--mta",
            "opensmtpd",
            "--list",
            "--scenario",
            "incident-587-strip",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "incident-587-strip/notls",
            "incident-587-strip/opportunistic",
            "incident-587-strip/tls-no-verify",
            "incident-587-strip/tls",
            "incident-587-strip/smtps-no-verify",
            "incident-587-strip/smtps",
        ]
    );
    let out = common::tlsharness()
        .args(["run", "--mta", "opensmtpd", "--level", "encrypt", "--list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(tlsharness::exit::BAD_INPUT));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown OpenSMTPD policy `encrypt`"), "{err}");
}

/// An OpenSMTPD run's reports: the JSON names the MTA and validates
/// against the published schema; the JUnit and HTML reports are written.
#[test]
fn an_opensmtpd_run_s_reports_name_it_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let (json, junit, html) = (
        dir.path().join("r.json"),
        dir.path().join("r.xml"),
        dir.path().join("r.html"),
    );
    let out = common::tlsharness()
        .args([
            "run",
            "--mta",
            "opensmtpd",
            "--scenario",
            "fail-handshake-reset",
            "--json",
        ])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(common::report_schema_errors(&report), Vec::<String>::new());
    assert_eq!(report["mta"], "opensmtpd");
    let opportunistic = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["level"] == "opportunistic")
        .expect("the opportunistic case");
    assert!(
        opportunistic["attempts"][0]["retried_in_clear"]
            .as_str()
            .is_some_and(|h| h.starts_with("smtp.relay.test[127.0.1.1]:587")),
        "{opportunistic}"
    );
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("fail-handshake-reset/tls"), "{junit}");
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("OpenSMTPD 6.8.0p2"),
        "the HTML report names the MTA"
    );
}

/// OpenSMTPD's cases relay by name: a scenario by MX that states what it
/// does is refused at load time, where the table is, with exit 2.
#[test]
fn an_opensmtpd_table_in_a_scenario_by_mx_is_refused_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("by-mx.toml");
    let text =
        std::fs::read_to_string(common::root().join("scenarios/dane-strip-starttls.toml")).unwrap();
    let text = format!("{text}\n[opensmtpd]\ntls = \"deferred\"\n");
    std::fs::write(&path, &text).unwrap();
    let err = refused(&path);
    let line = text.lines().position(|l| l == "[opensmtpd]").unwrap() + 1;
    assert!(
        err.contains(&format!(
            "by-mx.toml:{line}:1: opensmtpd: [opensmtpd] in a scenario with [dns]"
        )),
        "{err}"
    );
}

/// A scenario may state what OpenSMTPD does and nothing of Postfix: it
/// runs on OpenSMTPD only. One that states no MTA at all is refused.
#[test]
fn a_scenario_for_opensmtpd_alone_needs_no_postfix_expectations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("only-opensmtpd.toml");
    let relay = "name = \"a clean relay\"\n[relay]\nhostname = \"smtp.relay.test\"\nport = 587\nstarttls = true\n";
    std::fs::write(
        &path,
        format!("{relay}[opensmtpd]\ntls = \"delivered-tls\"\n"),
    )
    .unwrap();
    let list = |mta: &str| {
        let out = common::tlsharness()
            .args(["run", "--mta", mta, "--list"])
            .arg(&path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(list("opensmtpd").trim(), "only-opensmtpd/tls");
    assert_eq!(list("postfix").trim(), "");
    // `check` still runs its path with your Postfix configuration.
    let out = common::tlsharness()
        .args(["check", "--config"])
        .arg(common::root().join("fixtures/configs/incident-before"))
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("only-opensmtpd  tls trusted"), "{stdout}");
    std::fs::write(&path, relay).unwrap();
    let err = refused(&path);
    assert!(err.contains("only-opensmtpd.toml:1:1: missing field `expect`: say what Postfix does in [expect], or what another MTA does in its own table ([exim], [opensmtpd])"), "{err}");
}

/// What `validate` says of a file it refuses (with exit 2).
fn refused(path: &std::path::Path) -> String {
    let out = common::tlsharness()
        .arg("validate")
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(tlsharness::exit::BAD_INPUT));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

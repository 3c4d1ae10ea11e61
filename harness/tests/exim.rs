//! The built-in scenarios' `[exim]` expectations against a real Exim
//! (Debian bookworm's 4.96, GnuTLS) in its container, on the same private
//! network as Postfix's runs; and what Exim does that Postfix does not.
//! Needs Docker and tlsharness/exim:bookworm (ci/test.sh builds both).

mod common;

use tlsharness::mta::exim::EximPolicy;
use tlsharness::mta::log::Status;
use tlsharness::outcome::{Outcome, Trust};
use tlsharness::policy::{Mta, Policy};
use tlsharness::run::{CaseResult, RunReport, Selection, plan, run};
use tokio::sync::OnceCell;

static REPORT: OnceCell<RunReport> = OnceCell::const_new();

/// One run of every scenario with an `[exim]` section, shared by the tests.
async fn report() -> &'static RunReport {
    REPORT
        .get_or_init(|| async {
            common::in_process();
            run(&common::library(), &common::on(Mta::Exim))
                .await
                .expect("the run completes (needs Docker and tlsharness/exim:bookworm: ci/test.sh sets both up)")
        })
        .await
}

fn case<'a>(r: &'a RunReport, scenario: &str, policy: EximPolicy) -> &'a CaseResult {
    r.cases
        .iter()
        .find(|c| c.scenario == scenario && c.level == Policy::from(policy))
        .unwrap_or_else(|| panic!("no case {scenario}/{policy}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_exim_expectation_holds_on_real_exim() {
    let r = report().await;
    let failed: Vec<String> = r
        .cases
        .iter()
        .filter(|c| !c.passed)
        .map(tlsharness::report::failure_details)
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_eq!(r.mta, Mta::Exim);
    assert!(r.mta_version.starts_with("4."), "{}", r.mta_version);
    // Every scenario with an [exim] section ran at every policy it states,
    // and no other scenario ran.
    let stated: usize = common::library()
        .iter()
        .map(|s| s.policies(Mta::Exim).len())
        .sum();
    assert_eq!(r.cases.len(), stated);
    assert!(
        stated >= 27 * 5,
        "the catalogue has Exim expectations: {stated}"
    );
    assert!(r.cases.iter().all(|c| c.mta == Mta::Exim));
}

/// The incident on Exim: `hosts_require_tls` defers, the default
/// opportunistic TLS delivers in plaintext; the report says both.
#[tokio::test(flavor = "multi_thread")]
async fn incident_require_defers_and_try_delivers_in_plaintext() {
    let r = report().await;
    let require = &case(r, "incident-587-strip", EximPolicy::Require).attempts[0];
    assert_eq!(require.outcome, Some(Outcome::Deferred));
    assert_eq!(require.status, Some(Status::Deferred));
    assert_eq!(
        require.reason,
        "a TLS session is required, but the server did not offer TLS support"
    );
    assert!(require.log_line.contains(" == "), "{}", require.log_line);
    assert!(require.received.is_none());

    let try_ = case(r, "incident-587-strip", EximPolicy::Try);
    let a = &try_.attempts[0];
    assert_eq!(a.outcome, Some(Outcome::DeliveredPlaintext));
    assert!(a.log_line.contains(" => "), "{}", a.log_line);
    assert!(a.tls.is_none(), "no X= on the line: {}", a.log_line);
    // The relay offered STARTTLS; the middlebox kept it from Exim (the
    // client).
    assert!(a.wire.relay_offered_starttls && !a.wire.client_saw_starttls);
    assert!(a.wire.plaintext_data);
    assert_eq!(a.received.as_ref().map(|m| m.tls), Some(false));
    let matrix = tlsharness::report::matrix(r);
    let line = common::row(&matrix, "incident-587-strip")[0];
    let row: Vec<&str> = line
        .split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .skip(1)
        .collect();
    assert_eq!(
        row,
        [
            "✓ PLAINTEXT",
            "✓ PLAINTEXT",
            "✓ PLAINTEXT",
            "✓ deferred",
            "✓ deferred"
        ],
        "{matrix}"
    );
    assert!(matrix.contains("require-verify"), "Exim's names: {matrix}");
    assert!(matrix.contains("Exim 4.96"), "{matrix}");
}

/// Exim's fallback after a failed handshake: one delivery attempt, two
/// connections (TLS broken on the first, the message in clear on the
/// second), and Exim's own note of it in the report.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_handshake_under_try_is_retried_in_clear_within_the_attempt() {
    let r = report().await;
    for mode in ["alert", "close", "garbage", "reset", "silence"] {
        let c = case(r, &format!("fail-handshake-{mode}"), EximPolicy::Try);
        assert_eq!(c.attempts.len(), 1, "{mode}");
        let a = &c.attempts[0];
        assert_eq!(a.outcome, Some(Outcome::DeliveredPlaintext), "{mode}");
        assert_eq!(a.wire.connections, 2, "{mode}: {}", c.transcript);
        assert!(a.wire.tls_broken && a.wire.plaintext_data, "{mode}");
        let host = a.retried_in_clear.as_deref().unwrap_or_default();
        assert!(
            host.starts_with("H=smtp.relay.test [127.0.1.1]"),
            "{mode}: {host}"
        );
        assert!(
            c.log
                .iter()
                .any(|l| l.contains("delivering unencrypted to H=")),
            "{mode}: {:?}",
            c.log
        );
        let summary = tlsharness::report::attempt_summary(a);
        assert!(
            summary.contains("a new connection in clear") && summary.contains("2 connections"),
            "{mode}: {summary}"
        );
        // Without the fallback, the same handshake defers.
        let noclear = &case(r, &format!("fail-handshake-{mode}"), EximPolicy::TryNoclear);
        assert_eq!(noclear.attempts[0].wire.connections, 1, "{mode}");
        assert!(noclear.attempts[0].retried_in_clear.is_none(), "{mode}");
    }
}

/// Exim's trust word is `CV=`: yes only when the chain and the name
/// verify (`tls_verify_cert_hostnames = *` is its default).
#[tokio::test(flavor = "multi_thread")]
async fn trust_comes_from_exim_s_certificate_verification() {
    let r = report().await;
    let good = &case(r, "relay-cert-trusted", EximPolicy::Try).attempts[0];
    let tls = good.tls.as_ref().expect("a TLS session");
    assert_eq!(tls.trust, Trust::Verified);
    assert_eq!(tls.protocol, "TLSv1.3");
    assert!(good.log_line.contains(" CV=yes "), "{}", good.log_line);
    let name = &case(r, "relay-cert-wrong-name", EximPolicy::Try).attempts[0];
    assert_eq!(name.tls.as_ref().map(|t| t.trust), Some(Trust::Untrusted));
    assert!(name.log_line.contains(" CV=no "), "{}", name.log_line);
}

/// Exim tries DANE by default (`hosts_try_dane = *`): with a signed zone
/// and TLSA records even `try` requires TLS and checks the certificate
/// against them, so the stripped STARTTLS defers where Postfix's `may`
/// sends in plaintext; the delivery is logged `CV=dane`.
#[tokio::test(flavor = "multi_thread")]
async fn dane_applies_at_every_policy_where_the_zone_is_signed() {
    let r = report().await;
    let stripped = &case(r, "dane-strip-starttls", EximPolicy::Try).attempts[0];
    assert_eq!(stripped.outcome, Some(Outcome::Deferred));
    assert!(stripped.received.is_none());
    // The address went by MX: Exim logs the case's own address as its
    // parent, which is how the harness knows the line is the case's.
    assert!(
        stripped.log_line.contains("<dane-strip-starttls.try@c"),
        "{}",
        stripped.log_line
    );
    let ee = &case(r, "dane-ee-self-signed", EximPolicy::Try).attempts[0];
    assert_eq!(ee.tls.as_ref().map(|t| t.trust), Some(Trust::Verified));
    assert!(ee.log_line.contains(" CV=dane "), "{}", ee.log_line);
    let unsigned = &case(r, "dane-unsigned-strip-starttls", EximPolicy::Try).attempts[0];
    assert_eq!(unsigned.outcome, Some(Outcome::DeliveredPlaintext));
    let required = &case(r, "dane-unsigned-strip-starttls", EximPolicy::Dane).attempts[0];
    assert_eq!(required.outcome, Some(Outcome::Bounced));
    assert_eq!(required.status, Some(Status::Bounced));
    assert!(required.log_line.contains(" ** "), "{}", required.log_line);
}

#[test]
fn only_scenarios_with_exim_expectations_have_exim_cases() {
    let all = common::library();
    let cases = plan(
        &all,
        &Selection {
            mta: Mta::Exim,
            ..Selection::default()
        },
    );
    assert!(
        cases
            .iter()
            .all(|c| !c.scenario.policies(Mta::Exim).is_empty())
    );
    assert!(
        !cases.iter().any(|c| c.scenario.id == "relay-auth-587"),
        "a scenario without [exim] is not run on Exim"
    );
    assert!(cases.iter().all(|c| c.level.mta() == Mta::Exim));
}

#[test]
fn the_cli_runs_exim_and_refuses_a_postfix_level_for_it() {
    let out = common::tlsharness()
        .args([
            "run",
            "--mta",
            "exim",
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
            "incident-587-strip/none",
            "incident-587-strip/try",
            "incident-587-strip/try-noclear",
            "incident-587-strip/require",
            "incident-587-strip/require-verify"
        ]
    );
    let out = common::tlsharness()
        .args(["run", "--mta", "exim", "--level", "encrypt", "--list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(tlsharness::exit::BAD_INPUT));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown Exim policy `encrypt`"), "{err}");
}

/// The JSON report of an Exim run names the MTA and validates against
/// the published schema.
#[test]
fn an_exim_run_s_json_report_names_exim_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = common::tlsharness()
        .args([
            "run",
            "--mta",
            "exim",
            "--scenario",
            "fail-handshake-alert",
            "--json",
        ])
        .arg(&json)
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
    assert_eq!(report["mta"], "exim");
    let try_ = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["level"] == "try")
        .expect("the try case");
    assert_eq!(try_["mta"], "exim");
    assert!(
        try_["attempts"][0]["retried_in_clear"]
            .as_str()
            .is_some_and(|h| h.contains("not in hosts_require_tls")),
        "{try_}"
    );
}

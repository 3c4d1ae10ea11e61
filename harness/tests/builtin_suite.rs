//! The built-in scenarios against a real Postfix, with checks that go
//! beyond each file's expectations: what the relay received, what crossed
//! the wire, what the transcript shows. Under `cargo test` every test reads
//! one shared run (one container); under nextest, where each test is its
//! own process, a test runs only the scenarios it reads.

mod common;

use std::sync::Arc;

use tlsharness::level::Level;
use tlsharness::mta::postfix::image;
use tlsharness::outcome::{Outcome, Trust};
use tlsharness::run::{CaseResult, RunOptions, RunReport, run};
use tlsharness::scenario::load_paths;
use tokio::sync::OnceCell;

static REPORT: OnceCell<RunReport> = OnceCell::const_new();

/// Every built-in image: the shared run covers Postfix 3.5, 3.7 and 3.10.
fn all_images() -> Vec<String> {
    image::SUITES
        .iter()
        .map(|(suite, _)| image::image_for_suite(suite))
        .collect()
}

async fn execute(ids: &[&str], images: Vec<String>) -> RunReport {
    let dir = common::root().join("scenarios");
    let paths = if ids.is_empty() {
        vec![dir]
    } else {
        ids.iter()
            .map(|id| dir.join(format!("{id}.toml")))
            .collect()
    };
    let scenarios = load_paths(&paths)
        .expect("the built-in scenarios load")
        .into_iter()
        .map(Arc::new)
        .collect::<Vec<_>>();
    common::in_process();
    let opts = RunOptions {
        images,
        ..RunOptions::default()
    };
    run(&scenarios, &opts)
        .await
        .expect("the run completes (needs Docker and the image: ci/test.sh sets both up)")
}

/// A run covering at least the scenarios `ids` (all when empty) on the
/// default image, and on every built-in image when `every_version`.
async fn report_for(ids: &[&str]) -> Arc<RunReport> {
    if std::env::var_os("NEXTEST").is_some() {
        return Arc::new(execute(ids, vec![image::DEFAULT_IMAGE.to_owned()]).await);
    }
    shared().await
}

async fn shared() -> Arc<RunReport> {
    Arc::new(
        REPORT
            .get_or_init(|| execute(&[], all_images()))
            .await
            .clone(),
    )
}

/// The case on the default image (Postfix 3.7).
fn case<'a>(r: &'a RunReport, scenario: &str, level: Level) -> &'a CaseResult {
    r.cases
        .iter()
        .find(|c| {
            c.scenario == scenario && c.level == level.into() && c.image == image::DEFAULT_IMAGE
        })
        .unwrap_or_else(|| panic!("no case {scenario}/{level}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_builtin_scenario_meets_its_expectations() {
    let r = &*report_for(&[]).await;
    let failed: Vec<String> = r
        .cases
        .iter()
        .filter(|c| !c.passed)
        .map(tlsharness::report::failure_details)
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // One instance served every case.
    assert!(r.mta_version.starts_with("3."), "{}", r.mta_version);
}

/// `ci/test.sh` runs this on all three images: every expectation holds on
/// 3.5, 3.7 and 3.10 (with the scenarios' version entries), and the
/// README's table of version differences is the one the scenarios state.
#[tokio::test(flavor = "multi_thread")]
async fn every_version_meets_its_expectations_and_the_readme_says_so() {
    let r = if std::env::var_os("NEXTEST").is_some() {
        Arc::new(execute(&[], all_images()).await)
    } else {
        shared().await
    };
    for image in all_images() {
        let n = r.cases.iter().filter(|c| c.image == image).count();
        assert!(n > 0, "no case ran on {image}");
    }
    let failed: Vec<String> = r
        .cases
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("[{}] {}", c.image, tlsharness::report::failure_details(c)))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let scenarios =
        load_paths(&[common::root().join("scenarios")]).expect("the built-in scenarios load");
    let table = tlsharness::scenario::versions_table(&scenarios);
    let readme = std::fs::read_to_string(common::root().join("README.md")).expect("README.md");
    let block = readme
        .split("<!-- versions:begin -->\n")
        .nth(1)
        .and_then(|rest| rest.split("<!-- versions:end -->").next())
        .expect("README.md has the versions:begin/end markers");
    assert_eq!(
        block, table,
        "README.md's table of version differences is out of date; between the markers it should read:\n{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn incident_defers_encrypt_and_may_delivers_in_plaintext() {
    let r = &*report_for(&["incident-587-strip"]).await;
    let enc = case(r, "incident-587-strip", Level::Encrypt);
    let a = &enc.attempts[0];
    assert_eq!(a.outcome, Some(Outcome::Deferred));
    assert_eq!(a.dsn, "4.7.4");
    assert!(
        a.reason
            .starts_with("TLS is required, but was not offered by host smtp.sendgrid.net[")
    );
    // The relay did offer STARTTLS; Postfix never saw it.
    assert!(a.wire.relay_offered_starttls && !a.wire.client_saw_starttls);
    assert!(
        enc.transcript.contains("S~ 250 STARTTLS"),
        "{}",
        enc.transcript
    );
    for level in [Level::None, Level::May] {
        let c = case(r, "incident-587-strip", level);
        let a = &c.attempts[0];
        assert_eq!(a.outcome, Some(Outcome::DeliveredPlaintext), "{level}");
        assert!(a.wire.plaintext_data && !a.wire.tls_started, "{level}");
        let got = a.received.as_ref().expect("the relay received it");
        assert!(!got.tls, "{level}: the relay got it in plaintext");
        assert!(a.tls.is_none(), "{level}: Postfix logged no TLS session");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_relay_is_verified_at_verify_and_secure() {
    let r = &*report_for(&["starttls-relay"]).await;
    for level in [Level::Verify, Level::Secure] {
        let a = &case(r, "starttls-relay", level).attempts[0];
        assert_eq!(a.outcome, Some(Outcome::DeliveredTls));
        assert_eq!(a.tls.as_ref().map(|t| t.trust), Some(Trust::Verified));
        assert!(a.received.as_ref().is_some_and(|m| m.tls));
        assert!(!a.wire.plaintext_mail && !a.wire.plaintext_data);
    }
    // `none` never starts TLS, although the relay offers it.
    let none = &case(r, "starttls-relay", Level::None).attempts[0];
    assert!(none.wire.client_saw_starttls && !none.wire.client_sent_starttls);
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_checks_decide_verify_and_secure_only() {
    let r = &*report_for(&["starttls-relay-unknown-ca", "starttls-relay-wrong-name"]).await;
    for scenario in ["starttls-relay-unknown-ca", "starttls-relay-wrong-name"] {
        for level in [Level::Verify, Level::Secure] {
            let a = &case(r, scenario, level).attempts[0];
            assert_eq!(a.outcome, Some(Outcome::Deferred), "{scenario}/{level}");
            assert_eq!(a.dsn, "4.7.5", "{scenario}/{level}");
            assert!(a.received.is_none(), "{scenario}/{level}");
        }
        let enc = &case(r, scenario, Level::Encrypt).attempts[0];
        assert_eq!(enc.outcome, Some(Outcome::DeliveredTls), "{scenario}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_container_outlives_the_run() {
    let r = &*report_for(&["starttls-relay"]).await;
    assert!(common::containers_of_run_async(&r.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn may_falls_back_to_plaintext_only_on_a_retry_after_backoff() {
    let r = &*report_for(&["fail-handshake-alert", "fail-handshake-immediate-retry"]).await;
    let c = case(r, "fail-handshake-alert", Level::May);
    assert_eq!(c.attempts.len(), 2);
    let (first, second) = (&c.attempts[0], &c.attempts[1]);
    assert_eq!(first.outcome, Some(Outcome::Deferred));
    assert!(first.wire.tls_broken && first.received.is_none());
    assert_eq!(second.outcome, Some(Outcome::DeliveredPlaintext));
    // The retry tried TLS once more, then reconnected without it.
    assert!(second.wire.tls_broken && second.wire.plaintext_data);
    assert!(second.wire.connections >= 2, "{:?}", second.wire);
    let quick = case(r, "fail-handshake-immediate-retry", Level::May);
    assert!(
        quick
            .attempts
            .iter()
            .all(|a| a.outcome == Some(Outcome::Deferred))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_interception_satisfies_secure_while_the_relay_hop_is_plaintext() {
    let r = &*report_for(&["intercept-tls-trusted-ca"]).await;
    let a = &case(r, "intercept-tls-trusted-ca", Level::Secure).attempts[0];
    assert_eq!(a.outcome, Some(Outcome::DeliveredTls));
    assert_eq!(a.tls.as_ref().map(|t| t.trust), Some(Trust::Verified));
    assert!(a.wire.intercepted && a.wire.middlebox_read_data);
    assert!(!a.wire.plaintext_data, "Postfix's side was encrypted");
    assert!(a.wire.relay_side_plaintext_data);
    assert!(a.received.as_ref().is_some_and(|m| !m.tls));
}

#[tokio::test(flavor = "multi_thread")]
async fn tampering_shows_in_the_transcript() {
    let r = &*report_for(&["mask-banner", "mask-starttls", "inject-response"]).await;
    let banner = case(r, "mask-banner", Level::May);
    assert!(
        banner.transcript.contains("M: 220 ****"),
        "{}",
        banner.transcript
    );
    assert!(
        banner.transcript.contains("C: HELO "),
        "{}",
        banner.transcript
    );
    assert!(
        banner
            .log
            .iter()
            .any(|l| l.contains("enabling PIX workarounds"))
    );
    let masked = case(r, "mask-starttls", Level::Encrypt);
    assert!(
        masked.transcript.contains("M: 250 XXXXXXXA"),
        "{}",
        masked.transcript
    );
    let inject = case(r, "inject-response", Level::Encrypt);
    assert!(
        inject
            .transcript
            .contains("M: 554 5.7.1 tlsharness: injected before TLS")
    );
    assert_eq!(inject.attempts[0].outcome, Some(Outcome::DeliveredTls));
}

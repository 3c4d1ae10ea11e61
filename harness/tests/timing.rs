//! Timing preconditions on real Postfix: a case whose expectation assumes
//! a fresh message is judged by Postfix's own `delays=`, and a case whose
//! timing cannot hold is inconclusive, never a pass or a failure.

mod common;

use std::time::Duration;

use common::tlsharness;
use tlsharness::exit;
use tlsharness::lab::{Lab, LabOptions};
use tlsharness::mta::StartOptions;
use tlsharness::mta::postfix::config::{PostfixConfig, Route};

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

/// Waits at most 30s for the next status line about the message, which
/// must be a deferral.
async fn deferred_within_30s(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<tlsharness::mta::DeliveryEvent>,
    what: &str,
) {
    let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{what} within 30s"))
        .unwrap();
    assert_eq!(
        event.delivery.status.as_str(),
        "deferred",
        "{what}: {event:?}"
    );
}

/// Stops (or resumes) Postfix's queue manager inside the container.
async fn signal_qmgr(lab: &Lab, signal: &str) {
    let script = format!(
        "for p in /proc/[0-9]*; do if [ \"$(cat $p/comm 2>/dev/null)\" = qmgr ]; then kill -{signal} ${{p#/proc/}}; fi; done"
    );
    lab.mta.exec(&["sh", "-c", &script]).await.unwrap();
}

/// The lost retry, reproduced: Postfix logs an attempt's status before its
/// queue manager moves the message out of the active queue, and a
/// `postqueue -i` in between does nothing. Here qmgr is held stopped over
/// that moment (a delivery agent that defers after 2s, qmgr stopped while
/// it works): one `postqueue -i` is lost for good, and the harness's retry,
/// asked again until qmgr logs `(queue active)`, starts the attempt.
#[test]
fn a_retry_asked_while_the_message_is_still_active_is_not_lost() {
    common::in_process();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(lost_retry());
}

async fn lost_retry() {
    let pki = tlsharness::pki::Pki::new("lost-retry").unwrap();
    let config = PostfixConfig {
        inject: tlsharness::lab::INJECT,
        transports: Vec::new(),
        routes: vec![Route {
            domain: "c0.tlsharness.test".into(),
            transport: "slowdefer".into(),
            nexthop: String::new(),
        }],
        hosts: Default::default(),
        ca_pem: pki.ca_pem(),
        main_overrides: Default::default(),
        maps: Default::default(),
        zones: Vec::new(),
    };
    // A delivery agent that always defers (EX_TEMPFAIL), after 2s.
    let mut files = config.files();
    let master = files.iter_mut().find(|(p, _)| p == "master.cf").unwrap();
    master.1.extend_from_slice(
        b"slowdefer unix - n n - - pipe\n  flags= user=nobody argv=/bin/sh -c { sleep 2; exit 75 }\n",
    );
    let image = tlsharness::mta::postfix::image::DEFAULT_IMAGE;
    let prepared = tlsharness::lab::prepare_run(&[image]).await.unwrap();
    let mut lab = Lab::start(LabOptions {
        mta: StartOptions {
            mta: tlsharness::policy::Mta::Postfix,
            image: image.into(),
            run_id: prepared.run_id,
            container_name: format!("tlsharness-lost-retry-{}", std::process::id()),
            startup_timeout: Duration::from_secs(60),
        },
        files,
        agent: prepared.agent,
    })
    .await
    .expect("Postfix starts");
    let to = "x@c0.tlsharness.test";
    let mut rx = lab.mta.subscribe(to);
    let id = lab
        .inject(to, "tlsharness lost retry", "<lost-retry@tlsharness.test>")
        .await
        .unwrap();
    let soon = || tokio::time::Instant::now() + Duration::from_secs(30);
    assert!(
        lab.mta.activated(&id, 0, soon()).await,
        "{}",
        lab.mta.tail(20)
    );
    signal_qmgr(&lab, "STOP").await;
    deferred_within_30s(&mut rx, "the agent's status").await;
    // qmgr has not taken the agent's reply: the message is still active.
    let from = lab.mta.line_count();
    lab.mta.exec(&["postqueue", "-i", &id]).await.unwrap();
    signal_qmgr(&lab, "CONT").await;
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let taken = lab.mta.activated(&id, from, until).await;
    assert!(
        !taken,
        "a postqueue -i while the message was active started an attempt after all; the reproduction no longer holds:\n{}",
        lab.mta.tail(20)
    );
    // The same moment through the harness's retry: a second attempt, and
    // qmgr stopped while it runs.
    let from = lab.mta.line_count();
    lab.mta.exec(&["postqueue", "-i", &id]).await.unwrap();
    assert!(
        lab.mta.activated(&id, from, soon()).await,
        "{}",
        lab.mta.tail(20)
    );
    signal_qmgr(&lab, "STOP").await;
    deferred_within_30s(&mut rx, "the second status").await;
    let flush = lab.mta.flush(&id);
    let resume = async {
        // The fault's length, not a synchronisation: qmgr resumes while
        // the retry is being asked again.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        signal_qmgr(&lab, "CONT").await;
    };
    let (flushed, ()) = tokio::join!(flush, resume);
    flushed.expect("the retry is taken up");
    deferred_within_30s(&mut rx, "the retried attempt's status").await;
    lab.stop().await;
}

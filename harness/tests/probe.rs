//! `tlsharness probe` against the harness's own paths. Every built-in path
//! that changes what a client sees up to and into TLS is started (its relay
//! and middlebox on loopback), probed, and written as a replaying scenario;
//! then the originals and the replays run against one real Postfix. At
//! every level the replay must meet Postfix as the original does, and the
//! probe's predictions must hold.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tlsharness::level::Level;
use tlsharness::middlebox::{BuildContext, Middlebox, MiddleboxConfig};
use tlsharness::pki::Pki;
use tlsharness::probe::{self, ProbeOptions, Target, TrustAnchors};
use tlsharness::run::{Attempt, CaseResult, RunOptions, Selection, run};
use tlsharness::scenario::{Scenario, load_file};
use tlsharness::tls::server_config;
use tlsharness::upstream::{Policy, Relay, RelayConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Built-in scenarios whose path shows before or at STARTTLS, each with
/// what its replay's file must say about it.
const ORIGINALS: &[(&str, &str)] = &[
    ("starttls-relay", "as a clean relay's is"),
    ("no-starttls-relay", "STARTTLS missing from the EHLO reply"),
    (
        "incident-587-strip",
        "# STARTTLS missing from the EHLO reply: consistent with strip-starttls (a firewall's SMTP inspection)",
    ),
    (
        "mask-starttls",
        "# STARTTLS masked as XXXXXXXA: consistent with mask-starttls (Cisco ASA",
    ),
    (
        "mask-banner",
        "# the greeting is all asterisks: consistent with mask-banner (Cisco PIX",
    ),
    (
        "reject-starttls-454",
        "# STARTTLS answered `454 4.7.0 TLS not available due to temporary reason`: consistent with reject-starttls",
    ),
    (
        "reject-starttls-502",
        "# STARTTLS answered `502 5.5.1 command not recognized`: consistent with reject-starttls",
    ),
    ("drop-on-starttls", "closed when the probe sent STARTTLS"),
    (
        "drop-on-starttls-reset",
        "reset when the probe sent STARTTLS",
    ),
    (
        "inject-response",
        "came right behind the STARTTLS reply: consistent with inject",
    ),
    ("fail-handshake-alert", "fail-handshake (mode = \"alert\")"),
    (
        "fail-handshake-garbage",
        "fail-handshake (mode = \"garbage\")",
    ),
    ("fail-handshake-close", "fail-handshake (mode = \"close\")"),
    ("fail-handshake-reset", "fail-handshake (mode = \"reset\")"),
    (
        "fail-handshake-silence",
        "fail-handshake (mode = \"silence\")",
    ),
    (
        "intercept-tls-self-signed",
        "# certificate issuer not trusted: self-signed or TLS interception",
    ),
    // Interception with a CA the host trusts cannot be told from a clean path.
    ("intercept-tls-trusted-ca", "as a clean relay's is"),
    ("relay-cert-expired", "the certificate expired on"),
    (
        "relay-cert-self-signed",
        "# certificate issuer not trusted: self-signed or TLS interception",
    ),
    (
        "relay-cert-wrong-name",
        "the certificate does not name smtp.relay.test",
    ),
    (
        "relay-cert-not-yet-valid",
        "the certificate is not valid before",
    ),
    ("relay-cert-missing-intermediate", "trust_ca = false"),
    ("relay-tls12-only", "tls_versions = \"tls12-only\""),
];

/// Starts a scenario's relay and middlebox as the run would, with
/// certificates from `pki`; returns the address Postfix would connect to.
async fn start_path(
    scenario: &Scenario,
    pki: &Pki,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> SocketAddr {
    let spec = &scenario.relay;
    let host = spec.hostname.as_str();
    let id = pki.identity(spec.certificate, host).unwrap();
    let tls = spec
        .starttls
        .then(|| server_config(&id, spec.tls_versions).unwrap());
    let mut config = RelayConfig::new(host, tls);
    config.policy = Policy {
        require_tls: spec.require_tls,
        ..Policy::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay = Relay::start(listener, config, tasks, stop.clone()).unwrap();
    assert_eq!(scenario.paths.len(), 1, "{}: one path", scenario.id);
    let behaviours = scenario.paths[0].behaviour.clone();
    let mut context = BuildContext::default();
    for kind in behaviours.iter().filter_map(|b| b.certificate()) {
        let id = pki.identity(kind, host).unwrap();
        context
            .acceptors
            .insert(kind, server_config(&id, Default::default()).unwrap());
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let middlebox = Middlebox::start(
        listener,
        MiddleboxConfig {
            upstream: relay.addr(),
            relay_name: host.to_owned(),
            behaviours,
            context,
            connect_timeout: Duration::from_secs(5),
            implicit_tls: false,
        },
        tasks,
        stop.clone(),
    )
    .unwrap();
    middlebox.addr()
}

/// Probes every original and writes its replay into `dir`.
async fn probe_all(originals: &[Scenario], dir: &Path) -> Vec<Scenario> {
    let pki = Pki::new("probe-test").unwrap();
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut probes = Vec::new();
    for scenario in originals {
        let addr = start_path(scenario, &pki, &tasks, &stop).await;
        // The probe trusts what Postfix trusts: the CA of the path's certificates.
        let mut opts = ProbeOptions::new(
            scenario.relay.hostname.as_str(),
            TrustAnchors::only(std::slice::from_ref(pki.ca_der())),
        );
        // Short, so the silent paths are quick; ample on loopback.
        opts.step_timeout = Duration::from_secs(3);
        let target: Target = format!("{addr}").parse().unwrap();
        probes.push(tokio::spawn(
            async move { probe::probe(&target, &opts).await },
        ));
    }
    let mut replays = Vec::new();
    for (scenario, handle) in originals.iter().zip(probes) {
        let obs = handle
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{}: the probe failed: {e}", scenario.id));
        let path = dir.join(format!("replay-{}.toml", scenario.id));
        let (text, _) = probe::scenario_text(&obs, &path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{obs}", scenario.id));
        std::fs::write(&path, &text).unwrap();
        // What is run is what the file says, read back by the strict loader.
        replays.push(load_file(&path).unwrap());
    }
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    replays
}

/// What must agree between an original and its replay at one level.
fn essence(a: &Attempt) -> (Option<String>, String, Option<String>, Option<String>) {
    (
        a.outcome.map(|o| o.to_string()),
        a.dsn.clone(),
        a.tls.as_ref().map(|t| t.trust.to_string()),
        a.tls.as_ref().map(|t| t.protocol.clone()),
    )
}

fn cases<'a>(cases: &'a [CaseResult], id: &str) -> BTreeMap<Level, &'a CaseResult> {
    cases
        .iter()
        .filter(|c| c.scenario == id)
        .filter_map(|c| Some((c.level.level()?, c)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_paths_meet_postfix_as_the_originals_do() {
    let dir = tempfile::tempdir().unwrap();
    let originals: Vec<Scenario> = ORIGINALS
        .iter()
        .map(|(id, _)| load_file(&common::root().join(format!("scenarios/{id}.toml"))).unwrap())
        .collect();
    let replays = probe_all(&originals, dir.path()).await;

    for ((id, says), replay) in ORIGINALS.iter().zip(&replays) {
        let text = std::fs::read_to_string(&replay.path).unwrap();
        assert!(
            text.contains(says),
            "replay of {id} lacks {says:?}:\n{text}"
        );
        assert!(
            text.contains("Predictions, not observations"),
            "replay of {id}:\n{text}"
        );
        assert!(
            replay.paths[0].behaviour.is_empty(),
            "{id}: the relay replays the path"
        );
    }

    let all: Vec<Arc<Scenario>> = originals
        .iter()
        .chain(&replays)
        .cloned()
        .map(Arc::new)
        .collect();
    common::in_process();
    let opts = RunOptions {
        selection: Selection {
            levels: Some(Level::REQUIRED.map(Into::into).to_vec()),
            ..Selection::default()
        },
        ..RunOptions::default()
    };
    let report = run(&all, &opts)
        .await
        .expect("the run completes (needs Docker and the image: ci/test.sh sets both up)");

    let mut problems = Vec::new();
    for (original, replay) in originals.iter().zip(&replays) {
        let got = cases(&report.cases, &original.id);
        let replayed = cases(&report.cases, &replay.id);
        for level in Level::REQUIRED {
            let (o, r) = (got[&level], replayed[&level]);
            // Originals may retry; the replay predicts the first attempt.
            if essence(&o.attempts[0]) != essence(&r.attempts[0]) {
                problems.push(format!(
                    "{}/{level}: original {:?}, replay {:?}\n{}",
                    original.id,
                    essence(&o.attempts[0]),
                    essence(&r.attempts[0]),
                    tlsharness::report::failure_details(r)
                ));
            }
            if !r.passed {
                problems.push(format!(
                    "{}/{level}: the prediction did not hold\n{}",
                    replay.id,
                    tlsharness::report::failure_details(r)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_writes_a_scenario_that_validates_and_names_its_errors() {
    let original = load_file(&common::root().join("scenarios/incident-587-strip.toml")).unwrap();
    let pki = Pki::new("probe-cli").unwrap();
    let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
    let addr = start_path(&original, &pki, &tasks, &stop).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("our-intranet.toml");
    let tlsharness = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || common::tlsharness().args(args).output().unwrap())
    };
    let probe_args = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["probe".into(), addr.to_string()];
        a.extend(["--name", "smtp.sendgrid.net", "--out"].map(String::from));
        a.push(out.display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    let o = tlsharness(probe_args(&[])).await.unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(tlsharness::exit::SUCCESS), "{stderr}");
    assert!(stderr.contains("STARTTLS:  not offered"), "{stderr}");
    assert!(
        stderr.contains("review its comments, then: tlsharness run"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("consistent with strip-starttls"), "{text}");

    let o = tlsharness(vec!["validate".into(), out.display().to_string()])
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(tlsharness::exit::SUCCESS));

    // A reviewed file is not overwritten by accident.
    let o = tlsharness(probe_args(&[])).await.unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(tlsharness::exit::BAD_INPUT),
        "{stderr}"
    );
    assert!(stderr.contains("exists; pass --force"), "{stderr}");
    let o = tlsharness(probe_args(&["--force"])).await.unwrap();
    assert_eq!(o.status.code(), Some(tlsharness::exit::SUCCESS));
    stop.cancel();

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = closed.local_addr().unwrap();
    drop(closed);
    let o = tlsharness(vec![
        "probe".into(),
        refused.to_string(),
        "--name".into(),
        "smtp.relay.test".into(),
    ])
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(tlsharness::exit::ENVIRONMENT),
        "{stderr}"
    );
    assert!(
        stderr.contains("connection refused by 127.0.0.1:"),
        "{stderr}"
    );
    assert!(o.stdout.is_empty(), "no scenario on failure");

    let o = tlsharness(vec!["probe".into(), refused.to_string()])
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(tlsharness::exit::BAD_INPUT),
        "{stderr}"
    );
    assert!(
        stderr.contains("give the relay's name with --name"),
        "{stderr}"
    );
    tasks.close();
    tasks.wait().await;
}

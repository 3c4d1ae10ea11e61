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
        .filter_map(|c| Some((tlsharness::level::Level::of(c.level)?, c)))
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

/// Python peers the project did not write (tests/data/probe/): an aiosmtpd
/// relay with STARTTLS on `starttls_port` and implicit TLS on 465 of
/// `address`, and, when `strip` is given, a proxy on that port of
/// `address` that strips STARTTLS from the relay's EHLO reply. They stop
/// when dropped (their stdin closes; they are killed too).
struct PythonPeers {
    children: Vec<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

impl PythonPeers {
    async fn start(address: &str, starttls_port: u16, strip: Option<u16>) -> PythonPeers {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().unwrap();
        let made =
            rcgen::generate_simple_self_signed(vec!["smtp.sendgrid.net".to_owned()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let script = |name: &str| common::data(&format!("probe/{name}"));
        let mut commands = vec![vec![
            script("relay.py").display().to_string(),
            address.to_owned(),
            starttls_port.to_string(),
            "465".to_owned(),
            cert.display().to_string(),
            key.display().to_string(),
        ]];
        if let Some(port) = strip {
            commands.push(vec![
                script("strip_starttls.py").display().to_string(),
                address.to_owned(),
                port.to_string(),
                address.to_owned(),
                starttls_port.to_string(),
            ]);
        }
        let mut children = Vec::new();
        for args in commands {
            // Debian's Python, where python3-aiosmtpd is installed (ci/test.sh).
            let mut child = tokio::process::Command::new("/usr/bin/python3")
                .args(&args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("/usr/bin/python3 runs (ci/test.sh installs python3-aiosmtpd)");
            let stdout = child.stdout.take().unwrap();
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
            assert!(
                matches!(&ready, Ok(Ok(Some(l))) if l == "ready"),
                "{args:?} did not say ready within 30s: {ready:?}"
            );
            children.push(child);
        }
        PythonPeers {
            children,
            _dir: dir,
        }
    }
}

impl Drop for PythonPeers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.start_kill();
        }
    }
}

/// Runs the binary with `args`; its status code, stdout and stderr.
async fn run_tlsharness(args: Vec<String>) -> (Option<i32>, String, String) {
    let o = tokio::task::spawn_blocking(move || common::tlsharness().args(args).output().unwrap())
        .await
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The incident of the README on peers the project did not write: the
/// path strips STARTTLS on 587, 465 speaks implicit TLS. One probe of the
/// host writes one scenario with both; run gives the incident's matrix on
/// 587, and check tells the move to 465 (an upgrade) from `may` on 587 (a
/// downgrade).
#[tokio::test(flavor = "multi_thread")]
async fn probe_of_a_host_writes_one_scenario_for_every_port() {
    let _peers = PythonPeers::start("127.0.0.77", 10587, Some(587)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sendgrid.toml");
    let file = out.display().to_string();
    let started = std::time::Instant::now();
    let (code, _, stderr) = run_tlsharness(strings(&[
        "probe",
        "127.0.0.77",
        "--name",
        "smtp.sendgrid.net",
        "--ports",
        "587,465",
        "--out",
        &file,
    ]))
    .await;
    let took = started.elapsed();
    assert_eq!(code, Some(tlsharness::exit::SUCCESS), "{stderr}");
    // Both ports at once, each within its handshake: far below one 10s step.
    assert!(took < Duration::from_secs(5), "took {took:?}\n{stderr}");
    let scenario = load_file(&out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let services: Vec<(u16, String)> = scenario
        .relay
        .services
        .iter()
        .map(|s| (s.port, s.mode.to_string()))
        .collect();
    assert_eq!(
        services,
        [(587, "none".to_owned()), (465, "implicit-tls".to_owned())],
        "{text}"
    );
    for says in [
        "#   587 (probed with STARTTLS): answered: 220 smtp.sendgrid.net",
        "#   465 (probed with implicit TLS): answered with implicit TLS: 220 smtp.sendgrid.net",
        "# STARTTLS missing from the EHLO reply: consistent with strip-starttls",
        "#   -- TLS from the first byte (implicit TLS)",
        "# certificate issuer not trusted: self-signed",
    ] {
        assert!(text.contains(says), "{says:?} in\n{text}");
    }

    let (code, stdout, stderr) = run_tlsharness(strings(&["run", &file])).await;
    assert_eq!(code, Some(tlsharness::exit::SUCCESS), "{stdout}\n{stderr}");
    let matrix = common::row(&stdout, "sendgrid").join("\n");
    let cells = "✓ PLAINTEXT  ✓ PLAINTEXT  ✓ deferred 4.7.4  ✓ deferred 4.7.4  ✓ deferred 4.7.4";
    assert!(matrix.contains(cells), "{cells:?} in\n{stdout}");
    assert!(
        text.contains("encrypt = { outcome = \"deferred\", dsn = \"4.7.4\", reason = \"TLS is required, but was not offered by host\" }"),
        "{text}"
    );

    let check = |candidate: &str| {
        strings(&[
            "check",
            "--config",
            "fixtures/configs/incident-before",
            "--candidate",
            candidate,
            &file,
        ])
    };
    let (code, stdout, stderr) = run_tlsharness(check("fixtures/configs/incident-465")).await;
    assert_eq!(code, Some(tlsharness::exit::SUCCESS), "{stdout}\n{stderr}");
    let row = common::row(&stdout, "sendgrid");
    assert!(
        row.first()
            .is_some_and(|r| r.trim_end().ends_with("upgrade")),
        "{stdout}"
    );
    let (code, stdout, stderr) = run_tlsharness(check("fixtures/configs/incident-after")).await;
    assert_eq!(
        code,
        Some(tlsharness::exit::REGRESSION),
        "{stdout}\n{stderr}"
    );
    let row = common::row(&stdout, "sendgrid");
    assert!(
        row.first()
            .is_some_and(|r| r.trim_end().ends_with("DOWNGRADE")),
        "{stdout}"
    );
}

/// A host whose first answering port is implicit TLS: the probe answers
/// within the handshake's time, records implicit TLS, puts Postfix in
/// wrapper mode, and the replay meets Postfix as the aiosmtpd relay it
/// recorded does (a self-signed certificate).
#[tokio::test(flavor = "multi_thread")]
async fn an_implicit_tls_port_is_probed_at_once_and_replayed_in_wrapper_mode() {
    let _peers = PythonPeers::start("127.0.0.79", 10587, None).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wrapped.toml");
    let file = out.display().to_string();
    let started = std::time::Instant::now();
    let (code, _, stderr) = run_tlsharness(strings(&[
        "probe",
        "127.0.0.79",
        "--name",
        "smtp.sendgrid.net",
        "--ports",
        "465,25",
        "--out",
        &file,
    ]))
    .await;
    let took = started.elapsed();
    assert_eq!(code, Some(tlsharness::exit::SUCCESS), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}\n{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let scenario = load_file(&out).unwrap();
    assert_eq!(scenario.relay.port, 465, "{text}");
    assert!(scenario.relay.implicit_tls, "{text}");
    // Nothing listens on 25 of that address: refused, and blocked.
    assert_eq!(scenario.paths[0].block, [25], "{text}");
    assert!(
        text.contains("#   25 (probed with STARTTLS): refused: the connection was reset"),
        "{text}"
    );
    assert!(
        text.contains("settings = { smtp_tls_wrappermode = \"yes\" }"),
        "{text}"
    );
    let (code, stdout, stderr) = run_tlsharness(strings(&["run", &file])).await;
    assert_eq!(code, Some(tlsharness::exit::SUCCESS), "{stdout}\n{stderr}");
    let matrix = common::row(&stdout, "wrapped").join("\n");
    let cells =
        "✓ deferred 4.3.0  ✓ deferred 4.3.0  ✓ tls untrusted  ✓ deferred 4.7.5  ✓ deferred 4.7.5";
    assert!(matrix.contains(cells), "{cells:?} in\n{stdout}");
}

/// Bad input is refused before anything is probed; a host that does not
/// resolve, or where nothing answers, is an environment failure; neither
/// writes a file.
#[tokio::test(flavor = "multi_thread")]
async fn bad_ports_and_unreachable_hosts_are_named_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.toml");
    let file = out.display().to_string();
    let probe = |extra: &[&str]| {
        let mut a = strings(&["probe"]);
        a.extend(strings(extra));
        a.extend(strings(&["--name", "smtp.relay.test", "--out", &file]));
        a
    };
    for (args, code, says) in [
        (
            probe(&["127.0.0.78", "--ports", "587,smtp"]),
            tlsharness::exit::BAD_INPUT,
            "--ports: `smtp` is not a port: give numbers from 1 to 65535",
        ),
        (
            probe(&["127.0.0.78", "--ports", "587,70000"]),
            tlsharness::exit::BAD_INPUT,
            "--ports: `70000` is not a port",
        ),
        (
            probe(&["127.0.0.78", "--ports", "587,465,587"]),
            tlsharness::exit::BAD_INPUT,
            "--ports: port 587 is listed twice",
        ),
        (
            probe(&["127.0.0.78", "--ports", ""]),
            tlsharness::exit::BAD_INPUT,
            "--ports: no ports",
        ),
        (
            probe(&["127.0.0.78", "--implicit-tls", "4650"]),
            tlsharness::exit::BAD_INPUT,
            "--implicit-tls: port 4650 is not among the ports probed (587,25,2525,465)",
        ),
        (
            probe(&["no-such-host.invalid"]),
            tlsharness::exit::ENVIRONMENT,
            "failed to resolve no-such-host.invalid",
        ),
        (
            // Nothing listens on that loopback address.
            probe(&["127.0.0.78", "--ports", "25,2525", "--timeout", "3"]),
            tlsharness::exit::ENVIRONMENT,
            "no port of 127.0.0.78 answered SMTP",
        ),
    ] {
        let (got, stdout, stderr) = run_tlsharness(args.clone()).await;
        assert_eq!(got, Some(code), "{args:?}\n{stderr}");
        assert!(stderr.contains(says), "{args:?}: {says:?} in\n{stderr}");
        assert!(stdout.is_empty() && !out.exists(), "{args:?} wrote nothing");
    }
}

//! The harness and the Docker daemon it is given: a daemon that shares
//! nothing with the harness but its API socket (its own network namespace,
//! as a remote daemon or Docker-in-Docker would be), and several harness
//! processes on one daemon at once.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{SecondDaemon, Watched, containers_of_run, tlsharness};
use tlsharness::mta::postfix::image::DEFAULT_IMAGE;

/// Far above a run of the built-in suite (about 15 s alone on two cores):
/// only a stuck run reaches it.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

/// The two tests here each run the whole library (one through a second
/// daemon, four at once on this one): one at a time, so that the machine
/// carries four runs at most, as the four-run test means to, and not five
/// plus an image copied between daemons. Timing-sensitive paths (a
/// handshake timeout inside minimal_backoff_time) stay meaningful then.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What a `tlsharness run --json` report says, checked: no case failed
/// and none went without a verdict. A case may be inconclusive (the
/// machine too busy for its timing on its run and its run again: neither
/// pass nor failure, exit 6); each is counted and printed with its reason.
/// Returns the run id.
fn passed_report(json: &Path, stderr: &str) -> String {
    let text = std::fs::read_to_string(json)
        .unwrap_or_else(|e| panic!("no report at {} ({e}); stderr:\n{stderr}", json.display()));
    let report: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    let cases = report["cases"].as_array().expect("the report has cases");
    assert!(!cases.is_empty(), "the run ran no case; stderr:\n{stderr}");
    let inconclusive: Vec<String> = cases
        .iter()
        .filter(|c| c["inconclusive"].is_string())
        .map(|c| format!("{}/{}: {}", c["scenario"], c["level"], c["inconclusive"]))
        .collect();
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| c["passed"] != serde_json::Value::Bool(true) && !c["inconclusive"].is_string())
        .map(|c| format!("{}/{}: {}", c["scenario"], c["level"], c))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed or had no verdict:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
    let reruns = cases.iter().filter(|c| c["rerun"].is_string()).count();
    eprintln!(
        "{} cases: {} inconclusive, {reruns} run again{}",
        cases.len(),
        inconclusive.len(),
        inconclusive
            .iter()
            .map(|i| format!("\n  inconclusive {i}"))
            .collect::<String>()
    );
    assert_eq!(
        report["passed"],
        serde_json::Value::Bool(inconclusive.is_empty())
    );
    report["run_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .expect("the report names its run")
        .to_owned()
}

/// The daemon is reachable only through its socket: Postfix's network is
/// not the harness's, so the harness must reach Postfix and Postfix its
/// fakes without any shared loopback, host port or bind mount path.
#[test]
fn the_builtin_suite_runs_through_a_daemon_in_another_network_namespace() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = SecondDaemon::start(&[DEFAULT_IMAGE]);
    let own = std::fs::read_link("/proc/self/ns/net").expect("our network namespace");
    assert_ne!(
        daemon.netns(),
        own.to_string_lossy(),
        "the second daemon shares our network namespace"
    );
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("report.json");
    let mut cmd = tlsharness();
    cmd.args(["run", "scenarios", "--image", DEFAULT_IMAGE, "--json"])
        .arg(&json)
        .env("DOCKER_HOST", daemon.host());
    let start = Instant::now();
    let (status, stderr) = Watched::spawn(cmd).finish(RUN_DEADLINE);
    assert!(
        status.success(),
        "tlsharness run scenarios with DOCKER_HOST={} (a daemon in {}) {status} after {:.1?}; stderr:\n{stderr}",
        daemon.host(),
        daemon.netns(),
        start.elapsed()
    );
    passed_report(&json, &stderr);
    let left = daemon.containers();
    assert!(
        left.is_empty(),
        "containers left on the daemon after the run: {left:?}"
    );
}

/// Four harness processes at once on the default daemon: each run gets its
/// own container, ports and CA, every case passes in each, and each cleans
/// up after itself only.
#[test]
fn four_runs_at_once_on_one_daemon_all_pass() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const RUNS: usize = 4;
    let out = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut runs: Vec<(Watched, std::path::PathBuf)> = (0..RUNS)
        .map(|i| {
            let json = out.path().join(format!("report-{i}.json"));
            let mut cmd = tlsharness();
            cmd.args(["run", "scenarios", "--json"]).arg(&json);
            (Watched::spawn(cmd), json)
        })
        .collect();
    // Every run to its end before judging any, so that none is left running.
    let end = start + RUN_DEADLINE;
    let finished: Vec<_> = runs
        .iter_mut()
        .map(|(run, _)| run.finish(end.saturating_duration_since(Instant::now())))
        .collect();
    let took = start.elapsed();
    let mut ids = Vec::new();
    for (i, ((status, stderr), (_, json))) in finished.iter().zip(&runs).enumerate() {
        assert!(
            status.success() || status.code() == Some(tlsharness::exit::INCONCLUSIVE),
            "run {i} of {RUNS} at once {status} (all done after {took:.1?}); stderr:\n{stderr}"
        );
        ids.push(passed_report(json, stderr));
    }
    eprintln!("{RUNS} runs at once took {took:.1?}");
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), RUNS, "run ids collide: {ids:?}");
    for id in &ids {
        let left = containers_of_run(id);
        assert!(left.is_empty(), "run {id} left containers: {left:?}");
    }
}

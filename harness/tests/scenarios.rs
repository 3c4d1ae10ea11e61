//! One test per scenario file in `scenarios/`, each against a real
//! Postfix, so a failing scenario shows by name in `cargo test` and
//! `cargo nextest run`.
//!
//! Under `cargo test` all tests live in one process: the first to ask runs
//! every scenario in one Postfix container and each test reads its own
//! cases. Under nextest (a process per test) each test runs its own file.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tlsharness::report::failure_details;
use tlsharness::run::{RunOptions, RunReport, run};
use tlsharness::scenario::{load_file, load_paths, scenario_id};

static BATCH: OnceLock<Result<RunReport, String>> = OnceLock::new();

fn execute(paths: &[std::path::PathBuf]) -> Result<RunReport, String> {
    // The agent is the tlsharness binary, not this test binary.
    tlsharness::lab::use_agent_binary(env!("CARGO_BIN_EXE_tlsharness"));
    let scenarios = load_paths(paths)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(Arc::new)
        .collect::<Vec<_>>();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(run(&scenarios, &RunOptions::default()))
        .map_err(|e| e.to_string())
}

fn under_nextest() -> bool {
    std::env::var_os("NEXTEST").is_some()
}

fn scenario(path: &Path) -> datatest_stable::Result<()> {
    // A broken file fails its own test with the located error.
    load_file(path)?;
    let id = scenario_id(path);
    let owned;
    let report = if under_nextest() {
        owned = execute(&[path.to_owned()])?;
        &owned
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        match BATCH.get_or_init(|| execute(&[dir])) {
            Ok(r) => r,
            Err(e) => return Err(e.clone().into()),
        }
    };
    let cases: Vec<_> = report.cases.iter().filter(|c| c.scenario == id).collect();
    if cases.is_empty() {
        return Err(format!("no case of {id} ran").into());
    }
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| !c.passed)
        .map(|c| failure_details(c))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n").into())
    }
}

datatest_stable::harness! {
    { test = scenario, root = "../scenarios", pattern = r"\.toml$" },
}

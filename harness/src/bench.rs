//! `tlsharness bench`: how fast the harness runs against real Postfix.
//!
//! Phases, each repeated and reported as medians:
//! - scale: at least N generated cases (copies of the built-in scenarios
//!   that involve no deliberate waiting), each with its own relay and
//!   middlebox, in one run; wall time from the first Docker call, the
//!   harness's peak memory, and how many cases were lost or misclassified;
//! - suite: the built-in scenarios end to end (container start included),
//!   and the latency of each case that involves no deliberate wait;
//! - compare (optional): the same suite with one container per scenario,
//!   as a naive harness would run it, and the ratio.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::run::{RunError, RunOptions, RunReport, run};
use crate::scenario::{LoadErrors, Scenario, load_bytes, load_paths};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Load(#[from] LoadErrors),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no scenario qualifies for the scale phase (all involve deliberate waits)")]
    NoTemplates,
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The built-in scenarios (templates for the scale phase too).
    pub scenarios: PathBuf,
    /// At least this many generated cases in the scale phase.
    pub cases: usize,
    /// Runs per phase.
    pub repeat: usize,
    /// Also run one container per scenario and report the ratio.
    pub compare: bool,
    pub image: String,
}

/// Median and 95th percentile of a sample, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stats {
    pub median_ms: u64,
    pub p95_ms: u64,
    pub samples: usize,
}

impl Stats {
    pub fn of(mut values: Vec<u64>) -> Stats {
        if values.is_empty() {
            return Stats::default();
        }
        values.sort_unstable();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Stats {
            median_ms: at(0.5),
            p95_ms: at(0.95),
            samples: values.len(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchReport {
    pub postfix_version: String,
    pub image: String,
    pub scale_cases: usize,
    /// Wall time of a scale run, container start included.
    pub scale: Stats,
    /// Cases that failed their (real-Postfix-recorded) expectation.
    pub scale_misclassified: usize,
    /// The harness's peak resident memory after the scale phase.
    pub peak_rss_mb: f64,
    pub suite_cases: usize,
    pub suite: Stats,
    /// Container start to Postfix accepting mail.
    pub startup: Stats,
    /// Cases of the suite without deliberate waits.
    pub case_latency: Stats,
    /// The suite's deliberate waits (retries, shortened timeouts), longest.
    pub deliberate_wait_ms: u64,
    pub per_scenario: Option<Stats>,
    pub ratio: Option<f64>,
}

/// Whether a scenario runs without waiting on purpose: one attempt per
/// level, no retry, no shortened timeout to wait out.
fn waits(s: &Scenario) -> bool {
    s.delivery.retry_after.is_some()
        || s.expect.values().any(|e| e.attempts.len() > 1)
        || s.postfix
            .settings
            .keys()
            .any(|k| k.as_str().ends_with("_timeout"))
}

/// How long a scenario waits on purpose, at most (a crude upper bound:
/// its retry interval plus one second per attempt, or its timeouts).
fn deliberate_wait(s: &Scenario) -> Duration {
    let timeouts: u64 = s
        .postfix
        .settings
        .iter()
        .filter(|(k, _)| k.as_str().ends_with("_timeout"))
        .filter_map(|(_, v)| v.as_str().trim_end_matches('s').parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let attempts = s
        .expect
        .values()
        .map(|e| e.attempts.len())
        .max()
        .unwrap_or(1) as u64;
    let retry = s.delivery.retry_after.map_or(0, |r| r.0 + 1) * (attempts - 1);
    Duration::from_secs(retry + timeouts * attempts)
}

/// Copies of the templates, each under its own id, until there are at
/// least `cases` cases.
fn generate(templates: &[Arc<Scenario>], cases: usize) -> Result<Vec<Arc<Scenario>>, BenchError> {
    if templates.is_empty() {
        return Err(BenchError::NoTemplates);
    }
    let mut out = Vec::new();
    let mut n = 0;
    let mut i = 0;
    while n < cases {
        let t = &templates[i % templates.len()];
        let bytes = std::fs::read(&t.path).map_err(|source| {
            LoadErrors(vec![crate::scenario::LoadError::Io {
                path: t.path.clone(),
                source,
            }])
        })?;
        let path = PathBuf::from(format!("generated/g{i:05}-{}.toml", t.id));
        let s = load_bytes(&path, &bytes).map_err(|e| LoadErrors(vec![e]))?;
        n += s.expect.len();
        out.push(Arc::new(s));
        i += 1;
    }
    Ok(out)
}

/// Peak resident memory of this process so far, in MiB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn timed(
    scenarios: &[Arc<Scenario>],
    opts: &RunOptions,
) -> Result<(u64, RunReport), BenchError> {
    let t = Instant::now();
    let report = run(scenarios, opts).await?;
    Ok((t.elapsed().as_millis() as u64, report))
}

/// Runs the benchmark; `progress` is told what is going on.
pub async fn bench(
    opts: &BenchOptions,
    progress: &dyn Fn(&str),
) -> Result<BenchReport, BenchError> {
    let suite: Vec<Arc<Scenario>> = load_paths(std::slice::from_ref(&opts.scenarios))?
        .into_iter()
        .map(Arc::new)
        .collect();
    let run_opts = RunOptions {
        images: vec![opts.image.clone()],
        ..RunOptions::default()
    };
    let mut report = BenchReport {
        image: opts.image.clone(),
        ..Default::default()
    };
    let mut startups = Vec::new();

    // Scale first, so that the peak memory reading is the scale run's.
    let templates: Vec<Arc<Scenario>> = suite.iter().filter(|s| !waits(s)).cloned().collect();
    let generated = generate(&templates, opts.cases)?;
    let mut scale = Vec::new();
    for i in 0..opts.repeat {
        progress(&format!("scale run {}/{}", i + 1, opts.repeat));
        let (ms, r) = timed(&generated, &run_opts).await?;
        scale.push(ms);
        startups.push(r.startup_ms);
        report.scale_cases = r.cases.len();
        report.scale_misclassified = report
            .scale_misclassified
            .max(r.cases.iter().filter(|c| !c.passed).count());
        report.postfix_version = r.postfix_version.clone();
    }
    report.scale = Stats::of(scale);
    report.peak_rss_mb = peak_rss_mb();

    let mut suite_times = Vec::new();
    let mut latencies = Vec::new();
    for i in 0..opts.repeat {
        progress(&format!("suite run {}/{}", i + 1, opts.repeat));
        let (ms, r) = timed(&suite, &run_opts).await?;
        suite_times.push(ms);
        startups.push(r.startup_ms);
        report.suite_cases = r.cases.len();
        for c in &r.cases {
            let s = suite
                .iter()
                .find(|s| s.id == c.scenario)
                .expect("ran from the suite");
            if !waits(s) {
                latencies.push(c.duration_ms);
            }
        }
    }
    report.suite = Stats::of(suite_times);
    report.case_latency = Stats::of(latencies);
    report.startup = Stats::of(startups);
    report.deliberate_wait_ms = suite
        .iter()
        .map(|s| deliberate_wait(s).as_millis() as u64)
        .max()
        .unwrap_or(0);

    if opts.compare {
        let mut total = 0;
        for (i, s) in suite.iter().enumerate() {
            progress(&format!(
                "one container per scenario: {}/{} ({})",
                i + 1,
                suite.len(),
                s.id
            ));
            let (ms, _) = timed(std::slice::from_ref(s), &run_opts).await?;
            total += ms;
        }
        report.per_scenario = Some(Stats::of(vec![total]));
        report.ratio = Some(total as f64 / report.suite.median_ms.max(1) as f64);
    }
    Ok(report)
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The results as a Markdown table, with the command that made them.
pub fn markdown(r: &BenchReport, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured by `{command}` on this 2-core machine, Postfix {} ({}); medians.\n",
        r.postfix_version, r.image
    );
    let _ = writeln!(out, "| measure | result | target |");
    let _ = writeln!(out, "|---|---|---|");
    let _ = writeln!(
        out,
        "| container start to ready | {} (p95 {}) | |",
        secs(r.startup.median_ms),
        secs(r.startup.p95_ms)
    );
    let _ = writeln!(
        out,
        "| {} generated cases, one run, start included | {} ({} misclassified) | under 20 s, none lost |",
        r.scale_cases,
        secs(r.scale.median_ms),
        r.scale_misclassified
    );
    let _ = writeln!(
        out,
        "| harness peak memory (scale run) | {:.0} MB | under 200 MB |",
        r.peak_rss_mb
    );
    let _ = writeln!(
        out,
        "| built-in suite end to end ({} cases) | {} | deliberate waits ({}) + 5 s |",
        r.suite_cases,
        secs(r.suite.median_ms),
        secs(r.deliberate_wait_ms)
    );
    let _ = writeln!(
        out,
        "| per-case latency, cases without deliberate waits | median {}, p95 {} | |",
        secs(r.case_latency.median_ms),
        secs(r.case_latency.p95_ms)
    );
    if let (Some(p), Some(ratio)) = (r.per_scenario, r.ratio) {
        let _ = writeln!(
            out,
            "| built-in suite, one container per scenario | {} | |",
            secs(p.median_ms)
        );
        let _ = writeln!(
            out,
            "| one shared Postfix vs one per scenario | {ratio:.1}x faster | at least 10x |"
        );
    }
    out
}

/// Replaces the text between the bench markers in `path` with `table`.
pub fn update_readme(path: &Path, table: &str) -> std::io::Result<()> {
    const BEGIN: &str = "<!-- bench:begin -->";
    const END: &str = "<!-- bench:end -->";
    let text = std::fs::read_to_string(path)?;
    let (Some(a), Some(b)) = (text.find(BEGIN), text.find(END)) else {
        return Err(std::io::Error::other(format!(
            "{} has no {BEGIN} ... {END} markers",
            path.display()
        )));
    };
    let updated = format!("{}{BEGIN}\n{table}{}", &text[..a], &text[b..]);
    std::fs::write(path, updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_take_median_and_p95() {
        let s = Stats::of((1..=100).collect());
        assert_eq!(s.median_ms, 51);
        assert_eq!(s.p95_ms, 95);
        assert_eq!(Stats::of(vec![]).samples, 0);
    }

    #[test]
    fn generation_reaches_the_case_count_with_distinct_ids() {
        let suite: Vec<Arc<Scenario>> = load_paths(&[PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios"
        ))])
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect();
        let templates: Vec<_> = suite.iter().filter(|s| !waits(s)).cloned().collect();
        assert!(templates.len() > 10);
        assert!(templates.iter().all(|s| s.id != "fail-handshake-silence"));
        let g = generate(&templates, 1000).unwrap();
        let cases: usize = g.iter().map(|s| s.expect.len()).sum();
        assert!(cases >= 1000);
        let mut ids: Vec<_> = g.iter().map(|s| s.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), g.len());
    }
}

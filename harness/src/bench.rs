//! `tlsharness bench`: how fast the harness runs against real Postfix.
//!
//! Phases, each run `repeat` times; a phase's time is the median of its
//! runs:
//! - scale: at least N generated cases (copies of the built-in scenarios
//!   that involve no deliberate waiting), each with its own relay and
//!   middlebox, in one run; wall time from the first Docker call, the
//!   harness's peak memory, and how many cases were lost or misclassified;
//! - suite: the built-in scenarios end to end (container start included),
//!   and the latency of each case that involves no deliberate wait;
//! - compare (optional): the same suite with one container per scenario,
//!   as a naive harness would run it, and the ratio of the two medians.
//!
//! The machine the figures were taken on is measured, not assumed: cores
//! available to this process, memory and CPU model from /proc.

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

impl crate::exit::Code for BenchError {
    fn exit_code(&self) -> i32 {
        match self {
            BenchError::Load(e) => e.exit_code(),
            BenchError::NoTemplates => crate::exit::BAD_INPUT,
            BenchError::Run(e) => e.exit_code(),
        }
    }
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
    /// Stops the measurement (SIGINT/SIGTERM): the current run ends as an
    /// interrupted run, cleaning up after itself.
    pub cancel: tokio_util::sync::CancellationToken,
}

/// Median, 95th percentile and maximum of a sample, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub median_ms: u64,
    pub p95_ms: u64,
    pub max_ms: u64,
    pub samples: usize,
}

impl Stats {
    /// Nearest-rank statistics; the median of an even sample is the
    /// upper of the two middle values (a time that was measured).
    pub fn of(mut values: Vec<u64>) -> Stats {
        if values.is_empty() {
            return Stats::default();
        }
        values.sort_unstable();
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Stats {
            median_ms: at(0.5),
            p95_ms: at(0.95),
            max_ms: values[values.len() - 1],
            samples: values.len(),
        }
    }

    /// Whether the sample is large enough for a 95th percentile to mean
    /// something: below 20 samples it is the maximum or next to it.
    fn has_p95(&self) -> bool {
        self.samples >= 20
    }
}

/// The machine the figures were taken on, as measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Machine {
    /// Cores this process may run on (affinity and cgroup quota included).
    pub cores: usize,
    /// Total memory (MemTotal), in MiB.
    pub memory_mib: Option<u64>,
    /// The first processor's model name, where /proc/cpuinfo gives one.
    pub cpu: Option<String>,
}

impl Machine {
    /// Measures this machine.
    pub fn measure() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine::from_proc(
            std::thread::available_parallelism().map_or(0, usize::from),
            &read("/proc/meminfo"),
            &read("/proc/cpuinfo"),
        )
    }

    /// The description from `/proc/meminfo` and `/proc/cpuinfo` texts.
    pub fn from_proc(cores: usize, meminfo: &str, cpuinfo: &str) -> Machine {
        let memory_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                let mut words = rest.split_whitespace();
                let n = words.next()?.parse::<u64>().ok()?;
                (words.next() == Some("kB")).then_some(n / 1024)
            });
        let cpu = cpuinfo
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == "model name")
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|v| !v.is_empty());
        Machine {
            cores,
            memory_mib,
            cpu,
        }
    }

    /// For example "2 cores (AMD EPYC), 23.5 GiB memory".
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{} core{}",
            self.cores,
            if self.cores == 1 { "" } else { "s" }
        );
        if let Some(cpu) = &self.cpu {
            let _ = write!(out, " ({cpu})");
        }
        match self.memory_mib {
            Some(mib) => {
                let _ = write!(out, ", {:.1} GiB memory", mib as f64 / 1024.0);
            }
            None => out.push_str(", memory unknown"),
        }
        out
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchReport {
    pub mta_version: String,
    pub image: String,
    pub machine: Machine,
    /// Runs per phase.
    pub repeat: usize,
    pub scale_cases: usize,
    /// Wall time of a scale run, container start included; one sample per
    /// run.
    pub scale: Stats,
    /// Cases that failed their (real-Postfix-recorded) expectation, in the
    /// worst scale run.
    pub scale_misclassified: usize,
    /// The harness's peak resident memory over all scale runs.
    pub peak_rss_mb: f64,
    /// The agent's (the fakes', in the run's namespace) peak resident
    /// memory, the largest of the scale runs.
    pub agent_peak_rss_mb: f64,
    pub suite_cases: usize,
    /// Wall time of a suite run; one sample per run.
    pub suite: Stats,
    /// Container start to Postfix accepting mail; one sample per container
    /// of the scale and suite runs.
    pub startup: Stats,
    /// Cases of the suite without deliberate waits, pooled over all suite
    /// runs.
    pub case_latency: Stats,
    /// The suite's deliberate waits (retries, shortened timeouts), longest
    /// (an upper bound estimated from the scenario files).
    pub deliberate_wait_ms: u64,
    /// Wall time of the suite run with one container per scenario, one
    /// sample per run of the whole suite.
    pub per_scenario: Option<Stats>,
    /// Median of `per_scenario` over median of `suite`.
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
    crate::lab::peak_rss_kb() as f64 / 1024.0
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
        cancel: opts.cancel.clone(),
        ..RunOptions::default()
    };
    let mut report = BenchReport {
        image: opts.image.clone(),
        machine: Machine::measure(),
        repeat: opts.repeat,
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
        report.mta_version = r.mta_version.clone();
        report.agent_peak_rss_mb = report
            .agent_peak_rss_mb
            .max(r.agent_peak_rss_kb as f64 / 1024.0);
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
        let mut totals = Vec::new();
        for r in 0..opts.repeat {
            let mut total = 0;
            for (i, s) in suite.iter().enumerate() {
                progress(&format!(
                    "one container per scenario, run {}/{}: {}/{} ({})",
                    r + 1,
                    opts.repeat,
                    i + 1,
                    suite.len(),
                    s.id
                ));
                let (ms, _) = timed(std::slice::from_ref(s), &run_opts).await?;
                total += ms;
            }
            totals.push(total);
        }
        let per_scenario = Stats::of(totals);
        report.ratio = Some(ratio(&per_scenario, &report.suite));
        report.per_scenario = Some(per_scenario);
    }
    Ok(report)
}

/// How many times slower `slow` is than `fast`, median against median.
fn ratio(slow: &Stats, fast: &Stats) -> f64 {
    slow.median_ms as f64 / fast.median_ms.max(1) as f64
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// "13.7 s, median of 3 runs", or "13.7 s, 1 run" when there is no median
/// to speak of.
fn wall(s: &Stats) -> String {
    match s.samples {
        1 => format!("{}, 1 run", secs(s.median_ms)),
        n => format!("{}, median of {n} runs", secs(s.median_ms)),
    }
}

/// "median 2.9 s, p95 3.4 s of 6 starts": the spread named for what it is
/// (a small sample's p95 is its maximum, so it is called that).
fn spread(s: &Stats, of: &str) -> String {
    let tail = if s.has_p95() { "p95" } else { "max" };
    let value = if s.has_p95() { s.p95_ms } else { s.max_ms };
    format!(
        "median {}, {tail} {} of {} {of}",
        secs(s.median_ms),
        secs(value),
        s.samples
    )
}

/// The results as a Markdown table, with the command that made them.
pub fn markdown(r: &BenchReport, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured by `{command}` on {}, Postfix {} ({}), {} per phase. p95 is the nearest-rank 95th percentile, given where there are 20 samples or more (otherwise the maximum).\n",
        r.machine.describe(),
        r.mta_version,
        r.image,
        match r.repeat {
            1 => "1 run".to_owned(),
            n => format!("{n} runs"),
        },
    );
    let _ = writeln!(out, "| measure | result | target |");
    let _ = writeln!(out, "|---|---|---|");
    let _ = writeln!(
        out,
        "| container start to ready | {} | |",
        spread(&r.startup, "starts")
    );
    let _ = writeln!(
        out,
        "| {} generated cases, one run, start included | {} ({} misclassified in the worst run) | under 20 s, none lost |",
        r.scale_cases,
        wall(&r.scale),
        r.scale_misclassified
    );
    let _ = writeln!(
        out,
        "| harness peak memory (peak resident, over the scale runs) | {:.0} MB | under 200 MB |",
        r.peak_rss_mb
    );
    let _ = writeln!(
        out,
        "| agent peak memory (the fakes, in the run's namespace; the largest of the scale runs) | {:.0} MB | |",
        r.agent_peak_rss_mb
    );
    let _ = writeln!(
        out,
        "| built-in suite end to end ({} cases) | {} | deliberate waits ({}, estimated) + 5 s |",
        r.suite_cases,
        wall(&r.suite),
        secs(r.deliberate_wait_ms)
    );
    let _ = writeln!(
        out,
        "| per-case latency, cases without deliberate waits | {} | |",
        spread(&r.case_latency, "cases")
    );
    if let (Some(p), Some(ratio)) = (r.per_scenario, r.ratio) {
        let _ = writeln!(
            out,
            "| built-in suite, one container per scenario | {} | |",
            wall(&p)
        );
        let _ = writeln!(
            out,
            "| one shared Postfix vs one per scenario (median against median) | {ratio:.1}x faster | at least 10x |"
        );
    }
    out
}

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// `text` with what lies between the bench markers replaced by `table`;
/// `None` without a begin marker followed by an end marker.
fn replace_table(text: &str, table: &str) -> Option<String> {
    let a = text.find(BEGIN)?;
    let b = a + text[a..].find(END)?;
    Some(format!("{}{BEGIN}\n{table}{}", &text[..a], &text[b..]))
}

/// Replaces the text between the bench markers in `path` with `table`.
pub fn update_readme(path: &Path, table: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let updated = replace_table(&text, table).ok_or_else(|| {
        std::io::Error::other(format!(
            "{} has no {BEGIN} ... {END} markers",
            path.display()
        ))
    })?;
    std::fs::write(path, updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_take_median_and_p95() {
        let s = Stats::of((1..=100).rev().collect());
        assert_eq!(s.median_ms, 51);
        assert_eq!(s.p95_ms, 95);
        assert_eq!(s.max_ms, 100);
        assert_eq!(s.samples, 100);
        assert_eq!(Stats::of(vec![]).samples, 0);
    }

    #[test]
    fn the_median_of_three_runs_is_the_middle_one_not_a_mean() {
        let s = Stats::of(vec![9_000, 1_000, 2_000]);
        assert_eq!(s.median_ms, 2_000);
        assert_eq!(s.max_ms, 9_000);
        assert!(!s.has_p95());
        assert_eq!(spread(&s, "starts"), "median 2.0 s, max 9.0 s of 3 starts");
        let many = Stats::of((1..=20).map(|n| n * 100).collect());
        assert_eq!(
            spread(&many, "cases"),
            "median 1.1 s, p95 1.9 s of 20 cases"
        );
    }

    #[test]
    fn the_ratio_is_median_against_median() {
        let per_scenario = Stats::of(vec![150_000, 160_000, 400_000]);
        let shared = Stats::of(vec![10_000, 10_000, 30_000]);
        assert_eq!(ratio(&per_scenario, &shared), 16.0);
        assert_eq!(ratio(&per_scenario, &Stats::default()), 160_000.0);
    }

    const MEMINFO: &str = "MemTotal:       24684092 kB\nMemFree:        21314660 kB\n";
    const CPUINFO: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n";

    #[test]
    fn the_machine_is_described_from_proc() {
        let m = Machine::from_proc(2, MEMINFO, CPUINFO);
        assert_eq!(m.cores, 2);
        assert_eq!(m.memory_mib, Some(24105));
        assert_eq!(m.cpu.as_deref(), Some("AMD EPYC 7B13 64-Core Processor"));
        assert_eq!(
            m.describe(),
            "2 cores (AMD EPYC 7B13 64-Core Processor), 23.5 GiB memory"
        );
    }

    #[test]
    fn missing_proc_fields_are_left_out_not_guessed() {
        // An arm64 cpuinfo has no model name; an unreadable meminfo is empty.
        let m = Machine::from_proc(1, "", "processor\t: 0\nBogoMIPS\t: 50.00\n");
        assert_eq!(m.describe(), "1 core, memory unknown");
        let odd = Machine::from_proc(4, "MemTotal: lots\n", "model name\t:   \n");
        assert_eq!(odd.memory_mib, None);
        assert_eq!(odd.cpu, None);
    }

    #[test]
    fn this_machine_is_measured() {
        let m = Machine::measure();
        assert_eq!(
            m.cores,
            usize::from(std::thread::available_parallelism().unwrap())
        );
        assert!(m.memory_mib.is_some_and(|mib| mib > 0), "{m:?}");
    }

    fn report(compare: bool) -> BenchReport {
        BenchReport {
            mta_version: "3.7.11".into(),
            image: "tlsharness/postfix:bookworm".into(),
            machine: Machine::from_proc(2, MEMINFO, CPUINFO),
            repeat: 3,
            scale_cases: 1004,
            scale: Stats::of(vec![13_700, 14_100, 13_200]),
            scale_misclassified: 0,
            peak_rss_mb: 73.4,
            agent_peak_rss_mb: 40.0,
            suite_cases: 266,
            suite: Stats::of(vec![10_300, 10_100, 11_000]),
            startup: Stats::of(vec![2_900, 3_400, 2_800, 3_100, 3_000, 2_700]),
            case_latency: Stats::of((0..600).map(|n| 1_000 + n * 2).collect()),
            deliberate_wait_ms: 8_000,
            per_scenario: compare.then(|| Stats::of(vec![161_000, 158_000, 170_000])),
            ratio: compare.then_some(15.6),
        }
    }

    #[test]
    fn the_table_says_what_each_figure_is() {
        let table = markdown(&report(true), "tlsharness bench --repeat 3 --compare");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "Measured by `tlsharness bench --repeat 3 --compare` on 2 cores (AMD EPYC 7B13 64-Core Processor), 23.5 GiB memory, Postfix 3.7.11 (tlsharness/postfix:bookworm), 3 runs per phase. p95 is the nearest-rank 95th percentile, given where there are 20 samples or more (otherwise the maximum)."
        );
        assert!(!table.contains("2-core machine"), "{table}");
        assert!(
            table.contains("| container start to ready | median 3.0 s, max 3.4 s of 6 starts | |"),
            "{table}"
        );
        assert!(
            table.contains("| 13.7 s, median of 3 runs (0 misclassified in the worst run) |"),
            "{table}"
        );
        assert!(
            table.contains("| built-in suite end to end (266 cases) | 10.3 s, median of 3 runs |"),
            "{table}"
        );
        assert!(
            table.contains("| median 1.6 s, p95 2.1 s of 600 cases |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| built-in suite, one container per scenario | 161.0 s, median of 3 runs | |"
            ),
            "{table}"
        );
        assert!(table.contains("| 15.6x faster |"), "{table}");
        let plain = markdown(&report(false), "tlsharness bench");
        assert!(!plain.contains("one container per scenario"), "{plain}");
        let mut once = report(false);
        once.repeat = 1;
        once.suite = Stats::of(vec![10_300]);
        let once = markdown(&once, "tlsharness bench --repeat 1");
        assert!(once.contains(", 1 run per phase."), "{once}");
        assert!(
            once.contains("| built-in suite end to end (266 cases) | 10.3 s, 1 run |"),
            "{once}"
        );
    }

    #[test]
    fn the_readme_table_is_replaced_between_the_markers_only() {
        let text = "intro\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\nafter\n";
        assert_eq!(
            replace_table(text, "| new |\n").unwrap(),
            "intro\n<!-- bench:begin -->\n| new |\n<!-- bench:end -->\nafter\n"
        );
        assert_eq!(replace_table("no markers\n", "x"), None);
        // An end marker before the begin marker is not a pair.
        assert_eq!(
            replace_table("<!-- bench:end -->\n<!-- bench:begin -->\n", "x"),
            None
        );
    }

    #[test]
    fn update_readme_rewrites_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("README.md");
        std::fs::write(&path, "a\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n").unwrap();
        update_readme(&path, "new\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a\n<!-- bench:begin -->\nnew\n<!-- bench:end -->\n"
        );
        std::fs::write(&path, "nothing here\n").unwrap();
        assert!(update_readme(&path, "new\n").is_err());
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

//! The `tlsharness` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tlsharness::exit;
use tlsharness::level::Level;
use tlsharness::postfix::{self, docker, image};
use tlsharness::probe::{self, ProbeOptions, Target, TrustAnchors};
use tlsharness::report;
use tlsharness::run::{self, RunOptions};
use tlsharness::scenario;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "tlsharness",
    version,
    about = "Run a real Postfix against fake relays and STARTTLS-tampering middleboxes, level by level"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against a real Postfix and compare with their expectations.
    Run(RunArgs),
    /// Check scenario files without running anything.
    Validate {
        /// Scenario files or directories.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
    },
    /// Manage the Postfix image.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Run your own Postfix configuration (and a candidate change) on scenarios' paths.
    Check(CheckArgs),
    /// Read a Postfix mail log and name the path conditions behind its failures.
    Explain {
        /// The log file (`-` for standard input).
        log: PathBuf,
    },
    /// Measure the harness against real Postfix (see README, Performance).
    Bench(BenchArgs),
    /// Remove containers left behind by harness runs that were killed.
    Sweep,
    /// Probe a relay from this host (never sending mail) and write a
    /// scenario whose relay replays what the network path showed.
    Probe(ProbeArgs),
}

#[derive(Args)]
struct ProbeArgs {
    /// The relay, as HOST:PORT (e.g. smtp.example.com:587).
    #[arg(value_parser = clap::value_parser!(Target))]
    target: Target,
    /// The name the probe gives in EHLO.
    #[arg(long, default_value = probe::DEFAULT_EHLO, value_name = "NAME")]
    ehlo: String,
    /// Write the scenario to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    force: bool,
    /// The relay's name: sent as SNI, checked against its certificate, and
    /// the relay's hostname in the scenario (default: the host of TARGET).
    #[arg(long, value_name = "HOSTNAME")]
    name: Option<String>,
    /// The deadline of each step (connect, each reply, the handshake), in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    timeout: f64,
    /// Also trust the CA certificates in FILE (PEM), e.g. the smtp_tls_CAfile
    /// of the Postfix that uses this relay; may be repeated.
    #[arg(long, value_name = "FILE")]
    ca_file: Vec<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// The built-in scenarios (also the templates of the generated cases).
    #[arg(long, default_value = "scenarios")]
    scenarios: PathBuf,
    /// At least this many generated cases in the scale phase.
    #[arg(long, default_value_t = 1000)]
    cases: usize,
    /// Runs per phase (results are medians).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Also run the suite with one container per scenario and report the ratio.
    #[arg(long)]
    compare: bool,
    #[arg(long, default_value = image::DEFAULT_IMAGE)]
    image: String,
    /// Write the results table into this file, between the
    /// `<!-- bench:begin -->` and `<!-- bench:end -->` markers.
    #[arg(long, value_name = "FILE")]
    readme: Option<PathBuf>,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// Your configuration: a directory with main.cf (and master.cf and the
    /// lookup tables they name), or a main.cf.
    #[arg(long, value_name = "DIR_OR_MAIN_CF")]
    config: PathBuf,
    /// A changed configuration to compare with --config.
    #[arg(long, value_name = "DIR_OR_MAIN_CF")]
    candidate: Option<PathBuf>,
    /// Scenario files or directories whose network paths to run.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    /// Only scenarios whose id matches this glob; may be repeated.
    #[arg(long, value_name = "PATTERN")]
    scenario: Vec<String>,
    /// The Postfix image; repeat to compare versions.
    #[arg(long)]
    image: Vec<String>,
    /// Run on the three built-in images (Postfix 3.5, 3.7, 3.10).
    #[arg(long)]
    all_versions: bool,
    /// Exit 0 even when the candidate downgrades a path.
    #[arg(long)]
    allow_downgrade: bool,
    /// Exit 0 even when the candidate stops mail on a path.
    #[arg(long)]
    allow_outage: bool,
    /// Write the rows as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The longest one delivery attempt may take, in seconds (1 to 86400).
    #[arg(long, default_value_t = 120, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    attempt_timeout: u64,
}

#[derive(Args)]
struct RunArgs {
    /// Scenario files or directories (every *.toml inside).
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    /// Write a JSON report (one record per scenario x level; schema in
    /// fixtures/schemas/report.schema.json).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report (one testcase per scenario x level).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// For every failed case, keep its Postfix log, wire transcript and
    /// Postfix configuration under DIR/<scenario>/<level>/.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Only scenarios whose id (file name without .toml) matches this glob;
    /// may be repeated.
    #[arg(long, value_name = "PATTERN")]
    scenario: Vec<String>,
    /// Only these levels (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "LEVELS")]
    level: Option<Vec<Level>>,
    /// Run shard K of N (cases dealt round-robin, so shards are balanced and
    /// together run every case once).
    #[arg(long, value_name = "K/N")]
    partition: Option<run::Partition>,
    /// The Postfix image; repeat to run every case on each (default
    /// tlsharness/postfix:bookworm).
    #[arg(long)]
    image: Vec<String>,
    /// Run on the three built-in images (Postfix 3.5, 3.7, 3.10).
    #[arg(long)]
    all_versions: bool,
    /// The longest one delivery attempt may take, in seconds (1 to 86400).
    #[arg(long, default_value_t = 120, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    attempt_timeout: u64,
    /// List the selected cases (scenario/level) and exit without running.
    #[arg(long)]
    list: bool,
    /// Run the selection N times and report every case whose outcome
    /// changed between runs (a flake check).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    repeat: u64,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build tlsharness/postfix:SUITE offline (debootstrap + docker import) unless present.
    Build {
        /// Debian suite: bullseye (Postfix 3.5), bookworm (3.7), trixie (3.10).
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// Build even if the image exists.
        #[arg(long)]
        rebuild: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Handlers are in place before any work starts, so an early signal is
    // handled like a late one.
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tlsharness: cannot install signal handlers: {e}");
            return ExitCode::from(exit::HARNESS_ERROR as u8);
        }
    };
    // Every case holds listening sockets and connections of its own.
    tlsharness::smtp::raise_open_file_limit();
    let cancel = CancellationToken::new();
    let work = dispatch(cli, cancel.clone());
    tokio::pin!(work);
    let code = tokio::select! {
        code = &mut work => code,
        signal = signals.recv() => {
            eprintln!("tlsharness: {signal}; stopping and cleaning up (send it again to stop at once)");
            cancel.cancel();
            tokio::select! {
                code = &mut work => code,
                signal = signals.recv() => {
                    eprintln!("tlsharness: {signal} again; removing this process's containers");
                    force_cleanup().await;
                    exit::INTERRUPTED
                }
            }
        }
    };
    ExitCode::from(code as u8)
}

/// SIGINT and SIGTERM, caught.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "terminated",
            _ = self.int.recv() => "interrupted",
        }
    }
}

/// Removes whatever this process still has in Docker, after the work
/// future was abandoned.
async fn force_cleanup() {
    if let Ok(d) = docker::connect(Duration::from_secs(5)).await {
        let _ = docker::remove_owned(&d).await;
    }
}

async fn dispatch(cli: Cli, cancel: CancellationToken) -> i32 {
    match cli.command {
        Command::Run(args) => run_command(args, cancel).await,
        Command::Validate { paths } => match scenario::load_paths(&paths) {
            Ok(s) => {
                println!("{} scenario file(s) are valid", s.len());
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                exit::BAD_INPUT
            }
        },
        Command::Image {
            command: ImageCommand::Build { suite, rebuild },
        } => image_build(&suite, rebuild).await,
        Command::Check(args) => check_command(args, cancel).await,
        Command::Bench(args) => bench_command(args).await,
        Command::Explain { log } => explain_command(&log),
        Command::Probe(args) => tokio::select! {
            code = probe_command(args) => code,
            _ = cancel.cancelled() => exit::INTERRUPTED,
        },
        Command::Sweep => match docker::connect(Duration::from_secs(10)).await {
            Ok(d) => match docker::sweep(&d).await {
                Ok(n) => {
                    let dirs = docker::sweep_run_dirs();
                    println!("removed {n} leftover container(s) and {dirs} run director(ies)");
                    exit::SUCCESS
                }
                Err(e) => environment(e),
            },
            Err(e) => environment(e),
        },
    }
}

fn environment(e: postfix::PostfixError) -> i32 {
    eprintln!("tlsharness: {e}");
    exit::ENVIRONMENT
}

async fn image_build(suite: &str, rebuild: bool) -> i32 {
    let docker = match docker::connect(Duration::from_secs(10)).await {
        Ok(d) => d,
        Err(e) => return environment(e),
    };
    match image::ensure(&docker, suite, rebuild).await {
        Ok(image::Ensured::AlreadyPresent) => {
            println!("{} is present", image::image_for_suite(suite));
            exit::SUCCESS
        }
        Ok(image::Ensured::Built) => exit::SUCCESS,
        Err(e) => environment(e),
    }
}

async fn run_command(args: RunArgs, cancel: CancellationToken) -> i32 {
    let scenarios = match scenario::load_paths(&args.paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return exit::BAD_INPUT;
        }
    };
    let scenarios: Vec<_> = scenarios.into_iter().map(Arc::new).collect();
    let selection = run::Selection {
        scenarios: args.scenario.clone(),
        levels: args.level.clone(),
        partition: args.partition,
    };
    if args.list {
        for case in run::plan(&scenarios, &selection) {
            println!("{}", case.name());
        }
        return exit::SUCCESS;
    }
    if args.repeat > 1 {
        return repeat_command(&scenarios, selection, &args, cancel).await;
    }
    let progress = report::Progress::new(report::Style::detect());
    let opts = RunOptions {
        images: images(&args.image, args.all_versions),
        selection,
        attempt_timeout: Duration::from_secs(args.attempt_timeout),
        observer: Some(Arc::new(move |e| progress.event(e))),
        cancel,
        ..RunOptions::default()
    };
    let report = match run::run(&scenarios, &opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tlsharness: {e}");
            return if matches!(e, run::RunError::Interrupted) {
                exit::INTERRUPTED
            } else if e.is_environment() {
                exit::ENVIRONMENT
            } else if matches!(e, run::RunError::NothingToRun(_)) {
                exit::BAD_INPUT
            } else {
                exit::HARNESS_ERROR
            };
        }
    };
    if report.cases.is_empty() {
        let shard = opts.selection.partition.map(|p| p.to_string());
        println!("this shard ({}) has no cases", shard.unwrap_or_default());
    } else {
        println!();
        print!("{}", report::matrix(&report));
        for c in report.cases.iter().filter(|c| !c.passed) {
            println!();
            print!("{}", report::failure_details(c));
        }
    }
    let mut written = Vec::new();
    if let Some(path) = &args.json {
        written.push((path.clone(), report::write_json(&report, path)));
    }
    if let Some(path) = &args.junit {
        written.push((path.clone(), report::write_junit(&report, path)));
    }
    if let Some(dir) = &args.artifacts {
        let result = report::write_artifacts(&report, dir).map(|dirs| {
            if !dirs.is_empty() {
                eprintln!(
                    "tlsharness: artifacts of {} failed case(s) in {}",
                    dirs.len(),
                    dir.display()
                );
            }
        });
        written.push((dir.clone(), result));
    }
    for (path, result) in written {
        if let Err(e) = result {
            eprintln!("tlsharness: failed to write {}: {e}", path.display());
            return exit::HARNESS_ERROR;
        }
    }
    if report.passed() {
        exit::SUCCESS
    } else {
        exit::EXPECTATION_FAILED
    }
}

fn explain_command(path: &std::path::Path) -> i32 {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            eprintln!("tlsharness: cannot read standard input: {e}");
            return exit::BAD_INPUT;
        }
        s
    } else {
        match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                eprintln!("tlsharness: {}: cannot read: {e}", path.display());
                return exit::BAD_INPUT;
            }
        }
    };
    print!(
        "{}",
        tlsharness::check::render_explanations(&tlsharness::check::explain(&text))
    );
    exit::SUCCESS
}

async fn probe_command(args: ProbeArgs) -> i32 {
    let opts = match probe_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tlsharness: {e}");
            return exit::BAD_INPUT;
        }
    };
    if let Some(out) = &args.out
        && out.exists()
        && !args.force
    {
        eprintln!(
            "tlsharness: {} exists; pass --force to overwrite it",
            out.display()
        );
        return exit::BAD_INPUT;
    }
    eprintln!(
        "tlsharness: probing {} as {} (up to {}s per step; no mail is sent)",
        args.target, opts.ehlo_name, args.timeout
    );
    let observation = match probe::probe(&args.target, &opts).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tlsharness: {e}");
            return exit::ENVIRONMENT;
        }
    };
    for line in observation.to_string().lines() {
        eprintln!("  {line}");
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("probed.toml"));
    let text = match probe::scenario_text(&observation, &path) {
        Ok((text, _)) => text,
        Err(e @ probe::ScenarioError::Hostname(_)) => {
            eprintln!("tlsharness: {e}");
            return exit::BAD_INPUT;
        }
        Err(e) => {
            eprintln!("tlsharness: {e} (a bug: please report it with the probe's output)");
            return exit::HARNESS_ERROR;
        }
    };
    let Some(out) = &args.out else {
        print!("{text}");
        return exit::SUCCESS;
    };
    if let Err(e) = write_atomically(out, &text, args.force) {
        eprintln!("tlsharness: failed to write {}: {e}", out.display());
        eprintln!("tlsharness: the scenario it would have held:\n{text}");
        return exit::ENVIRONMENT;
    }
    eprintln!(
        "tlsharness: wrote {}; review its comments, then: tlsharness run {}",
        out.display(),
        out.display()
    );
    exit::SUCCESS
}

async fn check_command(args: CheckArgs, cancel: CancellationToken) -> i32 {
    use tlsharness::check;
    let mut sides = Vec::new();
    for (side, path) in [
        ("current", Some(&args.config)),
        ("candidate", args.candidate.as_ref()),
    ] {
        let Some(path) = path else { continue };
        match check::load(path) {
            Ok(c) => sides.push((side.to_owned(), c)),
            Err(e) => {
                eprintln!("tlsharness: {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    let scenarios = match scenario::load_paths(&args.paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return exit::BAD_INPUT;
        }
    };
    let scenarios: Vec<_> = scenarios
        .into_iter()
        .filter(|s| args.scenario.is_empty() || args.scenario.iter().any(|p| run::glob(p, &s.id)))
        .map(Arc::new)
        .collect();
    if scenarios.is_empty() {
        eprintln!("tlsharness: no scenario matches the selection");
        return exit::BAD_INPUT;
    }
    let images = images(&args.image, args.all_versions);
    eprintln!(
        "tlsharness: checking {} scenario path(s) with {} configuration(s) on {} image(s)",
        scenarios.len(),
        sides.len(),
        images.len()
    );
    let opts = check::CheckOptions {
        images,
        startup_timeout: Duration::from_secs(60),
        attempt_timeout: Duration::from_secs(args.attempt_timeout),
        cancel,
    };
    let report = match check::check(&sides, &scenarios, &opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tlsharness: {e}");
            return if matches!(e, check::CheckError::Interrupted) {
                exit::INTERRUPTED
            } else if e.is_bad_input() {
                exit::BAD_INPUT
            } else if e.is_environment() {
                exit::ENVIRONMENT
            } else {
                exit::HARNESS_ERROR
            };
        }
    };
    let sources: Vec<(String, String)> = sides
        .iter()
        .map(|(side, c)| {
            (
                side.clone(),
                format!(
                    "{} (relayhost {}, smtp_tls_security_level = {})",
                    c.source.display(),
                    c.relayhost,
                    if c.level.is_empty() {
                        "(unset)"
                    } else {
                        &c.level
                    }
                ),
            )
        })
        .collect();
    print!("{}", check::render(&report, &sources));
    let comparisons = check::compare_sides(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&comparisons).expect("serialisable");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("tlsharness: failed to write {}: {e}", path.display());
            return exit::HARNESS_ERROR;
        }
    }
    let any = |v: check::Verdict| comparisons.iter().any(|c| c.verdict == Some(v));
    let unknown = any(check::Verdict::Unknown)
        || comparisons
            .iter()
            .any(|c| c.candidate.is_none() && c.current.attempt.outcome.is_none());
    if (any(check::Verdict::Downgrade) && !args.allow_downgrade)
        || (any(check::Verdict::Outage) && !args.allow_outage)
    {
        exit::REGRESSION
    } else if unknown {
        eprintln!("tlsharness: some paths have no classified outcome; see the report above");
        exit::HARNESS_ERROR
    } else {
        exit::SUCCESS
    }
}

/// The images named with --image (and --all-versions), in order, once each.
fn images(named: &[String], all_versions: bool) -> Vec<String> {
    let mut images: Vec<String> = named.to_vec();
    if all_versions {
        images.extend(image::SUITES.iter().map(|(s, _)| image::image_for_suite(s)));
    }
    if images.is_empty() {
        images.push(image::DEFAULT_IMAGE.to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    images.retain(|i| seen.insert(i.clone()));
    images
}

async fn bench_command(args: BenchArgs) -> i32 {
    use tlsharness::bench;
    let opts = bench::BenchOptions {
        scenarios: args.scenarios.clone(),
        cases: args.cases,
        repeat: args.repeat.max(1),
        compare: args.compare,
        image: args.image.clone(),
    };
    let report = match bench::bench(&opts, &|what| eprintln!("tlsharness bench: {what}")).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tlsharness: {e}");
            return match &e {
                bench::BenchError::Load(_) | bench::BenchError::NoTemplates => exit::BAD_INPUT,
                bench::BenchError::Run(r) if r.is_environment() => exit::ENVIRONMENT,
                bench::BenchError::Run(_) => exit::HARNESS_ERROR,
            };
        }
    };
    let mut command = format!(
        "tlsharness bench --cases {} --repeat {}",
        args.cases, opts.repeat
    );
    if args.compare {
        command.push_str(" --compare");
    }
    let table = bench::markdown(&report, &command);
    print!("{table}");
    if let Some(path) = &args.readme
        && let Err(e) = bench::update_readme(path, &table)
    {
        eprintln!("tlsharness: failed to update {}: {e}", path.display());
        return exit::HARNESS_ERROR;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("serialisable");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("tlsharness: failed to write {}: {e}", path.display());
            return exit::HARNESS_ERROR;
        }
    }
    if report.scale_misclassified > 0 {
        exit::EXPECTATION_FAILED
    } else {
        exit::SUCCESS
    }
}

async fn repeat_command(
    scenarios: &[Arc<scenario::Scenario>],
    selection: run::Selection,
    args: &RunArgs,
    cancel: CancellationToken,
) -> i32 {
    let opts = RunOptions {
        images: images(&args.image, args.all_versions),
        selection,
        attempt_timeout: Duration::from_secs(args.attempt_timeout),
        cancel,
        ..RunOptions::default()
    };
    let mut reports = Vec::new();
    for i in 0..args.repeat {
        match run::run(scenarios, &opts).await {
            Ok(r) => {
                eprintln!(
                    "tlsharness: repetition {}/{}: {} cases, {} failed, {:.1}s",
                    i + 1,
                    args.repeat,
                    r.cases.len(),
                    r.cases.iter().filter(|c| !c.passed).count(),
                    r.total_ms as f64 / 1000.0
                );
                reports.push(r);
            }
            Err(e) => {
                eprintln!("tlsharness: repetition {}: {e}", i + 1);
                return if matches!(e, run::RunError::Interrupted) {
                    exit::INTERRUPTED
                } else if e.is_environment() {
                    exit::ENVIRONMENT
                } else {
                    exit::HARNESS_ERROR
                };
            }
        }
    }
    print!("{}", report::flake_report(&reports));
    let changed = !report::flakes(&reports).is_empty();
    let failed = reports.iter().any(|r| !r.passed());
    if changed || failed {
        exit::EXPECTATION_FAILED
    } else {
        exit::SUCCESS
    }
}

/// The probe's options from the command line; the message says what is wrong.
fn probe_options(args: &ProbeArgs) -> Result<ProbeOptions, String> {
    let name = match &args.name {
        Some(n) => n.to_ascii_lowercase(),
        None if args.target.is_address() => {
            return Err(format!(
                "{} is an address: give the relay's name with --name (it is checked against the certificate and names the relay in the scenario)",
                args.target.host
            ));
        }
        None => args.target.host.to_ascii_lowercase(),
    };
    let source = if args.name.is_some() {
        "--name"
    } else {
        "the relay's name (from HOST; give another with --name)"
    };
    scenario::Hostname::parse(&name).map_err(|e| format!("{source}: {e}"))?;
    let ehlo_ok = !args.ehlo.is_empty()
        && args.ehlo.len() <= 255
        && args.ehlo.bytes().all(|b| b.is_ascii_graphic());
    if !ehlo_ok {
        return Err(format!(
            "--ehlo: `{}` is not an EHLO name (a domain or an address literal, without spaces)",
            args.ehlo
        ));
    }
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(format!(
            "--timeout: {} is not a number of seconds above 0 and at most 3600",
            args.timeout
        ));
    }
    let mut roots = Vec::new();
    for file in &args.ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| format!("--ca-file {}: {e}", file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-file {}: no PEM certificate in it",
                file.display()
            ));
        }
        roots.extend(certs);
    }
    let (anchors, warnings) = TrustAnchors::system_and(&roots);
    for w in warnings {
        eprintln!("tlsharness: warning: system root certificates: {w}");
    }
    let mut opts = ProbeOptions::new(name, anchors);
    opts.ehlo_name = args.ehlo.clone();
    opts.step_timeout = Duration::from_secs_f64(args.timeout);
    Ok(opts)
}

/// Writes `text` to `path` through a temporary file beside it, so a reader
/// never sees half a scenario.
/// Writes `text` to `path` in one step; an existing file is replaced only
/// when `replace` (checked at the moment of writing, not before).
fn write_atomically(path: &std::path::Path, text: &str, replace: bool) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    // A scenario is no secret; the temporary file starts private.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    if replace {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(())
}

//! `tlsharness run`: the scenarios against real Postfix, once or
//! `--repeat` times (the flake check).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tlsharness::policy::{Mta, Policy};
use tlsharness::run::{self, RunOptions, RunReport};
use tlsharness::{exit, report};
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct RunArgs {
    /// Scenario files or directories (every *.toml inside; default:
    /// ./scenarios if it exists, else the built-in library).
    paths: Vec<PathBuf>,
    /// Write a JSON report (one record per scenario x level; schema in
    /// fixtures/schemas/report.schema.json).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report (one testcase per scenario x level).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write an HTML report: the matrix, and a ladder diagram of every
    /// case (one self-contained file; open a cell, or FILE#scenario/level).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// For every failed case, keep its Postfix log, wire transcript and
    /// Postfix configuration under DIR/<scenario>/<level>/.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Only scenarios whose id (file name without .toml) matches this glob;
    /// may be repeated.
    #[arg(long, value_name = "PATTERN")]
    scenario: Vec<String>,
    /// The MTA under test: postfix, exim (Exim 4.96; the scenarios with
    /// an [exim] section, at Exim's policies) or opensmtpd (OpenSMTPD
    /// 6.8; the scenarios with an [opensmtpd] section).
    #[arg(long, default_value = "postfix", value_name = "MTA")]
    mta: Mta,
    /// Only these levels (comma-separated); with --mta exim, Exim's
    /// policies (none, try, try-noclear, require, require-verify); with
    /// --mta opensmtpd, OpenSMTPD's (notls, opportunistic, tls-no-verify,
    /// tls, smtps-no-verify, smtps).
    #[arg(long, value_delimiter = ',', value_name = "LEVELS")]
    level: Option<Vec<String>>,
    /// Run shard K of N (cases dealt round-robin, so shards are balanced and
    /// together run every case once).
    #[arg(long, value_name = "K/N")]
    partition: Option<run::Partition>,
    /// The MTA's image; repeat to run every case on each (default
    /// tlsharness/postfix:bookworm, with --mta exim tlsharness/exim:bookworm,
    /// with --mta opensmtpd tlsharness/opensmtpd:bookworm).
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

pub async fn run(args: RunArgs, cancel: CancellationToken) -> i32 {
    let scenarios = match super::scenarios::load_selected(&args.paths, &args.scenario) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let levels = match &args.level {
        Some(names) => {
            let parsed: Result<Vec<Policy>, _> = names
                .iter()
                .map(|n| Policy::parse(args.mta, n.trim()))
                .collect();
            match parsed {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("tlsharness: --level: {e}");
                    return exit::BAD_INPUT;
                }
            }
        }
        None => None,
    };
    if args.all_versions && args.mta.driver().images().len() < 2 {
        eprintln!(
            "tlsharness: --all-versions runs every built-in image of the MTA; {} has one ({})",
            args.mta.title(),
            args.mta.driver().default_image()
        );
        return exit::BAD_INPUT;
    }
    let selection = run::Selection {
        scenarios: args.scenario.clone(),
        mta: args.mta,
        levels,
        partition: args.partition,
    };
    if args.list {
        for case in run::plan(&scenarios, &selection) {
            println!("{}", case.name());
        }
        return exit::SUCCESS;
    }
    let repeated = args.repeat > 1;
    let progress = report::Progress::new(report::Style::detect());
    let opts = RunOptions {
        images: super::images(args.mta, &args.image, args.all_versions),
        selection,
        attempt_timeout: Duration::from_secs(args.attempt_timeout),
        // Under --repeat the per-repetition summary is the progress.
        observer: (!repeated)
            .then(|| Arc::new(move |e: run::RunEvent<'_>| progress.event(e)) as run::Observer),
        cancel,
        ..RunOptions::default()
    };
    let mut reports = Vec::new();
    for i in 0..args.repeat {
        let report = match run::run(&scenarios, &opts).await {
            Ok(r) => r,
            Err(e) => {
                if i > 0 {
                    eprintln!("tlsharness: repetition {} did not complete", i + 1);
                    // The repetitions that finished are still reported.
                    let _ = write_reports(&args, &reports);
                }
                return super::fail(&e);
            }
        };
        if repeated {
            eprintln!(
                "tlsharness: repetition {}/{}: {} cases, {} failed, {} inconclusive, {:.1}s",
                i + 1,
                args.repeat,
                report.cases.len(),
                report
                    .cases
                    .iter()
                    .filter(|c| !c.passed && !c.is_inconclusive())
                    .count(),
                report.inconclusive(),
                report.total_ms as f64 / 1000.0
            );
        } else {
            print_report(&report, &opts);
        }
        reports.push(report);
    }
    if let Err(code) = write_reports(&args, &reports) {
        return code;
    }
    if repeated {
        for (i, r) in reports.iter().enumerate() {
            for c in r.cases.iter().filter(|c| !c.passed) {
                println!("\nrepetition {}:", i + 1);
                print!("{}", report::failure_details(c));
            }
        }
        print!("{}", report::flake_report(&reports));
    }
    let changed = !report::flakes(&reports).is_empty();
    let worst = reports
        .iter()
        .map(RunReport::exit_code)
        .max_by_key(|c| severity(*c))
        .unwrap_or(exit::SUCCESS);
    if changed && worst == exit::SUCCESS {
        exit::EXPECTATION_FAILED
    } else {
        worst
    }
}

/// Harness errors outrank failed expectations, which outrank
/// inconclusive cases, which outrank success.
fn severity(code: i32) -> u8 {
    match code {
        exit::SUCCESS => 0,
        exit::INCONCLUSIVE => 1,
        exit::EXPECTATION_FAILED => 2,
        _ => 3,
    }
}

fn print_report(report: &RunReport, opts: &RunOptions) {
    if report.cases.is_empty() {
        let shard = opts.selection.partition.map(|p| p.to_string());
        println!("this shard ({}) has no cases", shard.unwrap_or_default());
        return;
    }
    println!();
    print!("{}", report::matrix(report));
    for c in report.cases.iter().filter(|c| !c.passed) {
        println!();
        print!("{}", report::failure_details(c));
    }
}

/// The JSON, JUnit, HTML and artifacts of every run; `Err` is the exit code.
fn write_reports(args: &RunArgs, reports: &[RunReport]) -> Result<(), i32> {
    let mut written = Vec::new();
    if let Some(path) = &args.json {
        written.push((path.clone(), report::write_json_runs(reports, path)));
    }
    if let Some(path) = &args.junit {
        written.push((path.clone(), report::write_junit_runs(reports, path)));
    }
    if let Some(path) = &args.html {
        written.push((path.clone(), report::write_html_runs(reports, path)));
    }
    if let Some(dir) = &args.artifacts {
        let result = report::write_artifacts_runs(reports, dir).map(|dirs| {
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
            return Err(exit::HARNESS_ERROR);
        }
    }
    Ok(())
}

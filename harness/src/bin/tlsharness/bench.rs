//! `tlsharness bench`: speed and memory against real Postfix.

use std::path::PathBuf;

use clap::Args;
use tlsharness::exit;
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct BenchArgs {
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
    #[arg(long, default_value = tlsharness::mta::postfix::image::DEFAULT_IMAGE)]
    image: String,
    /// Write the results table into this file, between the
    /// `<!-- bench:begin -->` and `<!-- bench:end -->` markers.
    #[arg(long, value_name = "FILE")]
    readme: Option<PathBuf>,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub async fn bench(args: BenchArgs, cancel: CancellationToken) -> i32 {
    use tlsharness::bench;
    let opts = bench::BenchOptions {
        scenarios: args.scenarios.clone(),
        cases: args.cases,
        repeat: args.repeat.max(1),
        compare: args.compare,
        image: args.image.clone(),
        cancel,
    };
    let report = match bench::bench(&opts, &|what| eprintln!("tlsharness bench: {what}")).await {
        Ok(r) => r,
        Err(e) => return super::fail(&e),
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

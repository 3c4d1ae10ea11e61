//! `tlsharness check`: your own main.cf (and a candidate change) on the
//! scenarios' paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tlsharness::{check, exit, run};
use tokio_util::sync::CancellationToken;

#[derive(Args)]
pub struct CheckArgs {
    /// Your configuration: a directory with main.cf (and master.cf and the
    /// lookup tables they name), or a main.cf.
    #[arg(long, value_name = "DIR_OR_MAIN_CF")]
    config: PathBuf,
    /// A changed configuration to compare with --config.
    #[arg(long, value_name = "DIR_OR_MAIN_CF")]
    candidate: Option<PathBuf>,
    /// A file your configuration names outside its directory that can
    /// change the outbound TLS path (a CA file, a client certificate or
    /// key, a SASL password map, a TLS policy or transport map): installed
    /// at PATH, read from PATH or from LOCAL. Repeatable. Run on the
    /// Postfix host with --config /etc/postfix, such files are read from
    /// the host itself.
    #[arg(long = "file", value_name = "PATH[=LOCAL]")]
    files: Vec<check::GivenFile>,
    /// Scenario files or directories whose network paths to run (default:
    /// ./scenarios if it exists, else the built-in library).
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
    /// Exit 0 even when the candidate returns mail to its sender on a path.
    #[arg(long)]
    allow_bounce: bool,
    /// Write the rows as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write an HTML report: the verdict table, and both sides' ladder
    /// diagrams of every changed path (one self-contained file).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// The longest one delivery attempt may take, in seconds (1 to 86400).
    #[arg(long, default_value_t = 120, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    attempt_timeout: u64,
}

pub async fn check(args: CheckArgs, cancel: CancellationToken) -> i32 {
    let mut sides = Vec::new();
    for (side, path) in [
        ("current", Some(&args.config)),
        ("candidate", args.candidate.as_ref()),
    ] {
        let Some(path) = path else { continue };
        let fitted = check::load(path).and_then(|c| check::fit(&c, &args.files, Path::new("/")));
        match fitted {
            Ok(c) => sides.push((side.to_owned(), c)),
            Err(e) => return super::fail(&e),
        }
    }
    let scenarios = match super::scenarios::load_selected(&args.paths, &args.scenario) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let scenarios: Vec<_> = scenarios
        .into_iter()
        .filter(|s| args.scenario.is_empty() || args.scenario.iter().any(|p| run::glob(p, &s.id)))
        .collect();
    if scenarios.is_empty() {
        eprintln!("tlsharness: no scenario matches the selection");
        return exit::BAD_INPUT;
    }
    let images = super::images(
        tlsharness::policy::Mta::Postfix,
        &args.image,
        args.all_versions,
    );
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
        Err(e) => return super::fail(&e),
    };
    let sources: Vec<(String, String)> = sides
        .iter()
        .map(|(side, c)| {
            (
                side.clone(),
                format!(
                    "{} (relayhost {}, smtp_tls_security_level = {})",
                    c.source.display(),
                    c.relayhost.as_deref().unwrap_or("(unset)"),
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
    if let Some(path) = &args.html
        && let Err(e) = tlsharness::report::write_check_html(&report, &sources, path)
    {
        eprintln!("tlsharness: failed to write {}: {e}", path.display());
        return exit::HARNESS_ERROR;
    }
    let any = |v: check::Verdict| comparisons.iter().any(|c| c.verdict == Some(v));
    let unknown = any(check::Verdict::Unknown)
        || comparisons.iter().any(|c| {
            c.candidate.is_none()
                && c.current.not_modelled.is_none()
                && c.current.attempt.outcome.is_none()
        });
    if (any(check::Verdict::Downgrade) && !args.allow_downgrade)
        || (any(check::Verdict::Bounce) && !args.allow_bounce)
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

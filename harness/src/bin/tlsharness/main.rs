//! The `tlsharness` command line: one module per command; every error
//! reaches the exit status through [`tlsharness::exit::Code`].

mod bench;
mod check;
mod explain;
mod image;
mod probe;
mod run;
mod scenarios;
mod triage;
mod validate;

use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tlsharness::docker;
use tlsharness::exit;
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
    Run(run::RunArgs),
    /// Check scenario files without running anything.
    Validate(validate::ValidateArgs),
    /// The built-in scenario library.
    Scenarios {
        #[command(subcommand)]
        command: scenarios::ScenariosCommand,
    },
    /// Manage the Postfix image.
    Image {
        #[command(subcommand)]
        command: image::ImageCommand,
    },
    /// Run your own Postfix configuration (and a candidate change) on scenarios' paths.
    Check(check::CheckArgs),
    /// Read a Postfix mail log and name the path conditions behind its failures.
    Explain(explain::ExplainArgs),
    /// Measure the harness against real Postfix (see README, Performance).
    Bench(bench::BenchArgs),
    /// Remove containers left behind by harness runs that were killed.
    Sweep,
    /// Probe a relay from this host (never sending mail) and write a
    /// scenario whose relay replays what the network path showed.
    Probe(probe::ProbeArgs),
    /// On the affected host, no Docker needed: read the configuration and
    /// the mail log, probe every port of each next hop, predict what the
    /// standard fixes would do, and write them as `check` candidates.
    Triage(triage::TriageArgs),
    /// The run's agent, inside its container (started by the harness).
    #[command(hide = true)]
    Agent {
        /// Print the shared libraries this binary runs with, and exit.
        #[arg(long)]
        libraries: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Agent { libraries } = cli.command {
        return agent(libraries).await;
    }
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

/// The agent speaks only its protocol on stdout; what goes wrong goes to
/// stderr, which the harness keeps for its error messages.
async fn agent(libraries: bool) -> ExitCode {
    if libraries {
        println!("{}", tlsharness::lab::protocol::GREETING);
        for lib in tlsharness::lab::mapped_libraries() {
            println!("{}", lib.display());
        }
        return ExitCode::SUCCESS;
    }
    tlsharness::smtp::raise_open_file_limit();
    match tlsharness::lab::run_agent().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tlsharness agent: {e}");
            ExitCode::from(exit::HARNESS_ERROR as u8)
        }
    }
}

async fn dispatch(cli: Cli, cancel: CancellationToken) -> i32 {
    match cli.command {
        Command::Run(args) => run::run(args, cancel).await,
        Command::Validate(args) => validate::validate(&args),
        Command::Scenarios { command } => scenarios::scenarios(command),
        Command::Image { command } => image::image(command).await,
        Command::Check(args) => check::check(args, cancel).await,
        Command::Bench(args) => bench::bench(args, cancel).await,
        Command::Explain(args) => explain::explain(&args),
        Command::Probe(args) => tokio::select! {
            code = probe::probe(args) => code,
            _ = cancel.cancelled() => exit::INTERRUPTED,
        },
        Command::Triage(args) => triage::triage(args, cancel).await,
        Command::Sweep => image::sweep().await,
        Command::Agent { .. } => unreachable!("the agent is dispatched before anything else"),
    }
}

/// Reports `e` and returns its exit code: the one place an error becomes
/// an exit status.
fn fail(e: &(impl Display + exit::Code)) -> i32 {
    eprintln!("tlsharness: {e}");
    e.exit_code()
}

/// Scenario errors, which already start with their location
/// (`file:line:col: key: ...`).
fn fail_located(e: &tlsharness::scenario::LoadErrors) -> i32 {
    eprintln!("{e}");
    exit::Code::exit_code(e)
}

/// The images named with --image (and --all-versions), in order, once each.
fn images(mta: tlsharness::policy::Mta, named: &[String], all_versions: bool) -> Vec<String> {
    let mut images: Vec<String> = named.to_vec();
    if all_versions {
        images.extend(mta.driver().images().iter().map(|b| b.image.to_owned()));
    }
    if images.is_empty() {
        images.push(mta.driver().default_image().to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    images.retain(|i| seen.insert(i.clone()));
    images
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

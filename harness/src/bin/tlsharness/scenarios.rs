//! `tlsharness scenarios export DIR`, and which scenarios a command runs
//! when none are named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use tlsharness::exit;
use tlsharness::scenario::{self, LoadErrors, Scenario, builtin};

#[derive(Subcommand)]
pub enum ScenariosCommand {
    /// Write the built-in scenario files into DIR (made if missing).
    Export {
        /// The directory to write into.
        dir: PathBuf,
        /// Overwrite files that exist.
        #[arg(long)]
        force: bool,
    },
}

pub fn scenarios(command: ScenariosCommand) -> i32 {
    let ScenariosCommand::Export { dir, force } = command;
    export(&dir, force)
}

/// The paths written on standard output, one a line.
fn export(dir: &Path, force: bool) -> i32 {
    match builtin::export(dir, force) {
        Ok(written) => {
            for p in &written {
                println!("{}", p.display());
            }
            eprintln!(
                "tlsharness: wrote {} built-in scenario file(s) to {}; run them with: tlsharness run {}",
                written.len(),
                dir.display(),
                dir.display()
            );
            exit::SUCCESS
        }
        Err(e) => super::fail(&e),
    }
}

/// The scenarios named on the command line; with none, `./scenarios` if it
/// exists, else the built-in library (said on stderr).
pub fn load(paths: &[PathBuf]) -> Result<Vec<Scenario>, LoadErrors> {
    let source = scenario::builtin::resolve(paths);
    if source == builtin::Source::BuiltIn {
        eprintln!("tlsharness: no ./scenarios here; using {source}");
    }
    source.load()
}

/// The scenarios a command runs: loaded as [`load`] says, with every
/// `--scenario` pattern required to select one. `Err` is the exit code,
/// the error already reported.
pub fn load_selected(paths: &[PathBuf], patterns: &[String]) -> Result<Vec<Arc<Scenario>>, i32> {
    let scenarios: Vec<_> = match load(paths) {
        Ok(s) => s.into_iter().map(Arc::new).collect(),
        Err(e) => return Err(super::fail_located(&e)),
    };
    if let Err(e) = tlsharness::run::check_patterns(patterns, &scenarios) {
        eprintln!("tlsharness: {e}");
        return Err(exit::BAD_INPUT);
    }
    Ok(scenarios)
}

//! `tlsharness validate`: check scenario files, start nothing.

use std::path::PathBuf;

use clap::Args;
use tlsharness::{exit, scenario};

#[derive(Args)]
pub struct ValidateArgs {
    /// Scenario files or directories.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
}

pub fn validate(args: &ValidateArgs) -> i32 {
    match scenario::load_paths(&args.paths) {
        Ok(s) => {
            println!("{} scenario file(s) are valid", s.len());
            exit::SUCCESS
        }
        Err(e) => super::fail_located(&e),
    }
}

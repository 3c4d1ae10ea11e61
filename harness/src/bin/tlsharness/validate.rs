//! `tlsharness validate`: check scenario files, start nothing.

use std::path::PathBuf;

use clap::Args;
use tlsharness::exit;

#[derive(Args)]
pub struct ValidateArgs {
    /// Scenario files or directories (default: ./scenarios if it exists,
    /// else the built-in library).
    paths: Vec<PathBuf>,
}

pub fn validate(args: &ValidateArgs) -> i32 {
    match super::scenarios::load(&args.paths) {
        Ok(s) => {
            println!("{} scenario file(s) are valid", s.len());
            exit::SUCCESS
        }
        Err(e) => super::fail_located(&e),
    }
}

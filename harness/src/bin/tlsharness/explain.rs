//! `tlsharness explain LOGFILE`: what a mail log's failures point to.

use std::path::PathBuf;

use clap::Args;
use tlsharness::exit;

#[derive(Args)]
pub struct ExplainArgs {
    /// The log file (`-` for standard input).
    log: PathBuf,
}

pub fn explain(args: &ExplainArgs) -> i32 {
    let path = &args.log;
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
        tlsharness::explain::render(&tlsharness::explain::explain(&text))
    );
    exit::SUCCESS
}

//! Failure artifacts: per failed case, the files needed to debug it
//! without rerunning: Postfix's log lines, the wire transcript, and the
//! Postfix configuration the case ran with.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::run::{CaseResult, RunReport};

/// The master.cf entry of one service: its line and its `-o` lines.
fn master_entry(master_cf: &str, service: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in master_cf.lines() {
        if line.starts_with(char::is_whitespace) {
            if inside {
                let _ = writeln!(out, "{line}");
            }
            continue;
        }
        inside = line.split_whitespace().next() == Some(service);
        if inside {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

fn config_text(report: &RunReport, c: &CaseResult) -> String {
    let (main_cf, master_cf) = report.configs.get(c.group).cloned().unwrap_or_default();
    format!(
        "# Postfix {} in {}; the case's route and transport, then the whole main.cf.\n\n\
         # transport_maps entry\n{}\n\n# master.cf entry\n{}\n# main.cf\n{}",
        report.postfix_version,
        report.image,
        c.route,
        master_entry(&master_cf, &c.transport),
        main_cf
    )
}

/// Writes `DIR/<scenario>/<level>/{postfix.log,transcript.txt,postfix.conf}`
/// for every failed case. Returns the directories written.
pub fn write_artifacts(report: &RunReport, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for c in report.cases.iter().filter(|c| !c.passed) {
        let case_dir = dir.join(&c.scenario).join(c.level.as_str());
        std::fs::create_dir_all(&case_dir)?;
        let mut log = String::new();
        for l in &c.log {
            let _ = writeln!(log, "{l}");
        }
        std::fs::write(case_dir.join("postfix.log"), log)?;
        std::fs::write(case_dir.join("transcript.txt"), &c.transcript)?;
        std::fs::write(case_dir.join("postfix.conf"), config_text(report, c))?;
        written.push(case_dir);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_one_master_entry_with_its_options() {
        let master = "smtp unix - - n - - smtp\ntlsh0-may unix - - n - - smtp\n  -o smtp_tls_security_level=may\ntlsh1-encrypt unix - - n - - smtp\n  -o smtp_tls_security_level=encrypt\n";
        assert_eq!(
            master_entry(master, "tlsh0-may"),
            "tlsh0-may unix - - n - - smtp\n  -o smtp_tls_security_level=may\n"
        );
    }
}

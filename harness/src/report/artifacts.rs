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
        c.postfix_version,
        c.image,
        c.route,
        master_entry(&master_cf, &c.transport),
        main_cf
    )
}

/// A path component for an image name: GitHub's artifact upload refuses
/// `:` and the like, and `/` would add a level.
fn image_dir_part(image: &str) -> String {
    image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes one run's failure artifacts (see [`write_artifacts_runs`]).
pub fn write_artifacts(report: &RunReport, dir: &Path) -> io::Result<Vec<PathBuf>> {
    write_artifacts_runs(std::slice::from_ref(report), dir)
}

/// Writes `{postfix.log,transcript.txt,postfix.conf}` for every failed
/// case of every run, in `DIR/<scenario>/<level>/`; under `--repeat`,
/// `DIR/repetition-K/<scenario>/<level>/`. When a run spans several images
/// the level's directory is `<level>@<image>` (`/` and `:` as `_`) so that
/// one image's case does not overwrite another's. Returns the directories
/// written.
pub fn write_artifacts_runs(reports: &[RunReport], dir: &Path) -> io::Result<Vec<PathBuf>> {
    let several = reports.len() > 1;
    let mut written = Vec::new();
    for (k, report) in reports.iter().enumerate() {
        let run_dir = if several {
            dir.join(format!("repetition-{}", k + 1))
        } else {
            dir.to_owned()
        };
        let several_images = report
            .cases
            .iter()
            .any(|c| c.image != report.cases[0].image);
        for c in report.cases.iter().filter(|c| !c.passed) {
            let level = if several_images {
                format!("{}@{}", c.level, image_dir_part(&c.image))
            } else {
                c.level.as_str().to_owned()
            };
            let case_dir = run_dir.join(&c.scenario).join(level);
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

    #[test]
    fn image_names_become_one_portable_path_component() {
        assert_eq!(
            image_dir_part("tlsharness/postfix:bookworm"),
            "tlsharness_postfix_bookworm"
        );
    }
}

//! Failure artifacts: per failed case, the files needed to debug it
//! without rerunning: the MTA's log lines, the wire transcript, and the
//! MTA's configuration the case ran with (as the MTA's module shows it).

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::run::{CaseResult, RunReport};

fn config_text(report: &RunReport, c: &CaseResult) -> String {
    let configs = report.configs.get(c.group).cloned().unwrap_or_default();
    c.mta
        .driver()
        .case_config(&c.mta_version, &c.image, &configs, &c.transport, &c.route)
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

/// Writes `{MTA.log,transcript.txt,MTA.conf}` (`postfix.log`,
/// `exim.log`, ...), and `dns.log` for a case by MX (the run's resolver,
/// name server and MTA-STS daemon), for every failed case of every run, in `DIR/<scenario>/<level>/`; under `--repeat`,
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
            std::fs::write(case_dir.join(format!("{}.log", c.mta)), log)?;
            std::fs::write(case_dir.join("transcript.txt"), &c.transcript)?;
            std::fs::write(
                case_dir.join(format!("{}.conf", c.mta)),
                config_text(report, c),
            )?;
            if let Some(dns) = report.dns_logs.get(c.group).filter(|_| c.by_mx)
                && !dns.is_empty()
            {
                std::fs::write(case_dir.join("dns.log"), dns)?;
            }
            written.push(case_dir);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_become_one_portable_path_component() {
        assert_eq!(
            image_dir_part("tlsharness/postfix:bookworm"),
            "tlsharness_postfix_bookworm"
        );
    }
}

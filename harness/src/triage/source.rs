//! Where the host's Postfix configuration comes from: a copy given with
//! `--config`, or the running Postfix's own, through `postconf`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::TriageError;
use crate::check::{self, UserConfig};

/// The configuration triage reasons about.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The files, as `check` loads them (the candidates are copies).
    pub user: UserConfig,
    /// main.cf's parameters as Postfix reads them (`postconf -n` on a
    /// Postfix host, else main.cf parsed as Postfix parses it).
    pub params: BTreeMap<String, String>,
    /// How the configuration was found, in words.
    pub origin: String,
}

impl HostConfig {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The directory (or main.cf) the configuration was read from.
    pub fn path(&self) -> &Path {
        &self.user.source
    }
}

/// Reads `--config DIR` (or a lone main.cf).
pub fn from_dir(path: &Path) -> Result<HostConfig, TriageError> {
    let user = check::load(path).map_err(TriageError::Config)?;
    let main = String::from_utf8_lossy(&user.files["main.cf"]).into_owned();
    Ok(HostConfig {
        params: check::parameters(&main),
        origin: format!("--config {}", path.display()),
        user,
    })
}

/// Whether a `postconf` command is on the PATH.
pub fn postconf_available() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("postconf").is_file())
    })
}

/// The running Postfix's configuration: its directory from `postconf -h
/// config_directory`, its parameters from `postconf -n`.
pub fn from_postconf() -> Result<HostConfig, TriageError> {
    let dir = PathBuf::from(postconf(&["-h", "config_directory"])?.trim());
    let mut config = from_dir(&dir)?;
    config.params = check::parameters(&postconf(&["-n"])?);
    config.origin = format!("postconf -n (configuration directory {})", dir.display());
    Ok(config)
}

fn postconf(args: &[&str]) -> Result<String, TriageError> {
    let command = format!("postconf {}", args.join(" "));
    let out = Command::new("postconf")
        .args(args)
        .output()
        .map_err(|e| TriageError::Postconf {
            command: command.clone(),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(TriageError::Postconf {
            command,
            why: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

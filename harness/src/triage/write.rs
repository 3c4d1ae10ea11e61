//! The files triage leaves behind: the scenario of this network, and each
//! candidate as a configuration directory `check` can run.

use std::path::{Path, PathBuf};

use super::error::TriageError;
use super::source::HostConfig;

/// Writes the scenario, refusing to replace a file unless `force`.
pub fn scenario(path: &Path, text: &str, force: bool) -> Result<(), TriageError> {
    if path.exists() && !force {
        return Err(TriageError::Exists(path.to_owned()));
    }
    crate::scenario::builtin::write_file(path, text, force).map_err(|source| TriageError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Fails if any of `paths` exists and `force` is not given: checked before
/// anything is probed or written.
pub fn refuse_existing(paths: &[PathBuf], force: bool) -> Result<(), TriageError> {
    match paths.iter().find(|p| p.exists()) {
        Some(p) if !force => Err(TriageError::Exists(p.clone())),
        _ => Ok(()),
    }
}

/// A copy of the configuration in `dir` with `changes` applied to main.cf.
/// When the relayhost moves from `old_relayhost` to `new_relayhost`, the
/// SASL password table gets the same credentials under the new key too
/// (smtp(8) looks them up by the relayhost as written).
pub fn candidate(
    dir: &Path,
    config: &HostConfig,
    changes: &[(String, String)],
    relayhost_move: Option<(&str, &str)>,
) -> Result<Vec<String>, TriageError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TriageError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut notes = Vec::new();
    let sasl_table = relayhost_move.and_then(|_| sasl_table(config));
    for (name, bytes) in &config.user.files {
        let path = dir.join(name);
        let bytes = if name == "main.cf" {
            edit_main_cf(&String::from_utf8_lossy(bytes), changes).into_bytes()
        } else if Some(name) == sasl_table.as_ref()
            && let Some((old, new)) = relayhost_move
        {
            let text = String::from_utf8_lossy(bytes);
            match rekey(&text, old, new) {
                Some(t) => {
                    notes.push(format!(
                        "{name}: the credentials for {old} copied to {new}; on the host, run postmap on it"
                    ));
                    t.into_bytes()
                }
                None => bytes.clone(),
            }
        } else {
            bytes.clone()
        };
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    Ok(notes)
}

/// main.cf with each changed parameter set where it was assigned (later
/// assignments of it dropped, as they would override it), or appended.
pub fn edit_main_cf(text: &str, changes: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut done = vec![false; changes.len()];
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if skipping && line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            continue;
        }
        skipping = false;
        let key = (!line.starts_with([' ', '\t', '#']))
            .then(|| line.split_once('=').map(|(k, _)| k.trim()))
            .flatten();
        match key.and_then(|k| changes.iter().position(|(name, _)| name == k)) {
            Some(i) if done[i] => skipping = true,
            Some(i) => {
                let (name, value) = &changes[i];
                out.push_str(&format!("# tlsharness triage: was {}", line.trim_end()));
                out.push('\n');
                out.push_str(&format!("{name} = {value}\n"));
                done[i] = true;
                skipping = true;
            }
            None => out.push_str(line),
        }
    }
    let added: Vec<_> = changes.iter().zip(&done).filter(|(_, d)| !**d).collect();
    if !added.is_empty() {
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        out.push_str("# tlsharness triage: added\n");
        for ((name, value), _) in added {
            out.push_str(&format!("{name} = {value}\n"));
        }
    }
    out
}

/// The configuration file behind `smtp_sasl_password_maps`, if it is one.
fn sasl_table(config: &HostConfig) -> Option<String> {
    let value = config.param("smtp_sasl_password_maps")?;
    value
        .split([',', ' ', '\t'])
        .filter_map(|t| t.split_once(':'))
        .find_map(|(_, path)| {
            let name = path.strip_prefix("/etc/postfix/")?;
            config
                .user
                .files
                .contains_key(name)
                .then(|| name.to_owned())
        })
}

/// The table with `old`'s entry also under `new`; `None` if `old` has none.
fn rekey(text: &str, old: &str, new: &str) -> Option<String> {
    let entry = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(old))?;
    if text
        .lines()
        .any(|l| l.split_whitespace().next() == Some(new))
    {
        return None;
    }
    let mut out = text.to_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&entry.replacen(old, new, 1));
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_cf_keeps_everything_but_the_changes() {
        let text = "# head\nrelayhost = [a.example]:587\nsmtp_tls_security_level = encrypt\nmynetworks = 127.0.0.0/8\n  10.0.0.0/8\nsmtp_tls_security_level = verify\n  \n";
        let c = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let out = edit_main_cf(
            text,
            &[
                c("smtp_tls_security_level", "may"),
                c("smtp_tls_wrappermode", "yes"),
            ],
        );
        assert_eq!(
            out,
            "# head\nrelayhost = [a.example]:587\n# tlsharness triage: was smtp_tls_security_level = encrypt\nsmtp_tls_security_level = may\nmynetworks = 127.0.0.0/8\n  10.0.0.0/8\n  \n# tlsharness triage: added\nsmtp_tls_wrappermode = yes\n"
        );
        assert_eq!(
            crate::check::parameters(&out)["smtp_tls_security_level"],
            "may"
        );
    }

    #[test]
    fn sasl_credentials_follow_the_relayhost() {
        let t = "[smtp.sendgrid.net]:587 apikey:secret\n";
        assert_eq!(
            rekey(t, "[smtp.sendgrid.net]:587", "[smtp.sendgrid.net]:465").unwrap(),
            "[smtp.sendgrid.net]:587 apikey:secret\n[smtp.sendgrid.net]:465 apikey:secret\n"
        );
        assert!(rekey(t, "[other]:587", "[other]:465").is_none());
    }
}

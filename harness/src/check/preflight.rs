//! Before any case runs: each configuration's outgoing smtp client is
//! started once. Postfix checks some settings only when that client starts
//! (an invalid `smtp_tls_security_level`, say): master starts happily, and
//! every case would then wait out its attempt timeout. One message to a
//! port where nothing listens (127.0.0.1:9 in the namespace), through a copy of the configuration's own
//! outgoing service, either comes back deferred (the client ran) or makes
//! Postfix log a fatal error, which is the configuration's refusal.
//!
//! First of all, Postfix's own reading of the configuration: `postconf`
//! warns about every parameter it does not use, a misspelled name among
//! them, which Postfix would otherwise ignore without a word in the mail
//! log. Such a warning is the configuration's refusal too. Its warnings
//! that a parameter will be removed (Postfix 3.9 and later, for
//! `smtp_use_tls` and `smtp_enforce_tls` among others) are not: Postfix
//! still honours those, and the report shows them in its words.

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;

use super::setup::CHECK_DOMAIN;
use super::{CheckError, Stage};
use crate::lab::Lab;
use crate::mta::log::LogEvent;

/// The master.cf service that carries the preflight message.
pub const SERVICE: &str = "tlsh-check-preflight";

/// The preflight message's recipient.
pub fn recipient() -> String {
    format!("preflight@preflight.{CHECK_DOMAIN}")
}

/// What the preflight found.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// The smtp client ran: a status line for the preflight message.
    /// `deprecated` holds `postconf`'s warnings that a parameter the
    /// configuration sets will be removed (see [`deprecations`]).
    Ran { deprecated: Vec<String> },
    /// Postfix's own words: `postconf`'s warnings ([`Stage::Parameters`])
    /// or the fatal log lines of the smtp client ([`Stage::SmtpClient`]).
    Refused(Stage, String),
}

/// Asks `postconf` about the configuration, then sends the preflight
/// message and waits, until `deadline` passes, for its status line or a
/// fatal error in Postfix's log.
pub async fn run(lab: &Lab, run_id: &str, deadline: Duration) -> Result<Preflight, CheckError> {
    let instance = &lab.mta;
    let said = instance
        .exec(&["sh", "-c", "postconf -n 2>&1 >/dev/null"])
        .await?;
    let warned = unused_parameters(&said, &instance.exec(&["postconf", "-P"]).await?);
    if !warned.is_empty() {
        return Ok(Preflight::Refused(Stage::Parameters, warned.join("\n")));
    }
    let docker = instance.docker().clone();
    // A stream of the log of our own, from its first line: the instance
    // hands out only delivery lines, and the refusal is a fatal line.
    let mut log = docker.logs(
        instance.container_id(),
        Some(LogsOptions {
            follow: true,
            stdout: true,
            ..Default::default()
        }),
    );
    let recipient = recipient();
    let mut status = instance.subscribe(&recipient);
    let queue_id = lab
        .inject(
            &recipient,
            "tlsharness check preflight",
            &format!("<preflight.{run_id}@tlsharness.test>"),
        )
        .await?;
    let until = tokio::time::Instant::now() + deadline;
    let mut lines = LineBuffer::default();
    let found = loop {
        tokio::select! {
            Some(_) = status.recv() => break Preflight::Ran { deprecated: deprecations(&said) },
            chunk = log.next() => match chunk {
                Some(Ok(LogOutput::StdOut { message })) => {
                    let fatal: Vec<String> = lines
                        .push(&message)
                        .into_iter()
                        .map(|l| crate::mta::postfix::log::parse(&l))
                        .filter(|l| matches!(l.event, LogEvent::Fatal(_)))
                        .map(|l| format!("{}[{}]: {}", l.program, l.pid, l.message))
                        .collect();
                    if !fatal.is_empty() {
                        break Preflight::Refused(Stage::SmtpClient, fatal.join("\n"));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Err(CheckError::Preflight(format!("failed to read Postfix's log: {e}")));
                }
                None => {
                    return Err(CheckError::Preflight(
                        "Postfix stopped before its smtp client was tried: its mail log ended".into(),
                    ));
                }
            },
            _ = tokio::time::sleep_until(until) => {
                return Err(CheckError::Preflight(format!(
                    "Postfix neither attempted the preflight message nor logged an error within {}s",
                    deadline.as_secs()
                )));
            }
        }
    };
    if matches!(found, Preflight::Ran { .. }) {
        // Deferred, it would be retried during the cases; gone, it cannot
        // be. (A refused instance is stopped at once.)
        instance.exec(&["postsuper", "-d", &queue_id]).await?;
    }
    Ok(found)
}

/// `postconf`'s warnings about parameters it does not use, from what it
/// said (`said`) and the per-service settings of master.cf (`postconf
/// -P`: `service/type/name = value`), each line once, in its order.
///
/// A master.cf warning about a name that only the harness's own services
/// set is left out: those are the scenario-service clones (prefix
/// `tlsh-check-`), whose extra settings are a scenario's `[postfix]
/// settings`. `validate` accepts a name any built-in image knows, so one
/// new in 3.10 is unused on 3.5; that is the scenario's business (its
/// expectations per version), not the user's configuration's. What the
/// clones copy from the user's own service is still set by that service
/// too, so it is still reported. Everything else the harness adds (the
/// containment in main.cf, the injector's `-o` options) Postfix knows on
/// every built-in image: a clean configuration gets no warning (see
/// tests/blame.rs).
fn unused_parameters(said: &str, per_service: &str) -> Vec<String> {
    let harness_only = |name: &str| {
        let mut setters = per_service.lines().filter_map(|l| {
            let (key, _) = l.split_once(" =")?;
            let (service, param) = key.rsplit_once('/')?;
            (param == name).then_some(service)
        });
        let first = setters.next();
        first.is_some()
            && first
                .into_iter()
                .chain(setters)
                .all(|s| s.starts_with("tlsh-check-"))
    };
    let mut out: Vec<String> = Vec::new();
    for line in said.lines().map(str::trim) {
        let Some((_, what)) = line.split_once("warning: ") else {
            continue;
        };
        let Some((file, setting)) = what.split_once(": unused parameter: ") else {
            continue;
        };
        let name = setting.split_once('=').map_or(setting, |(n, _)| n).trim();
        if file.ends_with("master.cf") && harness_only(name) {
            continue;
        }
        if !out.iter().any(|o| o == line) {
            out.push(line.to_owned());
        }
    }
    out
}

/// `postconf`'s warnings that a parameter the configuration sets will be
/// removed, each once, in its order and its words after `warning: `
/// (`/etc/postfix/main.cf: support for parameter "smtp_use_tls" will be
/// removed; instead, specify "smtp_tls_security_level"`, from
/// postconf_unused.c). The harness sets no such parameter of its own (see
/// setup's test that Postfix warns of nothing in a clean configuration),
/// so every one is the user's; a clone of the user's service repeats its
/// service's line word for word.
pub fn deprecations(said: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in said.lines().map(str::trim) {
        let Some((_, what)) = line.split_once("warning: ") else {
            continue;
        };
        let deprecated = what
            .split_once(": support for parameter ")
            .is_some_and(|(_, rest)| rest.contains(" will be removed;"));
        if deprecated && !out.iter().any(|o| o == what) {
            out.push(what.to_owned());
        }
    }
    out
}

/// Splits a byte stream into lines, keeping an unfinished last line for
/// the next chunk.
#[derive(Default)]
struct LineBuffer(Vec<u8>);

impl LineBuffer {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.0.extend_from_slice(chunk);
        let Some(end) = self.0.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.0.split_off(end + 1);
        let done = std::mem::replace(&mut self.0, rest);
        String::from_utf8_lossy(&done)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_across_chunks() {
        let mut b = LineBuffer::default();
        assert_eq!(b.push(b"Nov 30 vm postfix/smtp[1"), Vec::<String>::new());
        assert_eq!(
            b.push(
                b"85]: fatal: Invalid TLS level \"encrpyt\"\nNov 30 vm postfix/master[175]: warn"
            ),
            vec!["Nov 30 vm postfix/smtp[185]: fatal: Invalid TLS level \"encrpyt\"".to_owned()]
        );
        assert_eq!(
            b.push(b"ing: x\n\n"),
            vec![
                "Nov 30 vm postfix/master[175]: warning: x".to_owned(),
                String::new()
            ]
        );
    }

    #[test]
    fn postconf_s_unused_parameter_warnings_are_kept_in_its_words() {
        let said = "postconf: warning: /etc/postfix/main.cf: unused parameter: smtp_tls_mandatry_ciphers=high\n\
                    postconf: warning: /etc/postfix/master.cf: unused parameter: smtp_conect_timeout=5\n\
                    postconf: warning: /etc/postfix/master.cf: unused parameter: smtp_tls_enable_rpk=yes\n\
                    postconf: warning: /etc/postfix/main.cf: unused parameter: smtp_tls_mandatry_ciphers=high\n\
                    postconf: warning: /etc/postfix/main.cf, line 3: overriding earlier entry: biff=no\n\
                    postconf: fatal: something else\n";
        let per_service = "smtp/unix/smtp_conect_timeout = 5\n\
                           tlsh-check-0/unix/smtp_conect_timeout = 5\n\
                           tlsh-check-0/unix/smtp_tls_enable_rpk = yes\n\
                           tlsh-check-preflight/unix/smtp_fallback_relay =\n";
        assert_eq!(
            unused_parameters(said, per_service),
            vec![
                "postconf: warning: /etc/postfix/main.cf: unused parameter: smtp_tls_mandatry_ciphers=high",
                // The user's smtp service sets it, not only the clone.
                "postconf: warning: /etc/postfix/master.cf: unused parameter: smtp_conect_timeout=5",
            ]
        );
        assert_eq!(unused_parameters("", per_service), Vec::<String>::new());
    }

    #[test]
    fn deprecation_warnings_are_kept_in_postfix_s_words_and_refuse_nothing() {
        // What postconf -n said on Postfix 3.10.13 of main.cf with
        // `smtp_use_tls = yes` and `smtp_enforce_tls = Yes`, and of a
        // master.cf service (and its clone) with `-o smtp_enforce_tls=yes`.
        let said = "postconf: warning: /etc/postfix/main.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\"\n\
                    postconf: warning: /etc/postfix/main.cf: support for parameter \"smtp_use_tls\" will be removed; instead, specify \"smtp_tls_security_level\"\n\
                    postconf: warning: /etc/postfix/master.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\"\n\
                    postconf: warning: /etc/postfix/master.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\"\n\
                    postconf: warning: /etc/postfix/main.cf: unused parameter: smtp_tls_mandatry_ciphers=high\n";
        assert_eq!(
            deprecations(said),
            vec![
                "/etc/postfix/main.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\"",
                "/etc/postfix/main.cf: support for parameter \"smtp_use_tls\" will be removed; instead, specify \"smtp_tls_security_level\"",
                "/etc/postfix/master.cf: support for parameter \"smtp_enforce_tls\" will be removed; instead, specify \"smtp_tls_security_level\"",
            ]
        );
        // Not a refusal: only the unused parameter is one.
        assert_eq!(unused_parameters(said, "").len(), 1);
        assert_eq!(deprecations(""), Vec::<String>::new());
    }

    #[test]
    fn a_master_cf_warning_no_service_explains_is_the_user_s() {
        let said = "postconf: warning: /etc/postfix/master.cf: unused parameter: smtp_x=1\n";
        assert_eq!(unused_parameters(said, "").len(), 1);
    }
}

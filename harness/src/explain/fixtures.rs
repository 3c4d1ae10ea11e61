//! Logs and log lines the tests read.

use super::judge::{Verdict, judge};
use super::rules::Status;
use crate::mta::log::LogLine;

pub(super) const INCIDENT: &str = include_str!("../../../fixtures/logs/incident.log");
/// Real lines of every built-in case that does not deliver over TLS (and
/// a few that do), one case per distinct reason and clue, from Postfix
/// 3.5 (bullseye), 3.7 (bookworm) and 3.10 (trixie), in that order;
/// the harness's ephemeral relay ports replaced by the scenario's port.
pub(super) const ALL_REASONS: &str = include_str!("../../../fixtures/logs/all-reasons.log");

/// `text` with every `[address]` written `[ADDR]`.
pub(super) fn without_addresses(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        match rest.find(']') {
            Some(close) if rest[..close].parse::<std::net::IpAddr>().is_ok() => {
                out.push_str("ADDR");
                rest = &rest[close..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn line(pid: u32, message: &str) -> String {
    format!("Nov 30 02:28:40 postfix postfix/smtp[{pid}]: {message}\n")
}

pub(super) fn status(pid: u32, qid: &str, relay: &str, status: &str, reason: &str) -> String {
    line(
        pid,
        &format!(
            "{qid}: to=<a@b.test>, relay={relay}, delay=0.2, delays=0.1/0/0.1/0, dsn=4.7.5, status={status} ({reason})"
        ),
    )
}

pub(super) fn tls(pid: u32, relay: &str) -> String {
    line(
        pid,
        &format!(
            "Trusted TLS connection established to {relay}: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
        ),
    )
}

pub(super) const RELAY: &str = "smtp.relay.test[127.0.0.1]:587";
pub(super) const SENT: &str = "250 2.0.0 Ok";

pub(super) fn verdicts(log: &str) -> Vec<(String, Verdict)> {
    let lines: Vec<LogLine> = log.lines().map(crate::mta::postfix::log::parse).collect();
    judge(&lines)
        .into_iter()
        .map(|(i, v)| (lines[i].raw.clone(), v))
        .collect()
}

pub(super) fn is_plaintext(v: &Verdict) -> bool {
    matches!(v, Verdict::Explained(r) if r.status == Status::SentPlaintext)
}

/// The scenario id and level in a harness recipient (`ID.LEVEL@cN...`),
/// with the ids the fixture's run still used mapped to today's.
pub(super) fn case_of(raw: &str) -> (String, String) {
    let local = raw.split("to=<").nth(1).unwrap().split('@').next().unwrap();
    let (id, level) = local.rsplit_once('.').unwrap();
    let id = match id {
        "relay-auth-587-stripped" => "incident-587-strip-sasl",
        "relay-auth-before-tls-stripped" => "incident-587-strip-sasl-auth-before-tls",
        id => id,
    };
    (id.to_owned(), level.to_owned())
}

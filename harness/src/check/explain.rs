//! `tlsharness explain LOGFILE`: reads Postfix log lines, names the path
//! conditions their failures point to, flags deliveries that crossed in
//! plaintext, and says which built-in scenarios reproduce each, and how to
//! confirm from inside the affected network.
//!
//! A delivery is judged by its status line and the lines the same smtp
//! process logged before it for that delivery (the "context"): Postfix's
//! status reasons are terse ("Server certificate not verified"), the line
//! that says why (a self-signed certificate, a masked greeting) comes
//! before it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::mta::log::{Delivery, LogEvent, LogLine};
use crate::outcome::Trust;

/// Which status lines a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// `deferred`, `bounced` or `expired`.
    Failed,
    /// `sent` with no TLS session for the delivery.
    SentPlaintext,
}

/// A pattern in the log and what it means for the network path. A rule
/// applies when the status is `status`, the reason contains `reason` and a
/// context line contains `context` (an empty text matches anything).
struct Rule {
    status: Status,
    reason: &'static str,
    context: Clue,
    condition: &'static str,
    scenarios: &'static [&'static str],
}

/// What a rule needs from the lines before the status line.
#[derive(Clone, Copy)]
enum Clue {
    None,
    /// A context line containing this text.
    Text(&'static str),
    /// A TLS session with this trust: Postfix 3.5 logs no "hostname
    /// mismatch" line, only a trusted session and then "not verified".
    Session(Trust),
}

/// The rules, most specific first: the first that applies wins.
const RULES: &[Rule] = &[
    // Deliveries without TLS.
    Rule {
        status: Status::SentPlaintext,
        reason: "",
        context: Clue::Text("Cannot start TLS"),
        condition: "delivered in plaintext after a failed TLS handshake: the level (may) lets Postfix retry without TLS, so the message crossed the path unencrypted",
        scenarios: &["fail-handshake-alert", "fail-handshake-silence"],
    },
    Rule {
        status: Status::SentPlaintext,
        reason: "",
        context: Clue::Text("enabling PIX workarounds"),
        condition: "delivered in plaintext: the greeting was masked (a Cisco PIX-style SMTP fixup on the path), Postfix fell back to HELO and never saw STARTTLS, and the level (may or none) allowed plaintext",
        scenarios: &["mask-banner"],
    },
    Rule {
        status: Status::SentPlaintext,
        reason: "",
        context: Clue::Text("Host offered STARTTLS"),
        condition: "delivered in plaintext although the relay offered STARTTLS: the level is none for this destination (smtp_tls_security_level, a policy map entry or a transport's -o)",
        scenarios: &["starttls-relay"],
    },
    Rule {
        status: Status::SentPlaintext,
        reason: "",
        context: Clue::None,
        condition: "delivered in plaintext: no TLS session for this delivery; STARTTLS was not offered or was hidden on the path, and the level (may, or dane where the zone is not signed) allowed plaintext, with no MTA-STS policy in force (testing mode, or none fetched) (the incident's state after `may`); if the relay takes AUTH before TLS, the SASL credentials crossed in plaintext too",
        scenarios: &[
            "mta-sts-testing-strip-starttls",
            "mta-sts-policy-unreachable-strip-starttls",
            "dane-strip-starttls",
            "dane-unsigned-strip-starttls",
            "incident-587-strip",
            "incident-587-strip-sasl-auth-before-tls",
            "mask-starttls",
            "no-starttls-relay",
        ],
    },
    // STARTTLS not offered, refused, or cut off.
    Rule {
        status: Status::Failed,
        reason: "TLS is required, but was not offered",
        context: Clue::Text("enabling PIX workarounds"),
        condition: "the greeting was masked with asterisks (a Cisco PIX-style SMTP fixup on the path); Postfix fell back to HELO and never saw STARTTLS",
        scenarios: &["mask-banner"],
    },
    Rule {
        status: Status::Failed,
        reason: "TLS is required, but was not offered",
        context: Clue::None,
        condition: "STARTTLS was not offered: the relay does not offer it, or something on the path removed or masked it (firewall SMTP inspection); TLS was required by the level, by a DNSSEC-validated TLSA record (dane), or by the domain's MTA-STS policy (enforce), which overrides the level",
        scenarios: &[
            "mta-sts-enforce-strip-starttls",
            "mta-sts-testing-strip-starttls",
            "mta-sts-policy-unreachable-strip-starttls",
            "mta-sts-policy-wrong-certificate-strip-starttls",
            "dane-strip-starttls",
            "dane-unsigned-strip-starttls",
            "dane-forge-no-tlsa-strip",
            "incident-587-strip",
            "incident-587-strip-sasl",
            "incident-587-strip-sasl-auth-before-tls",
            "mask-starttls",
            "mask-banner",
            "no-starttls-relay",
            "relay-policy-secure-stripped-path",
            "relay-require-tls-stripped",
        ],
    },
    Rule {
        status: Status::Failed,
        reason: "refused to start TLS: 4",
        context: Clue::None,
        condition: "STARTTLS was advertised but refused with a temporary error, by the relay or by a device answering for it",
        scenarios: &["reject-starttls-454"],
    },
    Rule {
        status: Status::Failed,
        reason: "refused to start TLS: 5",
        context: Clue::None,
        condition: "STARTTLS was advertised but refused permanently (the message is returned), by the relay or a device answering for it",
        scenarios: &["reject-starttls-502"],
    },
    Rule {
        status: Status::Failed,
        reason: "timed out while receiving the STARTTLS response",
        context: Clue::None,
        condition: "STARTTLS got no answer: a device on the path swallowed the command (or answers for the relay and never replies)",
        scenarios: &["replay-starttls-unanswered"],
    },
    Rule {
        status: Status::Failed,
        reason: "while receiving the STARTTLS response",
        context: Clue::None,
        condition: "the connection was cut when Postfix sent STARTTLS (a firewall dropping the command); no plaintext fallback follows",
        scenarios: &["drop-on-starttls", "drop-on-starttls-reset"],
    },
    // The TLS handshake.
    Rule {
        status: Status::Failed,
        reason: "Cannot start TLS: handshake failure",
        context: Clue::Text("Invalid TLS protocol list"),
        condition: "this Postfix's TLS library does not accept the protocol setting (e.g. \">=TLSv1.3\" on Postfix 3.5): a configuration problem, every TLS session is aborted",
        scenarios: &["relay-tls12-only-postfix-requires-tls13"],
    },
    Rule {
        status: Status::Failed,
        reason: "Cannot start TLS: handshake failure",
        context: Clue::Text("alert protocol version"),
        condition: "Postfix and the relay share no TLS protocol version (e.g. the relay stops at TLS 1.2 and Postfix requires 1.3)",
        scenarios: &["relay-tls12-only-postfix-requires-tls13"],
    },
    Rule {
        status: Status::Failed,
        reason: "Cannot start TLS: handshake failure",
        context: Clue::Text("wrong version number"),
        condition: "what came back after STARTTLS was not TLS: a device on the path answering in plaintext or with garbage",
        scenarios: &["fail-handshake-garbage"],
    },
    Rule {
        status: Status::Failed,
        reason: "Cannot start TLS: handshake failure",
        context: Clue::None,
        condition: "STARTTLS was accepted but the TLS handshake failed: a device breaking TLS on the path, or a protocol/cipher mismatch with the relay",
        scenarios: &[
            "fail-handshake-alert",
            "fail-handshake-garbage",
            "fail-handshake-close",
            "fail-handshake-reset",
            "fail-handshake-silence",
            "fail-handshake-immediate-retry",
            "relay-tls12-only-postfix-requires-tls13",
        ],
    },
    // The certificate: Postfix 3.5 says "not trusted" where 3.7 and 3.10
    // say "not verified"; the line before says why.
    Rule {
        status: Status::Failed,
        reason: "Server certificate not",
        context: Clue::Text("self-signed certificate"),
        condition: "the peer's certificate is self-signed: a misconfigured relay, or TLS interception with a self-signed certificate",
        scenarios: &[
            "relay-cert-self-signed",
            "intercept-tls-self-signed",
            "dane-ee-self-signed",
        ],
    },
    Rule {
        status: Status::Failed,
        reason: "Server certificate not",
        context: Clue::Text("self signed certificate"),
        condition: "the peer's certificate is self-signed: a misconfigured relay, or TLS interception with a self-signed certificate",
        scenarios: &[
            "relay-cert-self-signed",
            "intercept-tls-self-signed",
            "dane-ee-self-signed",
        ],
    },
    Rule {
        status: Status::Failed,
        reason: "Server certificate not",
        context: Clue::Text("untrusted issuer"),
        condition: "the peer's certificate chain does not lead to a CA Postfix trusts: an unknown CA, a missing intermediate, or TLS interception",
        scenarios: &[
            "starttls-relay-unknown-ca",
            "relay-cert-missing-intermediate",
            "intercept-tls-self-signed",
        ],
    },
    Rule {
        status: Status::Failed,
        reason: "Server certificate not",
        context: Clue::Text("hostname mismatch"),
        condition: "the certificate does not name the relay: the wrong certificate, or a device presenting its own; under an MTA-STS policy (enforce), also an MX host the policy's mx patterns do not name",
        scenarios: &[
            "starttls-relay-wrong-name",
            "relay-cert-wrong-name",
            "mta-sts-enforce-wrong-name",
            "mta-sts-mx-not-in-policy",
        ],
    },
    Rule {
        status: Status::Failed,
        reason: "Server certificate not verified",
        context: Clue::Text("no matching DANE TLSA records"),
        condition: "the MX host's DNSSEC-validated TLSA records match none of its certificates: a certificate or key rolled over before its TLSA record was updated, or a device presenting its own certificate; DANE gives no fallback, all mail to the domain waits",
        scenarios: &["dane-tlsa-stale"],
    },
    Rule {
        status: Status::Failed,
        reason: "Server certificate not verified",
        context: Clue::Session(Trust::Trusted),
        condition: "the certificate chains to a trusted CA but was not accepted: it does not name the relay (the wrong certificate, or a device presenting its own), or, at level dane, no DNSSEC-validated TLSA record matches it (Postfix 3.5 logs both alike)",
        scenarios: &[
            "starttls-relay-wrong-name",
            "relay-cert-wrong-name",
            "dane-tlsa-stale",
        ],
    },
    Rule {
        status: Status::Failed,
        reason: "Server certificate not",
        context: Clue::Text("certificate has expired"),
        condition: "the relay's certificate has expired",
        scenarios: &["relay-cert-expired"],
    },
    Rule {
        status: Status::Failed,
        reason: "Server certificate not",
        context: Clue::Text("certificate not yet valid"),
        condition: "the relay's certificate is not valid yet (or a clock is wrong)",
        scenarios: &["relay-cert-not-yet-valid"],
    },
    Rule {
        status: Status::Failed,
        reason: "Server certificate not",
        context: Clue::None,
        condition: "the relay's certificate did not verify (the line before the status, if logged, says why): an unknown CA, a missing intermediate, a self-signed or expired certificate, the wrong name, or TLS interception",
        scenarios: &[
            "dane-ee-self-signed",
            "starttls-relay-unknown-ca",
            "relay-cert-missing-intermediate",
            "relay-cert-self-signed",
            "relay-cert-expired",
            "relay-cert-not-yet-valid",
            "relay-cert-wrong-name",
            "intercept-tls-self-signed",
        ],
    },
    // Before or after the TLS part of the conversation.
    Rule {
        status: Status::Failed,
        reason: "timed out while receiving the initial server greeting",
        context: Clue::None,
        condition: "the relay never greeted: a path that stalls, or an implicit-TLS port (465) used without smtp_tls_wrappermode",
        scenarios: &["stall-greeting", "relay-implicit-tls-465-no-wrappermode"],
    },
    Rule {
        status: Status::Failed,
        reason: "Must issue a STARTTLS command first",
        context: Clue::None,
        condition: "the relay requires TLS but Postfix sent MAIL in plaintext: the level is none for this destination, or STARTTLS was hidden on the path while the relay still enforces it",
        scenarios: &["relay-require-tls-stripped", "relay-require-tls"],
    },
    Rule {
        status: Status::Failed,
        reason: "Authentication required",
        context: Clue::Text("Host offered STARTTLS"),
        condition: "the relay offers AUTH only inside TLS and Postfix did not use the STARTTLS it offered: the level is none for this destination",
        scenarios: &["relay-auth-587", "relay-auth-587-postfix-defaults"],
    },
    Rule {
        status: Status::Failed,
        reason: "Authentication required",
        context: Clue::None,
        condition: "the relay wanted AUTH but Postfix did not authenticate: AUTH is offered only inside TLS, and TLS was not used (STARTTLS hidden on the path, and a level that allows plaintext, e.g. may)",
        scenarios: &["incident-587-strip-sasl"],
    },
    Rule {
        status: Status::Failed,
        reason: "no mechanism available",
        context: Clue::None,
        condition: "Postfix's SASL client refused every offered mechanism: smtp_sasl_security_options (default noplaintext) excludes PLAIN and LOGIN",
        scenarios: &["relay-auth-587-postfix-defaults"],
    },
    // The client's own TLS configuration.
    Rule {
        status: Status::Failed,
        reason: "server unavailable or unable to receive mail",
        context: Clue::Text("smtp_tls_wrappermode requires"),
        condition: "smtp_tls_wrappermode is on but the level is below encrypt: a configuration problem, nothing is sent",
        scenarios: &["relay-implicit-tls-465"],
    },
    Rule {
        status: Status::Failed,
        reason: "server unavailable or unable to receive mail",
        context: Clue::None,
        condition: "the smtp client refused the destination before connecting (the warning logged just before says why, e.g. smtp_tls_wrappermode below encrypt)",
        scenarios: &["relay-implicit-tls-465"],
    },
    // DNS and DNSSEC.
    Rule {
        status: Status::Failed,
        reason: "no TLSA records found",
        context: Clue::None,
        condition: "the level is dane-only and DNSSEC proves the MX host publishes no TLSA record: dane-only sends only to DANE-protected hosts",
        scenarios: &["dane-no-tlsa"],
    },
    Rule {
        status: Status::Failed,
        reason: "non DNSSEC destination",
        context: Clue::None,
        condition: "the level is dane-only but the destination's zone is not DNSSEC-signed (the validating resolver calls it insecure); dane would fall back to opportunistic TLS here",
        scenarios: &["dane-unsigned-strip-starttls"],
    },
    Rule {
        status: Status::Failed,
        reason: "TLSA lookup error",
        context: Clue::None,
        condition: "at level dane, the TLSA lookup failed (SERVFAIL, or no answer): something on the DNS path answers or drops TLSA queries, or forged an answer the validating resolver rejected; Postfix cannot tell whether the MX host does DANE and defers",
        scenarios: &[
            "dane-servfail-tlsa",
            "dane-drop-tlsa",
            "dane-forge-no-tlsa-strip",
        ],
    },
    Rule {
        status: Status::Failed,
        reason: "type=MX: Host not found, try again",
        context: Clue::None,
        condition: "the MX lookup failed temporarily (SERVFAIL): behind a validating resolver, typically a zone whose DNSSEC signatures do not validate (bogus: expired signatures, or a DS record that matches no key), at every TLS level alike",
        scenarios: &["dane-zone-bogus"],
    },
    Rule {
        status: Status::Failed,
        reason: "client TLS configuration problem",
        context: Clue::Text("dane-only configured with dnssec lookups disabled"),
        condition: "the level is dane-only but DNSSEC lookups are off (smtp_dns_support_level is not dnssec): a configuration problem, nothing is sent",
        scenarios: &["relay-cert-trusted"],
    },
    Rule {
        status: Status::Failed,
        reason: "client TLS configuration problem",
        context: Clue::None,
        condition: "the client TLS policy cannot be applied (the warning logged just before says why, e.g. dane-only without DNSSEC lookups)",
        scenarios: &["relay-cert-trusted"],
    },
];

/// What kind of finding an explanation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// Mail was delivered without TLS.
    Plaintext,
    /// Mail was deferred or bounced.
    Failure,
}

/// One condition found in the log, with every delivery line that shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub finding: Finding,
    /// The first log line that shows it.
    pub example: String,
    /// How many delivery lines show it.
    pub count: usize,
    pub condition: String,
    pub scenarios: Vec<String>,
    /// The relays, as Postfix names them (`host[addr]:port`), in order of
    /// appearance; `none` when Postfix did not connect.
    pub relays: Vec<String>,
}

/// Deferred or bounced lines with the same reason that no rule explains.
#[derive(Clone, Debug, Serialize)]
pub struct Unrecognised {
    pub status: String,
    pub reason: String,
    pub count: usize,
    /// The first such line.
    pub example: String,
}

/// What a log says, as far as TLS on the path goes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExplainReport {
    /// Delivery status lines (`status=...`) read.
    pub status_lines: usize,
    /// `sent` lines with a TLS session for the delivery (not flagged).
    pub sent_tls: usize,
    /// Plaintext deliveries first, then failures, each in order of appearance.
    pub found: Vec<Explanation>,
    pub unrecognised: Vec<Unrecognised>,
}

/// Explains the deliveries in a mail log.
pub fn explain(log: &str) -> ExplainReport {
    let lines: Vec<LogLine> = log.lines().map(crate::mta::postfix::log::parse).collect();
    let mut report = ExplainReport::default();
    for (i, verdict) in judge(&lines) {
        report.status_lines += 1;
        let line = &lines[i];
        let LogEvent::Delivery(d) = &line.event else {
            unreachable!("judge returns status lines only");
        };
        match verdict {
            Verdict::Ignored => {}
            Verdict::SentTls => report.sent_tls += 1,
            Verdict::Explained(rule) => add_finding(&mut report.found, rule, line, d),
            Verdict::Unrecognised => add_unrecognised(&mut report.unrecognised, line, d),
        }
    }
    report
        .found
        .sort_by_key(|e| e.finding != Finding::Plaintext);
    report
}

/// What became of one status line.
#[derive(Clone, Copy)]
enum Verdict {
    /// Sent by something other than the smtp client (local, lmtp, ...).
    Ignored,
    SentTls,
    Explained(&'static Rule),
    Unrecognised,
}

/// A verdict for each status line, by its index in `lines`.
fn judge(lines: &[LogLine]) -> Vec<(usize, Verdict)> {
    // Each process's lines, so finding the context does not rescan the log.
    let mut by_process: BTreeMap<(&str, u32), Vec<usize>> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        by_process
            .entry((line.program.as_str(), line.pid))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let LogEvent::Delivery(d) = &line.event else {
            continue;
        };
        let own = &by_process[&(line.program.as_str(), line.pid)];
        let context = context(lines, own, i, d);
        let status = match d.status.as_str() {
            "sent" if !is_smtp(line) || d.relay == "none" => {
                out.push((i, Verdict::Ignored));
                continue;
            }
            "sent" if has_tls_session(&context, &d.relay) => {
                out.push((i, Verdict::SentTls));
                continue;
            }
            "sent" => Status::SentPlaintext,
            _ => Status::Failed,
        };
        let verdict = match RULES.iter().find(|r| r.applies(status, d, &context)) {
            Some(rule) => Verdict::Explained(rule),
            None => Verdict::Unrecognised,
        };
        out.push((i, verdict));
    }
    out
}

impl Rule {
    fn applies(&self, status: Status, d: &Delivery, context: &[&LogLine]) -> bool {
        self.status == status
            && d.reason.contains(self.reason)
            && match self.context {
                Clue::None => true,
                Clue::Text(text) => context.iter().any(|l| l.message.contains(text)),
                Clue::Session(trust) => context
                    .iter()
                    .any(|l| matches!(&l.event, LogEvent::Tls(s) if s.trust == trust)),
            }
    }
}

fn is_smtp(line: &LogLine) -> bool {
    line.program.ends_with("/smtp")
}

/// The lines the same process logged for this delivery, newest first:
/// back to the previous delivery of another message. Status lines of the
/// same message just before (its other recipients) share the session.
fn context<'a>(lines: &'a [LogLine], own: &[usize], at: usize, d: &Delivery) -> Vec<&'a LogLine> {
    let mut out = Vec::new();
    let mut recipients_of_this_session = true;
    for &j in own.iter().rev().skip_while(|&&j| j >= at) {
        let line = &lines[j];
        if let LogEvent::Delivery(other) = &line.event {
            if other.queue_id == d.queue_id && recipients_of_this_session {
                continue;
            }
            break;
        }
        recipients_of_this_session = false;
        if queue_id(line).is_some_and(|q| q != d.queue_id) {
            break;
        }
        out.push(line);
    }
    out
}

/// The queue id a line starts with; `warning:` and friends are not ids.
fn queue_id(line: &LogLine) -> Option<&str> {
    line.queue_id()
        .filter(|q| !q.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Whether the context has a TLS session to `relay` (`host[addr]:port`):
/// a new one, or one reused from the connection cache.
fn has_tls_session(context: &[&LogLine], relay: &str) -> bool {
    context.iter().any(|l| match &l.event {
        LogEvent::Tls(s) => format!("{}[{}]:{}", s.host, s.addr, s.port) == relay,
        _ => l
            .message
            .split_once(" TLS connection reused to ")
            .is_some_and(|(_, rest)| rest.starts_with(&format!("{relay}:"))),
    })
}

fn add_finding(found: &mut Vec<Explanation>, rule: &Rule, line: &LogLine, d: &Delivery) {
    if let Some(e) = found.iter_mut().find(|e| e.condition == rule.condition) {
        e.count += 1;
        if !e.relays.contains(&d.relay) {
            e.relays.push(d.relay.clone());
        }
        return;
    }
    found.push(Explanation {
        finding: match rule.status {
            Status::SentPlaintext => Finding::Plaintext,
            Status::Failed => Finding::Failure,
        },
        example: line.raw.clone(),
        count: 1,
        condition: rule.condition.to_owned(),
        scenarios: rule.scenarios.iter().map(|s| (*s).to_owned()).collect(),
        relays: vec![d.relay.clone()],
    });
}

fn add_unrecognised(list: &mut Vec<Unrecognised>, line: &LogLine, d: &Delivery) {
    if let Some(u) = list
        .iter_mut()
        .find(|u| u.status == d.status.as_str() && u.reason == d.reason)
    {
        u.count += 1;
        return;
    }
    list.push(Unrecognised {
        status: d.status.as_str().to_owned(),
        reason: d.reason.clone(),
        count: 1,
        example: line.raw.clone(),
    });
}

/// `host` and `port` from Postfix's `host[addr]:port`.
fn host_port(relay: &str) -> Option<(String, String)> {
    let (host, rest) = relay.split_once('[')?;
    let port = rest.rsplit_once("]:").map(|(_, p)| p.to_owned())?;
    Some((host.to_owned(), port))
}

/// How to look at the path to `relay` (`host[addr]:port`) from inside the
/// affected network; nothing for `none`.
pub fn confirm_commands(relay: &str) -> Vec<String> {
    match host_port(relay) {
        Some((host, port)) => commands_for(&host, &port),
        None => Vec::new(),
    }
}

fn commands_for(host: &str, port: &str) -> Vec<String> {
    // 465 speaks TLS from the first byte (smtp_tls_wrappermode), not STARTTLS.
    let (finger, s_client) = if port == "465" {
        ("-w ", "")
    } else {
        ("", "-starttls smtp ")
    };
    vec![
        format!("posttls-finger {finger}-c -l secure -P /etc/ssl/certs \"[{host}]:{port}\""),
        format!(
            "openssl s_client {s_client}-connect {host}:{port} -servername {host} -verify_return_error </dev/null"
        ),
        format!("tlsharness probe {host}:{port} --out scenarios/this-network.toml"),
    ]
}

/// The report in words: each condition once, then each relay's commands once.
pub fn render(report: &ExplainReport) -> String {
    let mut out = String::new();
    if report.status_lines == 0 {
        out.push_str("no delivery status lines (status=...) in this log\n");
        return out;
    }
    let plaintext: usize = report
        .found
        .iter()
        .filter(|e| e.finding == Finding::Plaintext)
        .map(|e| e.count)
        .sum();
    let failed: usize = report
        .found
        .iter()
        .filter(|e| e.finding == Finding::Failure)
        .map(|e| e.count)
        .sum();
    let unrecognised: usize = report.unrecognised.iter().map(|u| u.count).sum();
    let other = report.status_lines - report.sent_tls - plaintext - failed - unrecognised;
    let _ = write!(
        out,
        "{} delivery status line(s): {} sent over TLS, {plaintext} sent in plaintext, {failed} deferred or bounced with a known condition, {unrecognised} not recognised",
        report.status_lines, report.sent_tls,
    );
    if other > 0 {
        let _ = write!(out, ", {other} not sent by the smtp client");
    }
    out.push_str("\n\n");
    // (host, port) -> the numbers of the conditions seen on it.
    let mut targets: Vec<((String, String), Vec<usize>)> = Vec::new();
    for (n, e) in report.found.iter().enumerate() {
        let n = n + 1;
        let heading = match e.finding {
            Finding::Plaintext => "DELIVERED IN PLAINTEXT: ",
            Finding::Failure => "",
        };
        let _ = writeln!(
            out,
            "[{n}] {heading}{} delivery line(s) like:\n  {}",
            e.count, e.example
        );
        let _ = writeln!(out, "likely: {}", e.condition);
        let _ = writeln!(
            out,
            "reproduced by: {}",
            e.scenarios
                .iter()
                .map(|s| format!("scenarios/{s}.toml"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out, "relay(s): {}\n", e.relays.join(", "));
        for relay in &e.relays {
            let Some(target) = host_port(relay) else {
                continue;
            };
            match targets.iter_mut().find(|(t, _)| *t == target) {
                Some((_, ns)) if ns.contains(&n) => {}
                Some((_, ns)) => ns.push(n),
                None => targets.push((target, vec![n])),
            }
        }
    }
    if !report.unrecognised.is_empty() {
        out.push_str("not recognised (deferred or bounced, no known path condition):\n");
        for u in &report.unrecognised {
            let _ = writeln!(out, "  {} line(s) like:\n    {}", u.count, u.example);
        }
        out.push('\n');
    }
    if !targets.is_empty() {
        out.push_str(
            "confirm from the affected host (and compare with a host where mail flows):\n",
        );
        for ((host, port), ns) in &targets {
            let ns: Vec<String> = ns.iter().map(|n| format!("[{n}]")).collect();
            let _ = writeln!(out, "  {host}:{port} (for {}):", ns.join(", "));
            for c in commands_for(host, port) {
                let _ = writeln!(out, "    {c}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Level;
    use crate::outcome::Outcome;
    use crate::scenario::builtin;

    const INCIDENT: &str = include_str!("../../../fixtures/logs/incident.log");
    /// Real lines of every built-in case that does not deliver over TLS (and
    /// a few that do), one case per distinct reason and clue, from Postfix
    /// 3.5 (bullseye), 3.7 (bookworm) and 3.10 (trixie), in that order;
    /// the harness's ephemeral relay ports replaced by the scenario's port.
    const ALL_REASONS: &str = include_str!("../../../fixtures/logs/all-reasons.log");

    /// `text` with every `[address]` written `[ADDR]`.
    fn without_addresses(text: &str) -> String {
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

    fn line(pid: u32, message: &str) -> String {
        format!("Nov 30 02:28:40 postfix postfix/smtp[{pid}]: {message}\n")
    }

    fn status(pid: u32, qid: &str, relay: &str, status: &str, reason: &str) -> String {
        line(
            pid,
            &format!(
                "{qid}: to=<a@b.test>, relay={relay}, delay=0.2, delays=0.1/0/0.1/0, dsn=4.7.5, status={status} ({reason})"
            ),
        )
    }

    fn tls(pid: u32, relay: &str) -> String {
        line(
            pid,
            &format!(
                "Trusted TLS connection established to {relay}: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
            ),
        )
    }

    const RELAY: &str = "smtp.relay.test[127.0.0.1]:587";
    const SENT: &str = "250 2.0.0 Ok";

    fn verdicts(log: &str) -> Vec<(String, Verdict)> {
        let lines: Vec<LogLine> = log.lines().map(crate::mta::postfix::log::parse).collect();
        judge(&lines)
            .into_iter()
            .map(|(i, v)| (lines[i].raw.clone(), v))
            .collect()
    }

    fn is_plaintext(v: &Verdict) -> bool {
        matches!(v, Verdict::Explained(r) if r.status == Status::SentPlaintext)
    }

    /// The scenario id and level in a harness recipient (`ID.LEVEL@cN...`),
    /// with the ids the fixture's run still used mapped to today's.
    fn case_of(raw: &str) -> (String, String) {
        let local = raw.split("to=<").nth(1).unwrap().split('@').next().unwrap();
        let (id, level) = local.rsplit_once('.').unwrap();
        let id = match id {
            "relay-auth-587-stripped" => "incident-587-strip-sasl",
            "relay-auth-before-tls-stripped" => "incident-587-strip-sasl-auth-before-tls",
            id => id,
        };
        (id.to_owned(), level.to_owned())
    }

    #[test]
    fn explains_the_incident() {
        let report = explain(INCIDENT);
        assert_eq!(report.found.len(), 1, "{report:?}");
        let e = &report.found[0];
        assert_eq!(e.count, 2);
        assert!(e.condition.contains("STARTTLS was not offered"));
        assert!(e.scenarios.contains(&"incident-587-strip".to_owned()));
        let cmds = confirm_commands(&e.relays[0]);
        assert!(
            cmds[1].contains("-connect smtp.sendgrid.net:587"),
            "{cmds:?}"
        );
    }

    #[test]
    fn every_named_scenario_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let builtin: Vec<&str> = builtin::files().iter().map(|f| f.name).collect();
        for rule in RULES {
            for s in rule.scenarios {
                let file = format!("{s}.toml");
                assert!(dir.join(&file).is_file(), "scenarios/{file} is missing");
                assert!(builtin.contains(&file.as_str()), "{file} is not built in");
            }
        }
    }

    #[test]
    fn every_reason_the_builtin_scenarios_quote_is_explained_without_context() {
        let scenarios = builtin::load().unwrap();
        let mut quoted = Vec::new();
        for s in &scenarios {
            let all = s
                .expect
                .iter()
                .chain(s.versions.iter().flat_map(|v| v.expect.iter()));
            for (level, e) in all {
                for a in &e.attempts {
                    let status = match a.outcome {
                        Outcome::Deferred => "deferred",
                        Outcome::Bounced => "bounced",
                        _ => continue,
                    };
                    if let Some(reason) = &a.reason {
                        quoted.push((s.id.clone(), *level, status, reason.clone()));
                    }
                }
            }
        }
        assert!(quoted.len() > 20, "{quoted:?}");
        let mut unnamed = Vec::new();
        for (id, level, st, reason) in quoted {
            let log = status(7, "ABCDEF123", RELAY, st, &reason);
            let v = verdicts(&log);
            assert!(
                matches!(v[0].1, Verdict::Explained(_)),
                "{id}: {st} ({reason}) is not explained"
            );
            // The same reason must also appear, explained, in real lines:
            // Postfix's words, wherever the harness placed the relay (the
            // log's lines are from runs with relays at other addresses).
            let words = without_addresses(&reason);
            assert!(
                ALL_REASONS
                    .lines()
                    .any(|l| l.contains(&format!("status={st} "))
                        && without_addresses(l).contains(&words)),
                "{id}: no line of all-reasons.log says {st} ({reason})"
            );
            // Some condition explain gives for this reason names the
            // scenario; dane-only without DNSSEC is the same configuration
            // problem on every relay-cert-* scenario, one of them is named.
            if level != Level::DaneOnly
                && !RULES.iter().any(|r| {
                    r.status == Status::Failed
                        && reason.contains(r.reason)
                        && r.scenarios.contains(&id.as_str())
                })
            {
                unnamed.push(format!("{id} at {level}: {st} ({reason})"));
            }
        }
        assert!(
            unnamed.is_empty(),
            "no condition names:\n{}",
            unnamed.join("\n")
        );
    }

    #[test]
    fn every_failure_in_the_all_versions_log_names_a_scenario_that_reproduces_it() {
        let judged = verdicts(ALL_REASONS);
        assert!(judged.len() > 80, "{}", judged.len());
        let mut reasons = std::collections::BTreeSet::new();
        for (raw, v) in &judged {
            let (id, level) = case_of(raw);
            let LogEvent::Delivery(d) = crate::mta::postfix::log::parse(raw).event else {
                unreachable!()
            };
            if d.status == crate::mta::log::Status::Sent {
                // The fake relay's reply is a witness independent of the log.
                let plaintext = d.reason.contains("accepted in plaintext");
                assert_eq!(is_plaintext(v), plaintext, "{raw}");
                assert_eq!(
                    matches!(v, Verdict::SentTls),
                    d.reason.contains("accepted over TLS"),
                    "{raw}"
                );
                continue;
            }
            let Verdict::Explained(rule) = v else {
                panic!("not recognised: {raw}");
            };
            reasons.insert(d.reason.clone());
            // dane-only without DNSSEC is the same configuration problem
            // on every relay-cert-* scenario; one reproduces it.
            if level != "dane-only" {
                assert!(
                    rule.scenarios.contains(&id.as_str()),
                    "{id} is not among {:?} for {raw}",
                    rule.scenarios
                );
            }
        }
        // Every distinct reason of `run scenarios --all-versions` on the
        // built-in library (3.5, 3.7 and 3.10).
        let every_reason_of_the_run = [
            "Cannot start TLS: handshake failure",
            "Host or domain name not found. Name service error for name=dane-zone-bogus-dane.hoge.example type=MX: Host not found, try again",
            "Host or domain name not found. Name service error for name=dane-zone-bogus-may.hoge.example type=MX: Host not found, try again",
            "SASL authentication failed; cannot authenticate to server smtp.relay.test[127.0.0.1]: no mechanism available",
            "Server certificate not trusted",
            "Server certificate not verified",
            "TLS is required, but host smtp.relay.test[127.0.0.1] refused to start TLS: 454 4.7.0 TLS not available due to temporary reason",
            "TLS is required, but host smtp.relay.test[127.0.0.1] refused to start TLS: 502 5.5.1 command not recognized",
            "TLS is required, but was not offered by host mx1.dane-strip-starttls-dane.hoge.example[127.0.1.1]",
            "TLS is required, but was not offered by host smtp.relay.test[127.0.0.1]",
            "TLS is required, but was not offered by host smtp.sendgrid.net[127.0.0.1]",
            "TLSA lookup error for mx1.dane-drop-tlsa-dane-only.hoge.example:25",
            "TLSA lookup error for mx1.dane-forge-no-tlsa-strip-dane.hoge.example:25",
            "TLSA lookup error for mx1.dane-servfail-tlsa-dane.hoge.example:25",
            "client TLS configuration problem",
            "conversation with smtp.relay.test[127.0.0.1] timed out while receiving the STARTTLS response",
            "conversation with smtp.relay.test[127.0.0.1] timed out while receiving the initial server greeting",
            "host smtp.relay.test[127.0.0.1] said: 530 5.7.0 Authentication required (in reply to MAIL FROM command)",
            "host smtp.relay.test[127.0.0.1] said: 530 5.7.0 Must issue a STARTTLS command first (in reply to MAIL FROM command)",
            "host smtp.sendgrid.net[127.0.0.1] said: 530 5.7.0 Authentication required (in reply to MAIL FROM command)",
            "lost connection with smtp.relay.test[127.0.0.1] while receiving the STARTTLS response",
            "no TLSA records found",
            "non DNSSEC destination",
            "server unavailable or unable to receive mail",
        ];
        assert_eq!(
            reasons.iter().map(String::as_str).collect::<Vec<_>>(),
            every_reason_of_the_run
        );
        let report = explain(ALL_REASONS);
        assert!(report.unrecognised.is_empty(), "{:?}", report.unrecognised);
    }

    #[test]
    fn the_all_versions_log_has_each_version_s_wording() {
        // 3.5 says "not trusted" where 3.7 and 3.10 say "not verified", and
        // logs no "hostname mismatch" line for a wrong name.
        let judged = verdicts(ALL_REASONS);
        let condition = |needle: &str| {
            judged
                .iter()
                .filter(|(raw, _)| raw.contains(needle))
                .map(|(_, v)| match v {
                    Verdict::Explained(r) => r.condition,
                    _ => "",
                })
                .collect::<Vec<_>>()
        };
        let not_trusted = condition("(Server certificate not trusted)");
        assert!(not_trusted.len() >= 4, "{not_trusted:?}");
        for c in not_trusted {
            assert!(!c.contains("did not verify (the line before"), "{c}");
        }
        for c in condition("relay-cert-wrong-name.verify") {
            assert!(c.contains("does not name the relay"), "{c}");
        }
        for c in condition("relay-cert-expired.verify") {
            assert!(c.contains("has expired"), "{c}");
        }
    }

    #[test]
    fn the_incident_after_may_is_flagged_as_plaintext() {
        let judged = verdicts(ALL_REASONS);
        for case in [
            "incident-587-strip.may@",
            "relay-auth-before-tls-stripped.may@",
        ] {
            let lines: Vec<_> = judged
                .iter()
                .filter(|(raw, _)| raw.contains(case))
                .collect();
            assert_eq!(lines.len(), 3, "{case}: one per version");
            for (raw, v) in lines {
                let Verdict::Explained(rule) = v else {
                    panic!("{raw}")
                };
                assert!(
                    rule.condition.starts_with("delivered in plaintext"),
                    "{raw}"
                );
                assert!(rule.scenarios.contains(&"incident-587-strip"));
                assert!(
                    rule.scenarios
                        .contains(&"incident-587-strip-sasl-auth-before-tls")
                );
                assert!(rule.condition.contains("credentials"));
            }
        }
    }

    #[test]
    fn a_sent_line_is_plaintext_unless_its_process_logged_tls_to_that_relay_for_it() {
        let other = "mx2.relay.test[127.0.0.2]:25";
        let cases = [
            // TLS to the relay, then the status line: not flagged.
            (
                tls(5, RELAY) + &status(5, "AAAAAA1", RELAY, "sent", SENT),
                false,
            ),
            // The TLS line is another process's.
            (
                tls(6, RELAY) + &status(5, "AAAAAA1", RELAY, "sent", SENT),
                true,
            ),
            // TLS to the first address, plaintext to the second.
            (
                tls(5, RELAY) + &status(5, "AAAAAA1", other, "sent", SENT),
                true,
            ),
            // The TLS session was the previous message's.
            (
                tls(5, RELAY)
                    + &status(5, "AAAAAA1", RELAY, "sent", SENT)
                    + &status(5, "BBBBBB2", RELAY, "sent", SENT),
                true,
            ),
            // A second recipient of the same message shares the session.
            (
                tls(5, RELAY)
                    + &status(5, "AAAAAA1", RELAY, "sent", SENT)
                    + &status(5, "AAAAAA1", RELAY, "sent", SENT),
                false,
            ),
            // A session from the connection cache.
            (
                line(
                    5,
                    &format!("Verified TLS connection reused to {RELAY}: TLSv1.3 with cipher X"),
                ) + &status(5, "AAAAAA1", RELAY, "sent", SENT),
                false,
            ),
        ];
        for (log, plaintext) in cases {
            let judged = verdicts(&log);
            let (raw, v) = judged.last().unwrap();
            assert_eq!(is_plaintext(v), plaintext, "{log}\n-> {raw}");
            assert_eq!(matches!(v, Verdict::SentTls), !plaintext, "{log}");
        }
    }

    #[test]
    fn a_local_delivery_is_not_a_plaintext_relay() {
        let log = "Nov 30 02:28:40 h postfix/local[9]: AAAAAA1: to=<root@h.test>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)\n";
        let report = explain(log);
        assert!(report.found.is_empty(), "{report:?}");
        assert!(render(&report).contains("1 not sent by the smtp client"));
    }

    #[test]
    fn a_suspended_destination_is_explained_by_the_reason_it_quotes() {
        // After failures Postfix defers the queue's other mail for the
        // destination through the error transport, quoting the reason.
        let log = "Nov 30 02:28:40 h postfix/error[77]: AAAAAA1: to=<a@b.test>, relay=none, delay=9, delays=9/0/0/0, dsn=4.7.4, status=deferred (delivery temporarily suspended: TLS is required, but was not offered by host smtp.relay.test[127.0.0.1])\n";
        let report = explain(log);
        assert!(report.unrecognised.is_empty(), "{report:?}");
        assert!(
            report.found[0]
                .condition
                .starts_with("STARTTLS was not offered")
        );
    }

    #[test]
    fn pix_context_wins_over_the_status_reason() {
        let log = "Nov 27 21:45:06 h postfix/smtp[9]: BB908FE09E: enabling PIX workarounds: disable_esmtp for smtp.relay.test[127.0.0.1]:32971\nNov 27 21:45:06 h postfix/smtp[9]: BB908FE09E: to=<a@b>, relay=smtp.relay.test[127.0.0.1]:32971, delay=1, delays=1/0/0/0, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host smtp.relay.test[127.0.0.1])\n";
        let found = explain(log).found;
        assert!(found[0].condition.contains("PIX"), "{found:?}");
    }

    #[test]
    fn a_clue_from_another_delivery_is_not_used() {
        // The PIX line belongs to the previous message of the same process.
        let log = line(9, "AAAAAA1: enabling PIX workarounds: disable_esmtp for x")
            + &status(
                9,
                "AAAAAA1",
                RELAY,
                "deferred",
                "TLS is required, but was not offered by host x",
            )
            + &status(
                9,
                "BBBBBB2",
                RELAY,
                "deferred",
                "TLS is required, but was not offered by host x",
            );
        let found = explain(&log).found;
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[1].condition.starts_with("STARTTLS was not offered"));
    }

    #[test]
    fn unrecognised_status_lines_are_listed() {
        let log = status(
            3,
            "AAAAAA1",
            RELAY,
            "deferred",
            "host said: 452 4.3.1 Insufficient system storage",
        ) + &status(
            4,
            "BBBBBB2",
            RELAY,
            "deferred",
            "host said: 452 4.3.1 Insufficient system storage",
        ) + &status(
            5,
            "CCCCCC3",
            RELAY,
            "deferred",
            "Server certificate not verified",
        );
        let report = explain(&log);
        assert_eq!(report.unrecognised.len(), 1);
        assert_eq!(report.unrecognised[0].count, 2);
        let out = render(&report);
        assert!(out.contains("not recognised (deferred or bounced"), "{out}");
        assert!(out.contains("2 line(s) like:\n    Nov 30"), "{out}");
        assert!(out.contains("Insufficient system storage"), "{out}");
        assert!(
            out.contains("1 deferred or bounced with a known condition, 2 not recognised"),
            "{out}"
        );
    }

    #[test]
    fn each_confirm_command_is_printed_once() {
        for log in [INCIDENT, ALL_REASONS] {
            let out = render(&explain(log));
            let commands: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with("    ") && !l.trim_start().starts_with("Nov"))
                .collect();
            assert!(!commands.is_empty(), "{out}");
            for c in &commands {
                assert_eq!(out.matches(c).count(), 1, "{c} repeated in\n{out}");
            }
        }
        let implicit = confirm_commands("smtp.relay.test[127.0.0.1]:465");
        assert!(
            implicit[0].starts_with("posttls-finger -w "),
            "{implicit:?}"
        );
        assert!(!implicit[1].contains("-starttls"), "{implicit:?}");
        // The incident's two addresses are one host and port.
        let out = render(&explain(INCIDENT));
        assert_eq!(out.matches("openssl s_client").count(), 1, "{out}");
    }

    #[test]
    fn a_log_without_status_lines_says_so() {
        assert_eq!(
            render(&explain(
                "Nov 30 02:28:40 h postfix/qmgr[1]: AAAAAA1: removed\n"
            )),
            "no delivery status lines (status=...) in this log\n"
        );
    }
}

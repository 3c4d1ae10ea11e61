//! What a log comes to: each condition found once, with every delivery
//! line that shows it, and the failures no rule explains.

use serde::Serialize;

use super::judge::{Verdict, judge};
use super::rules::{Rule, Status};
use crate::mta::log::{Delivery, LogEvent, LogLine};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::fixtures::{INCIDENT, RELAY, status};
    use crate::explain::{confirm_commands, render};

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
}

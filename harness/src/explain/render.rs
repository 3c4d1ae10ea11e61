//! The explanation in words.

use std::fmt::Write as _;

use super::confirm::{commands_for, host_port};
use super::findings::{ExplainReport, Finding};

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
    use crate::explain::fixtures::{ALL_REASONS, INCIDENT};
    use crate::explain::{confirm_commands, explain};

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

//! Triage's report in words, part by part, in the order it is found.

use std::fmt::Write;
use std::path::Path;

use super::candidates::HopOutlook;
use super::confirm::Confirmation;
use super::hops::Routing;
use super::path::{PathObservation, PortPlan, PortSeen};
use super::source::HostConfig;
use crate::probe::{self, Observation, Starttls};

pub fn configuration(config: &HostConfig, routing: &Routing) -> String {
    let mut out = format!("== configuration ({})\n", config.origin);
    for hop in &routing.hops {
        let _ = writeln!(out, "next hop: {hop}");
    }
    for u in &routing.unresolved {
        let _ = writeln!(out, "not resolved: {u}");
    }
    out
}

pub fn mail_log(path: &Path, report: &crate::explain::ExplainReport) -> String {
    format!(
        "\n== mail log ({})\n{}",
        path.display(),
        crate::explain::render(report)
    )
}

fn port_words(plan: &PortPlan) -> String {
    let how = if plan.implicit_tls {
        "implicit TLS"
    } else {
        "STARTTLS"
    };
    format!("port {} ({how})", plan.port)
}

/// Each port's finding in one line, then what the probe saw.
pub fn path(path: &PathObservation) -> String {
    let mut out = format!("\n== path to {}", path.server_name);
    if path.host != path.server_name {
        let _ = write!(out, " (connecting to {})", path.host);
    }
    out.push_str(", no mail sent\n");
    for (plan, seen) in &path.ports {
        let _ = write!(out, "{}: ", port_words(plan));
        match seen {
            PortSeen::Answered(obs) => {
                let _ = writeln!(out, "{}", summary(obs));
                for line in obs.to_string().lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            PortSeen::Refused => out.push_str("connection refused\n"),
            PortSeen::Dropped => out.push_str("no answer to the connection (dropped)\n"),
            PortSeen::Failed(e) => {
                let _ = writeln!(out, "probe failed: {e}");
            }
        }
    }
    out
}

/// What a port showed, in one line: the probe's findings, or a clean
/// path's facts.
fn summary(obs: &Observation) -> String {
    let d = probe::diagnose(obs);
    if !d.findings.is_empty() {
        let texts: Vec<&str> = d.findings.iter().map(|f| f.text.as_str()).collect();
        return texts.join("; ");
    }
    if let Some(tls) = &obs.implicit_tls {
        return format!(
            "clean: implicit TLS, {} established, certificate {}",
            tls.version,
            tls.chain.verdict()
        );
    }
    match &obs.starttls {
        Starttls::Established { tls, .. } => format!(
            "clean: STARTTLS offered, {} established, certificate {}",
            tls.version,
            tls.chain.verdict()
        ),
        _ => "answered".to_owned(),
    }
}

/// Per candidate: the prediction, the verdict, its directory and the
/// command that confirms it.
pub fn outlook(o: &HopOutlook, written: &[(super::Candidate, String, Vec<String>)]) -> String {
    let mut out = format!(
        "\n== predictions for {} (from the probe, not yet run on Postfix)\n",
        o.hop.mail
    );
    let current = match &o.current {
        Ok(p) => p,
        Err(why) => {
            let _ = writeln!(out, "current: no prediction: {why}");
            return out;
        }
    };
    let _ = writeln!(
        out,
        "current ({}, {}): {}",
        current.side.level,
        port_words(&current.side.port),
        current.words()
    );
    for line in &current.why {
        let _ = writeln!(out, "    {line}");
    }
    for c in &o.candidates {
        let _ = writeln!(
            out,
            "{}: {} -> {}",
            c.candidate.label(),
            c.predicted.words(),
            c.verdict
        );
        if let Some(why) = &c.why {
            let _ = writeln!(out, "    {why}");
        }
        for line in &c.predicted.why {
            let _ = writeln!(out, "    {line}");
        }
        if let Some((_, command, notes)) = written.iter().find(|(k, _, _)| *k == c.candidate) {
            for n in notes {
                let _ = writeln!(out, "    note: {n}");
            }
            let _ = writeln!(out, "    confirm on real Postfix: {command}");
        }
    }
    for (c, why) in &o.withheld {
        let _ = writeln!(out, "{}: not offered: {why}", c.label());
    }
    match o.recommended() {
        Some(c) => {
            let _ = writeln!(out, "recommended: {}", c.candidate.label());
        }
        None if o.current_is_fine() => {
            out.push_str(
                "recommended: keep the current configuration (predicted to deliver over TLS)\n",
            );
        }
        None => out.push_str(
            "recommended: none of the standard candidates is predicted to be an upgrade\n",
        ),
    }
    out
}

pub fn confirmation(c: &Confirmation) -> String {
    let mut out = String::new();
    for (image, verdict, why) in &c.confirmed {
        let seen = verdict.map_or_else(|| "no verdict".to_owned(), |v| v.to_string());
        let word = if Some(c.predicted) == *verdict {
            "agrees with"
        } else {
            "DISAGREES with"
        };
        let _ = writeln!(
            out,
            "confirmed {} on {image}: {seen} ({word} the prediction, {})",
            c.candidate.label(),
            c.predicted
        );
        if let Some(why) = why {
            let _ = writeln!(out, "    {why}");
        }
    }
    if c.confirmed.is_empty() {
        let _ = writeln!(
            out,
            "confirmed {}: check compared no path (DISAGREES with the prediction, {})",
            c.candidate.label(),
            c.predicted
        );
    }
    out
}

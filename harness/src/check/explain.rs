//! `tlsharness explain LOGFILE`: reads Postfix log lines, names the path
//! conditions their failures point to, the built-in scenarios that
//! reproduce them, and how to confirm from inside the affected network.

use std::fmt::Write as _;

use serde::Serialize;

use crate::postfix::log::{LogEvent, LogLine};

/// A pattern in the log and what it means for the network path.
struct Rule {
    /// Text the status reason or a nearby line contains.
    needle: &'static str,
    condition: &'static str,
    scenarios: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        needle: "enabling PIX workarounds",
        condition: "the greeting was masked with asterisks (a Cisco PIX-style SMTP fixup on the path); Postfix fell back to HELO and never saw STARTTLS",
        scenarios: &["mask-banner"],
    },
    Rule {
        needle: "TLS is required, but was not offered by host",
        condition: "STARTTLS was not offered: the relay does not offer it, or something on the path removed or masked it (firewall SMTP inspection)",
        scenarios: &[
            "incident-587-strip",
            "mask-starttls",
            "mask-banner",
            "no-starttls-relay",
        ],
    },
    Rule {
        needle: "refused to start TLS: 4",
        condition: "STARTTLS was advertised but refused with a temporary error, by the relay or by a device answering for it",
        scenarios: &["reject-starttls-454"],
    },
    Rule {
        needle: "refused to start TLS: 5",
        condition: "STARTTLS was advertised but refused permanently (the message is returned), by the relay or a device answering for it",
        scenarios: &["reject-starttls-502"],
    },
    Rule {
        needle: "while receiving the STARTTLS response",
        condition: "the connection was cut when Postfix sent STARTTLS (a firewall dropping the command); no plaintext fallback follows",
        scenarios: &["drop-on-starttls", "drop-on-starttls-reset"],
    },
    Rule {
        needle: "Cannot start TLS: handshake failure",
        condition: "STARTTLS was accepted but the TLS handshake failed: a device breaking TLS on the path, or a protocol/cipher mismatch with the relay",
        scenarios: &[
            "fail-handshake-alert",
            "fail-handshake-garbage",
            "fail-handshake-close",
            "fail-handshake-reset",
            "fail-handshake-silence",
            "relay-tls12-only-postfix-requires-tls13",
        ],
    },
    Rule {
        needle: "self-signed certificate",
        condition: "the peer's certificate is self-signed: a misconfigured relay, or TLS interception with a self-signed certificate",
        scenarios: &["relay-cert-self-signed", "intercept-tls-self-signed"],
    },
    Rule {
        needle: "untrusted issuer",
        condition: "the peer's certificate chain does not lead to a CA Postfix trusts: an unknown CA, a missing intermediate, or TLS interception",
        scenarios: &[
            "starttls-relay-unknown-ca",
            "relay-cert-missing-intermediate",
            "intercept-tls-self-signed",
        ],
    },
    Rule {
        needle: "hostname mismatch",
        condition: "the certificate does not name the relay: the wrong certificate, or a device presenting its own",
        scenarios: &["starttls-relay-wrong-name", "relay-cert-wrong-name"],
    },
    Rule {
        needle: "certificate has expired",
        condition: "the relay's certificate has expired",
        scenarios: &["relay-cert-expired"],
    },
    Rule {
        needle: "certificate not yet valid",
        condition: "the relay's certificate is not valid yet (or a clock is wrong)",
        scenarios: &["relay-cert-not-yet-valid"],
    },
    Rule {
        needle: "timed out while receiving the initial server greeting",
        condition: "the relay never greeted: a path that stalls, or an implicit-TLS port (465) used without smtp_tls_wrappermode",
        scenarios: &["stall-greeting", "relay-implicit-tls-465-no-wrappermode"],
    },
    Rule {
        needle: "Must issue a STARTTLS command first",
        condition: "the relay requires TLS but Postfix sent MAIL in plaintext: STARTTLS was hidden on the path while the relay still enforces it",
        scenarios: &["relay-require-tls-stripped"],
    },
    Rule {
        needle: "Authentication required",
        condition: "the relay wanted AUTH but Postfix did not authenticate: AUTH is offered only inside TLS, and TLS was not used (STARTTLS hidden on the path?)",
        scenarios: &["incident-587-strip-sasl"],
    },
    Rule {
        needle: "no mechanism available",
        condition: "Postfix's SASL client refused every offered mechanism: smtp_sasl_security_options (default noplaintext) excludes PLAIN and LOGIN",
        scenarios: &["relay-auth-587-postfix-defaults"],
    },
    Rule {
        needle: "smtp_tls_wrappermode requires",
        condition: "smtp_tls_wrappermode is on but the level is below encrypt",
        scenarios: &["relay-implicit-tls-465"],
    },
    Rule {
        needle: "client TLS configuration problem",
        condition: "the client TLS policy cannot be applied (e.g. dane-only without DNSSEC lookups)",
        scenarios: &["relay-cert-trusted"],
    },
];

/// One failure pattern found in the log.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// The log line that shows it (the first one).
    pub example: String,
    /// How many delivery lines show it.
    pub count: usize,
    pub condition: String,
    pub scenarios: Vec<String>,
    /// The relay, as Postfix names it (`host[addr]:port`).
    pub relay: String,
}

/// Explains the failures in a mail log.
pub fn explain(log: &str) -> Vec<Explanation> {
    let lines: Vec<LogLine> = log.lines().map(LogLine::parse).collect();
    let mut found: Vec<Explanation> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let LogEvent::Delivery(d) = &line.event else {
            continue;
        };
        if d.status == "sent" {
            continue;
        }
        // Context: the reason, plus the same process's lines just before.
        let mut context = vec![d.reason.as_str()];
        context.extend(
            lines[..i]
                .iter()
                .rev()
                .take(20)
                .take_while(|l| !(l.pid == line.pid && matches!(l.event, LogEvent::Delivery(_))))
                .filter(|l| l.pid == line.pid || l.pid == 0)
                .map(|l| l.message.as_str()),
        );
        let Some(rule) = RULES
            .iter()
            .find(|r| context.iter().any(|c| c.contains(r.needle)))
        else {
            continue;
        };
        if let Some(e) = found.iter_mut().find(|e| e.condition == rule.condition) {
            e.count += 1;
            continue;
        }
        found.push(Explanation {
            example: line.raw.clone(),
            count: 1,
            condition: rule.condition.to_owned(),
            scenarios: rule.scenarios.iter().map(|s| (*s).to_owned()).collect(),
            relay: d.relay.clone(),
        });
    }
    found
}

/// `host` and `port` from Postfix's `host[addr]:port`.
fn host_port(relay: &str) -> Option<(String, String)> {
    let (host, rest) = relay.split_once('[')?;
    let port = rest.rsplit_once("]:").map(|(_, p)| p.to_owned())?;
    Some((host.to_owned(), port))
}

/// How to look at the path from inside the affected network.
pub fn confirm_commands(e: &Explanation) -> Vec<String> {
    let Some((host, port)) = host_port(&e.relay) else {
        return Vec::new();
    };
    vec![
        format!("posttls-finger -c -l secure -P /etc/ssl/certs \"[{host}]:{port}\""),
        format!(
            "openssl s_client -starttls smtp -connect {host}:{port} -servername {host} -verify_return_error </dev/null"
        ),
        format!("tlsharness probe {host}:{port} --out scenarios/this-network.toml"),
    ]
}

/// The explanations in words.
pub fn render(found: &[Explanation]) -> String {
    let mut out = String::new();
    if found.is_empty() {
        out.push_str(
            "no deferred or bounced delivery in this log matches a known path condition\n",
        );
        return out;
    }
    for e in found {
        let _ = writeln!(out, "{} delivery line(s) like:\n  {}", e.count, e.example);
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
        let commands = confirm_commands(e);
        if !commands.is_empty() {
            let _ = writeln!(
                out,
                "confirm from the affected host (and compare with a host where mail flows):"
            );
            for c in commands {
                let _ = writeln!(out, "  {c}");
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INCIDENT: &str = "Jun  8 04:29:56 hogepmail postfix/smtp[4242]: 000AB00000: TLS is required, but was not offered by host smtp.sendgrid.net[203.0.113.5]\nJun  8 04:29:57 hogepmail postfix/smtp[4242]: 000AB00000: to=<root@hoge.hoge.net>, orig_to=<root>, relay=smtp.sendgrid.net[203.0.113.5]:587, delay=948, delays=947/0.12/0.28/0, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host smtp.sendgrid.net[203.0.113.5])\n";

    #[test]
    fn explains_the_incident() {
        let found = explain(INCIDENT);
        assert_eq!(found.len(), 1);
        assert!(found[0].condition.contains("STARTTLS was not offered"));
        assert!(
            found[0]
                .scenarios
                .contains(&"incident-587-strip".to_owned())
        );
        let cmds = confirm_commands(&found[0]);
        assert!(
            cmds[1].contains("-connect smtp.sendgrid.net:587"),
            "{cmds:?}"
        );
    }

    #[test]
    fn every_named_scenario_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        for rule in RULES {
            for s in rule.scenarios {
                assert!(dir.join(format!("{s}.toml")).is_file(), "{s}");
            }
        }
    }

    #[test]
    fn pix_context_wins_over_the_status_reason() {
        let log = "Nov 27 21:45:06 h postfix/smtp[9]: BB908FE09E: enabling PIX workarounds: disable_esmtp for smtp.relay.test[127.0.0.1]:32971\nNov 27 21:45:06 h postfix/smtp[9]: BB908FE09E: to=<a@b>, relay=smtp.relay.test[127.0.0.1]:32971, delay=1, delays=1/0/0/0, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host smtp.relay.test[127.0.0.1])\n";
        let found = explain(log);
        assert!(found[0].condition.contains("PIX"), "{found:?}");
    }
}

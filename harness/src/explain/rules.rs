//! The rules: which status lines, with which reason and which clue in the
//! lines before, point to which condition of the path, and which built-in
//! scenarios reproduce it.

use crate::mta::log::{Delivery, LogEvent, LogLine};
use crate::outcome::Trust;

/// Which status lines a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status {
    /// `deferred`, `bounced` or `expired`.
    Failed,
    /// `sent` with no TLS session for the delivery.
    SentPlaintext,
}

/// A pattern in the log and what it means for the network path. A rule
/// applies when the status is `status`, the reason contains `reason` and a
/// context line contains `context` (an empty text matches anything).
pub(super) struct Rule {
    pub(super) status: Status,
    pub(super) reason: &'static str,
    pub(super) context: Clue,
    pub(super) condition: &'static str,
    pub(super) scenarios: &'static [&'static str],
}

/// What a rule needs from the lines before the status line.
#[derive(Clone, Copy)]
pub(super) enum Clue {
    None,
    /// A context line containing this text.
    Text(&'static str),
    /// A TLS session with this trust: Postfix 3.5 logs no "hostname
    /// mismatch" line, only a trusted session and then "not verified".
    Session(Trust),
}

/// The rules, most specific first: the first that applies wins.
pub(super) const RULES: &[Rule] = &[
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

impl Rule {
    pub(super) fn applies(&self, status: Status, d: &Delivery, context: &[&LogLine]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::explain;
    use crate::explain::fixtures::{
        ALL_REASONS, RELAY, case_of, is_plaintext, status, verdicts, without_addresses,
    };
    use crate::explain::judge::Verdict;
    use crate::level::Level;
    use crate::outcome::Outcome;
    use crate::scenario::builtin;

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
}

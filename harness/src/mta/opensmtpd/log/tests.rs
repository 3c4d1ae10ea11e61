//! The parser against the real smtpd logs in `fixtures/logs/opensmtpd/`:
//! every cell of that folder's table of policies and relay kinds is what
//! the parser makes of the cell's log.

use super::*;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs/opensmtpd")
}

/// The lab that wrote the fixtures gave case N the source 127.1.0.(N+1).
fn parse_file(name: &str) -> Vec<LogLine> {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    let sources: String = (0..16)
        .map(|n| format!("c{n}.tlsharness.test 127.1.0.{}\n", n + 1))
        .collect();
    let mut parser = Parser::new(&[("sources".to_owned(), sources.into_bytes())]);
    text.lines().map(|l| parser.parse(l)).collect()
}

/// What a cell of the table says, from the parsed log: the first
/// attempt's status (and TLS trust), or why there was none.
fn cell(lines: &[LogLine]) -> String {
    let first = lines.iter().find_map(|l| match &l.event {
        LogEvent::Delivery(d) => Some(d.clone()),
        _ => None,
    });
    let fell_back = lines
        .iter()
        .any(|l| matches!(l.event, LogEvent::RetriedInClear(_)));
    let Some(d) = first else {
        return if lines.iter().any(|l| matches!(l.event, LogEvent::Fatal(_))) {
            "crash".into()
        } else {
            "hang".into()
        };
    };
    match (d.status, &d.tls) {
        (Status::Sent, Some(t)) => format!(
            "TLS {}",
            match t.trust {
                Trust::Verified => "V",
                Trust::Trusted => "T",
                Trust::Untrusted => "U",
                Trust::Anonymous => "A",
            }
        ),
        (Status::Sent, None) if fell_back => "plain↓".into(),
        (Status::Sent, None) => "plain".into(),
        (Status::Bounced, _) => format!("B {}", d.dsn),
        (_, _) => {
            let r = &d.reason;
            let kind = if r.contains("certificate check failed") {
                "cert"
            } else if r.contains("TLS required but not supported") {
                "no-STARTTLS"
            } else if r.starts_with("STARTTLS rejected: 454") {
                "454"
            } else if r == "IO Error: No TLS error" {
                "EOF"
            } else if r.contains("wrong version number") {
                "version"
            } else if !d.dsn.is_empty() {
                d.dsn.as_str()
            } else {
                r.as_str()
            };
            format!("D {kind}")
        }
    }
}

#[test]
fn every_cell_of_the_fixtures_table_is_what_the_parser_reads() {
    let readme = std::fs::read_to_string(fixtures().join("README.md")).unwrap();
    let mut checked = 0;
    for row in readme.lines().filter(|l| l.starts_with("| `")) {
        for cell_text in row.split('|').skip(2) {
            let Some((said, rest)) = cell_text
                .trim()
                .strip_prefix('[')
                .and_then(|c| c.split_once("]("))
            else {
                continue;
            };
            let file = rest.trim_end_matches(')');
            let got = cell(&parse_file(file));
            assert_eq!(got, said, "{file}");
            checked += 1;
        }
    }
    assert!(checked >= 70, "{checked} cells");
    for file in ["tls-good-untrusted-ca.log", "smtps-smtps-untrusted-ca.log"] {
        assert_eq!(cell(&parse_file(file)), "D cert", "{file}");
    }
}

#[test]
fn a_route_s_tempfail_carries_the_session_s_error_and_lines() {
    let lines = parse_file("tls-wrongname.log");
    let (status, session_pid) = lines
        .iter()
        .find_map(|l| match &l.event {
            LogEvent::Delivery(d) => Some((d.clone(), l.pid)),
            _ => None,
        })
        .unwrap();
    assert_eq!(status.status, Status::Deferred);
    assert_eq!(status.reason, "SSL certificate check failed");
    assert_eq!(status.relay, "wrongname.relay.test[127.0.1.3]:587");
    assert_eq!(status.queue_id, "0209da32");
    assert_eq!(status.to, "r@c2.tlsharness.test");
    let error = lines
        .iter()
        .find(|l| l.message.starts_with("mta error"))
        .unwrap();
    assert_eq!(error.pid, session_pid);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.queue_id() == Some("0209da32"))
            .count(),
        4
    );
}

#[test]
fn start_up_and_the_crash_are_read() {
    let lines = parse_file("startup.log");
    assert!(lines.iter().any(|l| l.event
        == LogEvent::Started {
            version: "6.8.0p2".into()
        }));
    let lines = parse_file("opportunistic-extra220.log");
    assert!(
        lines
            .iter()
            .any(|l| matches!(&l.event, LogEvent::Fatal(m) if m.contains("pony socket closed")))
    );
}

#[test]
fn fields_read_quoted_and_bare() {
    let line = r#"x mta delivery evpid=0209da32b2ebb8ca to=<r@c2.tlsharness.test> relay="127.0.1.3 (w.relay.test)" result="Ok""#;
    assert_eq!(
        field(line, "relay").as_deref(),
        Some("127.0.1.3 (w.relay.test)")
    );
    assert_eq!(field(line, "to").as_deref(), Some("<r@c2.tlsharness.test>"));
    assert_eq!(field(line, "evpid").as_deref(), Some("0209da32b2ebb8ca"));
    assert_eq!(field(line, "pid"), None);
    assert_eq!(
        enhanced_code("550 5.1.1 <nobody>: no").as_deref(),
        Some("5.1.1")
    );
    assert_eq!(enhanced_code("Network error on destination MXs"), None);
}

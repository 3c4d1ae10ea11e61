//! `tlsharness explain` as a user runs it on a mail log: the real lines of
//! every built-in case on Postfix 3.5, 3.7 and 3.10.

mod common;

use common::tlsharness;
use tlsharness::exit;

fn explain(path: &str) -> (Option<i32>, String) {
    let out = tlsharness().args(["explain", path]).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn every_status_line_of_the_all_versions_log_is_accounted_for() {
    let (code, out) = explain("fixtures/logs/all-reasons.log");
    assert_eq!(code, Some(exit::SUCCESS), "{out}");
    assert!(out.contains("0 not recognised"), "{out}");
    assert!(!out.contains("not recognised (deferred"), "{out}");
    // The incident's state after `may`, and the credentials warning.
    assert!(
        out.contains("DELIVERED IN PLAINTEXT: ")
            && out.contains("the incident's state after `may`")
            && out.contains("scenarios/incident-587-strip-sasl-auth-before-tls.toml"),
        "{out}"
    );
    // Postfix 3.5's wording of a certificate failure, and 3.10's.
    assert!(out.contains("the relay's certificate has expired"), "{out}");
    assert!(out.contains("(Server certificate not trusted)"), "{out}");
}

#[test]
fn each_confirm_command_is_printed_once_per_relay() {
    let (_, out) = explain("fixtures/logs/all-reasons.log");
    for relay in [
        "smtp.relay.test:587",
        "smtp.sendgrid.net:587",
        "smtp.relay.test:465",
    ] {
        let probe = format!("tlsharness probe {relay} --out");
        assert_eq!(out.matches(&probe).count(), 1, "{probe}:\n{out}");
    }
}

#[test]
fn unrecognised_lines_are_listed_from_standard_input() {
    let line = "Nov 30 02:28:40 h postfix/smtp[3]: AAAAAA1: to=<a@b.test>, relay=mx.b.test[127.0.0.1]:25, delay=1, delays=1/0/0/0, dsn=4.3.1, status=deferred (host mx.b.test[127.0.0.1] said: 452 4.3.1 Insufficient system storage)\n";
    let mut child = tlsharness()
        .args(["explain", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), line.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("1 not recognised"), "{out}");
    assert!(
        out.contains("not recognised (deferred or bounced, no known path condition):\n  1 line(s) like:\n    Nov 30"),
        "{out}"
    );
}

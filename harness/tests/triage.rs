//! `tlsharness triage` on a host without Docker: the incident's
//! configuration and log, and a path on loopback whose 587 has STARTTLS
//! stripped and whose 465 is clean (tests/data/triage/stripping_path.py).
//! With Docker present, `--confirm` must agree with the predictions.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tlsharness::exit;
use tlsharness::pki::{CertKind, Pki};

const RELAY: &str = "smtp.sendgrid.net";

/// The Python path, killed when dropped.
struct StrippingPath {
    child: Child,
    _certs: tempfile::TempDir,
    ca: PathBuf,
}

impl Drop for StrippingPath {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

/// Starts the path on `address` and waits for the line it prints once
/// both ports listen.
fn start_path(address: &str) -> StrippingPath {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::new("triage-test").unwrap();
    let id = pki.identity(CertKind::Trusted, RELAY).unwrap();
    let chain: String = id.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
    let (cert, key, ca) = (
        certs.path().join("cert.pem"),
        certs.path().join("key.pem"),
        certs.path().join("ca.pem"),
    );
    std::fs::write(&cert, chain).unwrap();
    std::fs::write(&key, pem("PRIVATE KEY", id.key.secret_der())).unwrap();
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let mut child = Command::new("python3")
        .arg(common::data("triage/stripping_path.py"))
        .args([address.as_ref(), cert.as_os_str(), key.as_os_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the path says it is ready within 20s");
    assert!(
        line.starts_with("ready"),
        "the path did not start: {line:?}"
    );
    StrippingPath {
        child,
        _certs: certs,
        ca,
    }
}

fn triage(dir: &Path, args: &[&str], path: &StrippingPath, address: &str) -> Output {
    common::tlsharness()
        .current_dir(dir)
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .arg("triage")
        .args(["--config"])
        .arg(common::root().join("fixtures/configs/incident-before"))
        .arg("--log")
        .arg(common::root().join("fixtures/logs/incident.log"))
        .args(["--connect", address, "--timeout", "5", "--ca-file"])
        .arg(&path.ca)
        .args(args)
        .output()
        .expect("tlsharness runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The line of `out` that starts with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}"))
}

#[test]
fn triage_without_docker_names_the_stripped_587_and_predicts_the_465_fix() {
    let started = Instant::now();
    let address = "127.0.0.78";
    let path = start_path(address);
    let dir = tempfile::tempdir().unwrap();
    let out = triage(dir.path(), &[], &path, address);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(exit::SUCCESS), "{all}");

    // The log: what the deferrals point to.
    assert!(
        all.contains("TLS is required, but was not offered by host"),
        "{all}"
    );
    assert!(all.contains("likely: STARTTLS was not offered"), "{all}");
    // The path, port by port.
    assert!(
        line(&all, "port 587 (STARTTLS): ")
            .contains("STARTTLS missing from the EHLO reply: consistent with strip-starttls"),
        "{all}"
    );
    let tls465 = line(&all, "port 465 (implicit TLS): ");
    assert!(
        tls465.contains("clean") && tls465.contains("verified"),
        "{all}"
    );
    assert!(
        line(&all, "port 25 (STARTTLS): ").contains("refused"),
        "{all}"
    );

    // The predictions and their verdicts, as check words them.
    assert!(
        line(&all, "current (encrypt, port 587 (STARTTLS)): ").ends_with("deferred 4.7.4"),
        "{all}"
    );
    let may = line(&all, "(a) smtp_tls_security_level = may: ");
    assert!(may.ends_with("-> DOWNGRADE"), "{all}");
    assert!(
        may.contains("PLAINTEXT +CREDENTIALS"),
        "AUTH is offered in the clear: {all}"
    );
    assert!(
        line(
            &all,
            "(b) relayhost on 465, smtp_tls_wrappermode = yes, encrypt: "
        )
        .ends_with("-> upgrade"),
        "{all}"
    );
    assert!(
        line(
            &all,
            "(c) relayhost on 465, smtp_tls_wrappermode = yes, secure: "
        )
        .ends_with("tls verified -> upgrade"),
        "{all}"
    );
    assert!(line(&all, "recommended: ").contains("(c)"), "{all}");

    // The files and the commands that confirm them on real Postfix.
    let scenario = dir.path().join("triage.toml");
    tlsharness::scenario::load_file(&scenario).expect("the scenario written loads");
    let config = common::root().join("fixtures/configs/incident-before");
    for slug in [
        "candidate-may",
        "candidate-465-encrypt",
        "candidate-465-secure",
    ] {
        let command = format!(
            "confirm on real Postfix: tlsharness check --config {} --candidate triage-candidates/{slug} triage.toml",
            config.display()
        );
        assert!(all.contains(&command), "{command}\n{all}");
    }
    let secure = dir.path().join("triage-candidates/candidate-465-secure");
    let main = std::fs::read_to_string(secure.join("main.cf")).unwrap();
    let p = tlsharness::check::parameters(&main);
    assert_eq!(p["relayhost"], "[smtp.sendgrid.net]:465");
    assert_eq!(p["smtp_tls_wrappermode"], "yes");
    assert_eq!(p["smtp_tls_security_level"], "secure");
    let before =
        tlsharness::check::parameters(&std::fs::read_to_string(config.join("main.cf")).unwrap());
    let changed: Vec<&String> = before
        .keys()
        .filter(|k| before.get(*k) != p.get(*k))
        .collect();
    assert_eq!(
        changed,
        ["relayhost", "smtp_tls_security_level"],
        "only the candidate's changes"
    );
    let sasl = std::fs::read_to_string(secure.join("sasl_passwd")).unwrap();
    assert!(sasl.contains("[smtp.sendgrid.net]:465 apikey:"), "{sasl}");

    // Written once; a second run refuses to overwrite without --force.
    let again = triage(dir.path(), &[], &path, address);
    assert_eq!(
        again.status.code(),
        Some(exit::BAD_INPUT),
        "{}",
        text(&again)
    );
    assert!(
        text(&again).contains("triage.toml exists; pass --force"),
        "{}",
        text(&again)
    );
    let forced = triage(dir.path(), &["--force"], &path, address);
    assert_eq!(
        forced.status.code(),
        Some(exit::SUCCESS),
        "{}",
        text(&forced)
    );
    eprintln!("triage without docker: {:?}", started.elapsed());
}

#[test]
fn unreadable_config_and_log_are_named_with_their_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &Path, log: &Path| {
        common::tlsharness()
            .current_dir(dir.path())
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .arg("triage")
            .arg("--config")
            .arg(config)
            .arg("--log")
            .arg(log)
            .output()
            .unwrap()
    };
    let log = common::root().join("fixtures/logs/incident.log");
    let config = common::root().join("fixtures/configs/incident-before");
    let missing = dir.path().join("no-such-postfix");
    let out = run(&missing, &log);
    assert_eq!(out.status.code(), Some(exit::UNREADABLE), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed to read the postfix configuration")
            && err.contains("no-such-postfix: cannot read"),
        "{err}"
    );

    let no_main = tempfile::tempdir().unwrap();
    let out = run(no_main.path(), &log);
    assert_eq!(out.status.code(), Some(exit::UNREADABLE), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no main.cf"),
        "{}",
        text(&out)
    );

    let unreadable = dir.path().join("mail.log");
    std::fs::create_dir(&unreadable).unwrap(); // a directory cannot be read as a log
    let out = run(&config, &unreadable);
    assert_eq!(out.status.code(), Some(exit::UNREADABLE), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed to read a mail log") && err.contains("mail.log: cannot read"),
        "{err}"
    );
    assert!(err.contains("--log FILE"), "{err}");
    // Nothing was probed or written.
    assert!(!dir.path().join("triage.toml").exists());

    let out = common::tlsharness()
        .args(["triage", "--timeout", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
}

/// Docker: every candidate's check on real Postfix reaches the predicted
/// verdict.
#[test]
fn confirm_agrees_with_the_predictions_on_real_postfix() {
    common::in_process();
    let started = Instant::now();
    let address = "127.0.0.79";
    let path = start_path(address);
    let dir = tempfile::tempdir().unwrap();
    let out = common::tlsharness()
        .current_dir(dir.path())
        .arg("triage")
        .arg("--config")
        .arg(common::root().join("fixtures/configs/incident-before"))
        .arg("--log")
        .arg(common::root().join("fixtures/logs/incident.log"))
        .args([
            "--connect",
            address,
            "--timeout",
            "5",
            "--confirm",
            "--ca-file",
        ])
        .arg(&path.ca)
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(exit::SUCCESS), "{all}");
    let confirmed: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("confirmed "))
        .collect();
    assert_eq!(confirmed.len(), 3, "one per candidate on one image: {all}");
    for l in &confirmed {
        assert!(l.contains("(agrees with the prediction"), "{all}");
    }
    assert!(
        line(&all, "confirmed (a)").contains(": DOWNGRADE (agrees"),
        "{all}"
    );
    assert!(
        line(&all, "confirmed (b)").contains(": upgrade (agrees"),
        "{all}"
    );
    eprintln!("triage --confirm: {:?}", started.elapsed());
}

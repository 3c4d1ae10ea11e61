//! `tlsharness check` on configurations that carry Postfix's obsolete TLS
//! settings (`smtp_use_tls`, `smtp_enforce_tls`,
//! `smtp_tls_enforce_peername`), on Postfix 3.5, 3.7 and 3.10 (issue #26).
//!
//! What to expect comes from Postfix, not from the harness: on every one
//! of those versions `global_tls_level()` (src/smtp/smtp_tls_policy.c)
//! takes a non-empty `smtp_tls_security_level` as it is; only an empty
//! one leaves the level to `smtp_enforce_tls` (then `verify`, or
//! `encrypt` with `smtp_tls_enforce_peername = no`) and then to
//! `smtp_use_tls` (`may`), else `none`. postconf.5 says the same: "When a
//! non-empty value is specified, this overrides the obsolete parameters
//! smtp_use_tls, smtp_enforce_tls, and smtp_tls_enforce_peername". 3.10
//! warns of `smtp_use_tls` and `smtp_enforce_tls` (postconf_unused.c), not
//! of `smtp_tls_enforce_peername`, and still honours all three.

mod common;

use common::tlsharness;
use tlsharness::exit;

const IMAGES: [(&str, &str); 3] = [
    ("tlsharness/postfix:bullseye", "3.5."),
    ("tlsharness/postfix:bookworm", "3.7."),
    ("tlsharness/postfix:trixie", "3.10."),
];

const TRIXIE: &str = "tlsharness/postfix:trixie";

/// `check` with `args` on every built-in image: exit code, stdout, stderr
/// and the JSON report.
fn check_all_versions(args: &[&str]) -> (Option<i32>, String, String, serde_json::Value) {
    let json = tempfile::tempdir().unwrap();
    let path = json.path().join("check.json");
    let out = tlsharness()
        .arg("check")
        .args(args)
        .args(["--all-versions", "--json", path.to_str().unwrap()])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out.status.code(), stdout, stderr, report)
}

/// A copy of the incident's "before" configuration (encrypt on 587, SASL)
/// with `edit` applied to its main.cf, in a fresh directory.
fn incident_before(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = common::root().join("fixtures/configs/incident-before");
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let mut text = std::fs::read_to_string(entry.path()).unwrap();
        if entry.file_name() == "main.cf" {
            text = edit(text);
        }
        std::fs::write(dir.path().join(entry.file_name()), text).unwrap();
    }
    dir
}

/// incident-before without `smtp_tls_security_level`, with `obsolete`
/// added instead.
fn only_obsolete(obsolete: &str) -> tempfile::TempDir {
    incident_before(|main| {
        let without = main.replace("smtp_tls_security_level = encrypt\n", "");
        assert!(!without.contains("smtp_tls_security_level"), "{main}");
        without + obsolete
    })
}

/// The part of the report under `image`'s header, up to the next one.
fn section<'a>(stdout: &'a str, image: &str) -> &'a str {
    let head = format!("\n{image} (Postfix ");
    let start = stdout
        .find(&head)
        .unwrap_or_else(|| panic!("no section for {image}: {stdout}"));
    let rest = &stdout[start + 1..];
    let end = rest[1..]
        .find("\ntlsharness/postfix:")
        .or_else(|| rest.find("\nAcross Postfix versions:"))
        .map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// The JSON comparison of `scenario` on `image`.
fn comparison<'a>(
    report: &'a serde_json::Value,
    scenario: &str,
    image: &str,
) -> &'a serde_json::Value {
    report
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["scenario"] == scenario && c["image"] == image)
        })
        .unwrap_or_else(|| panic!("no comparison of {scenario} on {image}: {report}"))
}

/// Postfix's log lines of one side of a comparison.
fn log_of(c: &serde_json::Value, side: &str) -> Vec<String> {
    c[side]["log"]
        .as_array()
        .unwrap_or_else(|| panic!("no {side} log: {c}"))
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_owned())
        .collect()
}

fn deprecated(parameter: &str) -> String {
    format!(
        "/etc/postfix/main.cf: support for parameter \"{parameter}\" will be removed; instead, specify \"smtp_tls_security_level\""
    )
}

#[test]
fn the_web_s_cure_smtp_enforce_tls_no_beside_encrypt_changes_no_path_on_any_version() {
    let candidate = incident_before(|main| main + "smtp_enforce_tls = no\n");
    let (code, stdout, stderr, report) = check_all_versions(&[
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        candidate.path().to_str().unwrap(),
        "scenarios/incident-587-strip.toml",
        "scenarios/starttls-relay.toml",
    ]);
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("\nno path changes: the candidate gives the same outcome as the current configuration on every path and image.\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  smtp_enforce_tls: (not set) -> no\n"),
        "{stdout}"
    );
    for (image, version) in IMAGES {
        let part = section(&stdout, image);
        assert!(
            part.starts_with(&format!("{image} (Postfix {version}")),
            "{part}"
        );
        for scenario in ["incident-587-strip", "starttls-relay"] {
            let row = common::row(part, scenario);
            assert_eq!(row.len(), 1, "{image}: {part}");
            assert!(row[0].ends_with("  same"), "{image}: {row:?}");
        }
        assert!(
            part.contains("  candidate: Postfix applies TLS level encrypt to [smtp.sendgrid.net]:587 (set by smtp_tls_security_level in main.cf; the obsolete smtp_enforce_tls = no in main.cf is ignored: smtp_tls_security_level overrides it)\n"),
            "{image}: {part}"
        );
        // Postfix itself, on the stripping path, under both sides:
        //   postfix/smtp[..]: ...: to=<incident-587-strip@s0.check.tlsharness.invalid>, relay=smtp.sendgrid.net[127.0.1.1]:587, ..., dsn=4.7.4, status=deferred (TLS is required, but was not offered by host smtp.sendgrid.net[127.0.1.1])
        // had `smtp_enforce_tls = no` counted, the candidate's level
        // would have been none and the mail sent in plaintext.
        let strip = comparison(&report, "incident-587-strip", image);
        for side in ["current", "candidate"] {
            assert!(
                log_of(strip, side).iter().any(|l| l.contains(
                    "status=deferred (TLS is required, but was not offered by host smtp.sendgrid.net[127.0.1.1])"
                )),
                "{image} {side}: {strip}"
            );
        }
        // And on the clean path, both sides:
        //   postfix/smtp[..]: Trusted TLS connection established to smtp.sendgrid.net[127.0.1.1]:587: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 ...
        let clean = comparison(&report, "starttls-relay", image);
        for side in ["current", "candidate"] {
            assert!(
                log_of(clean, side).iter().any(|l| l.contains(
                    "Trusted TLS connection established to smtp.sendgrid.net[127.0.1.1]:587"
                )),
                "{image} {side}: {clean}"
            );
        }
    }
    // Only 3.10 warns, and only of the candidate, which sets it.
    let warning = format!(
        "  candidate: Postfix 3.10.13 warns: {}\n",
        deprecated("smtp_enforce_tls")
    );
    assert!(section(&stdout, TRIXIE).contains(&warning), "{stdout}");
    assert_eq!(stdout.matches(" warns: ").count(), 1, "{stdout}");
    let strip = comparison(&report, "incident-587-strip", TRIXIE);
    assert_eq!(
        strip["warnings"],
        serde_json::json!({ "candidate": [deprecated("smtp_enforce_tls")] }),
        "{strip}"
    );
}

#[test]
fn with_only_the_obsolete_settings_enforce_defers_and_use_tls_delivers_in_plaintext() {
    let enforce = only_obsolete("smtp_enforce_tls = yes\n");
    let use_tls = only_obsolete("smtp_use_tls = yes\n");
    let (code, stdout, stderr, report) = check_all_versions(&[
        "--config",
        enforce.path().to_str().unwrap(),
        "--candidate",
        use_tls.path().to_str().unwrap(),
        "scenarios/incident-587-strip.toml",
    ]);
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    for (image, _) in IMAGES {
        let part = section(&stdout, image);
        assert!(
            part.contains("  current: Postfix applies TLS level verify to [smtp.sendgrid.net]:587 (set by the obsolete smtp_enforce_tls = yes in main.cf, with smtp_tls_enforce_peername = yes (its default): verify; smtp_tls_security_level is not set)\n"),
            "{image}: {part}"
        );
        assert!(
            part.contains("  candidate: Postfix applies TLS level may to [smtp.sendgrid.net]:587 (set by the obsolete smtp_use_tls = yes in main.cf; smtp_tls_security_level is not set)\n"),
            "{image}: {part}"
        );
        assert!(
            part.contains("current (verify)") && part.contains("candidate (may)"),
            "{image}: {part}"
        );
        let row = common::row(part, "incident-587-strip");
        assert!(row[0].contains("deferred 4.7.4"), "{image}: {row:?}");
        assert!(row[0].contains("PLAINTEXT"), "{image}: {row:?}");
        assert!(row[0].ends_with("DOWNGRADE"), "{image}: {row:?}");
        let c = comparison(&report, "incident-587-strip", image);
        assert_eq!(c["current"]["tls_policy"]["level"], "verify", "{c}");
        assert_eq!(c["candidate"]["tls_policy"]["level"], "may", "{c}");
        // smtp_enforce_tls = yes, STARTTLS stripped on the way:
        //   postfix/smtp[..]: ...: to=<incident-587-strip@s0.check.tlsharness.invalid>, relay=smtp.sendgrid.net[127.0.1.1]:587, ..., dsn=4.7.4, status=deferred (TLS is required, but was not offered by host smtp.sendgrid.net[127.0.1.1])
        assert!(
            log_of(c, "current").iter().any(|l| l.contains(
                "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host smtp.sendgrid.net[127.0.1.1])"
            )),
            "{image}: {c}"
        );
        // smtp_use_tls = yes, the same path: no TLS session, and sent:
        //   postfix/smtp[..]: ...: to=<incident-587-strip@s0.check.tlsharness.invalid>, relay=smtp.sendgrid.net[127.0.1.1]:587, ..., dsn=2.0.0, status=sent (250 2.0.0 Ok: accepted in plaintext by tlsharness relay smtp.sendgrid.net)
        let candidate = log_of(c, "candidate");
        assert!(
            candidate
                .iter()
                .any(|l| l.contains("dsn=2.0.0, status=sent")),
            "{image}: {c}"
        );
        assert!(
            !candidate
                .iter()
                .any(|l| l.contains("TLS connection established")),
            "{image}: {c}"
        );
    }
    let trixie = section(&stdout, TRIXIE);
    assert!(
        trixie.contains(&format!(
            "  current: Postfix 3.10.13 warns: {}\n  candidate: Postfix 3.10.13 warns: {}\n",
            deprecated("smtp_enforce_tls"),
            deprecated("smtp_use_tls")
        )),
        "{stdout}"
    );
    assert_eq!(stdout.matches(" warns: ").count(), 2, "{stdout}");
}

#[test]
fn smtp_tls_enforce_peername_no_turns_the_obsolete_enforcement_from_verify_to_encrypt() {
    let verify = only_obsolete("smtp_enforce_tls = yes\n");
    let encrypt = only_obsolete("smtp_enforce_tls = yes\nsmtp_tls_enforce_peername = no\n");
    let (code, stdout, stderr, report) = check_all_versions(&[
        "--config",
        verify.path().to_str().unwrap(),
        "--candidate",
        encrypt.path().to_str().unwrap(),
        "scenarios/starttls-relay.toml",
    ]);
    // The name no longer checked: weaker trust, a downgrade.
    assert_eq!(code, Some(exit::REGRESSION), "{stdout}\n{stderr}");
    for (image, _) in IMAGES {
        let part = section(&stdout, image);
        assert!(
            part.contains("  candidate: Postfix applies TLS level encrypt to [smtp.sendgrid.net]:587 (set by the obsolete smtp_enforce_tls = yes in main.cf, with smtp_tls_enforce_peername = no in main.cf: encrypt; smtp_tls_security_level is not set)\n"),
            "{image}: {part}"
        );
        let row = common::row(part, "starttls-relay");
        assert!(row[0].contains("tls verified"), "{image}: {row:?}");
        assert!(row[0].contains("tls trusted"), "{image}: {row:?}");
        assert!(row[0].ends_with("DOWNGRADE"), "{image}: {row:?}");
        // verify checks the name, encrypt does not (the chain alone makes
        // the session Trusted):
        //   postfix/smtp[..]: Verified TLS connection established to smtp.sendgrid.net[127.0.1.1]:587: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 ...
        //   postfix/smtp[..]: Trusted TLS connection established to smtp.sendgrid.net[127.0.1.1]:587: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 ...
        let c = comparison(&report, "starttls-relay", image);
        for (side, trust) in [("current", "Verified"), ("candidate", "Trusted")] {
            assert!(
                log_of(c, side).iter().any(|l| l.contains(&format!(
                    "{trust} TLS connection established to smtp.sendgrid.net[127.0.1.1]:587"
                ))),
                "{image} {side}: {c}"
            );
        }
    }
    // 3.10 warns of smtp_enforce_tls on both sides, of
    // smtp_tls_enforce_peername never.
    assert_eq!(stdout.matches(" warns: ").count(), 2, "{stdout}");
    assert!(
        !stdout.contains("\"smtp_tls_enforce_peername\""),
        "{stdout}"
    );
}

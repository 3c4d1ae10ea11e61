//! A misspelled Postfix parameter is the configuration's fault, said at
//! once: in a scenario's settings by `validate`, in main.cf by `check`
//! before any case, in Postfix's own words. And the list of names
//! `validate` knows is Postfix's own, regenerated from the images.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::tlsharness;
use tlsharness::exit;

/// The built-in images, whose `postconf -d` is the parameter list.
const IMAGES: [&str; 3] = [
    "tlsharness/postfix:bullseye",
    "tlsharness/postfix:bookworm",
    "tlsharness/postfix:trixie",
];

const PARAMETERS: &str = "fixtures/postfix/parameters.txt";

/// Set to write fixtures/postfix/parameters.txt from the images instead
/// of comparing.
const REGENERATE: &str = "TLSHARNESS_WRITE_PARAMETERS";

/// What `docker run IMAGE sh -c SCRIPT` prints on stdout.
fn in_image(image: &str, script: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--entrypoint", "sh"])
        .args([image, "-c", script])
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "{image}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("postconf prints UTF-8")
}

/// The parameter file as the images make it.
fn parameters_from_images() -> String {
    let mut names = BTreeSet::new();
    let mut versions = Vec::new();
    for image in IMAGES {
        let version = in_image(image, "postconf -h mail_version");
        let tag = image.rsplit(':').next().expect("a tag");
        versions.push(format!("{tag} ({})", version.trim()));
        for line in in_image(image, "postconf -d").lines() {
            let (name, _) = line.split_once(" =").expect("name = value");
            names.insert(name.to_owned());
        }
    }
    let mut text = format!(
        "# Every Postfix parameter name: the union of `postconf -d` on the built-in\n\
         # images tlsharness/postfix:{}.\n\
         # Written by harness/tests/blame.rs; after an image changes, from harness/:\n\
         #   {REGENERATE}=1 cargo test --test blame the_parameter_list\n",
        versions.join(", ")
    );
    for name in names {
        text.push_str(&name);
        text.push('\n');
    }
    text
}

#[test]
fn the_parameter_list_is_the_images_postconf() {
    let made = parameters_from_images();
    let path = common::root().join(PARAMETERS);
    if std::env::var_os(REGENERATE).is_some() {
        std::fs::write(&path, &made).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    let lines = |t: &str| -> BTreeSet<String> { t.lines().map(str::to_owned).collect() };
    let (made_lines, committed_lines) = (lines(&made), lines(&committed));
    assert!(
        committed == made,
        "{PARAMETERS} is not the images' `postconf -d`: only in the images: {:?}; only in the file: {:?}. \
         Regenerate it from harness/ with `{REGENERATE}=1 cargo test --test blame the_parameter_list` and commit it",
        made_lines.difference(&committed_lines).collect::<Vec<_>>(),
        committed_lines.difference(&made_lines).collect::<Vec<_>>(),
    );
}

#[test]
fn validate_refuses_a_misspelled_setting_located_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("scenarios/stall-greeting.toml"))
        .unwrap()
        .replace(
            r#"settings = { smtp_helo_timeout = "2s" }"#,
            r#"settings = { smtp_helo_timeout = "2s", smtp_tls_mandatry_protocols = ">=TLSv1.2" }"#,
        );
    assert!(text.contains("smtp_tls_mandatry_protocols"), "{text}");
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, &text).unwrap();
    let out = tlsharness().arg("validate").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{stderr}");
    let line = text
        .lines()
        .position(|l| l.contains("smtp_tls_mandatry_protocols"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "{}:{line}:",
            path.display()
        )) && stderr.contains(
            "postfix.settings.smtp_tls_mandatry_protocols: `smtp_tls_mandatry_protocols` is not a Postfix parameter"
        ) && stderr.contains("did you mean `smtp_tls_mandatory_protocols`?"),
        "{stderr}"
    );
}

fn check(args: &[&str]) -> (Option<i32>, String, String, Duration) {
    let t = Instant::now();
    let out = tlsharness().arg("check").args(args).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

/// A copy of the incident's `which` configuration (before or after) with
/// a misspelled parameter added to its main.cf.
fn misspelled(which: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = common::root().join("fixtures/configs").join(which);
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        let mut text = std::fs::read_to_string(entry.path()).unwrap();
        if entry.file_name() == "main.cf" {
            assert!(text.contains("\nbiff = no\n"), "{text}");
            text = text.replace(
                "\nbiff = no\n",
                "\nbiff = no\nsmtp_tls_mandatry_ciphers = high\n",
            );
        }
        std::fs::write(dir.path().join(entry.file_name()), text).unwrap();
    }
    dir
}

const WARNING: &str =
    "postconf: warning: /etc/postfix/main.cf: unused parameter: smtp_tls_mandatry_ciphers=high";

/// Checks `current` against `candidate` on the slow scenario, on the
/// oldest and newest built-in Postfix.
fn check_slow(current: &str, candidate: &str) -> (Option<i32>, String, String, Duration) {
    let scenarios = tempfile::tempdir().unwrap();
    let scenario = common::slow_scenario(scenarios.path());
    let attempt_timeout = (common::SLOW_CASE * 3 / 2).as_secs().to_string();
    check(&[
        "--config",
        current,
        "--candidate",
        candidate,
        "--image",
        IMAGES[0],
        "--image",
        IMAGES[2],
        "--attempt-timeout",
        &attempt_timeout,
        &scenario,
    ])
}

#[test]
fn a_misspelled_parameter_in_the_candidate_is_its_refusal_before_any_case() {
    let candidate = misspelled("incident-after");
    let candidate = candidate.path().to_str().unwrap();
    let (code, stdout, stderr, took) = check_slow("fixtures/configs/incident-before", candidate);
    assert_eq!(code, Some(exit::BAD_INPUT), "{stdout}\n{stderr}");
    for image in [IMAGES[0], IMAGES[2]] {
        assert!(
            stderr.contains(&format!(
                "Postfix ({image}) refused the candidate configuration {candidate} when postconf read it, before any case ran:\n  {WARNING}"
            )),
            "{image}: {stderr}"
        );
    }
    assert!(!stderr.contains("current configuration"), "{stderr}");
    assert_eq!(stdout, "", "no case ran");
    assert!(took < Duration::from_secs(30), "took {took:?}: {stderr}");
}

#[test]
fn a_misspelled_parameter_in_the_current_configuration_is_its_refusal_too() {
    let current = misspelled("incident-before");
    let current = current.path().to_str().unwrap();
    let (code, stdout, stderr, took) = check_slow(current, "fixtures/configs/incident-after");
    assert_eq!(code, Some(exit::BAD_INPUT), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "refused the current configuration {current} when postconf read it, before any case ran:\n  {WARNING}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("candidate configuration"), "{stderr}");
    assert_eq!(stdout, "", "no case ran");
    assert!(took < Duration::from_secs(30), "took {took:?}: {stderr}");
}

#[test]
fn the_harness_s_own_additions_draw_no_warning_on_any_image() {
    // Every built-in scenario that sets something, on every image: what
    // the harness adds to main.cf and master.cf (and the scenarios'
    // settings) must not read as the user's unused parameters.
    let with_settings: Vec<String> = std::fs::read_dir(common::root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("settings"))
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    assert!(with_settings.len() >= 5, "{with_settings:?}");
    let mut args = vec![
        "--config",
        "fixtures/configs/incident-before",
        "--candidate",
        "fixtures/configs/incident-after",
        "--all-versions",
    ];
    args.extend(with_settings.iter().map(String::as_str));
    let (code, stdout, stderr, _) = check(&args);
    assert!(!stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("unused parameter"), "{stderr}");
    assert!(
        code == Some(exit::SUCCESS) || code == Some(exit::REGRESSION),
        "{code:?}: {stdout}\n{stderr}"
    );
    for image in IMAGES {
        assert!(stdout.contains(image), "{image}: {stdout}");
    }
}

//! The binary as a user of another repository runs it: from a directory
//! holding only their configuration (main.cf and its SASL map) before and
//! after a change, nothing of this source tree in sight.

mod common;

use std::path::Path;
use std::process::Command;

use tlsharness::exit;

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The binary with `dir` as its working directory.
fn tlsharness_in(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsharness"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the binary runs");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An infrastructure repository: `current/` (the base branch) and
/// `candidate/` (the change), each a main.cf and its sasl_passwd, and
/// nothing else.
fn infrastructure_repository() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    for (side, fixture) in [
        ("current", "incident-before"),
        ("candidate", "incident-after"),
    ] {
        let dir = repo.path().join(side);
        std::fs::create_dir(&dir).unwrap();
        for file in ["main.cf", "sasl_passwd"] {
            std::fs::copy(
                common::root()
                    .join("fixtures/configs")
                    .join(fixture)
                    .join(file),
                dir.join(file),
            )
            .unwrap();
        }
    }
    repo
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn check_runs_the_built_in_library_from_another_repository() {
    let repo = infrastructure_repository();
    let out = tlsharness_in(
        repo.path(),
        &[
            "check",
            "--config",
            "current",
            "--candidate",
            "candidate",
            "--scenario",
            "incident-587-strip",
            "--scenario",
            "starttls-relay",
        ],
    );
    let context = format!("{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, Some(exit::REGRESSION), "{context}");
    let strip = common::row(&out.stdout, "incident-587-strip");
    assert_eq!(strip.len(), 1, "{context}");
    assert!(strip[0].contains("deferred 4.7.4"), "{context}");
    assert!(strip[0].contains("PLAINTEXT"), "{context}");
    assert!(strip[0].ends_with("DOWNGRADE"), "{context}");
    let clean = common::row(&out.stdout, "starttls-relay");
    assert_eq!(clean.len(), 1, "{context}");
    assert!(clean[0].ends_with("same"), "{context}");
    assert!(out.stdout.contains("current: current"), "{context}");
    // Only the built-in library was read: nothing was written beside the
    // user's configuration.
    assert_eq!(names_in(repo.path()), ["candidate", "current"]);
}

#[test]
fn run_and_validate_use_the_built_in_library_without_a_scenarios_directory() {
    let repo = infrastructure_repository();
    let source = common::root().join("scenarios");
    let count = names_in(&source)
        .iter()
        .filter(|n| n.ends_with(".toml"))
        .count();

    let out = tlsharness_in(repo.path(), &["validate"]);
    assert_eq!(out.code, Some(exit::SUCCESS), "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("{count} scenario file(s) are valid")),
        "{}",
        out.stdout
    );

    // --list needs no Docker: it shows which library was selected from.
    let out = tlsharness_in(
        repo.path(),
        &["run", "--list", "--scenario", "incident-587-strip"],
    );
    assert_eq!(out.code, Some(exit::SUCCESS), "{}", out.stderr);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "incident-587-strip/none",
            "incident-587-strip/may",
            "incident-587-strip/encrypt",
            "incident-587-strip/verify",
            "incident-587-strip/secure",
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn export_writes_the_library_which_then_takes_precedence() {
    let repo = infrastructure_repository();
    let source = common::root().join("scenarios");
    let built_in: Vec<String> = names_in(&source)
        .into_iter()
        .filter(|n| n.ends_with(".toml"))
        .collect();

    let out = tlsharness_in(repo.path(), &["scenarios", "export", "scenarios"]);
    assert_eq!(out.code, Some(exit::SUCCESS), "{}", out.stderr);
    let exported = repo.path().join("scenarios");
    assert_eq!(names_in(&exported), built_in);
    for name in &built_in {
        assert!(
            std::fs::read(exported.join(name)).unwrap()
                == std::fs::read(source.join(name)).unwrap(),
            "{name} differs from the source tree's"
        );
    }
    let listed: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(listed.len(), built_in.len(), "{}", out.stdout);
    assert_eq!(listed[0], format!("scenarios/{}", built_in[0]));

    // Again: refused, nothing touched.
    let edited = exported.join("incident-587-strip.toml");
    std::fs::write(&edited, "name = \"mine\"\n[relai]\n").unwrap();
    let out = tlsharness_in(repo.path(), &["scenarios", "export", "scenarios"]);
    assert_eq!(out.code, Some(exit::BAD_INPUT), "{}", out.stderr);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);

    // ./scenarios, now present, is what a bare validate reads: the edit shows.
    let out = tlsharness_in(repo.path(), &["validate"]);
    assert_eq!(out.code, Some(exit::BAD_INPUT), "{}", out.stderr);
    assert!(
        out.stderr.contains("scenarios/incident-587-strip.toml:"),
        "{}",
        out.stderr
    );

    let out = tlsharness_in(
        repo.path(),
        &["scenarios", "export", "scenarios", "--force"],
    );
    assert_eq!(out.code, Some(exit::SUCCESS), "{}", out.stderr);
    assert!(
        std::fs::read(&edited).unwrap()
            == std::fs::read(source.join("incident-587-strip.toml")).unwrap()
    );
    let out = tlsharness_in(repo.path(), &["validate"]);
    assert_eq!(out.code, Some(exit::SUCCESS), "{}", out.stderr);
}

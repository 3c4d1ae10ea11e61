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

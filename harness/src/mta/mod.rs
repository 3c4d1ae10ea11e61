//! The MTA under test, behind one boundary. For a run's cases ([`Target`]:
//! where each case's mail goes, under which TLS policy) an MTA renders
//! its configuration ([`Rendered`]); its container is started, readied,
//! fed and asked to retry the same way whichever MTA it is
//! ([`Instance`]); and its log comes back as typed delivery events
//! ([`log`]). `run`, classification and reports see only these; Postfix
//! and Exim each live in a module of their own.

pub mod containment;
pub mod dns;
pub mod driver;
pub mod exim;
pub mod image;
mod instance;
pub mod log;
pub mod opensmtpd;
pub mod postfix;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use containment::{Loose, NotContained};
pub use driver::{Driver, LineParser};
pub use instance::{DeliveryEvent, Instance, Ran, StartOptions, run_once};

pub use crate::policy::{Mta, Policy};
use crate::scenario::Scenario;

/// Where the harness copies its files inside the MTA's container.
pub const MOUNT: &str = "/tlsharness";
/// The envelope sender of every test message; its domain is discarded
/// inside the MTA, so bounces never leave it.
pub const SENDER: &str = "harness@tlsharness.test";

/// Where the MTA accepts the harness's messages: its own port 25 on the
/// loopback of the namespace it shares with the agent.
pub const INJECT: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 25);
/// The domain under which every case has its own recipient domain.
pub const CASE_DOMAIN: &str = "tlsharness.test";

/// One case as the MTA is to deliver it: the case's own recipient domain
/// goes to the relay's name and port (or by MX, to its zone), from the
/// case's own source address, under its TLS policy.
pub struct Target<'a> {
    /// The case's index in the run (its recipient domain's label).
    pub index: usize,
    /// The case's rig with the agent (names its own lookup tables).
    pub rig: u64,
    pub policy: Policy,
    pub scenario: &'a Scenario,
    pub hostname: String,
    pub port: u16,
    /// How many addresses the relay's name has (one per path).
    pub paths: usize,
    pub source: Option<IpAddr>,
    /// The SHA-256 fingerprint of the relay's own certificate, as an
    /// admin would pin it.
    pub relay_fingerprint: String,
    /// The case's own zone, when its mail goes by MX.
    pub zone: Option<crate::dns::Zone>,
}

impl Target<'_> {
    /// The case's recipient domain.
    pub fn domain(&self) -> String {
        format!("c{}.{CASE_DOMAIN}", self.index)
    }
}

/// One instance's configuration, rendered.
pub struct Rendered {
    /// Files for the container, by path under [`MOUNT`].
    pub files: Vec<(String, Vec<u8>)>,
    /// The main configuration files' text, for reports and bench.
    pub configs: (String, String),
    /// Per target, in order: the transport it uses and its route, in
    /// the MTA's own terms.
    pub routes: Vec<(String, String)>,
}

/// `/etc/hosts` lines for the names the MTA's client resolves: the run's
/// fake relays.
pub(crate) fn hosts_file(hosts: &BTreeMap<String, Vec<IpAddr>>) -> String {
    use std::fmt::Write as _;
    let mut by_addr: BTreeMap<IpAddr, Vec<&str>> = BTreeMap::new();
    for (name, addrs) in hosts {
        for a in addrs {
            by_addr.entry(*a).or_default().push(name);
        }
    }
    let mut out = String::from("# tlsharness: the run's fake relays\n");
    for (addr, names) in by_addr {
        let _ = writeln!(out, "{addr} {}", names.join(" "));
    }
    out
}

/// The section of a configuration whose first line `head` picks: that
/// line and the indented lines after it (a master.cf service and its
/// `-o` lines, an Exim driver and its options).
fn section(text: &str, head: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            if inside {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        inside = head(line);
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Failures around the MTA's container.
#[derive(Debug, thiserror::Error)]
pub enum MtaError {
    #[error(transparent)]
    Docker(#[from] crate::docker::DockerError),
    #[error(
        "the MTA image {image} is not present and nothing can be pulled; build it with `tlsharness image build{build_args}`"
    )]
    ImageMissing { image: String, build_args: String },
    #[error("{} has no built-in image for the suite `{suite}` (built-in: {known})", mta.title())]
    UnknownSuite {
        mta: Mta,
        suite: String,
        known: String,
    },
    #[error("failed to start the MTA's container: {0}")]
    Start(#[from] testcontainers::TestcontainersError),
    #[error("failed to pack the MTA's configuration: {0}")]
    Pack(#[source] std::io::Error),
    #[error("the MTA did not start within {secs}s; its last log lines:\n{log}")]
    NotReady { secs: u64, log: String },
    #[error("the MTA refused to start: {why}\n{log}")]
    Refused { why: String, log: String },
    #[error("failed to inject a message: {0}")]
    Inject(String),
    #[error("failed to run a command in the MTA's container: {0}")]
    Exec(String),
}

impl MtaError {
    /// Whether this is a problem of the machine rather than of the run.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            MtaError::Docker(_) | MtaError::ImageMissing { .. } | MtaError::Start(_)
        )
    }
}

impl crate::exit::Code for MtaError {
    fn exit_code(&self) -> i32 {
        match self {
            MtaError::UnknownSuite { .. } => crate::exit::BAD_INPUT,
            e if e.is_environment() => crate::exit::ENVIRONMENT,
            _ => crate::exit::HARNESS_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).unwrap() {
                    stack.push(entry.unwrap().path());
                }
            } else if path.extension().is_some_and(|e| e == "rs") && !test_only(&path) {
                files.push(path);
            }
        }
        files.sort();
        files
    }

    /// Whether `path` is a module its parent declares only for tests.
    fn test_only(path: &Path) -> bool {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            return false;
        };
        let parent = path.parent().unwrap();
        ["mod.rs", "lib.rs"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(parent.join(f)).ok())
            .any(|t| t.contains(&format!("#[cfg(test)]\nmod {stem};")))
    }

    /// The lines of `text` that are code: comments and the unit tests at
    /// the end of a file (which may well quote one MTA's log) left out.
    fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
        text.lines()
            .enumerate()
            .take_while(|(_, l)| !l.starts_with("#[cfg(test)]"))
            .filter(|(_, l)| {
                let t = l.trim_start();
                !(t.starts_with("//") || t.starts_with("*") || t.starts_with("/*"))
            })
    }

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    /// Where `dirs` (under `src`) name one of `words` (in any case when
    /// they are lower-case), outside `allowed` lines: `path:line: text`
    /// each.
    fn naming(src: &Path, dirs: &[&str], words: &[&str], allowed: &[&str]) -> Vec<String> {
        let mut offenders = Vec::new();
        for dir in dirs {
            for path in rust_files(&src.join(dir)) {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in code_lines(&text) {
                    let lower = line.to_ascii_lowercase();
                    let names = |w: &&str| {
                        line.contains(*w) || (w.to_ascii_lowercase() == *w && lower.contains(*w))
                    };
                    if words.iter().any(names) && !allowed.iter().any(|a| line.contains(a)) {
                        offenders.push(format!("{}:{}: {line}", path.display(), n + 1));
                    }
                }
            }
        }
        offenders
    }

    /// `run/`, `report/`, `scenario/` and `lab/` see the MTA only through
    /// this module's neutral face, never one MTA's module.
    #[test]
    fn the_boundary_holds() {
        let offenders = naming(
            &src(),
            &["run", "report", "scenario", "lab", "docker"],
            &[
                "mta::postfix",
                "mta::exim",
                "mta::opensmtpd",
                "crate::postfix",
                "Mta::Postfix",
                "Mta::Exim",
                "Mta::Opensmtpd",
            ],
            &[],
        );
        assert!(offenders.is_empty(), "{}", offenders.join("\n"));
    }

    /// The floors below and beside the MTA speak of "the MTA": no MTA's
    /// name, policy or level type in their code. The exceptions are the
    /// published report keys that predate a second MTA (JSON and JUnit
    /// keep them, whatever the MTA), and `check`'s own page, which is
    /// about a main.cf. (`scenario/` still reads Postfix's `[postfix]` and
    /// `[expect]` tables itself, and is not yet held to this.)
    #[test]
    fn the_neutral_floors_name_no_mta() {
        let offenders = naming(
            &src(),
            &[
                "run",
                "report",
                "lab",
                "docker",
                "dns",
                "middlebox",
                "upstream",
                "smtp",
            ],
            &[
                "postfix",
                "exim",
                "opensmtpd",
                "smtpd.conf",
                "smtpctl",
                "level::",
                "eximpolicy",
                "opensmtpdpolicy",
            ],
            &[
                "rename = \"postfix_",
                "(\"postfix_version\",",
                "alias = \"postfix\"",
                "alias = \"to_postfix_ms\"",
            ],
        );
        let offenders: Vec<_> = offenders
            .into_iter()
            .filter(|o| !o.contains("report/html/check.rs"))
            .collect();
        assert!(offenders.is_empty(), "{}", offenders.join("\n"));
    }

    /// Each MTA's folder names no other MTA in its code: what they share
    /// is this module's.
    #[test]
    fn no_mta_s_folder_names_another_mta() {
        let names: Vec<&str> = super::Mta::ALL.iter().map(|m| m.as_str()).collect();
        let mut offenders = Vec::new();
        for mta in &names {
            let others: Vec<&str> = names.iter().copied().filter(|n| n != mta).collect();
            offenders.extend(naming(&src(), &[&format!("mta/{mta}")], &others, &[]));
        }
        assert!(offenders.is_empty(), "{}", offenders.join("\n"));
    }

    /// The test above finds what it is meant to find.
    #[test]
    fn an_mta_s_name_in_a_neutral_floor_would_be_found() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("run")).unwrap();
        let planted = src.path().join("run/planted.rs");
        std::fs::write(
            &planted,
            "// Postfix, in a comment, is fine.\nconst X: &str = \"Exim\";\n#[cfg(test)]\nconst Y: &str = \"postfix\";\n",
        )
        .unwrap();
        let found = naming(src.path(), &["run"], &["postfix", "exim"], &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].ends_with("planted.rs:2: const X: &str = \"Exim\";"),
            "{found:?}"
        );
    }
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
        .to_owned()
}

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// For runs made in this test process: the agent is the tlsharness binary,
/// not the test binary.
#[allow(dead_code)]
pub fn in_process() {
    tlsharness::lab::use_agent_binary(env!("CARGO_BIN_EXE_tlsharness"));
}

/// The built-in scenario library.
pub fn library() -> Vec<std::sync::Arc<tlsharness::scenario::Scenario>> {
    tlsharness::scenario::load_paths(&[root().join("scenarios")])
        .expect("the built-in scenarios load")
        .into_iter()
        .map(std::sync::Arc::new)
        .collect()
}

/// A run on `mta`'s default image, every case the scenarios state for it.
pub fn on(mta: tlsharness::policy::Mta) -> tlsharness::run::RunOptions {
    tlsharness::run::RunOptions {
        images: vec![mta.driver().default_image().to_owned()],
        selection: tlsharness::run::Selection {
            mta,
            ..tlsharness::run::Selection::default()
        },
        ..tlsharness::run::RunOptions::default()
    }
}

pub fn tlsharness() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tlsharness"));
    c.current_dir(root());
    c
}

/// A child whose stderr lines arrive on a channel, so a test can wait for
/// a line with a deadline.
pub struct Watched {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Watched {
    pub fn spawn(mut cmd: Command) -> Watched {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watched {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line containing `needle`, waiting at most `deadline`.
    pub fn wait_for(&mut self, needle: &str, deadline: Duration) -> String {
        let end = std::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line containing {needle:?} within {deadline:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the process to exit, at most `deadline`.
    pub fn wait(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let end = std::time::Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            // Drain stderr while waiting; the channel wakes us on output.
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let _ = self.child.kill();
                panic!(
                    "the process did not exit within {deadline:?}; saw:\n{}",
                    self.seen.join("\n")
                );
            }
            if let Ok(line) = self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                self.seen.push(line);
            }
        }
    }
}

/// Containers Docker still has for a run.
pub fn containers_of_run(run_id: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(containers_of_run_async(run_id))
}

pub async fn containers_of_run_async(run_id: &str) -> Vec<String> {
    let docker = tlsharness::docker::connect(Duration::from_secs(10))
        .await
        .expect("the tests need a Docker daemon: run ci/setup-docker.sh");
    tlsharness::docker::containers_of_run(&docker, run_id)
        .await
        .expect("containers can be listed")
}

/// The run id from "tlsharness: run ID: starting Postfix ...".
pub fn run_id(line: &str) -> String {
    line.split("run ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .expect("the line names the run")
        .to_owned()
}

/// Run directories of `run_id` still on disk.
pub fn run_dirs(run_id: &str) -> Vec<PathBuf> {
    let prefix = format!("tlsharness-{run_id}-");
    std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir is readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect()
}

/// Where `report` breaks fixtures/schemas/report.schema.json, one line per
/// violation; empty when it conforms.
pub fn report_schema_errors(report: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/schemas/report.schema.json"))
            .expect("the report schema is readable"),
    )
    .expect("the report schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// xmllint's verdict on `xml` against fixtures/schemas/junit.xsd: `Err`
/// holds its complaint. Panics when xmllint is missing: a schema check
/// that cannot run must fail, not pass.
pub fn junit_schema_check(xml: &std::path::Path) -> Result<(), String> {
    let lint = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(root().join("fixtures/schemas/junit.xsd"))
        .arg(xml)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run xmllint ({e}); install it (ci/test.sh installs libxml2-utils)")
        });
    if lint.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&lint.stderr).into_owned())
    }
}

/// How long the slow scenario's one case takes, at least.
pub const SLOW_CASE: Duration = Duration::from_secs(120);

/// A scenario whose case takes [`SLOW_CASE`] under any configuration (the
/// relay's greeting never comes; Postfix waits out smtp_helo_timeout): a
/// check that ends sooner ran no case to its end.
pub fn slow_scenario(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(root().join("scenarios/stall-greeting.toml"))
        .unwrap()
        .replace(
            r#"smtp_helo_timeout = "2s""#,
            &format!(r#"smtp_helo_timeout = "{}s""#, SLOW_CASE.as_secs()),
        );
    assert!(text.contains("smtp_helo_timeout = \"120s\""), "{text}");
    let path = dir.join("stall-greeting-slow.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The lines of a check report that are `scenario`'s row (and its notes).
pub fn row<'a>(stdout: &'a str, scenario: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("{scenario} ")))
        .collect()
}

impl Watched {
    /// Waits for the process to exit, at most `deadline`, then for the
    /// rest of its stderr (until the pipe closes, within what is left of
    /// the deadline); returns its status and every stderr line it wrote.
    pub fn finish(&mut self, deadline: Duration) -> (std::process::ExitStatus, String) {
        let end = std::time::Instant::now() + deadline;
        let status = self.wait(deadline);
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "the process exited but its stderr stayed open past {deadline:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
        (status, self.seen.join("\n"))
    }
}

/// A second Docker daemon in a network namespace of its own, started by
/// ci/second-daemon.sh in a temporary directory and stopped (its state
/// removed) when dropped. Point a process at it with
/// `DOCKER_HOST=`[`SecondDaemon::host`].
pub struct SecondDaemon {
    dir: Option<tempfile::TempDir>,
}

impl SecondDaemon {
    fn script() -> PathBuf {
        root().join("ci/second-daemon.sh")
    }

    /// Starts the daemon with `images` copied into it from the default
    /// daemon. Panics (the test fails, never skips) when it cannot.
    pub fn start(images: &[&str]) -> SecondDaemon {
        // Under /tmp, not $TMPDIR: the daemon's unix sockets live under
        // the directory, and a socket path has at most 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("tlsh-dockerd.")
            .tempdir_in("/tmp")
            .expect("a temporary directory under /tmp");
        let daemon = SecondDaemon { dir: Some(dir) };
        let out = Command::new(Self::script())
            .arg("start")
            .arg(daemon.dir())
            .args(images)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", Self::script().display()));
        assert!(
            out.status.success(),
            "cannot start a second Docker daemon in its own network namespace \
             (ci/second-daemon.sh start; it needs root, util-linux's unshare, iproute2 \
             and Debian's docker.io), {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        daemon
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir
            .as_ref()
            .expect("the directory is kept until drop")
            .path()
    }

    /// The daemon's endpoint, for DOCKER_HOST or `docker -H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir().join("docker.sock").display())
    }

    /// The daemon's network namespace, e.g. `net:[4026532281]`.
    pub fn netns(&self) -> String {
        std::fs::read_to_string(self.dir().join("netns"))
            .expect("second-daemon.sh start records the namespace")
            .trim()
            .to_owned()
    }

    /// Every container the daemon has, running or not (`docker ps -aq`).
    pub fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(["ps", "-aq", "--no-trunc"])
            .stdin(Stdio::null())
            .output()
            .expect("the docker CLI runs");
        assert!(
            out.status.success(),
            "docker -H {} ps -aq failed: {}",
            self.host(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for SecondDaemon {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let out = Command::new(Self::script())
            .arg("stop")
            .arg(dir.path())
            .stdin(Stdio::null())
            .output();
        let stopped = match &out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "{}: {}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(e.to_string()),
        };
        if std::thread::panicking() || stopped.is_err() {
            // Keep the daemon's log for whoever reads the failure.
            let kept = dir.keep();
            eprintln!(
                "second daemon's log kept: {}",
                kept.join("dockerd.log").display()
            );
        }
        if let Err(e) = stopped {
            if !std::thread::panicking() {
                panic!("ci/second-daemon.sh stop failed: {e}");
            }
            eprintln!("ci/second-daemon.sh stop failed: {e}");
        }
    }
}

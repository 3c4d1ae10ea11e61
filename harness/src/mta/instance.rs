//! One running MTA: a testcontainers container with no network but
//! its own loopback (the run's agent joins it there), its configuration
//! copied in through the Docker API, and its mail log streamed and parsed
//! as it is written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::MOUNT;
use super::MtaError;
use super::log::{Delivery, LogEvent, LogLine};
use crate::docker::{
    LABEL_BOOT, LABEL_PID, LABEL_PIDNS, LABEL_ROLE, LABEL_RUN, boot_id, pid_namespace, process_tag,
};

/// A delivery status line, with its position in the log.
#[derive(Clone, Debug)]
pub struct DeliveryEvent {
    /// Index of the line in [`Instance::lines`].
    pub index: usize,
    pub pid: u32,
    pub delivery: Delivery,
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Starting,
    Started(String),
    Failed(String),
    Ended,
}

/// The parsed log, indexed by process and queue id, and who is waiting
/// for which recipient.
#[derive(Default)]
struct LogHub {
    lines: Mutex<Lines>,
    subscribers: Mutex<HashMap<String, mpsc::UnboundedSender<DeliveryEvent>>>,
    /// Woken at every line.
    appended: tokio::sync::Notify,
}

#[derive(Default)]
struct Lines {
    all: Vec<LogLine>,
    by_pid: HashMap<u32, Vec<usize>>,
    by_queue_id: HashMap<String, Vec<usize>>,
}

impl LogHub {
    fn push(&self, line: LogLine, state: &watch::Sender<State>) {
        let mut lines = self.lines.lock().expect("log poisoned");
        let index = lines.all.len();
        match &line.event {
            LogEvent::Started { version } => {
                state.send_if_modified(|s| {
                    let first = *s == State::Starting;
                    if first {
                        *s = State::Started(version.clone());
                    }
                    first
                });
            }
            LogEvent::Fatal(why) => {
                state.send_if_modified(|s| {
                    let starting = *s == State::Starting;
                    if starting {
                        *s = State::Failed(why.clone());
                    }
                    starting
                });
            }
            LogEvent::Delivery(d) => {
                let subs = self.subscribers.lock().expect("log poisoned");
                if let Some(tx) = subs.get(&d.to) {
                    let _ = tx.send(DeliveryEvent {
                        index,
                        pid: line.pid,
                        delivery: d.clone(),
                    });
                }
            }
            _ => {}
        }
        if line.pid != 0 {
            lines.by_pid.entry(line.pid).or_default().push(index);
        }
        if let Some(id) = line.queue_id() {
            lines
                .by_queue_id
                .entry(id.to_owned())
                .or_default()
                .push(index);
        }
        lines.all.push(line);
        drop(lines);
        self.appended.notify_waiters();
    }

    /// Whether a line about `queue_id` at index `from` or later is
    /// [`LogEvent::Active`].
    fn activated_since(&self, queue_id: &str, from: usize) -> bool {
        let lines = self.lines.lock().expect("log poisoned");
        lines
            .by_queue_id
            .get(queue_id)
            .into_iter()
            .flatten()
            .rev()
            .take_while(|&&i| i >= from)
            .any(|&i| lines.all[i].event == LogEvent::Active)
    }
}

/// How to start an instance.
#[derive(Clone, Debug)]
pub struct StartOptions {
    pub mta: super::Mta,
    pub image: String,
    pub run_id: String,
    pub container_name: String,
    pub startup_timeout: Duration,
}

/// A running MTA under test.
pub struct Instance {
    mta: super::Mta,
    docker: bollard::Docker,
    state: watch::Receiver<State>,
    container: Option<ContainerAsync<GenericImage>>,
    version: String,
    hub: Arc<LogHub>,
    pumps: Vec<JoinHandle<()>>,
    startup_timeout: Duration,
}

/// The longest one command in the container may take.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a retry request may take to start an attempt, however
/// often it is repeated.
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);

impl Instance {
    /// Starts the MTA's container with `files` copied under [`MOUNT`] and
    /// its log streaming; [`Instance::wait_started`] waits for the MTA.
    pub async fn start(
        files: &[(String, Vec<u8>)],
        opts: &StartOptions,
    ) -> Result<Instance, MtaError> {
        let docker = crate::docker::client()?;
        let container = container(
            &opts.image,
            &opts.run_id,
            &opts.container_name,
            archive(files)?,
            "entrypoint.sh",
        )
        .with_startup_timeout(opts.startup_timeout)
        .start()
        .await
        .map_err(MtaError::Start)?;
        let hub = Arc::new(LogHub::default());
        let (state_tx, state) = watch::channel(State::Starting);
        let state_tx = Arc::new(state_tx);
        let parser = Arc::new(Mutex::new(opts.mta.driver().log_parser(files)));
        let pumps = vec![
            tokio::spawn(pump(
                parser.clone(),
                container.stdout(true),
                hub.clone(),
                state_tx.clone(),
                true,
            )),
            tokio::spawn(pump(
                parser,
                container.stderr(true),
                hub.clone(),
                state_tx.clone(),
                false,
            )),
        ];
        Ok(Instance {
            mta: opts.mta,
            docker,
            state,
            container: Some(container),
            version: String::new(),
            hub,
            pumps,
            startup_timeout: opts.startup_timeout,
        })
    }

    /// Waits, until `deadline`, for master's start-up line; a fatal error
    /// or an exit before it is the MTA's refusal. The container is
    /// removed on failure.
    pub async fn wait_started(&mut self, deadline: tokio::time::Instant) -> Result<(), MtaError> {
        let mut state = self.state.clone();
        // Owned at once: the watch guard must not live across an await.
        let reached = match tokio::time::timeout_at(
            deadline,
            state.wait_for(|s| *s != State::Starting),
        )
        .await
        {
            Ok(Ok(s)) => Some(s.clone()),
            Ok(Err(_)) => Some(State::Ended),
            Err(_) => None,
        };
        let failure = match reached {
            Some(State::Started(version)) => {
                self.version = version;
                return Ok(());
            }
            None => MtaError::NotReady {
                secs: self.startup_timeout.as_secs(),
                log: self.tail(20),
            },
            Some(State::Failed(why)) => MtaError::Refused {
                why,
                log: self.tail(20),
            },
            Some(State::Starting | State::Ended) => MtaError::Refused {
                why: "the MTA exited during start-up".into(),
                log: self.tail(20),
            },
        };
        self.stop().await;
        Err(failure)
    }

    /// The Docker client the container was made with.
    pub fn docker(&self) -> &bollard::Docker {
        &self.docker
    }

    /// The container's id.
    pub fn container_id(&self) -> &str {
        self.container.as_ref().map_or("", |c| c.id())
    }

    /// Resolves when the MTA's mail log ends: the container stopped (or
    /// Docker went away) after start-up.
    pub async fn stopped(&self) {
        let mut state = self.state.clone();
        loop {
            let ended = *state.borrow_and_update() == State::Ended;
            if ended || state.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether the MTA is gone: its mail log ended, or Docker says the
    /// container is not running (or cannot say).
    pub async fn has_stopped(&self) -> bool {
        let ended = *self.state.borrow() == State::Ended;
        if ended {
            return true;
        }
        let running = self
            .docker
            .inspect_container(self.container_id(), None)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.running);
        running != Some(true)
    }

    /// The MTA's version, from its start-up line.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Delivery status lines for `recipient`, as they are logged.
    pub fn subscribe(&self, recipient: &str) -> mpsc::UnboundedReceiver<DeliveryEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.hub
            .subscribers
            .lock()
            .expect("log poisoned")
            .insert(recipient.to_owned(), tx);
        rx
    }

    /// Asks the MTA to attempt delivery of one queued message now
    /// (Postfix: `postqueue -i`; Exim: `exim -M`), and, where the MTA logs
    /// the start of an attempt, returns once the attempt has begun.
    ///
    /// Postfix logs an attempt's status before its queue manager has moved
    /// the message out of the active queue, and `postqueue -i` on a message
    /// still there does nothing: asked at once, the retry was lost and the
    /// harness waited out its whole deadline for a status that never came.
    /// So the request is repeated, ever less often, until qmgr logs that it
    /// took the message up (`(queue active)`). An MTA that answers the
    /// request itself (OpenSMTPD: `0 envelope scheduled` while the message
    /// is in flight) is asked again the same way until it takes it.
    pub async fn flush(&self, queue_id: &str) -> Result<(), MtaError> {
        let cmd = self.mta.driver().retry_command(queue_id);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let driver = self.mta.driver();
        let from = self.line_count();
        let give_up = tokio::time::Instant::now() + RETRY_TIMEOUT;
        let mut patience = Duration::from_millis(250);
        let mut asked = 0;
        loop {
            let output = self.exec(&cmd).await?;
            asked += 1;
            let until = (tokio::time::Instant::now() + patience).min(give_up);
            let taken = driver.retry_taken(&output);
            if taken && !driver.logs_attempt_start() {
                return Ok(());
            }
            if taken && self.activated(queue_id, from, until).await {
                return Ok(());
            }
            if !taken {
                // Still busy with its last attempt, by the MTA's own
                // answer: asked again after a while, ever less often.
                tokio::time::sleep_until(until).await;
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(MtaError::Exec(format!(
                    "{}: the MTA did not take message {queue_id} up for a new attempt within {}s (asked {asked} times)",
                    cmd.join(" "),
                    RETRY_TIMEOUT.as_secs()
                )));
            }
            patience = (patience * 2).min(Duration::from_secs(4));
        }
    }

    /// Removes one queued message.
    pub async fn remove(&self, queue_id: &str) -> Result<(), MtaError> {
        let cmd = self.mta.driver().remove_command(queue_id);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        self.exec(&cmd).await.map(|_| ())
    }

    /// Waits until `deadline` for a line at index `from` or later saying
    /// that the MTA took message `queue_id` up for an attempt.
    pub async fn activated(
        &self,
        queue_id: &str,
        from: usize,
        deadline: tokio::time::Instant,
    ) -> bool {
        loop {
            let appended = self.hub.appended.notified();
            tokio::pin!(appended);
            // Registered before the look, so no line slips between them.
            appended.as_mut().enable();
            if self.hub.activated_since(queue_id, from) {
                return true;
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return false;
            }
        }
    }

    /// Which MTA this is.
    pub fn mta(&self) -> super::Mta {
        self.mta
    }

    /// Runs a command in the container; its stdout when it exits with 0.
    /// (Through bollard rather than testcontainers' exec, whose result is
    /// not `Sync` and would make every run future `!Send`.)
    pub async fn exec(&self, cmd: &[&str]) -> Result<String, MtaError> {
        let what = cmd.join(" ");
        let failed = |e: String| MtaError::Exec(format!("{what}: {e}"));
        let container = self.container.as_ref().expect("instance is running");
        let id = container.id().to_owned();
        let work = async {
            let exec = self
                .docker
                .create_exec(
                    &id,
                    CreateExecOptions {
                        cmd: Some(cmd.to_vec()),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| failed(e.to_string()))?;
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            if let StartExecResults::Attached { mut output, .. } = self
                .docker
                .start_exec(&exec.id, None)
                .await
                .map_err(|e| failed(e.to_string()))?
            {
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(|e| failed(e.to_string()))? {
                        LogOutput::StdOut { message } => stdout.extend_from_slice(&message),
                        LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                        _ => {}
                    }
                }
            }
            let inspect = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| failed(e.to_string()))?;
            match inspect.exit_code {
                Some(0) => Ok(String::from_utf8_lossy(&stdout).into_owned()),
                code => Err(failed(format!(
                    "exit code {code:?}: {}",
                    String::from_utf8_lossy(&stderr).trim()
                ))),
            }
        };
        tokio::time::timeout(EXEC_TIMEOUT, work)
            .await
            .map_err(|_| failed("no answer".into()))?
    }

    /// Every log line so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.hub.lines.lock().expect("log poisoned").all.clone()
    }

    /// How many lines have been logged so far.
    pub fn line_count(&self) -> usize {
        self.hub.lines.lock().expect("log poisoned").all.len()
    }

    /// The lines with index in `range` that were written by process `pid`
    /// or are about queue id `queue_id`, in log order, with their indexes.
    pub fn lines_about(
        &self,
        pid: Option<u32>,
        queue_id: Option<&str>,
        range: std::ops::Range<usize>,
    ) -> Vec<(usize, LogLine)> {
        let lines = self.hub.lines.lock().expect("log poisoned");
        let mut picked: Vec<usize> = Vec::new();
        if let Some(pid) = pid {
            picked.extend(lines.by_pid.get(&pid).into_iter().flatten());
        }
        if let Some(id) = queue_id {
            picked.extend(lines.by_queue_id.get(id).into_iter().flatten());
        }
        picked.retain(|i| range.contains(i));
        picked.sort_unstable();
        picked.dedup();
        picked
            .into_iter()
            .map(|i| (i, lines.all[i].clone()))
            .collect()
    }

    /// The last `n` log lines, as text.
    pub fn tail(&self, n: usize) -> String {
        let lines = &self.hub.lines.lock().expect("log poisoned").all;
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| l.raw.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Removes the container. Dropping an instance does the same.
    pub async fn stop(&mut self) {
        for p in self.pumps.drain(..) {
            p.abort();
        }
        if let Some(container) = self.container.take() {
            let _ = container.rm().await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        for p in self.pumps.drain(..) {
            p.abort();
        }
        // Dropping the container removes it (testcontainers blocks on it).
    }
}

/// A container of `image` on no network, with the run's labels, the
/// files in `archive` unpacked under [`MOUNT`] (one archive: a copy per
/// file would cost a request each) and `script` among them run as its
/// command.
fn container(
    image: &str,
    run_id: &str,
    container_name: &str,
    archive: Vec<u8>,
    script: &str,
) -> testcontainers::ContainerRequest<GenericImage> {
    let (name, tag) = split_image(image);
    GenericImage::new(name, tag)
        .with_entrypoint("/bin/sh")
        .with_cmd([
            "-c".to_owned(),
            format!(
                "mkdir -p {MOUNT} && tar -xf {MOUNT}.tar -C {MOUNT} && exec /bin/sh {MOUNT}/{script}"
            ),
        ])
        .with_network("none")
        .with_label(LABEL_RUN, run_id)
        .with_label(LABEL_PID, process_tag())
        .with_label(LABEL_BOOT, boot_id())
        .with_label(LABEL_PIDNS, pid_namespace())
        .with_label(LABEL_ROLE, "mta")
        .with_container_name(container_name)
        .with_copy_to(format!("{MOUNT}.tar"), archive)
        .with_host_config_modifier(|host| {
            host.sysctls
                .get_or_insert_with(Default::default)
                .insert(DGRAM_QLEN.0.to_owned(), DGRAM_QLEN.1.to_owned());
        })
}

/// The datagram queue of the container's own network namespace, as a
/// systemd host has it (its sysctl.d/50-default.conf). A new namespace
/// gets the kernel's 10, and Postfix's postlogd, which reads main.cf like
/// every daemon, logs each of its warnings (a main.cf that sets a
/// parameter twice: "overriding earlier entry") to its own postlog
/// socket: with master's and the first daemons' lines already queued it
/// blocked there for good (`wchan` unix_wait_for_peer), and not even
/// master's "daemon started" was written. Docker allows this sysctl in a
/// container's own network namespace.
const DGRAM_QLEN: (&str, &str) = ("net.unix.max_dgram_qlen", "512");

/// What a script run by [`run_once`] did.
#[derive(Clone, Debug)]
pub struct Ran {
    /// Its exit status (`None` if Docker gave none).
    pub code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `script` (one of `files`, copied under [`MOUNT`]) once in a
/// container of `image` on no network, and returns what it did; the
/// container is removed whatever happens.
pub async fn run_once(
    image: &str,
    run_id: &str,
    container_name: &str,
    files: &[(String, Vec<u8>)],
    script: &str,
    deadline: Duration,
) -> Result<Ran, MtaError> {
    let container = container(image, run_id, container_name, archive(files)?, script)
        .start()
        .await
        .map_err(MtaError::Start)?;
    let read = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (mut stdout, mut stderr) = (container.stdout(true), container.stderr(true));
        let (o, e) = tokio::join!(
            tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut out),
            tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut err),
        );
        o.and(e).map_err(|e| MtaError::Exec(e.to_string()))?;
        let code = container
            .exit_code()
            .await
            .map_err(|e| MtaError::Exec(e.to_string()))?;
        Ok::<_, MtaError>((code, out, err))
    };
    let result = tokio::time::timeout(deadline, read).await;
    let _ = container.rm().await;
    let (code, out, err) = result.map_err(|_| {
        MtaError::Exec(format!(
            "{script} did not end within {}s",
            deadline.as_secs()
        ))
    })??;
    Ok(Ran {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// Feeds one of the container's output streams to the hub. The end of
/// stdout (the mail log) means the MTA is gone, whether it never started
/// or stopped mid-run.
async fn pump(
    parser: Arc<Mutex<super::LineParser>>,
    stream: std::pin::Pin<Box<dyn AsyncBufRead + Send>>,
    hub: Arc<LogHub>,
    state: Arc<watch::Sender<State>>,
    is_mail_log: bool,
) {
    let mut stream = stream;
    let mut buf = Vec::new();
    // Bytes, not text: a line that is not UTF-8 (a peer's name, say) must
    // not read as the end of the log.
    while let Ok(n) = stream.read_until(b'\n', &mut buf).await {
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        let line = parser.lock().expect("parser poisoned")(text.trim_end_matches(['\r', '\n']));
        hub.push(line, &state);
        buf.clear();
    }
    state.send_if_modified(|s| {
        let ends = *s == State::Starting || (is_mail_log && matches!(s, State::Started(_)));
        if ends {
            *s = State::Ended;
        }
        ends
    });
}

/// The files as one tar archive, by their paths under [`MOUNT`].
fn archive(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, MtaError> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, bytes.as_slice())
            .map_err(MtaError::Pack)?;
    }
    tar.into_inner().map_err(MtaError::Pack)
}

/// `name:tag`, allowing a registry port in the name.
fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_at_the_tag() {
        assert_eq!(
            split_image("tlsharness/postfix:bookworm"),
            ("tlsharness/postfix".into(), "bookworm".into())
        );
        assert_eq!(
            split_image("registry:5000/postfix"),
            ("registry:5000/postfix".into(), "latest".into())
        );
    }
}

//! One running Postfix: a testcontainers container on the host network,
//! its mail log streamed and parsed as it is written, and mail injection
//! over SMTP with lettre.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use testcontainers::core::{AccessMode, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::PostfixError;
use super::config::{MOUNT, SENDER};
use super::docker::{
    LABEL_BOOT, LABEL_PID, LABEL_PIDNS, LABEL_RUN, boot_id, pid_namespace, process_tag,
};
use super::log::{Delivery, LogEvent, LogLine};

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
    }
}

/// How to start an instance.
#[derive(Clone, Debug)]
pub struct StartOptions {
    pub image: String,
    pub run_id: String,
    pub container_name: String,
    pub startup_timeout: Duration,
}

/// A running Postfix under test.
pub struct Instance {
    docker: bollard::Docker,
    state: watch::Receiver<State>,
    container: Option<ContainerAsync<GenericImage>>,
    version: String,
    hub: Arc<LogHub>,
    pumps: Vec<JoinHandle<()>>,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    /// Injections in flight; as many as lettre keeps pooled connections,
    /// so no injection waits on a connection Postfix has not accepted.
    injecting: tokio::sync::Semaphore,
}

/// Concurrent injections (and pooled SMTP connections to Postfix).
const INJECTORS: usize = 16;
/// The longest one injection may take.
const INJECT_TIMEOUT: Duration = Duration::from_secs(60);

impl Instance {
    /// Starts Postfix with the configuration already written to `run_dir`
    /// and waits, with a deadline, until it accepts mail.
    pub async fn start(
        run_dir: &Path,
        inject: SocketAddr,
        opts: &StartOptions,
    ) -> Result<Instance, PostfixError> {
        let docker = bollard::Docker::connect_with_defaults()
            .map_err(|e| PostfixError::Docker(format!("failed to reach Docker: {e}")))?;
        let (name, tag) = split_image(&opts.image);
        let request = GenericImage::new(name, tag)
            .with_entrypoint("/bin/sh")
            .with_cmd([format!("{MOUNT}/entrypoint.sh")])
            .with_network("host")
            .with_mount(
                Mount::bind_mount(run_dir.to_string_lossy(), MOUNT)
                    .with_access_mode(AccessMode::ReadOnly),
            )
            .with_label(LABEL_RUN, &opts.run_id)
            .with_label(LABEL_PID, process_tag())
            .with_label(LABEL_BOOT, boot_id())
            .with_label(LABEL_PIDNS, pid_namespace())
            .with_container_name(&opts.container_name)
            .with_startup_timeout(opts.startup_timeout);
        let container = request
            .start()
            .await
            .map_err(|e| PostfixError::Start(e.to_string()))?;
        let hub = Arc::new(LogHub::default());
        let (state_tx, mut state) = watch::channel(State::Starting);
        let state_tx = Arc::new(state_tx);
        let pumps = vec![
            tokio::spawn(pump(
                container.stdout(true),
                hub.clone(),
                state_tx.clone(),
                true,
            )),
            tokio::spawn(pump(
                container.stderr(true),
                hub.clone(),
                state_tx.clone(),
                false,
            )),
        ];
        let mut instance = Instance {
            docker,
            state: state.clone(),
            container: Some(container),
            version: String::new(),
            hub,
            pumps,
            smtp: AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(inject.ip().to_string())
                .port(inject.port())
                .hello_name(ClientId::Domain("injector.tlsharness.test".into()))
                .timeout(Some(Duration::from_secs(30)))
                .pool_config(PoolConfig::new().max_size(INJECTORS as u32))
                .build(),
            injecting: tokio::sync::Semaphore::new(INJECTORS),
        };
        let deadline = tokio::time::Instant::now() + opts.startup_timeout;
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
        let state = match reached {
            Some(s) => s,
            None => {
                let log = instance.tail(20);
                instance.stop().await;
                return Err(PostfixError::NotReady {
                    secs: opts.startup_timeout.as_secs(),
                    log,
                });
            }
        };
        match state {
            State::Started(version) => instance.version = version,
            State::Failed(why) => {
                let log = instance.tail(20);
                instance.stop().await;
                return Err(PostfixError::Refused { why, log });
            }
            State::Starting | State::Ended => {
                let log = instance.tail(20);
                instance.stop().await;
                return Err(PostfixError::Refused {
                    why: "Postfix exited during start-up".into(),
                    log,
                });
            }
        }
        // master has bound its listeners before it logs "daemon started";
        // one connection proves smtpd answers.
        match tokio::time::timeout_at(deadline, instance.smtp.test_connection()).await {
            Ok(Ok(true)) => Ok(instance),
            other => {
                let why = match other {
                    Ok(Ok(_)) => "smtpd did not greet".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "timed out".to_owned(),
                };
                let log = instance.tail(20);
                instance.stop().await;
                Err(PostfixError::Refused {
                    why: format!(
                        "Postfix started but its listener on {inject} does not answer: {why}"
                    ),
                    log,
                })
            }
        }
    }

    /// The container's id.
    pub fn container_id(&self) -> &str {
        self.container.as_ref().map_or("", |c| c.id())
    }

    /// Resolves when Postfix's mail log ends: the container stopped (or
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

    /// Whether Postfix is gone: its mail log ended, or Docker says the
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

    /// The Postfix version from master's start-up line.
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

    /// Hands one message to Postfix; returns its queue id.
    pub async fn inject(
        &self,
        recipient: &str,
        subject: &str,
        message_id: &str,
    ) -> Result<String, PostfixError> {
        let bad = |e: String| PostfixError::Inject(format!("message to {recipient}: {e}"));
        let from: Mailbox = SENDER.parse().map_err(|e| bad(format!("{e}")))?;
        let to: Mailbox = recipient.parse().map_err(|e| bad(format!("{e}")))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.to_owned()))
            .header(ContentType::TEXT_PLAIN)
            .body(format!("A test message from tlsharness.\r\n{subject}\r\n"))
            .map_err(|e| bad(e.to_string()))?;
        let _permit = self
            .injecting
            .acquire()
            .await
            .map_err(|e| bad(e.to_string()))?;
        let response = tokio::time::timeout(INJECT_TIMEOUT, self.smtp.send(message))
            .await
            .map_err(|_| {
                bad(format!(
                    "Postfix did not accept it within {}s",
                    INJECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| bad(e.to_string()))?;
        let first = response.message().next().unwrap_or_default().to_owned();
        first
            .rsplit_once("queued as ")
            .map(|(_, id)| id.trim().to_owned())
            .ok_or_else(|| bad(format!("Postfix's reply has no queue id: {first}")))
    }

    /// Asks Postfix to attempt delivery of one queued message now
    /// (`postqueue -i`).
    pub async fn flush(&self, queue_id: &str) -> Result<(), PostfixError> {
        self.exec(&["postqueue", "-i", queue_id]).await.map(|_| ())
    }

    /// Runs a command in the container; its stdout when it exits with 0.
    /// (Through bollard rather than testcontainers' exec, whose result is
    /// not `Sync` and would make every run future `!Send`.)
    pub async fn exec(&self, cmd: &[&str]) -> Result<String, PostfixError> {
        let what = cmd.join(" ");
        let failed = |e: String| PostfixError::Exec(format!("{what}: {e}"));
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
        tokio::time::timeout(INJECT_TIMEOUT, work)
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

/// Feeds one of the container's output streams to the hub. The end of
/// stdout (the mail log) means Postfix is gone, whether it never started
/// or stopped mid-run.
async fn pump(
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
        hub.push(LogLine::parse(text.trim_end_matches(['\r', '\n'])), &state);
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

/// A loopback address for Postfix's injection listener (its smtpd on
/// 127.0.0.1), free now.
///
/// The harness cannot hand Postfix a bound socket, so between this check
/// and Postfix's own bind the port is unguarded. It is therefore taken
/// below the kernel's ephemeral range (ip_local_port_range), where no
/// `bind(…:0)` of this or any other process lands, at a random place so
/// that parallel runs do not pick the same one.
pub fn injection_addr() -> std::io::Result<SocketAddr> {
    const LOWEST: u16 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > LOWEST + 1_000 {
        let span = u64::from(ephemeral_low - LOWEST);
        let mut seed = random_u64();
        for _ in 0..64 {
            let port = LOWEST + (seed % span) as u16;
            seed = seed.rotate_left(17) ^ random_u64();
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                return l.local_addr();
            }
        }
    }
    // A crowded or unusual machine: an ephemeral port, unguarded.
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
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

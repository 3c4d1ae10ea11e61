//! The harness's side of the agent: its container, joined to the MTA's
//! network namespace, and calls over the container's attach stream.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptions, CreateContainerOptions};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::LabError;
use super::image::AgentImage;
use super::protocol::{Call, GREETING, Reply, Request, Response};

/// Lines of the agent's stderr kept for error messages.
const STDERR_KEPT: usize = 20;

type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>>;

/// A running agent.
pub struct AgentClient {
    docker: Docker,
    id: String,
    next: AtomicU64,
    requests: mpsc::UnboundedSender<String>,
    /// `None` once the agent's output has ended.
    pending: Pending,
    stderr: Arc<Mutex<VecDeque<String>>>,
    pumps: Vec<JoinHandle<()>>,
}

impl AgentClient {
    /// Starts the agent in the network namespace of container `mta` and
    /// waits for its greeting.
    pub async fn start(
        docker: &Docker,
        image: &AgentImage,
        mta: &str,
        name: &str,
        labels: HashMap<String, String>,
        deadline: tokio::time::Instant,
    ) -> Result<AgentClient, LabError> {
        let failed = |what: &str, e: bollard::errors::Error| {
            LabError::Agent(format!("failed to {what} the agent's container: {e}"))
        };
        let body = ContainerCreateBody {
            image: Some(image.reference.clone()),
            entrypoint: Some(image.entrypoint.clone()),
            cmd: Some(vec!["agent".to_owned()]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(format!("container:{mta}")),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.to_owned()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| failed("create", e))?;
        let id = created.id;
        let remove = || async {
            let _ = crate::docker::remove(docker, &id).await;
        };
        let attached = docker
            .attach_container(
                &id,
                Some(AttachContainerOptions {
                    stdin: true,
                    stdout: true,
                    stderr: true,
                    stream: true,
                    logs: false,
                    ..Default::default()
                }),
            )
            .await;
        let attached = match attached {
            Ok(a) => a,
            Err(e) => {
                remove().await;
                return Err(failed("attach to", e));
            }
        };
        if let Err(e) = docker.start_container(&id, None).await {
            remove().await;
            return Err(failed("start", e));
        }
        let (requests, mut outgoing) = mpsc::unbounded_channel::<String>();
        let mut input = attached.input;
        let writer = tokio::spawn(async move {
            while let Some(line) = outgoing.recv().await {
                if input.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                while let Ok(more) = outgoing.try_recv() {
                    if input.write_all(more.as_bytes()).await.is_err() {
                        return;
                    }
                }
                if input.flush().await.is_err() {
                    break;
                }
            }
            let _ = input.shutdown().await;
        });
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let stderr: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let (greeted_tx, greeted) = oneshot::channel::<String>();
        let reader = tokio::spawn(read(
            attached.output,
            pending.clone(),
            stderr.clone(),
            greeted_tx,
        ));
        let client = AgentClient {
            docker: docker.clone(),
            id,
            next: AtomicU64::new(1),
            requests,
            pending,
            stderr,
            pumps: vec![writer, reader],
        };
        let greeting = tokio::time::timeout_at(deadline, greeted).await;
        match greeting {
            Ok(Ok(g)) if g == GREETING => Ok(client),
            Ok(Ok(g)) => {
                let e = LabError::Agent(format!(
                    "the agent's container did not speak the agent protocol (it said {g:?}); is {} this harness's own binary?",
                    image.binary.display()
                ));
                client.stop().await;
                Err(e)
            }
            Ok(Err(_)) | Err(_) => {
                let e = LabError::Agent(format!("the agent did not start{}", client.stderr_tail()));
                client.stop().await;
                Err(e)
            }
        }
    }

    /// Sends one request and waits for its reply.
    pub async fn call(&self, call: Call) -> Result<Reply, LabError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().expect("agent client poisoned");
            let Some(pending) = pending.as_mut() else {
                return Err(self.gone());
            };
            pending.insert(id, tx);
        }
        let line = serde_json::to_string(&Request { id, call }).expect("requests serialise");
        if self.requests.send(line + "\n").is_err() {
            return Err(self.gone());
        }
        rx.await.map_err(|_| self.gone())
    }

    fn gone(&self) -> LabError {
        LabError::Agent(format!("the agent stopped{}", self.stderr_tail()))
    }

    fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().expect("agent client poisoned");
        if lines.is_empty() {
            String::new()
        } else {
            format!(
                "; it said:\n{}",
                lines.iter().cloned().collect::<Vec<_>>().join("\n")
            )
        }
    }

    /// Removes the agent's container (its fakes go with it).
    pub async fn stop(mut self) {
        for p in self.pumps.drain(..) {
            p.abort();
        }
        let id = std::mem::take(&mut self.id);
        let _ = crate::docker::remove(&self.docker, &id).await;
    }
}

/// Sorts the agent's output: replies to their callers, stderr kept for
/// error messages. When the output ends every caller still waiting hears
/// that the agent has gone.
async fn read(
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    pending: Pending,
    stderr: Arc<Mutex<VecDeque<String>>>,
    greeted: oneshot::Sender<String>,
) {
    let mut greeted = Some(greeted);
    let mut out = Vec::new();
    let mut err = Vec::new();
    while let Some(Ok(chunk)) = output.next().await {
        match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                out.extend_from_slice(&message);
                while let Some(end) = out.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = out.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line[..end]);
                    if let Some(g) = greeted.take() {
                        let _ = g.send(line.into_owned());
                        continue;
                    }
                    match serde_json::from_str::<Response>(&line) {
                        Ok(r) => {
                            let waiting = pending
                                .lock()
                                .expect("agent client poisoned")
                                .as_mut()
                                .and_then(|p| p.remove(&r.id));
                            if let Some(tx) = waiting {
                                let _ = tx.send(r.reply);
                            }
                        }
                        Err(e) => keep(&stderr, format!("unreadable reply ({e}): {line}")),
                    }
                }
            }
            LogOutput::StdErr { message } => {
                err.extend_from_slice(&message);
                while let Some(end) = err.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = err.drain(..=end).collect();
                    keep(&stderr, String::from_utf8_lossy(&line[..end]).into_owned());
                }
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    if !err.is_empty() {
        keep(&stderr, String::from_utf8_lossy(&err).into_owned());
    }
    // Dropping the senders tells every waiting caller.
    pending.lock().expect("agent client poisoned").take();
}

fn keep(stderr: &Mutex<VecDeque<String>>, line: String) {
    let mut kept = stderr.lock().expect("agent client poisoned");
    if kept.len() == STDERR_KEPT {
        kept.pop_front();
    }
    kept.push_back(line);
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        for p in self.pumps.drain(..) {
            p.abort();
        }
        // Not stopped in order (a panic, say): the container goes before
        // the drop returns, as the MTA's does. On a thread of its own, with
        // a client of its own: this runtime may be unwinding.
        let id = std::mem::take(&mut self.id);
        if id.is_empty() {
            return;
        }
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(docker) = Docker::connect_with_defaults() {
                    let _ = crate::docker::remove(&docker, &id).await;
                }
            });
        })
        .join();
    }
}

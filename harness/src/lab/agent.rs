//! The agent: the harness's own binary (`tlsharness agent`), running in a
//! container that shares the MTA's network namespace. It starts each case's
//! relay and middleboxes there, injects mail into the MTA's listener, and
//! answers questions about what its fakes saw, over stdin and stdout
//! ([`super::protocol`]).
//!
//! Every case's middleboxes listen on the relay's real port at the path's
//! address; cases share those listeners, and a connection belongs to the
//! case whose transport sends from its source address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::protocol::{Call, GREETING, Hex, Reply, Request, Response, RigSpec, RigState};
use super::{INJECT, SENDER};
use crate::middlebox::{BuildContext, Middlebox, MiddleboxConfig};
use crate::pki::Identity;
use crate::scenario::AuthMechanism;
use crate::tls::{TlsVersions, server_config};
use crate::upstream::{Policy, Relay, RelayConfig};

/// Concurrent injections (and pooled SMTP connections to the MTA).
const INJECTORS: usize = 16;
/// The longest one injection may take.
const INJECT_TIMEOUT: Duration = Duration::from_secs(60);

/// One case's running fakes.
struct Rigged {
    relay: Relay,
    middleboxes: Vec<Middlebox>,
    stop: CancellationToken,
    /// The case's zone on the DNS path, if its mail goes by MX.
    zone: Option<String>,
    /// Its MTA-STS policy server's name, if it has one.
    policy_host: Option<String>,
    /// Ports its paths drop: held until the rig goes.
    _dropping: Vec<Dropping>,
}

/// A port that drops connections: a listener with an accept queue of one,
/// filled by a connection of its own and never accepted from. Linux then
/// answers no SYN at all (the queue is full), so a client's connect times
/// out exactly as behind a firewall's DROP rule.
struct Dropping {
    _listener: tokio::net::TcpListener,
    _filler: tokio::net::TcpStream,
}

impl Dropping {
    async fn open(listen: SocketAddr) -> Result<Dropping, String> {
        let fail = |e: std::io::Error| format!("failed to drop connections to {listen}: {e}");
        let socket = if listen.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(fail)?;
        socket.set_reuseaddr(true).map_err(fail)?;
        socket.bind(listen).map_err(fail)?;
        let listener = socket.listen(0).map_err(fail)?;
        let filler = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(listen),
        )
        .await
        .map_err(|_| {
            format!("failed to drop connections to {listen}: its own connection timed out")
        })?
        .map_err(fail)?;
        Ok(Dropping {
            _listener: listener,
            _filler: filler,
        })
    }
}

/// Who gets a connection accepted on a shared listener.
struct Route {
    source: Option<IpAddr>,
    rig: u64,
    middlebox: Middlebox,
}

/// A shared listener: whose its connections are, and how to close it.
struct Listening {
    routes: Arc<Mutex<Vec<Route>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

struct Agent {
    identities: Mutex<HashMap<u64, Identity>>,
    rigs: Mutex<HashMap<u64, Rigged>>,
    routes: Mutex<HashMap<SocketAddr, Listening>>,
    /// Listeners whose last rig has gone, until their socket is closed: a
    /// port nobody serves must refuse connections, as a real host's does,
    /// not accept and reset them, and a later rig binds it again.
    closing: Mutex<HashMap<SocketAddr, tokio::task::JoinHandle<()>>>,
    tasks: TaskTracker,
    stop: CancellationToken,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    injecting: tokio::sync::Semaphore,
    /// Set once `injecting` has been cut to what the MTA takes.
    injections_set: std::sync::OnceLock<usize>,
    /// The DNS middlebox's zones.
    dns: crate::dns::proxy::Table,
    /// The MTA-STS policy server's cases.
    policies: crate::dns::mta_sts::Table,
}

/// Serves requests from `input` until it ends, then stops every fake.
pub async fn serve<R, W>(input: R, output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, writer) = write_replies(output);
    let agent = Arc::new(Agent::new());
    // The DNS middlebox, between the MTA's validating resolver and the
    // run's name server, and the MTA-STS policy server (only runs with
    // zones use them): bound before the greeting, so that they answer from
    // the moment the harness knows the agent is there.
    agent.open_dns_path().await;
    agent.open_policy_server().await;
    let _ = out_tx.send(format!("{GREETING}\n"));
    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await? {
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tlsharness agent: a request it cannot read: {e}: {line}");
                continue;
            }
        };
        let reply = Replier {
            id: request.id,
            out: out_tx.clone(),
        };
        agent.call(request.call, reply).await;
    }
    // The harness is gone or done: stop everything, then leave.
    agent.stop.cancel();
    agent.tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent.tasks.wait()).await;
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

/// The task that writes the lines sent to it to `output`, and its sender.
fn write_replies<W>(output: W) -> (mpsc::UnboundedSender<String>, tokio::task::JoinHandle<()>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(line) = out_rx.recv().await {
            if output.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            // Replies go out at once, as many as are ready together.
            while let Ok(more) = out_rx.try_recv() {
                if output.write_all(more.as_bytes()).await.is_err() {
                    return;
                }
            }
            if output.flush().await.is_err() {
                break;
            }
        }
    });
    (out_tx, writer)
}

/// Where the reply to one request goes.
struct Replier {
    id: u64,
    out: mpsc::UnboundedSender<String>,
}

impl Replier {
    fn send(self, reply: Reply) {
        let line =
            serde_json::to_string(&Response { id: self.id, reply }).expect("replies serialise");
        let _ = self.out.send(line + "\n");
    }
}

/// This process's peak resident memory (VmHWM), in KiB.
pub fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or_default()
}

impl Agent {
    fn new() -> Agent {
        Agent {
            identities: Mutex::default(),
            rigs: Mutex::default(),
            routes: Mutex::default(),
            closing: Mutex::default(),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            smtp: AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(INJECT.ip().to_string())
                .port(INJECT.port())
                .hello_name(ClientId::Domain("injector.tlsharness.test".into()))
                .timeout(Some(Duration::from_secs(30)))
                .pool_config(PoolConfig::new().max_size(INJECTORS as u32))
                .build(),
            injecting: tokio::sync::Semaphore::new(INJECTORS),
            injections_set: std::sync::OnceLock::new(),
            dns: crate::dns::proxy::Table::default(),
            policies: crate::dns::mta_sts::Table::default(),
        }
    }

    /// The DNS middlebox on each of its addresses; one that cannot listen
    /// is reported, and the agent goes on without it.
    async fn open_dns_path(&self) {
        for address in [crate::dns::proxy::PATH, crate::dns::proxy::QUIET] {
            let listen = SocketAddr::new(address.into(), 53);
            match crate::dns::proxy::bind(listen).await {
                Ok(bound) => {
                    let (table, stop) = (self.dns.clone(), self.stop.clone());
                    let upstream = SocketAddr::new(crate::dns::SERVER.into(), 53);
                    self.tasks.spawn(async move {
                        let _ = crate::dns::proxy::serve(bound, upstream, table, stop).await;
                    });
                }
                Err(e) => {
                    eprintln!("tlsharness agent: the DNS middlebox cannot listen on {listen}: {e}")
                }
            }
        }
    }

    /// The MTA-STS policy server; one that cannot listen is reported, and
    /// the agent goes on without it.
    async fn open_policy_server(&self) {
        let listen = SocketAddr::new(crate::dns::mta_sts::SERVER.into(), 443);
        match crate::dns::mta_sts::bind(listen).await {
            Ok(listener) => {
                let (table, stop) = (self.policies.clone(), self.stop.clone());
                self.tasks.spawn(async move {
                    let _ = crate::dns::mta_sts::serve(listener, table, stop).await;
                });
            }
            Err(e) => {
                eprintln!(
                    "tlsharness agent: the MTA-STS policy server cannot listen on {listen}: {e}"
                )
            }
        }
    }

    /// Serves one call: those that wait on the network (a rig's state, an
    /// injection, the MTA's readiness) in tasks of their own, the others
    /// in the order they came.
    async fn call(self: &Arc<Self>, call: Call, reply: Replier) {
        match call {
            // In order: a rig may name the identities sent before it.
            Call::Identity {
                key,
                chain,
                private_key,
            } => {
                self.add_identity(key, chain, private_key);
                reply.send(Reply::Done);
            }
            Call::Rig(spec) => reply.send(match self.rig(*spec).await {
                Ok(()) => Reply::Done,
                Err(error) => Reply::Failed { error },
            }),
            Call::Unrig { rig } => {
                self.unrig(rig);
                reply.send(Reply::Done);
            }
            Call::State { rig, idle_ms } => {
                let agent = self.clone();
                tokio::spawn(async move { reply.send(agent.state(rig, idle_ms).await) });
            }
            Call::Inject {
                recipient,
                subject,
                message_id,
            } => {
                let agent = self.clone();
                tokio::spawn(async move {
                    reply.send(
                        match agent.inject(&recipient, &subject, &message_id).await {
                            Ok(response) => Reply::Injected { response },
                            Err(error) => Reply::Failed { error },
                        },
                    )
                });
            }
            Call::Usage => reply.send(Reply::Usage {
                peak_rss_kb: peak_rss_kb(),
            }),
            Call::Ready {
                timeout_ms,
                injections,
            } => {
                // No more injections at once than the MTA takes
                // connections at once, from now on.
                if self.injections_set.set(injections).is_ok() {
                    let fewer = INJECTORS.saturating_sub(injections.max(1));
                    self.injecting.forget_permits(fewer);
                }
                let agent = self.clone();
                tokio::spawn(async move { reply.send(agent.ready(timeout_ms).await) });
            }
        }
    }

    fn add_identity(&self, key: u64, chain: Vec<Hex>, private_key: Hex) {
        let identity = Identity {
            chain: chain
                .into_iter()
                .map(|c| CertificateDer::from(c.0))
                .collect(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(private_key.0)),
        };
        self.identities
            .lock()
            .expect("agent poisoned")
            .insert(key, identity);
    }

    /// Whether the MTA's listener greets within `timeout_ms`.
    async fn ready(&self, timeout_ms: u64) -> Reply {
        let r = tokio::time::timeout(
            Duration::from_millis(timeout_ms),
            self.smtp.test_connection(),
        )
        .await;
        match r {
            Ok(Ok(true)) => Reply::Done,
            Ok(Ok(false)) => Reply::Failed {
                error: "it did not greet".into(),
            },
            Ok(Err(e)) => Reply::Failed {
                error: e.to_string(),
            },
            Err(_) => Reply::Failed {
                error: "timed out".into(),
            },
        }
    }

    fn identity(&self, key: u64) -> Result<Identity, String> {
        self.identities
            .lock()
            .expect("agent poisoned")
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("no identity {key} was sent"))
    }

    fn acceptor(
        &self,
        key: u64,
        versions: TlsVersions,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        server_config(&self.identity(key)?, versions)
            .map_err(|e| format!("failed to configure TLS: {e}"))
    }

    async fn rig(&self, spec: RigSpec) -> Result<(), String> {
        let stop = self.stop.child_token();
        let r = &spec.relay;
        let tls = match r.identity {
            Some(key) => Some(self.acceptor(key, r.tls_versions)?),
            None => None,
        };
        let mut config = RelayConfig::new(r.hostname.clone(), tls);
        config.implicit_tls = r.implicit_tls;
        config.replay = r.replay.clone();
        config.idle_timeout = Duration::from_millis(r.idle_timeout_ms);
        config.auth = r
            .auth
            .iter()
            .map(|m| match m {
                AuthMechanism::Plain => mailin_embedded::AuthMechanism::Plain,
                AuthMechanism::Login => mailin_embedded::AuthMechanism::Login,
            })
            .collect();
        config.auth_before_tls = r.auth_before_tls;
        config.auth_optional = r.auth_optional;
        config.policy = Policy {
            require_tls: r.require_tls,
            credentials: r.credentials.clone(),
            any_credentials: r.any_credentials,
        };
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(|e| format!("failed to listen on loopback: {e}"))?;
        let relay = Relay::start(listener, config, &self.tasks, stop.clone())
            .map_err(|e| format!("failed to start the relay: {e}"))?;
        let mut middleboxes = Vec::new();
        let mut dropping = Vec::new();
        for path in &spec.paths {
            if path.drop {
                dropping.push(Dropping::open(path.listen).await?);
                continue;
            }
            let mut context = BuildContext::default();
            for (kind, key) in &path.acceptors {
                context
                    .acceptors
                    .insert(*kind, self.acceptor(*key, TlsVersions::Any)?);
            }
            let middlebox = Middlebox::new(
                path.listen,
                MiddleboxConfig {
                    upstream: relay.addr(),
                    relay_name: r.hostname.clone(),
                    behaviours: path.behaviours.clone(),
                    context,
                    connect_timeout: Duration::from_millis(spec.connect_timeout_ms),
                    implicit_tls: r.implicit_tls,
                },
                &self.tasks,
                stop.clone(),
            );
            self.route(path.listen, spec.source, spec.rig, middlebox.clone())
                .await?;
            middleboxes.push(middlebox);
        }
        if let Some(d) = &spec.dns {
            self.dns.set(&d.zone, d.behaviours.clone());
        }
        if let Some(p) = &spec.mta_sts {
            let config = self.acceptor(p.identity, TlsVersions::Any)?;
            self.policies.set(&p.host, config, p.policy.clone());
        }
        self.rigs.lock().expect("agent poisoned").insert(
            spec.rig,
            Rigged {
                relay,
                middleboxes,
                stop,
                zone: spec.dns.as_ref().map(|d| d.zone.clone()),
                policy_host: spec.mta_sts.as_ref().map(|p| p.host.clone()),
                _dropping: dropping,
            },
        );
        Ok(())
    }

    /// Sends connections to `listen` from `source` to `middlebox`, opening
    /// the shared listener on first use.
    async fn route(
        &self,
        listen: SocketAddr,
        source: Option<IpAddr>,
        rig: u64,
        middlebox: Middlebox,
    ) -> Result<(), String> {
        let existing = self
            .routes
            .lock()
            .expect("agent poisoned")
            .get(&listen)
            .map(|l| l.routes.clone());
        let table = match existing {
            Some(t) => t,
            None => {
                // Rigs and unrigs are served in order, so nothing binds
                // this address while its old listener is closing.
                let old = self.closing.lock().expect("agent poisoned").remove(&listen);
                if let Some(task) = old {
                    let _ = task.await;
                }
                let listener = TcpListener::bind(listen)
                    .await
                    .map_err(|e| format!("failed to listen on {listen}: {e}"))?;
                let table: Arc<Mutex<Vec<Route>>> = Arc::default();
                let stop = self.stop.child_token();
                let routes = table.clone();
                let own = stop.clone();
                let task = self.tasks.spawn(async move {
                    loop {
                        let (stream, peer) = tokio::select! {
                            _ = own.cancelled() => break,
                            accepted = crate::smtp::accept(&listener) => accepted,
                        };
                        let chosen = routes
                            .lock()
                            .expect("agent poisoned")
                            .iter()
                            .find(|r| r.source.is_none_or(|s| s == peer.ip()))
                            .map(|r| r.middlebox.clone());
                        match chosen {
                            Some(m) => m.serve(stream, peer),
                            // Another case's listener, not this
                            // connection's: reset, the nearest an open
                            // socket comes to refusing.
                            None => {
                                let _ = socket2::SockRef::from(&stream)
                                    .set_linger(Some(Duration::ZERO));
                            }
                        }
                    }
                });
                self.routes.lock().expect("agent poisoned").insert(
                    listen,
                    Listening {
                        routes: table.clone(),
                        stop,
                        task,
                    },
                );
                table
            }
        };
        let mut routes = table.lock().expect("agent poisoned");
        if routes.iter().any(|r| r.source == source) {
            return Err(format!(
                "two rigs for connections from {source:?} to {listen}"
            ));
        }
        routes.push(Route {
            source,
            rig,
            middlebox,
        });
        Ok(())
    }

    fn unrig(&self, rig: u64) {
        if let Some(r) = self.rigs.lock().expect("agent poisoned").remove(&rig) {
            r.stop.cancel();
            if let Some(zone) = &r.zone {
                self.dns.remove(zone);
            }
            if let Some(host) = &r.policy_host {
                self.policies.remove(host);
            }
        }
        let mut listening = self.routes.lock().expect("agent poisoned");
        let mut emptied = Vec::new();
        for (addr, l) in listening.iter() {
            let mut routes = l.routes.lock().expect("agent poisoned");
            routes.retain(|r| r.rig != rig);
            if routes.is_empty() {
                emptied.push(*addr);
            }
        }
        for addr in emptied {
            if let Some(l) = listening.remove(&addr) {
                l.stop.cancel();
                self.closing
                    .lock()
                    .expect("agent poisoned")
                    .insert(addr, l.task);
            }
        }
    }

    async fn state(&self, rig: u64, idle_ms: Option<u64>) -> Reply {
        let found = self
            .rigs
            .lock()
            .expect("agent poisoned")
            .get(&rig)
            .map(|r| {
                (
                    r.relay.clone(),
                    r.middleboxes.clone(),
                    r.zone.clone(),
                    r.policy_host.clone(),
                )
            });
        let Some((relay, middleboxes, zone, policy_host)) = found else {
            return Reply::Failed {
                error: format!("no rig {rig}"),
            };
        };
        if let Some(ms) = idle_ms {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
            for m in &middleboxes {
                if !m.idle(deadline).await {
                    break;
                }
            }
        }
        Reply::State(Box::new(RigState {
            paths: middleboxes.iter().map(Middlebox::records).collect(),
            open: middleboxes.iter().map(Middlebox::open).sum(),
            received: relay.received(),
            dns: zone
                .map(|z| self.dns.events(&z))
                .unwrap_or_default()
                .into_iter()
                .chain(
                    policy_host
                        .map(|h| self.policies.events(&h))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|e| format!("MTA-STS policy server: {e}")),
                )
                .collect(),
        }))
    }

    async fn inject(
        &self,
        recipient: &str,
        subject: &str,
        message_id: &str,
    ) -> Result<String, String> {
        let bad = |e: String| format!("message to {recipient}: {e}");
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
                    "the MTA did not accept it within {}s",
                    INJECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| bad(e.to_string()))?;
        // Its first line, where every MTA says the queue id.
        Ok(response.message().next().unwrap_or_default().to_owned())
    }
}

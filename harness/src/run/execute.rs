//! Running a set of cases against one Postfix instance.
//!
//! Every case gets its own fake relay and middlebox on ephemeral loopback
//! ports, its own recipient domain and a transport chosen by its settings
//! (level, trust); one Postfix container serves all of them at once.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::classify::{Attempt, Wire, classify, compare};
use super::plan::{Case, Selection, plan};
use crate::level::Level;
use crate::middlebox::{BuildContext, Middlebox, MiddleboxConfig};
use crate::pki::{CertKind, Identity, Pki, PkiError};
use crate::postfix::config::{PostfixConfig, Route, Transport};
use crate::postfix::log::LogEvent;
use crate::postfix::{DeliveryEvent, Instance, PostfixError, StartOptions, docker};
use crate::scenario::{Expectation, Scenario};
use crate::tls::{TlsVersions, server_config};
use crate::upstream::{Relay, RelayConfig};

/// Called with progress events as they happen.
pub type Observer = Arc<dyn Fn(RunEvent<'_>) + Send + Sync>;

/// How a run is carried out.
#[derive(Clone)]
pub struct RunOptions {
    pub image: String,
    /// Which cases to run.
    pub selection: Selection,
    pub startup_timeout: Duration,
    /// The longest one delivery attempt may take to produce a status line.
    pub attempt_timeout: Duration,
    pub observer: Option<Observer>,
    /// Fires to stop the run early; everything is still cleaned up.
    pub cancel: CancellationToken,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            image: crate::postfix::image::DEFAULT_IMAGE.to_owned(),
            selection: Selection::default(),
            startup_timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(120),
            observer: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// Progress, as it happens.
pub enum RunEvent<'a> {
    /// Fakes are listening; the Postfix container is being started.
    Starting {
        run_id: &'a str,
        image: &'a str,
    },
    /// Postfix is up; cases are about to run.
    Ready {
        version: &'a str,
        cases: usize,
        startup: Duration,
    },
    CaseDone(&'a CaseResult),
}

/// The result of one case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub scenario: String,
    pub name: String,
    pub file: String,
    pub level: Level,
    pub expected: Expectation,
    pub attempts: Vec<Attempt>,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub recipient: String,
    pub queue_id: Option<String>,
    /// The relay as the scenario names it: `hostname:port`.
    pub relay: String,
    pub behaviours: Vec<String>,
    /// Postfix log lines about this case.
    pub log: Vec<String>,
    /// The wire transcript of every connection, in order.
    pub transcript: String,
    pub duration_ms: u64,
    /// The case's smtp transport (master.cf service name) and its
    /// transport_maps entry.
    pub transport: String,
    pub route: String,
}

impl CaseResult {
    /// The outcome of the last attempt, if it was classified.
    pub fn outcome(&self) -> Option<crate::outcome::Outcome> {
        self.attempts.last().and_then(|a| a.outcome)
    }
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub image: String,
    pub postfix_version: String,
    pub cases: Vec<CaseResult>,
    /// From asking Docker for the container to Postfix accepting mail.
    pub startup_ms: u64,
    pub total_ms: u64,
    /// The rendered configuration the instance ran with.
    #[serde(skip)]
    pub main_cf: String,
    #[serde(skip)]
    pub master_cf: String,
}

impl RunReport {
    /// A run with nothing to do (an empty shard).
    pub fn empty(image: &str) -> RunReport {
        RunReport {
            run_id: String::new(),
            image: image.to_owned(),
            postfix_version: String::new(),
            cases: Vec::new(),
            startup_ms: 0,
            total_ms: 0,
            main_cf: String::new(),
            master_cf: String::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.passed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Postfix(#[from] PostfixError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("failed to set up the run: {0}")]
    Setup(String),
    #[error("no case selected: {0}")]
    NothingToRun(String),
    #[error("the run was interrupted")]
    Interrupted,
}

impl RunError {
    pub fn is_environment(&self) -> bool {
        match self {
            RunError::Postfix(e) => e.is_environment(),
            RunError::Setup(_) => true,
            _ => false,
        }
    }
}

/// One case's fakes.
struct Rig {
    relay: Relay,
    middlebox: Middlebox,
    message_id: String,
    route: Route,
}

/// Stops every relay and middlebox of the run, whatever way the run ends.
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Runs every level of every scenario against one Postfix instance.
pub async fn run(scenarios: &[Arc<Scenario>], opts: &RunOptions) -> Result<RunReport, RunError> {
    let t0 = Instant::now();
    let cases = plan(scenarios, &opts.selection);
    if cases.is_empty() {
        let unsharded = Selection {
            partition: None,
            ..opts.selection.clone()
        };
        if opts.selection.partition.is_some() && !plan(scenarios, &unsharded).is_empty() {
            // More shards than cases: this shard simply has nothing to do.
            return Ok(RunReport::empty(&opts.image));
        }
        return Err(RunError::NothingToRun(
            "no scenario and level match the selection".into(),
        ));
    }
    let docker = docker::connect(Duration::from_secs(10)).await?;
    docker::sweep(&docker).await?;
    if !docker::image_exists(&docker, &opts.image).await? {
        let suite_arg = crate::postfix::image::suite_of(&opts.image)
            .map(|s| format!(" --suite {s}"))
            .unwrap_or_else(|| " (or build your own image with Postfix in it)".into());
        return Err(PostfixError::ImageMissing {
            image: opts.image.clone(),
            suite_arg,
        }
        .into());
    }
    let run_id = new_run_id();
    let dir = tempfile::Builder::new()
        .prefix(&format!("tlsharness-{run_id}-"))
        .tempdir()
        .map_err(|e| RunError::Setup(format!("failed to make the run directory: {e}")))?;
    let pki = Pki::new(&run_id)?;
    let tasks = TaskTracker::new();
    let stop = CancellationToken::new();
    let _stop_guard = StopOnDrop(stop.clone());

    let mut identities: HashMap<(CertKind, String), Identity> = HashMap::new();
    let mut transports: BTreeMap<BTreeMap<String, String>, String> = BTreeMap::new();
    let mut routes = Vec::new();
    let mut hosts: BTreeMap<String, Vec<std::net::IpAddr>> = BTreeMap::new();
    let mut rigs = Vec::new();
    for case in &cases {
        let relay_spec = &case.scenario.relay;
        let hostname = relay_spec.hostname.as_str().to_owned();
        let key = (relay_spec.certificate, hostname.clone());
        if !identities.contains_key(&key) {
            identities.insert(key.clone(), pki.identity(key.0, &hostname)?);
        }
        let tls = if relay_spec.starttls {
            Some(
                server_config(&identities[&key], TlsVersions::Any)
                    .map_err(|e| RunError::Setup(format!("failed to configure TLS: {e}")))?,
            )
        } else {
            None
        };
        let relay = Relay::start(
            bind_loopback().await?,
            RelayConfig {
                hostname: hostname.clone(),
                tls,
                idle_timeout: opts.attempt_timeout,
            },
            &tasks,
            stop.clone(),
        )
        .map_err(setup_io)?;
        let mut context = BuildContext::default();
        for kind in case
            .scenario
            .middlebox
            .behaviour
            .iter()
            .filter_map(|b| b.certificate())
        {
            let key = (kind, hostname.clone());
            if !identities.contains_key(&key) {
                identities.insert(key.clone(), pki.identity(kind, &hostname)?);
            }
            let acceptor = server_config(&identities[&key], TlsVersions::Any)
                .map_err(|e| RunError::Setup(format!("failed to configure TLS: {e}")))?;
            context.acceptors.insert(kind, acceptor);
        }
        let middlebox = Middlebox::start(
            bind_loopback().await?,
            MiddleboxConfig {
                upstream: relay.addr(),
                relay_name: hostname.clone(),
                behaviours: case.scenario.middlebox.behaviour.clone(),
                context,
                connect_timeout: Duration::from_secs(10),
            },
            &tasks,
            stop.clone(),
        )
        .map_err(setup_io)?;
        let settings = transport_settings(case);
        let next = transports.len();
        let transport = transports
            .entry(settings)
            .or_insert_with(|| format!("tlsh{next}-{}", case.level))
            .clone();
        let route = Route {
            domain: case.domain(),
            transport,
            nexthop: format!("[{hostname}]:{}", middlebox.addr().port()),
        };
        routes.push(route.clone());
        let addrs = hosts.entry(hostname).or_default();
        if !addrs.contains(&middlebox.addr().ip()) {
            addrs.push(middlebox.addr().ip());
        }
        rigs.push(Rig {
            relay,
            middlebox,
            message_id: format!("<case-{}.{run_id}@tlsharness.test>", case.index),
            route,
        });
    }
    let inject = free_loopback_port().await?;
    let config = PostfixConfig {
        inject,
        transports: transports
            .into_iter()
            .map(|(settings, name)| Transport { name, settings })
            .collect(),
        routes,
        hosts,
        ca_pem: pki.ca_pem(),
        main_overrides: BTreeMap::new(),
    };
    config
        .write_to(dir.path())
        .map_err(|e| RunError::Setup(format!("failed to write the Postfix configuration: {e}")))?;

    if opts.cancel.is_cancelled() {
        return Err(RunError::Interrupted);
    }
    if let Some(obs) = &opts.observer {
        obs(RunEvent::Starting {
            run_id: &run_id,
            image: &opts.image,
        });
    }
    let t_start = Instant::now();
    let mut instance = Instance::start(
        dir.path(),
        inject,
        &StartOptions {
            image: opts.image.clone(),
            run_id: run_id.clone(),
            startup_timeout: opts.startup_timeout,
        },
    )
    .await?;
    // A container being created cannot be abandoned safely, so an
    // interruption during start-up takes effect once it is up.
    if opts.cancel.is_cancelled() {
        instance.stop().await;
        return Err(RunError::Interrupted);
    }
    let startup = t_start.elapsed();
    if let Some(obs) = &opts.observer {
        obs(RunEvent::Ready {
            version: instance.version(),
            cases: cases.len(),
            startup,
        });
    }
    let receivers: Vec<_> = cases
        .iter()
        .map(|c| instance.subscribe(&c.recipient()))
        .collect();
    let all = futures_util::future::join_all(
        cases
            .iter()
            .zip(&rigs)
            .zip(receivers)
            .map(|((case, rig), rx)| run_case(case, rig, &instance, rx, opts)),
    );
    let results = tokio::select! {
        results = all => Some(results),
        _ = opts.cancel.cancelled() => None,
    };
    let Some(results) = results else {
        instance.stop().await;
        return Err(RunError::Interrupted);
    };
    let version = instance.version().to_owned();
    instance.stop().await;
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    Ok(RunReport {
        run_id,
        image: opts.image.clone(),
        postfix_version: version,
        cases: results,
        startup_ms: startup.as_millis() as u64,
        total_ms: t0.elapsed().as_millis() as u64,
        main_cf: config.main_cf(),
        master_cf: config.master_cf(),
    })
}

/// The `-o` settings of the case's smtp transport.
fn transport_settings(case: &Case) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    s.insert(
        "smtp_tls_security_level".to_owned(),
        case.level.as_str().to_owned(),
    );
    if !case.scenario.postfix.trust_ca {
        s.insert("smtp_tls_CAfile".to_owned(), String::new());
    }
    if let Some(after) = case.scenario.delivery.retry_after {
        s.insert("minimal_backoff_time".to_owned(), format!("{}s", after.0));
    }
    for (k, v) in &case.scenario.postfix.settings {
        s.insert(k.as_str().to_owned(), v.as_str().to_owned());
    }
    s
}

async fn run_case(
    case: &Case,
    rig: &Rig,
    pf: &Instance,
    mut rx: mpsc::UnboundedReceiver<DeliveryEvent>,
    opts: &RunOptions,
) -> CaseResult {
    let started = Instant::now();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut queue_id: Option<String> = None;
    let mut log: Vec<(usize, String)> = Vec::new();
    let subject = format!("tlsharness {}", case.name());
    let mut injected_at = tokio::time::Instant::now();
    for n in 0..case.expect.attempts.len() {
        if n > 0
            && let Some(after) = case.scenario.delivery.retry_after
        {
            // The scenario's deliberate wait: the message must be this old
            // for Postfix to treat the next attempt as a retry after backoff.
            tokio::time::sleep_until(injected_at + Duration::from_secs(after.0)).await;
        }
        let first_line = pf.line_count();
        let connections_before = rig.middlebox.ended();
        if n == 0 {
            injected_at = tokio::time::Instant::now();
        }
        let kicked = match &queue_id {
            None => pf
                .inject(&case.recipient(), &subject, &rig.message_id)
                .await
                .map(|id| queue_id = Some(id)),
            Some(id) => pf.flush(id).await,
        };
        if let Err(e) = kicked {
            attempts.push(Attempt::failed(e.to_string(), Wire::default()));
            break;
        }
        let deadline = tokio::time::Instant::now() + opts.attempt_timeout;
        let event = tokio::time::timeout_at(deadline, rx.recv()).await;
        let Ok(Some(event)) = event else {
            attempts.push(Attempt::failed(
                format!(
                    "Postfix logged no delivery status for attempt {} within {}s",
                    n + 1,
                    opts.attempt_timeout.as_secs()
                ),
                Wire::default(),
            ));
            break;
        };
        // Postfix logs the status before it says QUIT; the wire record of
        // the attempt is complete once its connections have closed.
        rig.middlebox.idle(deadline).await;
        let records = rig.middlebox.records();
        let wire = Wire::from_records(records.get(connections_before..).unwrap_or_default());
        let mut lines = pf.lines_about(
            Some(event.pid),
            queue_id.as_deref(),
            first_line..event.index + 1,
        );
        // An smtp process delivers one message at a time: its lines after
        // its previous status line are about this delivery.
        let previous = lines
            .iter()
            .filter(|(i, l)| {
                *i < event.index && l.pid == event.pid && matches!(l.event, LogEvent::Delivery(_))
            })
            .map(|(i, _)| *i)
            .next_back();
        if let Some(previous) = previous {
            lines.retain(|(i, l)| {
                *i > previous || (l.pid != event.pid && l.queue_id() == queue_id.as_deref())
            });
        }
        let port = rig.middlebox.addr().port();
        let tls = lines
            .iter()
            .filter(|(_, l)| l.pid == event.pid)
            .filter_map(|(_, l)| match &l.event {
                LogEvent::Tls(t) if t.port == port => Some(t.clone()),
                _ => None,
            })
            .next_back();
        let status_line = lines
            .iter()
            .find(|(i, _)| *i == event.index)
            .map(|(_, l)| l.raw.clone())
            .unwrap_or_default();
        log.extend(lines.into_iter().map(|(i, l)| (i, l.raw)));
        let received = rig
            .relay
            .received()
            .into_iter()
            .rfind(|r| r.message_id.as_deref() == Some(rig.message_id.as_str()));
        let received = (event.delivery.status == "sent")
            .then_some(received)
            .flatten();
        let attempt = classify(&event.delivery, &status_line, tls, wire, received);
        let done = attempt.outcome.is_none_or(|o| o.is_final());
        attempts.push(attempt);
        if done {
            break;
        }
    }
    log.sort();
    log.dedup();
    let failure = compare(&case.expect, &attempts);
    let transcript = rig
        .middlebox
        .records()
        .iter()
        .enumerate()
        .map(|(i, r)| format!("connection {}:\n{}", i + 1, r.transcript))
        .collect::<Vec<_>>()
        .join("\n");
    let result = CaseResult {
        scenario: case.scenario.id.clone(),
        name: case.scenario.name.clone(),
        file: case.scenario.path.display().to_string(),
        level: case.level,
        expected: case.expect.clone(),
        passed: failure.is_none(),
        failure,
        attempts,
        recipient: case.recipient(),
        queue_id,
        relay: format!(
            "{}:{}",
            case.scenario.relay.hostname, case.scenario.relay.port
        ),
        behaviours: case
            .scenario
            .middlebox
            .behaviour
            .iter()
            .map(|b| b.name().to_owned())
            .collect(),
        log: log.into_iter().map(|(_, l)| l).collect(),
        transcript,
        duration_ms: started.elapsed().as_millis() as u64,
        transport: rig.route.transport.clone(),
        route: format!(
            "{} {}:{}",
            rig.route.domain, rig.route.transport, rig.route.nexthop
        ),
    };
    if let Some(obs) = &opts.observer {
        obs(RunEvent::CaseDone(&result));
    }
    result
}

async fn bind_loopback() -> Result<TcpListener, RunError> {
    TcpListener::bind("127.0.0.1:0").await.map_err(setup_io)
}

/// A loopback port nothing listens on now, for Postfix's smtpd.
async fn free_loopback_port() -> Result<SocketAddr, RunError> {
    let l = bind_loopback().await?;
    l.local_addr().map_err(setup_io)
}

fn setup_io(e: std::io::Error) -> RunError {
    RunError::Setup(format!("failed to listen on loopback: {e}"))
}

/// A short random id naming the run's container, directory and CA.
fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{:010x}", h.finish() & 0xff_ffff_ffff)
}

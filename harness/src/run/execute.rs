//! Running a set of cases against the MTA under test.
//!
//! Every case gets its own fake relay and middlebox(es), its own recipient
//! domain and its own route in the MTA (its TLS policy, and its own source
//! address, by which the agent tells its connections from the others' on
//! the relay's real port); one MTA, in a network namespace of its own with
//! the agent, serves all of them at once (more only when relay names need
//! different addresses).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::classify::{Attempt, compare};
use super::head_start::{HeadStart, Ticket};
use super::observe::{Delivery, Observation, observe};
use super::plan::{Case, Selection, on_images, plan};
use super::rig::{Placement, Rig, Workshop};
use crate::lab::protocol::RigState;
use crate::lab::{AgentImage, Lab, LabError, LabOptions};
use crate::mta::{DeliveryEvent, MtaError, StartOptions};
use crate::pki::{Pki, PkiError};
use crate::policy::{Mta, Policy};
use crate::scenario::{Expectation, Scenario};

/// Called with progress events as they happen.
pub type Observer = Arc<dyn Fn(RunEvent<'_>) + Send + Sync>;

/// How a run is carried out.
#[derive(Clone)]
pub struct RunOptions {
    /// The MTA's images to run every case on (a Postfix scenario may pin
    /// its own). The MTA is the selection's.
    pub images: Vec<String>,
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
            images: vec![Mta::default().driver().default_image().to_owned()],
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
    /// The MTA's container is being started.
    Starting {
        run_id: &'a str,
        mta: Mta,
        images: &'a [String],
    },
    /// The MTA is up; cases are about to run.
    Ready {
        mta: Mta,
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
    /// The MTA's TLS policy, by its own name.
    pub level: Policy,
    /// The MTA the case ran on.
    pub mta: Mta,
    /// The MTA image and version the case ran on (the version's key
    /// predates Exim).
    pub image: String,
    pub mta_version: String,
    pub expected: Expectation,
    pub attempts: Vec<Attempt>,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Neither a pass nor a failure: the MTA's timing was not what the
    /// scenario's expectation assumes (a fresh message that waited past
    /// the fallback age), on the case's run and on its run again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<String>,
    /// Why the case was run a second time with a fresh message: its first
    /// run's timing did not hold. (The attempts are the second run's.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
    pub recipient: String,
    pub queue_id: Option<String>,
    /// The relay as the scenario names it: `hostname:port`.
    pub relay: String,
    pub behaviours: Vec<String>,
    /// The MTA's log lines about this case.
    pub log: Vec<String>,
    /// The wire transcript of every connection, in order.
    pub transcript: String,
    pub duration_ms: u64,
    /// Which MTA instance of the run served the case.
    pub group: usize,
    /// The case's mail went by MX, through the run's DNS.
    #[serde(skip)]
    pub by_mx: bool,
    /// The case's transport in the MTA's terms (Postfix: master.cf
    /// service; Exim: smtp transport) and its route.
    pub transport: String,
    pub route: String,
}

impl CaseResult {
    /// Whether no verdict could be reached: no attempt, or an attempt
    /// without an outcome.
    pub fn is_error(&self) -> bool {
        self.attempts.is_empty() || self.attempts.iter().any(|a| a.outcome.is_none())
    }

    /// Whether the case reached no verdict because the MTA's timing did
    /// not hold (see [`CaseResult::inconclusive`]).
    pub fn is_inconclusive(&self) -> bool {
        self.inconclusive.is_some()
    }

    /// Whether the case failed its expectation (not an error, not
    /// inconclusive).
    pub fn is_failure(&self) -> bool {
        !self.passed && !self.is_error() && !self.is_inconclusive()
    }

    /// The outcome of the last attempt, if it was classified.
    pub fn outcome(&self) -> Option<crate::outcome::Outcome> {
        self.attempts.last().and_then(|a| a.outcome)
    }
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    /// The MTA the run tested.
    pub mta: Mta,
    pub image: String,
    pub mta_version: String,
    pub cases: Vec<CaseResult>,
    /// From asking Docker for the container to the MTA accepting mail.
    pub startup_ms: u64,
    pub total_ms: u64,
    /// Each instance's configuration as the MTA rendered it (Postfix: main.cf
    /// and master.cf; Exim: exim4.conf and its route tables).
    #[serde(skip)]
    pub configs: Vec<(String, String)>,
    /// The agents' peak resident memory (the largest), in KiB: the fakes
    /// live there, not in this process.
    #[serde(skip)]
    pub agent_peak_rss_kb: u64,
    /// Per instance, its DNS logs (resolver, name server, MTA-STS
    /// daemon), kept when a case by MX did not pass; empty otherwise.
    #[serde(skip)]
    pub dns_logs: Vec<String>,
}

impl RunReport {
    /// A run with nothing to do (an empty shard).
    pub fn empty(image: &str) -> RunReport {
        RunReport {
            run_id: String::new(),
            mta: Mta::default(),
            image: image.to_owned(),
            mta_version: String::new(),
            cases: Vec::new(),
            startup_ms: 0,
            total_ms: 0,
            configs: Vec::new(),
            agent_peak_rss_kb: 0,
            dns_logs: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.passed)
    }

    /// Cases the harness could not classify (its witnesses disagreed, or
    /// the MTA logged nothing in time): no verdict, a harness error.
    pub fn errors(&self) -> usize {
        self.cases.iter().filter(|c| c.is_error()).count()
    }

    /// Cases whose timing did not hold, on their run and their run again.
    pub fn inconclusive(&self) -> usize {
        self.cases.iter().filter(|c| c.is_inconclusive()).count()
    }

    /// Success; a harness error when any case could not be classified
    /// (that outranks the rest); failed expectations; or, with no failure,
    /// cases that were inconclusive.
    pub fn exit_code(&self) -> i32 {
        if self.errors() > 0 {
            crate::exit::HARNESS_ERROR
        } else if self.cases.iter().any(CaseResult::is_failure) {
            crate::exit::EXPECTATION_FAILED
        } else if self.inconclusive() > 0 {
            crate::exit::INCONCLUSIVE
        } else {
            crate::exit::SUCCESS
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Mta(#[from] MtaError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("failed to set up the run: {0}")]
    Setup(String),
    #[error("no case selected: {0}")]
    NothingToRun(String),
    #[error("the run was interrupted")]
    Interrupted,
    #[error(
        "the MTA ({image}) stopped during the run: its container was stopped or Docker went away; no result of this run can be trusted"
    )]
    MtaStopped { image: String },
}

impl crate::exit::Code for RunError {
    fn exit_code(&self) -> i32 {
        match self {
            RunError::Interrupted => crate::exit::INTERRUPTED,
            RunError::NothingToRun(_) => crate::exit::BAD_INPUT,
            e if e.is_environment() => crate::exit::ENVIRONMENT,
            _ => crate::exit::HARNESS_ERROR,
        }
    }
}

impl RunError {
    pub fn is_environment(&self) -> bool {
        match self {
            RunError::Mta(e) => e.is_environment(),
            RunError::Lab(e) => e.is_environment(),
            RunError::Setup(_) | RunError::MtaStopped { .. } => true,
            _ => false,
        }
    }
}

/// Cases that can share one MTA: within a group every relay name
/// resolves to the same addresses for every case.
struct Group {
    image: String,
    cases: Vec<usize>,
    hosts: BTreeMap<String, Vec<IpAddr>>,
}

/// Puts each case in the first group with its image where its relay
/// name's addresses agree; usually there is one group per image.
fn group(cases: &[Case], rigs: &[Rig]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, (case, rig)) in cases.iter().zip(rigs).enumerate() {
        // A case whose mail goes by MX resolves its names through DNS.
        let by_name = rig.zone.is_none();
        let fits = |g: &Group| {
            g.image == case.image
                && (!by_name
                    || g.hosts
                        .get(&rig.hostname)
                        .is_none_or(|a| *a == rig.addresses))
        };
        let g = match groups.iter_mut().position(|g| fits(g)) {
            Some(g) => g,
            None => {
                groups.push(Group {
                    image: case.image.clone(),
                    cases: Vec::new(),
                    hosts: BTreeMap::new(),
                });
                groups.len() - 1
            }
        };
        groups[g].cases.push(i);
        if by_name {
            groups[g]
                .hosts
                .insert(rig.hostname.clone(), rig.addresses.clone());
        }
    }
    groups
}

/// The MTA's configuration of one group, and each case's transport and
/// route.
fn configure(
    mta: Mta,
    group: &Group,
    cases: &[Case],
    rigs: &[Rig],
    ca_pem: &str,
) -> crate::mta::Rendered {
    let targets: Vec<crate::mta::Target<'_>> = group
        .cases
        .iter()
        .map(|&i| rigs[i].target(&cases[i]))
        .collect();
    mta.driver().render(&targets, &group.hosts, ca_pem)
}

/// Runs every level of every scenario against as few MTA instances
/// as the scenarios allow (one, unless a relay name needs different
/// addresses in different scenarios).
pub async fn run(scenarios: &[Arc<Scenario>], opts: &RunOptions) -> Result<RunReport, RunError> {
    let t0 = Instant::now();
    let Some(cases) = selected(scenarios, opts)? else {
        return Ok(RunReport::empty(&opts.images[0]));
    };
    let setup = Setup::prepare(cases, opts).await?;
    let mta = opts.selection.mta;
    if opts.cancel.is_cancelled() {
        return Err(RunError::Interrupted);
    }
    if let Some(obs) = &opts.observer {
        let images: Vec<String> = setup.groups.iter().map(|g| g.image.clone()).collect();
        obs(RunEvent::Starting {
            run_id: &setup.run_id,
            mta,
            images: &images,
        });
    }
    let (labs, startup) = setup.start(opts).await?;
    if let Some(obs) = &opts.observer {
        obs(RunEvent::Ready {
            mta,
            version: labs[0].mta.version(),
            cases: setup.cases.len(),
            startup,
        });
    }
    let results = setup.run_cases(&labs, opts).await;
    let after = wind_down(labs, &setup.groups, results.as_deref()).await;
    let Some(results) = results else {
        return Err(RunError::Interrupted);
    };
    if let Some(image) = after.stopped {
        return Err(RunError::MtaStopped { image });
    }
    Ok(RunReport {
        run_id: setup.run_id,
        mta,
        image: opts.images[0].clone(),
        mta_version: after.version,
        cases: results,
        startup_ms: startup.as_millis() as u64,
        total_ms: t0.elapsed().as_millis() as u64,
        configs: setup.configs.into_iter().map(|c| c.configs).collect(),
        agent_peak_rss_kb: after.agent_peak_rss_kb,
        dns_logs: after.dns_logs,
    })
}

/// The selection's cases on their images; `None` when the selection is
/// a shard with nothing to do.
fn selected(scenarios: &[Arc<Scenario>], opts: &RunOptions) -> Result<Option<Vec<Case>>, RunError> {
    let cases = on_images(plan(scenarios, &opts.selection), &opts.images);
    if !cases.is_empty() {
        return Ok(Some(cases));
    }
    let unsharded = Selection {
        partition: None,
        ..opts.selection.clone()
    };
    if opts.selection.partition.is_some() && !plan(scenarios, &unsharded).is_empty() {
        // More shards than cases: this shard simply has nothing to do.
        return Ok(None);
    }
    Err(RunError::NothingToRun(
        "no scenario and level match the selection".into(),
    ))
}

/// A run's cases with their fakes, grouped onto MTA instances, and each
/// instance's configuration.
struct Setup {
    run_id: String,
    agent: AgentImage,
    cases: Vec<Case>,
    rigs: Vec<Rig>,
    groups: Vec<Group>,
    configs: Vec<crate::mta::Rendered>,
    /// Per case: its group, and its transport and route.
    routes: Vec<Option<(usize, (String, String))>>,
}

impl Setup {
    async fn prepare(cases: Vec<Case>, opts: &RunOptions) -> Result<Setup, RunError> {
        let mut images: Vec<&str> = cases.iter().map(|c| c.image.as_str()).collect();
        images.sort();
        images.dedup();
        let crate::lab::PreparedRun { run_id, agent } = crate::lab::prepare_run(&images).await?;
        let mut workshop = Workshop::new(Pki::new(&run_id)?, opts.attempt_timeout);
        let mut rigs = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            rigs.push(workshop.rig(i as u64, case, &run_id, &Placement::Case)?);
        }
        let groups = group(&cases, &rigs);
        let mta = opts.selection.mta;
        let mut configs = Vec::new();
        let mut routes: Vec<Option<(usize, (String, String))>> = vec![None; cases.len()];
        for (g, group) in groups.iter().enumerate() {
            let mut rendered = configure(mta, group, &cases, &rigs, &workshop.pki.ca_pem());
            for (&i, route) in group.cases.iter().zip(std::mem::take(&mut rendered.routes)) {
                routes[i] = Some((g, route));
            }
            configs.push(rendered);
        }
        Ok(Setup {
            run_id,
            agent,
            cases,
            rigs,
            groups,
            configs,
            routes,
        })
    }

    /// Starts every group's instance with its cases' fakes, and how long
    /// the slowest MTA took to accept mail. On a failure, or an
    /// interruption, the instances that did start are stopped.
    async fn start(&self, opts: &RunOptions) -> Result<(Vec<Lab>, Duration), RunError> {
        let started = futures_util::future::join_all(
            self.groups
                .iter()
                .enumerate()
                .map(|(g, group)| start_group(self.lab_options(g, opts), group, &self.rigs)),
        )
        .await;
        let mut labs = Vec::new();
        let mut failure = None;
        // From asking Docker for the containers to the MTA accepting mail (the
        // slowest instance); the fakes are started after that.
        let mut startup = Duration::ZERO;
        for s in started {
            match s {
                Ok((l, ready)) => {
                    labs.push(l);
                    startup = startup.max(ready);
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        // A container being created cannot be abandoned safely, so an
        // interruption during start-up takes effect once they are up.
        if failure.is_some() || opts.cancel.is_cancelled() {
            for l in &mut labs {
                l.stop().await;
            }
            return Err(failure.map_or(RunError::Interrupted, |e| match e {
                LabError::Mta(e) => RunError::Mta(e),
                e => RunError::Lab(e),
            }));
        }
        Ok((labs, startup))
    }

    /// Group `g`'s instance, as the lab is to start it.
    fn lab_options(&self, g: usize, opts: &RunOptions) -> LabOptions {
        let run_id = &self.run_id;
        let name = if self.groups.len() == 1 {
            run_id.clone()
        } else {
            format!("{run_id}-{g}")
        };
        LabOptions {
            mta: StartOptions {
                mta: opts.selection.mta,
                image: self.groups[g].image.clone(),
                run_id: run_id.clone(),
                container_name: format!("tlsharness-{name}"),
                startup_timeout: opts.startup_timeout,
            },
            files: self.configs[g].files.clone(),
            agent: self.agent.clone(),
        }
    }

    /// Every case at once, each on its group's instance; `None` when the
    /// run was interrupted.
    async fn run_cases(&self, labs: &[Lab], opts: &RunOptions) -> Option<Vec<CaseResult>> {
        let mta = opts.selection.mta;
        let timed = |case: &Case| {
            mta.driver().logs_attempt_start()
                && case.scenario.delivery.retry_after.is_some()
                && mta
                    .driver()
                    .plaintext_fallback_age(case.level, &case.scenario)
                    .is_some()
        };
        let head_start = HeadStart::new(self.cases.iter().filter(|c| timed(c)).count());
        let work: Vec<_> = self
            .cases
            .iter()
            .zip(&self.rigs)
            .zip(&self.routes)
            .map(|((case, rig), route)| {
                let (g, route) = route.as_ref().expect("every case has a group");
                let lab = &labs[*g];
                let rx = lab.mta.subscribe(&case.recipient());
                let start = if timed(case) {
                    Start::First(head_start.ticket())
                } else {
                    Start::After(head_start.clone())
                };
                (case, rig, (*g, route), lab, rx, start)
            })
            .collect();
        let all = futures_util::future::join_all(work.into_iter().map(
            |(case, rig, route, lab, rx, start)| run_case(case, rig, route, lab, rx, start, opts),
        ));
        tokio::select! {
            results = all => Some(results),
            _ = opts.cancel.cancelled() => None,
        }
    }
}

/// Starts one group's instance and rigs its cases' fakes; with how long
/// the MTA took to accept mail.
async fn start_group(
    options: LabOptions,
    group: &Group,
    rigs: &[Rig],
) -> Result<(Lab, Duration), LabError> {
    let t = Instant::now();
    let mut lab = Lab::start(options).await?;
    let ready = t.elapsed();
    for &i in &group.cases {
        if let Err(e) = lab.rig(&rigs[i].fakes).await {
            lab.stop().await;
            return Err(e);
        }
    }
    Ok((lab, ready))
}

/// What the instances told at the end of the run, before they stopped.
struct Aftermath {
    version: String,
    /// The image of an instance that had stopped under the run.
    stopped: Option<String>,
    dns_logs: Vec<String>,
    agent_peak_rss_kb: u64,
}

/// Asks every instance what the report needs of it, then stops them all.
/// `results`: the cases' (`None`: the run was interrupted).
async fn wind_down(
    mut labs: Vec<Lab>,
    groups: &[Group],
    results: Option<&[CaseResult]>,
) -> Aftermath {
    let version = labs[0].mta.version().to_owned();
    // Cases that could not be classified may be the first sign that
    // the MTA died (an injection refused before its log ended): give its
    // log a moment to end, then ask Docker.
    let mut stopped = None;
    let errors = results
        .into_iter()
        .flatten()
        .any(|c| c.attempts.iter().any(|a| a.outcome.is_none()));
    for (l, g) in labs.iter().zip(groups) {
        let ended = errors
            && tokio::time::timeout(Duration::from_secs(5), l.mta.stopped())
                .await
                .is_ok();
        if ended || l.mta.has_stopped().await {
            stopped = Some(g.image.clone());
        }
    }
    // The DNS logs of an instance with a case by MX that did not pass:
    // what the resolver said of its lookups (log-servfail) is read there.
    let mut dns_logs = Vec::new();
    for (g, l) in labs.iter().enumerate() {
        let wanted = results
            .into_iter()
            .flatten()
            .any(|c| c.group == g && c.by_mx && !c.passed);
        let text = if wanted {
            l.mta
                .exec(&["sh", "-c", crate::mta::dns::LOGS])
                .await
                .unwrap_or_else(|e| format!("(the DNS logs could not be read: {e})"))
        } else {
            String::new()
        };
        dns_logs.push(text);
    }
    let mut agent_peak_rss_kb = 0;
    for l in &labs {
        agent_peak_rss_kb = agent_peak_rss_kb.max(l.agent_peak_rss_kb().await.unwrap_or_default());
    }
    for l in &mut labs {
        l.stop().await;
    }
    Aftermath {
        version,
        stopped,
        dns_logs,
        agent_peak_rss_kb,
    }
}

/// When a case's message may go in: a timed case's first, holding a
/// ticket the others wait for (see [`HeadStart`]).
enum Start {
    First(Ticket),
    After(Arc<HeadStart>),
}

async fn run_case(
    case: &Case,
    rig: &Rig,
    (group, route): (usize, &(String, String)),
    lab: &Lab,
    mut rx: mpsc::UnboundedReceiver<DeliveryEvent>,
    start: Start,
    opts: &RunOptions,
) -> CaseResult {
    let instance = &lab.mta;
    // What this MTA version must do, where the scenario says it differs.
    let expect = case
        .scenario
        .expectation_for(case.level, instance.version())
        .unwrap_or(&case.expect);
    let plan = Delivery {
        recipient: case.recipient(),
        subject: format!("tlsharness {}", case.name()),
        attempts: expect.attempts.len(),
        retry_after: case.scenario.delivery.retry_after,
    };
    let fallback_age = instance
        .mta()
        .driver()
        .plaintext_fallback_age(case.level, &case.scenario);
    let unmet = |attempts: &[Attempt]| {
        fallback_age
            .and_then(|age| super::timing::unmet(age, case.scenario.delivery.retry_after, attempts))
    };
    let ticket = match start {
        Start::First(ticket) => Some(ticket),
        Start::After(head_start) => {
            head_start.wait().await;
            None
        }
    };
    let mut seen = observe(
        &plan,
        rig,
        lab,
        &mut rx,
        opts.attempt_timeout,
        Default::default(),
        ticket,
    )
    .await;
    let mut rerun = None;
    let mut timing = unmet(&seen.attempts);
    if let Some(why) = timing.take() {
        match clear(&seen, rig, lab).await {
            Ok(state) => {
                let first_log = std::mem::take(&mut seen.log);
                seen = observe(&plan, rig, lab, &mut rx, opts.attempt_timeout, state, None).await;
                seen.log.splice(0..0, first_log);
                timing = unmet(&seen.attempts);
                rerun = Some(why);
            }
            Err(e) => {
                timing = Some(format!("{why}; it could not be run again: {e}"));
            }
        }
    }
    let (failure, inconclusive) = verdict(compare(expect, &seen.attempts), timing);
    let result = CaseResult {
        scenario: case.scenario.id.clone(),
        name: case.scenario.name.clone(),
        file: case.scenario.path.display().to_string(),
        level: case.level,
        mta: instance.mta(),
        image: case.image.clone(),
        mta_version: instance.version().to_owned(),
        expected: expect.clone(),
        passed: failure.is_none() && inconclusive.is_none(),
        failure,
        inconclusive,
        rerun,
        attempts: seen.attempts,
        recipient: case.recipient(),
        queue_id: seen.queue_id,
        relay: format!(
            "{}:{}",
            case.scenario.relay.hostname, case.scenario.relay.port
        ),
        behaviours: behaviour_names(&case.scenario),
        log: seen.log,
        transcript: seen.transcript,
        duration_ms: seen.duration_ms,
        group,
        by_mx: rig.zone.is_some(),
        transport: route.0.clone(),
        route: route.1.clone(),
    };
    if let Some(obs) = &opts.observer {
        obs(RunEvent::CaseDone(&result));
    }
    result
}

/// Makes way for the case's run again with a fresh message: the first
/// one gone (a deferred one would otherwise be retried by the MTA among
/// the new one's attempts), and what the fakes have seen by then.
async fn clear(seen: &Observation, rig: &Rig, lab: &Lab) -> Result<RigState, String> {
    let removed = match &seen.queue_id {
        Some(id)
            if !seen
                .attempts
                .last()
                .is_some_and(|a| a.outcome.is_some_and(|o| o.is_final())) =>
        {
            lab.mta.remove(id).await
        }
        _ => Ok(()),
    };
    match removed {
        Ok(()) => lab.state(rig.id, None).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The case's failure or why it is inconclusive, from how its attempts
/// compared with the expectation and whether its timing held.
fn verdict(compared: Option<String>, timing: Option<String>) -> (Option<String>, Option<String>) {
    // Unmet timing outranks what the outcome says: the expectation was
    // about another situation than the one the MTA was in.
    match timing {
        Some(why) => (
            None,
            Some(format!(
                "the MTA was too slow for this scenario's timing ({why}){}",
                compared
                    .as_deref()
                    .map(|c| format!("; what it then did: {c}"))
                    .unwrap_or_default()
            )),
        ),
        None => (compared, None),
    }
}

/// Each path's behaviours, `+`-joined (`pass-through` when none).
pub(crate) fn behaviour_names(scenario: &Scenario) -> Vec<String> {
    scenario
        .paths
        .iter()
        .map(|p| {
            let names: Vec<&str> = p.behaviour.iter().map(|b| b.name()).collect();
            if names.is_empty() {
                "pass-through".to_owned()
            } else {
                names.join("+")
            }
        })
        .collect()
}

//! Running scenarios' network paths against the user's configurations:
//! one Postfix per (configuration, image), all started and their smtp
//! clients tried before any case runs; within one, the scenarios run one
//! after another, the relay's name pointed at each scenario's fakes in
//! turn.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::config::UserConfig;
use super::preflight::{self, Preflight};
use super::result::{CheckReport, PostfixWarning, Row};
use super::routes::{self, Hop, MailClass, Routing};
use super::setup::CheckPath;
use super::setup::{self, TlsPolicy};
use super::{CheckError, Refusal, Stage};
use crate::lab::{AgentImage, CLOSED, INJECT, Lab, LabError, LabOptions};
use crate::level::Level;
use crate::mta::{MtaError, StartOptions};
use crate::pki::Pki;
use crate::run::{Attempt, Case, Delivery, Placement, Workshop, findings, observe};
use crate::scenario::{AttemptExpectation, PortFate, PortStatement, Scenario};

/// How a check is carried out.
#[derive(Clone)]
pub struct CheckOptions {
    pub images: Vec<String>,
    pub startup_timeout: Duration,
    pub attempt_timeout: Duration,
    pub cancel: CancellationToken,
}

/// Runs every scenario's path under every configuration on every image.
///
/// Every Postfix is started, and its smtp client tried once, before any
/// case runs: a configuration Postfix refuses, on either side, ends the
/// check with [`CheckError::Refused`] and no case run at all.
pub async fn check(
    sides: &[(String, UserConfig)],
    scenarios: &[Arc<Scenario>],
    opts: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    if scenarios.len() > 250 {
        return Err(CheckError::Input(
            "check runs at most 250 scenarios at once".into(),
        ));
    }
    let images: Vec<&str> = opts.images.iter().map(String::as_str).collect();
    let crate::lab::PreparedRun { run_id, agent } = crate::lab::prepare_run(&images).await?;
    let routing = tokio::select! {
        r = routes::discover(sides, images[0], &run_id, opts.startup_timeout) => r?,
        _ = opts.cancel.cancelled() => return Err(CheckError::Interrupted),
    };
    let grid = Grid::of(&routing, scenarios)?;
    let pki = Pki::new(&run_id)?;
    let jobs = jobs(sides, &opts.images);
    let classes = &routing.classes;
    // Each Postfix's cases, planned before it starts: the by-MX cases'
    // zones are signed and served from its start.
    let mut workshops = Vec::new();
    let mut plans = Vec::new();
    for job in &jobs {
        let mut workshop = Workshop::new(pki.clone(), opts.attempt_timeout);
        workshop.any_credentials = true;
        plans.push(plan(
            job,
            classes,
            scenarios,
            &grid.cells,
            &mut workshop,
            &run_id,
        )?);
        workshops.push(Some(workshop));
    }
    let Running {
        instances,
        warnings,
    } = start_all(&jobs, &plans, &pki, &run_id, &agent, opts).await?;
    let (parameters, policies) = match ask_postfix(&instances, &plans).await {
        Ok(a) => a,
        Err(e) => {
            stop(instances).await;
            return Err(e);
        }
    };
    let runs = futures_util::future::join_all(instances.iter().zip(&policies).map(
        |((job, instance), policies)| {
            let workshop = workshops[job.index].take().expect("one run per job");
            run_scenarios(
                job,
                classes,
                &plans[job.index],
                instance,
                policies,
                workshop,
                &run_id,
                opts,
            )
        },
    ))
    .await;
    stop(instances).await;
    let mut rows = Vec::new();
    for r in runs {
        rows.extend(r?);
    }
    Ok(CheckReport {
        run_id,
        rows,
        changes: all_changes(sides, &routing, scenarios, &grid.not_run),
        parameters,
        file_changes: match sides {
            [(_, current), (_, candidate)] => file_changes(current, candidate),
            _ => Vec::new(),
        },
        warnings,
    })
}

/// Which scenarios run on which class of mail.
struct Grid {
    /// Per case: its class of mail (index) and its scenario (index).
    cells: Vec<(usize, usize)>,
    /// The scenarios no class of mail takes.
    not_run: Vec<String>,
}

impl Grid {
    /// A relay's class of mail runs the scenarios without [dns]; the class
    /// that goes by MX, those with it. At least one path, at most 250.
    fn of(routing: &Routing, scenarios: &[Arc<Scenario>]) -> Result<Grid, CheckError> {
        let cells: Vec<(usize, usize)> = routing
            .classes
            .iter()
            .enumerate()
            .flat_map(|(c, class)| {
                let mx = class.routes.first().is_some_and(|(_, h)| *h == Hop::Mx);
                scenarios
                    .iter()
                    .enumerate()
                    .filter(move |(_, s)| s.dns.is_some() == mx)
                    .map(move |(i, _)| (c, i))
            })
            .collect();
        let not_run: Vec<String> = scenarios
            .iter()
            .enumerate()
            .filter(|(i, _)| !cells.iter().any(|(_, j)| j == i))
            .map(|(_, s)| s.id.clone())
            .collect();
        if cells.is_empty() {
            return Err(CheckError::Input(format!(
                "no scenario selected runs on your configuration's routes: scenarios without [dns] need mail that goes to a relay, those with [dns] mail that goes by MX ({})",
                routing
                    .classes
                    .iter()
                    .map(|c| format!("{}: {}", c.label, c.routes[0].0))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        if cells.len() > 250 {
            return Err(CheckError::Input(format!(
                "check runs at most 250 paths at once: {} (scenarios on each class of mail's route)",
                cells.len()
            )));
        }
        Ok(Grid { cells, not_run })
    }
}

/// Every side's configuration on every image, in that order.
fn jobs<'a>(sides: &'a [(String, UserConfig)], images: &'a [String]) -> Vec<Job<'a>> {
    let mut jobs = Vec::new();
    for (n, (side, config)) in sides.iter().enumerate() {
        for image in images {
            jobs.push(Job {
                index: jobs.len(),
                side: side.as_str(),
                side_index: n,
                config,
                image: image.as_str(),
            });
        }
    }
    jobs
}

/// The started Postfixes, each with its job, and what `postconf` warned
/// of their configurations.
struct Running<'j> {
    instances: Vec<(&'j Job<'j>, Box<Lab>)>,
    warnings: Vec<PostfixWarning>,
}

/// Starts every job's Postfix at once. An interruption, a refusal or an
/// error ends the check: the instances that did start are stopped.
async fn start_all<'j>(
    jobs: &'j [Job<'j>],
    plans: &[Plan<'_>],
    pki: &Pki,
    run_id: &str,
    agent: &AgentImage,
    opts: &CheckOptions,
) -> Result<Running<'j>, CheckError> {
    let started = futures_util::future::join_all(jobs.iter().zip(plans).map(|(job, plan)| {
        let ca_pem = pki.ca_pem();
        async move { start(job, plan, &ca_pem, run_id, agent, opts).await }
    }))
    .await;
    let mut instances = Vec::new();
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    let mut error = None;
    for (job, r) in jobs.iter().zip(started) {
        match r {
            Ok(Started::Ready(instance, deprecated)) => {
                warnings.extend(deprecated.into_iter().map(|words| PostfixWarning {
                    side: job.side.to_owned(),
                    image: job.image.to_owned(),
                    words,
                }));
                instances.push((job, instance));
            }
            Ok(Started::Refused(refusal)) => refusals.push(refusal),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    let failure = if opts.cancel.is_cancelled() {
        Some(CheckError::Interrupted)
    } else if !refusals.is_empty() {
        Some(CheckError::Refused(refusals))
    } else {
        error
    };
    if let Some(e) = failure {
        stop(instances).await;
        return Err(e);
    }
    Ok(Running {
        instances,
        warnings,
    })
}

async fn stop(instances: Vec<(&Job<'_>, Box<Lab>)>) {
    for (_, mut instance) in instances {
        instance.stop().await;
    }
}

/// Per side, what the harness changed in its configuration, and the
/// scenarios that did not run.
fn all_changes(
    sides: &[(String, UserConfig)],
    routing: &Routing,
    scenarios: &[Arc<Scenario>],
    not_run: &[String],
) -> Vec<(String, Vec<String>)> {
    sides
        .iter()
        .enumerate()
        .map(|(n, (side, c))| {
            let mut changes = changes(c, n, routing, scenarios);
            if !not_run.is_empty() {
                changes.push(format!(
                    "not run: {} (no class of your mail takes such a path: scenarios without [dns] need mail to a relay, those with [dns] mail by MX)",
                    not_run.join(", ")
                ));
            }
            (side.clone(), changes)
        })
        .collect()
}

fn changes(
    config: &UserConfig,
    side: usize,
    routing: &Routing,
    scenarios: &[Arc<Scenario>],
) -> Vec<String> {
    setup::changes(
        config,
        side,
        &routing.classes,
        &routing.unchecked,
        scenarios,
    )
}

/// Which of the configuration's other files the candidate adds, removes
/// or changes.
fn file_changes(current: &UserConfig, candidate: &UserConfig) -> Vec<String> {
    let mut names: Vec<&String> = current.files.keys().chain(candidate.files.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| n.as_str() != "main.cf")
        .filter_map(|n| match (current.files.get(n), candidate.files.get(n)) {
            (Some(_), None) => Some(format!("{n}: only in the current configuration")),
            (None, Some(_)) => Some(format!("{n}: only in the candidate")),
            (Some(a), Some(b)) if a != b => Some(format!("{n}: changed")),
            _ => None,
        })
        .collect()
}

/// Per side, `postconf -n` (from its first instance: every image reads
/// the same files); per instance, the TLS policy of each case's service.
#[allow(clippy::type_complexity)]
async fn ask_postfix(
    instances: &[(&Job<'_>, Box<Lab>)],
    plans: &[Plan<'_>],
) -> Result<
    (
        Vec<(String, BTreeMap<String, String>)>,
        Vec<BTreeMap<String, TlsPolicy>>,
    ),
    CheckError,
> {
    let mut parameters: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let mut policies = Vec::new();
    for (job, instance) in instances {
        if !parameters.iter().any(|(side, _)| side == job.side) {
            let cmd = setup::postconf_n_command();
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let out = instance.mta.exec(&args).await?;
            parameters.push((
                job.side.to_owned(),
                setup::parse_postconf_n(&out, job.config),
            ));
        }
        // One question per next hop, for the services of its cases.
        let mut by_hop: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (p, route) in plans[job.index].paths.iter().zip(&plans[job.index].routes) {
            by_hop
                .entry(route.nexthop.as_str())
                .or_default()
                .push(setup::service(p.k));
        }
        let mut found = BTreeMap::new();
        for (nexthop, services) in by_hop {
            let cmd = setup::policy_command(nexthop, &services);
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            found.extend(setup::parse_policies(
                &instance.mta.exec(&args).await?,
                nexthop,
            ));
        }
        policies.push(found);
    }
    Ok((parameters, policies))
}

/// One Postfix's cases: per case, its path (service copy and next hop)
/// and its class's route; the zones of the by-MX cases.
struct Plan<'a> {
    paths: Vec<CheckPath<'a>>,
    routes: Vec<&'a routes::Route>,
    /// Per case: its class of mail (index) and its scenario (index).
    cells: Vec<(usize, usize)>,
    zones: Vec<crate::dns::Zone>,
    first_transport: String,
}

/// The case of scenario `scenario` as case `k` of `job`: the level only
/// labels it; the user's configuration decides.
fn case_of(job: &Job<'_>, k: usize, scenario: &Arc<Scenario>) -> Case {
    Case {
        index: k,
        scenario: scenario.clone(),
        level: crate::policy::Policy::from(job.config.level.parse().unwrap_or(Level::None)),
        // Only a label here: the configuration decides what happens. A
        // scenario may state Postfix's expectations or only another MTA's.
        expect: scenario
            .expect
            .values()
            .chain(scenario.tables.values().flat_map(|t| t.expect.values()))
            .next()
            .cloned()
            .expect("every scenario states what some MTA does"),
        image: job.image.to_owned(),
    }
}

/// Where a case's fakes go: the relay's name and the configuration's
/// port, or (by MX) the scenario's own MX hosts on port 25.
fn placement(hop: &Hop, scenario: &Scenario) -> Placement {
    match hop {
        Hop::Relay(relay) => Placement::Fixed {
            port: relay.port,
            hostname: relay.host.clone(),
        },
        Hop::Mx => Placement::Fixed {
            port: scenario.relay.port,
            hostname: scenario.relay.hostname.as_str().to_owned(),
        },
    }
}

/// Plans `job`'s cases: case `k = class * scenarios + scenario` for each
/// cell of `grid`.
fn plan<'a>(
    job: &Job<'_>,
    classes: &'a [MailClass],
    scenarios: &'a [Arc<Scenario>],
    grid: &[(usize, usize)],
    workshop: &mut Workshop,
    run_id: &str,
) -> Result<Plan<'a>, CheckError> {
    let mut plan = Plan {
        paths: Vec::new(),
        routes: Vec::new(),
        cells: Vec::new(),
        zones: Vec::new(),
        first_transport: classes.first().map_or_else(
            || "smtp".to_owned(),
            |c| c.routes[job.side_index].0.transport.clone(),
        ),
    };
    for &(c, i) in grid {
        let (route, hop) = &classes[c].routes[job.side_index];
        let scenario = &scenarios[i];
        let k = c * scenarios.len() + i;
        let nexthop = match hop {
            Hop::Relay(_) => route.nexthop.clone(),
            Hop::Mx => {
                let rig = workshop.rig(
                    k as u64,
                    &case_of(job, k, scenario),
                    run_id,
                    &placement(hop, scenario),
                )?;
                let zone = rig.zone.expect("a scenario with [dns] has a zone");
                let name = zone.name.clone();
                plan.zones.push(zone);
                name
            }
        };
        plan.paths.push(CheckPath {
            k,
            scenario,
            transport: route.transport.clone(),
            nexthop,
            by_mx: *hop == Hop::Mx,
        });
        plan.routes.push(route);
        plan.cells.push((c, i));
    }
    Ok(plan)
}

/// One configuration on one image.
struct Job<'a> {
    index: usize,
    side: &'a str,
    /// The side's place among the sides (its routes' index).
    side_index: usize,
    config: &'a UserConfig,
    image: &'a str,
}

enum Started {
    /// Started, with `postconf`'s deprecation warnings.
    Ready(Box<Lab>, Vec<String>),
    Refused(Refusal),
}

/// Starts one Postfix and tries its smtp client; a refusal at either step
/// is the configuration's, not an error of the check.
async fn start(
    job: &Job<'_>,
    plan: &Plan<'_>,
    ca_pem: &str,
    run_id: &str,
    agent: &AgentImage,
    opts: &CheckOptions,
) -> Result<Started, CheckError> {
    let files = setup::files(
        job.config,
        &plan.paths,
        &plan.first_transport,
        &plan.zones,
        INJECT,
        CLOSED,
        ca_pem,
    );
    if opts.cancel.is_cancelled() {
        return Err(CheckError::Interrupted);
    }
    let refusal = |stage, words| Refusal {
        side: job.side.to_owned(),
        path: job.config.source.clone(),
        image: job.image.to_owned(),
        stage,
        words,
    };
    let started = Lab::start(LabOptions {
        mta: StartOptions {
            mta: crate::policy::Mta::Postfix,
            image: job.image.to_owned(),
            run_id: run_id.to_owned(),
            container_name: format!("tlsharness-{run_id}-{}", job.index),
            startup_timeout: opts.startup_timeout,
        },
        files,
        agent: agent.clone(),
    })
    .await;
    let mut lab = match started {
        Ok(l) => l,
        Err(LabError::Mta(MtaError::Refused { why, log })) => {
            return Ok(Started::Refused(refusal(
                Stage::Start,
                postfix_words(&why, &log),
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let tried = tokio::select! {
        r = preflight::run(&lab, run_id, opts.attempt_timeout) => r,
        _ = opts.cancel.cancelled() => Err(CheckError::Interrupted),
    };
    match tried {
        Ok(Preflight::Ran { deprecated }) => Ok(Started::Ready(Box::new(lab), deprecated)),
        Ok(Preflight::Refused(stage, words)) => {
            lab.stop().await;
            Ok(Started::Refused(refusal(stage, words)))
        }
        Err(e) => {
            lab.stop().await;
            Err(e)
        }
    }
}

/// The lines in which Postfix itself objected, for the user.
fn postfix_words(why: &str, log: &str) -> String {
    let said = super::objections(log);
    if said.is_empty() {
        format!("{why}\n{log}")
    } else {
        said.join("\n")
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_scenarios(
    job: &Job<'_>,
    classes: &[MailClass],
    plan: &Plan<'_>,
    instance: &Lab,
    policies: &BTreeMap<String, TlsPolicy>,
    mut workshop: Workshop,
    run_id: &str,
    opts: &CheckOptions,
) -> Result<Vec<Row>, CheckError> {
    let level = job.config.level.clone();
    let mut rows = Vec::new();
    for (path, &(c, _)) in plan.paths.iter().zip(&plan.cells) {
        if opts.cancel.is_cancelled() {
            return Err(CheckError::Interrupted);
        }
        let class = &classes[c];
        let (route, hop) = &class.routes[job.side_index];
        let mut row = run_one(job, path, hop, instance, &mut workshop, run_id, opts).await?;
        row.mail = (classes.len() > 1).then(|| class.label.clone());
        row.route = match hop {
            Hop::Relay(_) => route.to_string(),
            Hop::Mx => format!("{route}, by MX ({} standing in)", path.nexthop),
        };
        row.tls_policy = policies.get(&setup::service(path.k)).cloned();
        // The level Postfix applies on this path (a service's -o, a
        // policy map, the obsolete smtp_enforce_tls) is what the
        // scenario's expectation is for, not main.cf's alone.
        if let Some(policy) = row.tls_policy.as_ref().filter(|p| p.level != level)
            && row.not_modelled.is_none()
        {
            row.expected = expected_at(path.scenario, &policy.level, row.port, &row.mta_version);
        }
        row.level = level.clone();
        rows.push(row);
    }
    Ok(rows)
}

/// What `scenario` expects at `level` on `port`, if it says: its
/// expectations are for its first service's port (or, single-port,
/// wherever it follows the configuration); on another service's port
/// they say nothing.
fn expected_at(
    scenario: &Scenario,
    level: &str,
    port: u16,
    version: &str,
) -> Option<AttemptExpectation> {
    level
        .parse::<Level>()
        .ok()
        .filter(|_| {
            port == scenario.relay.port
                || (scenario.relay.single_port && scenario.relay.service_for(port).is_some())
        })
        .and_then(|l| scenario.expectation(l, version))
        .and_then(|e| e.attempts.first().cloned())
}

/// One case: a scenario's path in place of the route's next hop.
async fn run_one(
    job: &Job<'_>,
    path: &CheckPath<'_>,
    hop: &Hop,
    instance: &Lab,
    workshop: &mut Workshop,
    run_id: &str,
    opts: &CheckOptions,
) -> Result<Row, CheckError> {
    let level = &job.config.level;
    let k = path.k;
    let scenario = path.scenario;
    let placement = placement(hop, scenario);
    let port = match &placement {
        Placement::Fixed { port, .. } => *port,
        Placement::Case => scenario.relay.port,
    };
    if let PortStatement::NotModelled(why) = scenario.port_statement(port) {
        // Nothing to run: whatever Postfix met there would be the
        // harness's invention, not the scenario's network.
        return Ok(Row {
            attempt: Attempt::failed(why.clone(), Default::default()),
            not_modelled: Some(why),
            behaviours: vec![format!("not modelled on {port}")],
            ..row_of(job, scenario, instance, port)
        });
    }
    let rig = workshop.rig(k as u64, &case_of(job, k, scenario), run_id, &placement)?;
    instance.rig(&rig.fakes).await?;
    if let Hop::Relay(relay) = hop {
        // One line per address, in path order (by MX, names resolve
        // through the run's DNS instead).
        let lines: Vec<String> = rig
            .addresses
            .iter()
            .map(|a| format!("{a} {}", relay.host))
            .collect();
        let hosts = setup::hosts_command(&lines.join("\n"));
        let args: Vec<&str> = hosts.iter().map(String::as_str).collect();
        instance.mta.exec(&args).await?;
    }
    let recipient = setup::recipient(scenario, k);
    let mut rx = instance.mta.subscribe(&recipient);
    let plan = Delivery {
        recipient,
        subject: format!("tlsharness check {}", scenario.id),
        attempts: 1,
        retry_after: None,
    };
    let seen = observe(
        &plan,
        &rig,
        instance,
        &mut rx,
        opts.attempt_timeout,
        Default::default(),
        None,
    )
    .await;
    instance.unrig(rig.id).await?;
    let expected = expected_at(scenario, level, port, instance.mta.version());
    let attempt = seen.attempts.into_iter().next().unwrap_or_else(|| {
        Attempt::failed("no delivery attempt was made".into(), Default::default())
    });
    Ok(Row {
        dropped_settings: setup::dropped_settings(scenario),
        refused: refused(scenario, port),
        findings: findings(std::slice::from_ref(&attempt)),
        attempt,
        expected,
        log: seen.log,
        transcript: seen.transcript,
        behaviours: behaviours_on(scenario, port),
        ..row_of(job, scenario, instance, port)
    })
}

/// A row of `scenario` on this side and image, before any attempt.
fn row_of(job: &Job<'_>, scenario: &Scenario, instance: &Lab, port: u16) -> Row {
    Row {
        scenario: scenario.id.clone(),
        mail: None,
        route: String::new(),
        side: job.side.to_owned(),
        image: job.image.to_owned(),
        mta_version: instance.mta.version().to_owned(),
        level: job.config.level.clone(),
        tls_policy: None,
        dropped_settings: Vec::new(),
        refused: None,
        port,
        not_modelled: None,
        attempt: Attempt::failed(String::new(), Default::default()),
        findings: Vec::new(),
        expected: None,
        log: Vec::new(),
        transcript: String::new(),
        behaviours: Vec::new(),
    }
}

/// Why a configuration relaying to `port` meets no listener on this
/// scenario's path (refused, or dropped), if it does not.
fn refused(scenario: &Scenario, port: u16) -> Option<String> {
    match scenario.port_statement(port) {
        PortStatement::Refused(why) | PortStatement::Dropped(why) => Some(why),
        PortStatement::Served(..) | PortStatement::NotModelled(_) => None,
    }
}

/// Each path's behaviours on `port`, as the run's case names them; a
/// path that refuses or drops the port says so.
fn behaviours_on(scenario: &Scenario, port: u16) -> Vec<String> {
    let fates = match scenario.port_statement(port) {
        PortStatement::Served(_, fates) => fates,
        PortStatement::Dropped(_) => vec![PortFate::Dropped; scenario.paths.len()],
        _ => vec![PortFate::Refused; scenario.paths.len()],
    };
    fates
        .into_iter()
        .map(|f| match f {
            PortFate::Refused => format!("refused on {port}"),
            PortFate::Dropped => format!("dropped on {port}"),
            PortFate::Passes(b) if b.is_empty() => "pass-through".to_owned(),
            PortFate::Passes(b) => b.iter().map(|b| b.name()).collect::<Vec<_>>().join("+"),
        })
        .collect()
}

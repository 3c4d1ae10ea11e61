//! A run's private network: the MTA's container with no network but its
//! own loopback, and the agent's container joined to that namespace,
//! where the fakes listen on their real ports and the injector speaks to
//! the MTA. Everything goes through the Docker API (no bind mount, no host
//! port), so any daemon works: local, remote, Docker-in-Docker. `run` and
//! `check` both start, use and remove their MTAs through [`Lab`].

mod agent;
mod client;
pub mod image;
pub mod protocol;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

pub use agent::{peak_rss_kb, serve};
pub use image::{AgentImage, agent_binary, mapped_libraries, use_agent_binary};
use protocol::{Call, Hex, Reply, RigSpec, RigState};

use crate::docker::{
    DockerError, LABEL_BOOT, LABEL_PID, LABEL_PIDNS, LABEL_ROLE, LABEL_RUN, boot_id, pid_namespace,
    process_tag,
};
use crate::mta::{Instance, MtaError, StartOptions};
use crate::pki::Identity;

/// Where the MTA listens for injected mail, inside the namespace.
pub const INJECT: SocketAddr = crate::mta::INJECT;
/// A port inside the namespace where nothing ever listens.
pub const CLOSED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
/// The envelope sender of every test message.
pub const SENDER: &str = crate::mta::SENDER;

/// The address of path `index` of a relay name: 127.0.1.1, .2, ...
pub fn path_address(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + index as u8))
}

/// The address case `index`'s smtp transport sends from: 127.1.0.1, ...
/// (the agent gives a connection to the case whose source it comes from).
pub fn source_address(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(127, 1, 0, 1)) + index as u32,
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Mta(#[from] MtaError),
    #[error("{0}")]
    Agent(String),
    #[error("failed to start a case's fakes: {0}")]
    Rig(String),
    #[error(transparent)]
    NotContained(#[from] crate::mta::NotContained),
}

impl LabError {
    /// Whether this is a problem of the machine rather than of the run.
    pub fn is_environment(&self) -> bool {
        match self {
            LabError::Mta(e) => e.is_environment(),
            LabError::Docker(_) | LabError::Agent(_) => true,
            LabError::Rig(_) | LabError::NotContained(_) => false,
        }
    }
}

impl crate::exit::Code for LabError {
    fn exit_code(&self) -> i32 {
        match self {
            LabError::Mta(e) => e.exit_code(),
            e if e.is_environment() => crate::exit::ENVIRONMENT,
            _ => crate::exit::HARNESS_ERROR,
        }
    }
}

/// What a run has once it may start containers: its id and its agent's
/// image.
pub struct PreparedRun {
    pub run_id: String,
    pub agent: AgentImage,
}

/// What every run does before it starts anything: reach Docker, clear up
/// after killed runs, check that every image is present (nothing is ever
/// pulled), and make the agent's image if this binary has none yet.
pub async fn prepare_run(images: &[&str]) -> Result<PreparedRun, LabError> {
    let docker = crate::docker::connect(std::time::Duration::from_secs(10)).await?;
    crate::docker::sweep(&docker).await?;
    crate::docker::sweep_run_dirs();
    for image in images {
        if !crate::docker::image_exists(&docker, image).await? {
            return Err(LabError::Mta(MtaError::ImageMissing {
                image: (*image).to_owned(),
                build_args: crate::mta::image::build_args(image),
            }));
        }
    }
    let binary = agent_binary()?;
    let agent = image::ensure(&docker, &binary).await?;
    Ok(PreparedRun {
        run_id: crate::docker::new_run_id(),
        agent,
    })
}

/// How to start a lab.
pub struct LabOptions {
    pub mta: StartOptions,
    /// Files for the MTA's container, by path under its configuration
    /// directory.
    pub files: Vec<(String, Vec<u8>)>,
    pub agent: AgentImage,
}

/// A case's fakes as the agent is to start them, with the identities they
/// present.
pub struct Fakes {
    pub spec: RigSpec,
    pub identities: Vec<(u64, Identity)>,
}

/// A running MTA and its agent.
pub struct Lab {
    pub mta: Instance,
    agent: Option<client::AgentClient>,
    sent: Mutex<HashSet<u64>>,
}

impl Lab {
    /// Starts the MTA, then the agent in its namespace, and waits (within
    /// the start-up timeout) until the MTA accepts mail from the agent.
    pub async fn start(opts: LabOptions) -> Result<Lab, LabError> {
        let deadline = tokio::time::Instant::now() + opts.mta.startup_timeout;
        let mut instance = Instance::start(&opts.files, &opts.mta).await?;
        let docker = instance.docker().clone();
        let mta = instance.container_id().to_owned();
        let labels = HashMap::from([
            (LABEL_RUN.to_owned(), opts.mta.run_id.clone()),
            (LABEL_PID.to_owned(), process_tag()),
            (LABEL_BOOT.to_owned(), boot_id()),
            (LABEL_PIDNS.to_owned(), pid_namespace()),
            (LABEL_ROLE.to_owned(), "agent".to_owned()),
        ]);
        let agent_name = format!("{}-agent", opts.mta.container_name);
        let (agent, started) = tokio::join!(
            client::AgentClient::start(&docker, &opts.agent, &mta, &agent_name, labels, deadline),
            instance.wait_started(deadline),
        );
        let mut lab = Lab {
            mta: instance,
            agent: None,
            sent: Mutex::default(),
        };
        // The MTA's own refusal first: when it exits at once, the agent may
        // fail only because the namespace it was to join is gone.
        let agent_failed = match agent {
            Ok(a) => {
                lab.agent = Some(a);
                None
            }
            Err(e) => Some(e),
        };
        if let Err(e) = started {
            lab.stop().await;
            return Err(e.into());
        }
        if let Some(e) = agent_failed {
            lab.stop().await;
            return Err(e);
        }
        // master has bound its listeners before it logs "daemon started";
        // one connection from the agent proves smtpd answers.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ready = lab
            .call(Call::Ready {
                timeout_ms: left.as_millis() as u64,
                injections: lab.mta.mta().driver().concurrent_injections(),
            })
            .await;
        match ready {
            Ok(Reply::Done) => {
                let verified = match lab.verify_containment().await {
                    Ok(()) => lab.verify_resolver().await,
                    Err(e) => Err(e),
                };
                match verified {
                    Ok(()) => Ok(lab),
                    Err(e) => {
                        lab.stop().await;
                        Err(e)
                    }
                }
            }
            other => {
                let why = match other {
                    Ok(Reply::Failed { error }) => error,
                    Ok(r) => format!("unexpected reply {r:?}"),
                    Err(e) => e.to_string(),
                };
                let log = lab.mta.tail(20);
                lab.stop().await;
                Err(MtaError::Refused {
                    why: format!(
                        "{} started but its listener on {INJECT} does not answer: {why}",
                        lab.mta.mta().title()
                    ),
                    log,
                }
                .into())
            }
        }
    }

    /// Reads back, in the MTA's own words, where its configuration can
    /// send mail, and refuses one that would let mail out: a second wall
    /// behind the namespace.
    async fn verify_containment(&self) -> Result<(), LabError> {
        const SEPARATOR: &str = "@@tlsharness@@";
        // All at once: each of Postfix's reads all of master.cf, a
        // transport per case, and takes a noticeable part of a second
        // with a thousand.
        let mta = self.mta.mta();
        let commands = mta.driver().containment_commands();
        let mut script = String::new();
        for (i, c) in commands.iter().enumerate() {
            script.push_str(&format!("{} > /tmp/tlsh-{i} & p{i}=$!; ", c.join(" ")));
        }
        let waits: Vec<String> = (0..commands.len()).map(|i| format!("wait $p{i}")).collect();
        let cats: Vec<String> = (0..commands.len())
            .map(|i| format!("cat /tmp/tlsh-{i} && echo {SEPARATOR}"))
            .collect();
        script.push_str(&format!(
            "{} && {} && cat /etc/resolv.conf",
            waits.join(" && "),
            cats.join(" && ")
        ));
        let out = self.mta.exec(&["sh", "-c", &script]).await?;
        let parts: Vec<&str> = out.split(&format!("{SEPARATOR}\n")).collect();
        mta.driver().verify_containment(&parts)?;
        Ok(())
    }

    /// With zones (DNS on the path), checks that the run's validating
    /// resolver validates the run's root through the agent's DNS
    /// middlebox: the first query of the run, asked only now that the
    /// agent is there.
    async fn verify_resolver(&self) -> Result<(), LabError> {
        let out = self
            .mta
            .exec(&["sh", "-c", crate::mta::dns::RESOLVER_CHECK])
            .await?;
        match out.trim() {
            "validating" | "no-dns" => Ok(()),
            _ => Err(LabError::Agent(out.trim().to_owned())),
        }
    }

    async fn call(&self, call: Call) -> Result<Reply, LabError> {
        match &self.agent {
            Some(a) => a.call(call).await,
            None => Err(LabError::Agent("the agent has been stopped".into())),
        }
    }

    /// Starts a case's fakes in the namespace.
    pub async fn rig(&self, fakes: &Fakes) -> Result<(), LabError> {
        for (key, identity) in &fakes.identities {
            if self.sent.lock().expect("lab poisoned").contains(key) {
                continue;
            }
            let call = Call::Identity {
                key: *key,
                chain: identity
                    .chain
                    .iter()
                    .map(|c| Hex(c.as_ref().to_vec()))
                    .collect(),
                private_key: Hex(identity.key.secret_der().to_vec()),
            };
            expect_done(self.call(call).await?)?;
            self.sent.lock().expect("lab poisoned").insert(*key);
        }
        expect_done(self.call(Call::Rig(Box::new(fakes.spec.clone()))).await?)
    }

    /// Stops a case's fakes.
    pub async fn unrig(&self, rig: u64) -> Result<(), LabError> {
        expect_done(self.call(Call::Unrig { rig }).await?)
    }

    /// What a case's fakes have seen; with `idle_until`, once none of its
    /// connections is open (or at that deadline).
    pub async fn state(
        &self,
        rig: u64,
        idle_until: Option<tokio::time::Instant>,
    ) -> Result<RigState, LabError> {
        let idle_ms = idle_until.map(|d| {
            d.saturating_duration_since(tokio::time::Instant::now())
                .as_millis() as u64
        });
        match self.call(Call::State { rig, idle_ms }).await? {
            Reply::State(s) => Ok(*s),
            Reply::Failed { error } => Err(LabError::Rig(error)),
            r => Err(LabError::Agent(format!("unexpected reply {r:?}"))),
        }
    }

    /// Hands one message to the MTA; returns its queue id.
    pub async fn inject(
        &self,
        recipient: &str,
        subject: &str,
        message_id: &str,
    ) -> Result<String, MtaError> {
        let call = Call::Inject {
            recipient: recipient.to_owned(),
            subject: subject.to_owned(),
            message_id: message_id.to_owned(),
        };
        match self.call(call).await {
            Ok(Reply::Injected { response }) => self
                .mta
                .mta()
                .driver()
                .queue_id_in_reply(&response)
                .ok_or_else(|| {
                    MtaError::Inject(format!(
                        "message to {recipient}: the MTA's reply has no queue id: {response}"
                    ))
                }),
            Ok(Reply::Failed { error }) => Err(MtaError::Inject(error)),
            Ok(r) => Err(MtaError::Inject(format!("unexpected reply {r:?}"))),
            Err(e) => Err(MtaError::Inject(e.to_string())),
        }
    }

    /// The agent's peak resident memory so far, in KiB.
    pub async fn agent_peak_rss_kb(&self) -> Result<u64, LabError> {
        match self.call(Call::Usage).await? {
            Reply::Usage { peak_rss_kb } => Ok(peak_rss_kb),
            r => Err(LabError::Agent(format!("unexpected reply {r:?}"))),
        }
    }

    /// Removes the agent, then the MTA. Dropping a lab does the same.
    pub async fn stop(&mut self) {
        if let Some(agent) = self.agent.take() {
            agent.stop().await;
        }
        self.mta.stop().await;
    }
}

fn expect_done(reply: Reply) -> Result<(), LabError> {
    match reply {
        Reply::Done => Ok(()),
        Reply::Failed { error } => Err(LabError::Rig(error)),
        r => Err(LabError::Agent(format!("unexpected reply {r:?}"))),
    }
}

/// Runs the agent on stdin and stdout (`tlsharness agent`).
pub async fn run_agent() -> std::io::Result<()> {
    serve(tokio::io::stdin(), tokio::io::stdout()).await
}

//! The Docker engine, the ground floor under the lab and the MTAs:
//! reachability with a deadline, the labels on every container the
//! harness starts, finding and removing those containers (including those
//! of killed runs) and run directories, and images built offline
//! ([`offline`]). It knows no MTA and no agent.

pub mod offline;

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerApiError;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use futures_util::StreamExt;

/// Failures of the Docker engine or of talking to it: all the machine's,
/// not the run's (exit code [`crate::exit::ENVIRONMENT`]).
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "no Docker daemon answers at {endpoint} ({detail}); run `ci/setup-docker.sh` to install and start one, or set DOCKER_HOST"
    )]
    Unreachable { endpoint: String, detail: String },
    #[error("failed to {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: DockerApiError,
    },
    #[error("failed to build the image {image}: {detail}")]
    Build { image: String, detail: String },
}

impl crate::exit::Code for DockerError {
    fn exit_code(&self) -> i32 {
        crate::exit::ENVIRONMENT
    }
}

impl DockerError {
    /// A failed call to the engine, saying what it was for.
    pub fn api(what: impl Into<String>) -> impl FnOnce(DockerApiError) -> DockerError {
        let what = what.into();
        move |source| DockerError::Api { what, source }
    }
}

/// Label on every container the harness starts: the run's id.
pub const LABEL_RUN: &str = "tlsharness.run";
/// Label: the owning harness process, as `pid:start-time` (so a reused
/// pid is not mistaken for the owner).
pub const LABEL_PID: &str = "tlsharness.pid";
/// Label: the boot id of the machine that process lives on.
pub const LABEL_BOOT: &str = "tlsharness.boot";
/// Label: that process's PID namespace. Jobs in their own containers on a
/// shared daemon cannot see each other's processes; a sweep judges only
/// containers whose owner it could see.
pub const LABEL_PIDNS: &str = "tlsharness.pidns";
/// Label: what the container is in its run (`mta` or `agent`).
pub const LABEL_ROLE: &str = "tlsharness.role";

/// A Docker client for DOCKER_HOST (or the local socket), not yet tried.
pub fn client() -> Result<Docker, DockerError> {
    Docker::connect_with_defaults().map_err(DockerError::api("reach Docker"))
}

/// Connects to the Docker engine (DOCKER_HOST, or the local socket) and
/// checks that it answers within `deadline`.
pub async fn connect(deadline: Duration) -> Result<Docker, DockerError> {
    let endpoint =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let no_docker = |detail: String| DockerError::Unreachable {
        endpoint: endpoint.clone(),
        detail,
    };
    let docker = Docker::connect_with_defaults().map_err(|e| no_docker(e.to_string()))?;
    match tokio::time::timeout(deadline, docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(no_docker(e.to_string())),
        Err(_) => Err(no_docker(format!(
            "no answer within {}s",
            deadline.as_secs()
        ))),
    }
}

/// This machine's boot id; with a pid and start time it names one process.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// This process's PID namespace, e.g. `pid:[4026531836]`.
pub fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `pid:start-time` of this process, for [`LABEL_PID`].
pub fn process_tag() -> String {
    let pid = std::process::id();
    format!("{pid}:{}", start_time(pid).unwrap_or_default())
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19).map(str::to_owned)
}

fn owner_alive(tag: &str) -> bool {
    let Some((pid, start)) = tag.split_once(':') else {
        return false;
    };
    pid.parse()
        .ok()
        .and_then(start_time)
        .is_some_and(|s| s == start)
}

/// Containers carrying `label` (`key` or `key=value`), running or not;
/// agents first, so that each goes before the MTA whose network namespace
/// it shares (Docker refuses to remove a namespace's owner while a
/// container that joined it runs).
async fn list(
    docker: &Docker,
    label: String,
) -> Result<Vec<bollard::models::ContainerSummary>, DockerError> {
    docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), vec![label])])),
            ..Default::default()
        }))
        .await
        .map(|mut found| {
            found.sort_by_key(|c| {
                let role = c.labels.as_ref().and_then(|l| l.get(LABEL_ROLE));
                role.is_none_or(|r| r != "agent")
            });
            found
        })
        .map_err(DockerError::api("list containers"))
}

/// Force-removes a container; one that is gone counts as removed, and one
/// already being removed (by another harness's sweep, say) once Docker
/// says it is gone.
pub async fn remove(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(DockerApiError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(DockerApiError::DockerResponseServerError {
            status_code: 409, ..
        }) => {
            let removed = docker.wait_container(
                id,
                Some(bollard::query_parameters::WaitContainerOptions {
                    condition: "removed".to_owned(),
                }),
            );
            tokio::pin!(removed);
            // Whatever the wait says (an error is usually "no such
            // container"), the removal is someone else's and under way.
            let _ = tokio::time::timeout(Duration::from_secs(30), removed.next()).await;
            Ok(())
        }
        Err(e) => Err(DockerError::api(format!("remove container {id}"))(e)),
    }
}

/// What a sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// MTA containers.
    pub mtas: usize,
    /// Agent containers (each run's fakes, in its MTA's namespace).
    pub agents: usize,
}

/// Removes harness containers whose owning process no longer exists (a run
/// killed with SIGKILL): each run's MTA and its agent.
///
/// An owner is judged only where this process can see it: same machine
/// (boot id) and same PID namespace. A container owned from elsewhere (a
/// parallel CI job on the same daemon, an earlier boot, another machine)
/// is removed only once it has stopped.
pub async fn sweep(docker: &Docker) -> Result<Swept, DockerError> {
    let boot = boot_id();
    let pidns = pid_namespace();
    let mut removed = Swept::default();
    for c in list(docker, LABEL_RUN.to_owned()).await? {
        let labels = c.labels.unwrap_or_default();
        let running = c.state.as_ref().is_some_and(|s| {
            matches!(
                s,
                ContainerSummaryStateEnum::RUNNING
                    | ContainerSummaryStateEnum::RESTARTING
                    | ContainerSummaryStateEnum::PAUSED
            )
        });
        let orphan = is_orphan(&labels, running, &boot, &pidns, owner_alive);
        if !orphan {
            continue;
        }
        if let Some(id) = c.id {
            remove(docker, &id).await?;
            if labels.get(LABEL_ROLE).is_some_and(|r| r == "agent") {
                removed.agents += 1;
            } else {
                removed.mtas += 1;
            }
        }
    }
    Ok(removed)
}

/// Whether a container with these labels has lost its owner, judged from
/// a process on machine `boot` in PID namespace `pidns`.
fn is_orphan(
    labels: &HashMap<String, String>,
    running: bool,
    boot: &str,
    pidns: &str,
    alive: impl Fn(&str) -> bool,
) -> bool {
    let same_machine = labels.get(LABEL_BOOT).is_some_and(|b| b == boot);
    // Labels from before the namespace label count as this namespace.
    let same_namespace = labels.get(LABEL_PIDNS).is_none_or(|n| n == pidns);
    if same_machine && same_namespace {
        !labels.get(LABEL_PID).is_some_and(|t| alive(t))
    } else {
        // Another namespace, boot or machine: the owner cannot be seen from
        // here; only what has stopped is surely nobody's business.
        !running
    }
}

/// The file in a run directory that names its owner
/// (`boot pid:start pidns`).
pub const OWNER_FILE: &str = "owner";

/// Marks `dir` as belonging to this process, for [`sweep_run_dirs`].
pub fn claim_run_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(
        dir.join(OWNER_FILE),
        format!("{} {} {}\n", boot_id(), process_tag(), pid_namespace()),
    )
}

/// Removes run directories (`$TMPDIR/tlsharness-*`) whose owner is gone,
/// as a run killed with SIGKILL leaves them. Returns how many.
pub fn sweep_run_dirs() -> usize {
    let boot = boot_id();
    let pidns = pid_namespace();
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_run_dir = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("tlsharness-"))
            && path.is_dir();
        if !is_run_dir {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(path.join(OWNER_FILE)) else {
            continue;
        };
        let mut words = owner.split_whitespace();
        let (Some(b), Some(tag)) = (words.next(), words.next()) else {
            continue;
        };
        if words.next().is_some_and(|ns| ns != pidns) {
            // Another namespace's run sharing this directory: not ours to judge.
            continue;
        }
        if b == boot && owner_alive(tag) {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Ids of the containers labelled with this run id.
pub async fn containers_of_run(docker: &Docker, run_id: &str) -> Result<Vec<String>, DockerError> {
    let found = list(docker, format!("{LABEL_RUN}={run_id}")).await?;
    Ok(found.into_iter().filter_map(|c| c.id).collect())
}

/// Removes every container this process started.
pub async fn remove_owned(docker: &Docker) -> Result<usize, DockerError> {
    let found = list(docker, format!("{LABEL_PID}={}", process_tag())).await?;
    let mut removed = 0;
    for id in found.into_iter().filter_map(|c| c.id) {
        remove(docker, &id).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Whether the image exists locally (nothing is ever pulled).
pub async fn image_exists(docker: &Docker, image: &str) -> Result<bool, DockerError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(DockerApiError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(DockerError::api(format!("inspect image {image}"))(e)),
    }
}

/// A short random id naming the run's container, directory and CA.
pub fn new_run_id() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(boot: &str, pidns: Option<&str>, pid: &str) -> HashMap<String, String> {
        let mut l = HashMap::from([
            (LABEL_BOOT.to_owned(), boot.to_owned()),
            (LABEL_PID.to_owned(), pid.to_owned()),
        ]);
        if let Some(ns) = pidns {
            l.insert(LABEL_PIDNS.to_owned(), ns.to_owned());
        }
        l
    }

    #[test]
    fn only_owners_this_process_can_see_are_judged() {
        let alive = |t: &str| t == "10:5";
        // Same machine and namespace: the owner's liveness decides.
        assert!(!is_orphan(
            &labels("b", Some("ns"), "10:5"),
            true,
            "b",
            "ns",
            alive
        ));
        assert!(is_orphan(
            &labels("b", Some("ns"), "11:5"),
            true,
            "b",
            "ns",
            alive
        ));
        // Labels without a namespace are taken as this one.
        assert!(is_orphan(
            &labels("b", None, "11:5"),
            true,
            "b",
            "ns",
            alive
        ));
        // A parallel job in another namespace: only once stopped.
        assert!(!is_orphan(
            &labels("b", Some("other"), "11:5"),
            true,
            "b",
            "ns",
            alive
        ));
        assert!(is_orphan(
            &labels("b", Some("other"), "11:5"),
            false,
            "b",
            "ns",
            alive
        ));
        // Another boot or machine: only once stopped.
        assert!(!is_orphan(
            &labels("old", Some("ns"), "11:5"),
            true,
            "b",
            "ns",
            alive
        ));
        assert!(is_orphan(
            &labels("old", Some("ns"), "11:5"),
            false,
            "b",
            "ns",
            alive
        ));
    }
}

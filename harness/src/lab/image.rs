//! The agent's image: this harness's own binary and the shared libraries
//! it runs with, imported into Docker through its API (`docker import`).
//! Nothing is pulled and nothing else is needed: the binary and its
//! libraries come from the machine the harness runs on, so every MTA
//! image works beside it, and only the daemon's CPU architecture must be
//! this machine's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptions, ListImagesOptions, RemoveImageOptions};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::LabError;

/// The agent images' repository; the tag names one build of the binary.
pub const REPOSITORY: &str = "tlsharness/agent";
/// Where the binary is inside the image.
const BINARY: &str = "/tlsharness";
/// Where its libraries are.
const LIBRARIES: &str = "/lib";
/// The environment variable naming the agent binary when the running
/// program is not the harness itself (a test binary, say).
pub const AGENT_ENV: &str = "TLSHARNESS_AGENT";

/// An agent image ready to run.
#[derive(Clone, Debug)]
pub struct AgentImage {
    pub reference: String,
    pub entrypoint: Vec<String>,
    /// The binary it was made from.
    pub binary: PathBuf,
}

/// What the binary runs with: its own path and the files it has mapped
/// (`tlsharness agent --libraries` prints them).
#[derive(Clone, Debug)]
struct Bundle {
    binary: PathBuf,
    libraries: Vec<PathBuf>,
    tag: String,
}

/// The agent binary set by [`use_agent_binary`].
static CHOSEN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Runs `binary` as the agent, for programs that use the library but are
/// not the tlsharness binary themselves (tests, say). The first choice
/// holds for the life of the process.
pub fn use_agent_binary(binary: impl Into<PathBuf>) {
    let _ = CHOSEN.set(binary.into());
}

/// The binary to run as the agent: the one chosen with
/// [`use_agent_binary`], else `$TLSHARNESS_AGENT`, else this program.
pub fn agent_binary() -> Result<PathBuf, LabError> {
    if let Some(chosen) = CHOSEN.get() {
        return Ok(chosen.clone());
    }
    match std::env::var_os(AGENT_ENV) {
        Some(p) => Ok(PathBuf::from(p)),
        None => std::env::current_exe()
            .map_err(|e| LabError::Agent(format!("failed to find this program's binary: {e}"))),
    }
}

/// The libraries this process has mapped, for `tlsharness agent --libraries`.
pub fn mapped_libraries() -> Vec<PathBuf> {
    let exe = std::env::current_exe().ok();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut found = BTreeSet::new();
    for line in maps.lines() {
        // address perms offset dev inode path
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let path = PathBuf::from(path);
        if path.is_absolute() && Some(&path) != exe.as_ref() && path.is_file() {
            found.insert(path);
        }
    }
    found.into_iter().collect()
}

/// Asks the binary which libraries it runs with, and names the image by
/// the files' identities (path, size, modification time): a rebuilt
/// binary gets a new image, an unchanged one reuses its image.
fn bundle(binary: &Path) -> Result<Bundle, LabError> {
    let out = std::process::Command::new(binary)
        .args(["agent", "--libraries"])
        .output()
        .map_err(|e| LabError::Agent(format!("failed to run {}: {e}", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    if !out.status.success() || lines.next() != Some(super::protocol::GREETING) {
        return Err(LabError::Agent(format!(
            "{} is not the tlsharness binary (`{} agent --libraries` did not answer as the agent); set {AGENT_ENV} to the tlsharness binary",
            binary.display(),
            binary.display()
        )));
    }
    let libraries: Vec<PathBuf> = lines.map(PathBuf::from).collect();
    let mut h = Sha256::new();
    for f in std::iter::once(&binary.to_path_buf()).chain(&libraries) {
        let meta = std::fs::metadata(f)
            .map_err(|e| LabError::Agent(format!("failed to read {}: {e}", f.display())))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        h.update(f.as_os_str().as_encoded_bytes());
        h.update(meta.len().to_le_bytes());
        h.update(modified.to_le_bytes());
    }
    let tag: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Bundle {
        binary: binary.to_path_buf(),
        libraries,
        tag,
    })
}

/// How the image starts the binary: through the dynamic loader it was
/// linked with (found among its libraries), so that the image needs no
/// loader configuration of its own; a static binary starts directly.
fn entrypoint(bundle: &Bundle) -> Vec<String> {
    let loader = bundle.libraries.iter().find_map(|l| {
        let name = l.file_name()?.to_str()?;
        name.starts_with("ld-").then(|| name.to_owned())
    });
    match loader {
        Some(ld) => vec![
            format!("{LIBRARIES}/{ld}"),
            "--library-path".to_owned(),
            LIBRARIES.to_owned(),
            BINARY.to_owned(),
        ],
        None => vec![BINARY.to_owned()],
    }
}

fn tarball(bundle: &Bundle) -> Result<Vec<u8>, LabError> {
    let io = |e: std::io::Error| LabError::Agent(format!("failed to pack the agent image: {e}"));
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    // Docker's importer reads no sparse (GNU type S) entries.
    tar.sparse(false);
    tar.append_path_with_name(&bundle.binary, BINARY.trim_start_matches('/'))
        .map_err(io)?;
    for lib in &bundle.libraries {
        let name = lib.file_name().expect("a mapped file has a name");
        tar.append_path_with_name(lib, Path::new(LIBRARIES.trim_start_matches('/')).join(name))
            .map_err(io)?;
    }
    tar.into_inner().map_err(io)
}

/// Bundles already made by this process, by binary.
static MADE: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// The agent image for `binary`, imported into the daemon if it is not
/// there yet (older agent images are then removed).
pub async fn ensure(docker: &Docker, binary: &Path) -> Result<AgentImage, LabError> {
    let bundle = {
        let binary = binary.to_path_buf();
        tokio::task::spawn_blocking(move || bundle(&binary))
            .await
            .map_err(|e| LabError::Agent(e.to_string()))??
    };
    let reference = format!("{REPOSITORY}:{}", bundle.tag);
    let image = AgentImage {
        reference: reference.clone(),
        entrypoint: entrypoint(&bundle),
        binary: binary.to_path_buf(),
    };
    let known = MADE
        .lock()
        .expect("agent images poisoned")
        .iter()
        .any(|(b, r)| b == binary && *r == reference);
    if known || docker.inspect_image(&reference).await.is_ok() {
        MADE.lock()
            .expect("agent images poisoned")
            .push((binary.to_path_buf(), reference));
        return Ok(image);
    }
    let body = {
        let bundle = bundle.clone();
        tokio::task::spawn_blocking(move || tarball(&bundle))
            .await
            .map_err(|e| LabError::Agent(e.to_string()))??
    };
    let mut progress = docker.create_image(
        Some(CreateImageOptions {
            from_src: Some("-".to_owned()),
            repo: Some(REPOSITORY.to_owned()),
            tag: Some(bundle.tag.clone()),
            changes: vec![format!("LABEL {BINARY_LABEL}={}", binary_tag(binary))],
            ..Default::default()
        }),
        Some(bollard::body_full(body.into())),
        None,
    );
    while let Some(step) = progress.next().await {
        step.map_err(|e| LabError::Agent(format!("failed to import the agent image: {e}")))?;
    }
    remove_older(docker, binary, &reference).await;
    MADE.lock()
        .expect("agent images poisoned")
        .push((binary.to_path_buf(), reference));
    Ok(image)
}

/// Label on an agent image: which binary (machine and path) it was made
/// from, so that a rebuild replaces its own predecessor and nobody
/// else's (another checkout's, another job's on a shared daemon).
const BINARY_LABEL: &str = "tlsharness.agent.binary";

fn binary_tag(binary: &Path) -> String {
    let mut h = Sha256::new();
    h.update(std::fs::read_to_string("/etc/machine-id").unwrap_or_default());
    h.update(binary.as_os_str().as_encoded_bytes());
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Removes the agent images of earlier builds of the same binary, other
/// than `keep`; one a running agent uses stays, as Docker refuses to
/// remove it.
async fn remove_older(docker: &Docker, binary: &Path, keep: &str) {
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{BINARY_LABEL}={}", binary_tag(binary))],
    )]);
    let Ok(images) = docker
        .list_images(Some(ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
    else {
        return;
    };
    for image in images {
        for tag in &image.repo_tags {
            if tag.starts_with(&format!("{REPOSITORY}:")) && tag != keep {
                let _ = docker
                    .remove_image(tag, None::<RemoveImageOptions>, None)
                    .await;
            }
        }
    }
}

//! Images made offline, where nothing can be pulled: debootstrap a
//! minimal Debian suite with the given packages and `docker import` it,
//! labelled with the package list so that an image built with other
//! packages is rebuilt. Each MTA names its own suite and packages.

use std::path::Path;
use std::process::{Command, Stdio};

use bollard::Docker;

use super::{DockerError, image_exists};

/// What [`ensure`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Ensured {
    AlreadyPresent,
    Built,
}

/// Makes sure `image` exists, built from `suite` with `packages`,
/// building it offline when it does not, when it was built with other
/// packages, or when `rebuild` is set.
pub async fn ensure_image(
    docker: &Docker,
    suite: &str,
    image: &str,
    packages: &[&str],
    rebuild: bool,
) -> Result<Ensured, DockerError> {
    let list = packages.join(",");
    let image = image.to_owned();
    if !rebuild && image_exists(docker, &image).await? {
        if built_with(docker, &image).await?.as_deref() == Some(list.as_str()) {
            return Ok(Ensured::AlreadyPresent);
        }
        // Built before the package list changed (e.g. without the DNS
        // tools): what the scripts' "skip what is there" must not keep.
        eprintln!(
            "tlsharness: {image} was built with other packages than these ({list}); rebuilding it"
        );
    }
    let (suite, name) = (suite.to_owned(), image.clone());
    tokio::task::spawn_blocking(move || build_offline(&suite, &name, &list))
        .await
        .map_err(|e| DockerError::Build {
            image,
            detail: format!("the build task failed: {e}"),
        })??;
    Ok(Ensured::Built)
}

/// The image label that records the packages an image was built with.
pub const PACKAGES_LABEL: &str = "tlsharness.packages";

/// The package list an image was built with, from its label (`None` for
/// an image built before the label, or elsewhere).
async fn built_with(docker: &Docker, image: &str) -> Result<Option<String>, DockerError> {
    let inspected = docker
        .inspect_image(image)
        .await
        .map_err(DockerError::api(format!("inspect image {image}")))?;
    Ok(inspected
        .config
        .and_then(|c| c.labels)
        .and_then(|l| l.get(PACKAGES_LABEL).cloned()))
}

/// debootstrap + docker import. Needs root, debootstrap and the docker CLI.
fn build_offline(suite: &str, image: &str, packages: &str) -> Result<(), DockerError> {
    let build_error = |detail: String| DockerError::Build {
        image: image.to_owned(),
        detail,
    };
    let io_err = |e: std::io::Error| build_error(e.to_string());
    let find = |tool: &str| {
        which(tool).ok_or_else(|| {
            build_error(format!(
                "`{tool}` is not installed; run ci/setup-docker.sh (it installs docker.io and debootstrap), or build the MTA's Dockerfile under fixtures/ where a registry is reachable"
            ))
        })
    };
    let (debootstrap, docker, tar) = (find("debootstrap")?, find("docker")?, find("tar")?);
    let work = tempfile::Builder::new()
        .prefix("tlsharness-rootfs-")
        .tempdir_in("/var/tmp")
        .map_err(|e| build_error(format!("failed to make a build directory: {e}")))?;
    let root = work.path().join("root");
    let log_path = work.path().join("debootstrap.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| build_error(format!("failed to create {}: {e}", log_path.display())))?;
    eprintln!("tlsharness: building {image} with debootstrap ({suite}); this takes about a minute");
    // No mirror argument: debootstrap's own default is used.
    let status = Command::new(debootstrap)
        .args(["--variant=minbase", &format!("--include={packages}"), suite])
        .arg(&root)
        .stdout(Stdio::from(log.try_clone().map_err(io_err)?))
        .stderr(Stdio::from(log))
        .status()
        .map_err(|e| build_error(format!("failed to run debootstrap: {e}")))?;
    if !status.success() {
        return Err(build_error(format!(
            "debootstrap {suite} failed ({status}); its last lines:\n{}",
            tail(&log_path, 15)
        )));
    }
    let mut tar = Command::new(tar)
        .arg("-C")
        .arg(&root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| build_error(format!("failed to run tar: {e}")))?;
    let tar_out = tar.stdout.take().expect("stdout is piped");
    let import = Command::new(docker)
        .args(["import", "-c", r#"CMD ["/bin/sh"]"#, "-c"])
        .arg(format!("LABEL {PACKAGES_LABEL}={packages}"))
        .args(["-", image])
        .stdin(Stdio::from(tar_out))
        .stdout(Stdio::null())
        .output()
        .map_err(|e| build_error(format!("failed to run docker import: {e}")))?;
    let tar_status = tar.wait().map_err(io_err)?;
    if !tar_status.success() || !import.status.success() {
        return Err(build_error(format!(
            "docker import of {image} failed: {}",
            String::from_utf8_lossy(&import.stderr).trim()
        )));
    }
    eprintln!("tlsharness: built {image}");
    Ok(())
}

/// The program's path, looking in PATH and the sbin directories (which
/// a non-login root shell may lack).
fn which(tool: &str) -> Option<std::path::PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

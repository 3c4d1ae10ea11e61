//! The MTAs' images. Where a registry is reachable, users build
//! `fixtures/postfix/Dockerfile` (or `fixtures/exim/Dockerfile`); here
//! nothing can be pulled, so the images are made offline: debootstrap a
//! minimal Debian with the MTA and `docker import` it.

use std::path::Path;
use std::process::{Command, Stdio};

use bollard::Docker;

use super::MtaError;
use super::docker::image_exists;

/// The image a run uses unless told otherwise.
pub const DEFAULT_IMAGE: &str = "tlsharness/postfix:bookworm";
/// The Exim image: Debian bookworm's Exim 4.96 (exim4-daemon-heavy,
/// built with GnuTLS).
pub const EXIM_IMAGE: &str = "tlsharness/exim:bookworm";
/// What the Exim image holds besides the base system: Exim, and for
/// scenarios with DNS on the path the validating resolver (unbound), the
/// name server of the run's zones (nsd) and the tools that sign them and
/// ask the resolver (ldnsutils). Exim has no MTA-STS, so no policy daemon.
pub const EXIM_PACKAGES: [&str; 5] = [
    "exim4-daemon-heavy",
    "ca-certificates",
    "unbound",
    "nsd",
    "ldnsutils",
];

/// Debian suites the offline build supports, with the Postfix they ship.
pub const SUITES: [(&str, &str); 3] =
    [("bullseye", "3.5"), ("bookworm", "3.7"), ("trixie", "3.10")];

/// The built-in image name for a suite.
pub fn image_for_suite(suite: &str) -> String {
    format!("tlsharness/postfix:{suite}")
}

/// The suite of a built-in image name, if it is one.
pub fn suite_of(image: &str) -> Option<&'static str> {
    SUITES
        .iter()
        .map(|(s, _)| *s)
        .find(|s| image == image_for_suite(s))
}

/// What [`ensure`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Ensured {
    AlreadyPresent,
    Built,
}

/// Makes sure the built-in image for `suite` exists, building it offline
/// when it does not (or when `rebuild` is set).
pub async fn ensure(docker: &Docker, suite: &str, rebuild: bool) -> Result<Ensured, MtaError> {
    if !SUITES.iter().any(|(s, _)| *s == suite) {
        return Err(MtaError::Image(format!(
            "unknown suite `{suite}` (built-in: bullseye, bookworm, trixie)"
        )));
    }
    ensure_image(docker, suite, &image_for_suite(suite), &PACKAGES, rebuild).await
}

/// Makes sure the Exim image exists, building it offline when it does not
/// (or when `rebuild` is set).
pub async fn ensure_exim(docker: &Docker, rebuild: bool) -> Result<Ensured, MtaError> {
    ensure_image(docker, "bookworm", EXIM_IMAGE, &EXIM_PACKAGES, rebuild).await
}

async fn ensure_image(
    docker: &Docker,
    suite: &str,
    image: &str,
    packages: &[&str],
    rebuild: bool,
) -> Result<Ensured, MtaError> {
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
    let suite = suite.to_owned();
    tokio::task::spawn_blocking(move || build_offline(&suite, &image, &list))
        .await
        .map_err(|e| MtaError::Image(format!("image build task failed: {e}")))??;
    Ok(Ensured::Built)
}

/// What the image holds besides the base system: Postfix, and for
/// scenarios with DNS on the path, the validating resolver (unbound), the
/// name server of the run's zones (nsd), the tools that sign them and ask
/// the resolver (ldnsutils), and the MTA-STS policy daemon
/// (postfix-mta-sts-resolver; python3-cffi-backend names a virtual
/// package debootstrap cannot resolve on its own).
pub const PACKAGES: [&str; 8] = [
    "postfix",
    "ca-certificates",
    "libsasl2-modules",
    "unbound",
    "nsd",
    "ldnsutils",
    "python3-cffi-backend",
    "postfix-mta-sts-resolver",
];

/// The image label that records [`PACKAGES`].
const PACKAGES_LABEL: &str = "tlsharness.packages";

#[cfg(test)]
fn packages() -> String {
    PACKAGES.join(",")
}

/// The package list an image was built with, from its label (`None` for
/// an image built before the label, or elsewhere).
async fn built_with(docker: &Docker, image: &str) -> Result<Option<String>, MtaError> {
    let inspected = docker
        .inspect_image(image)
        .await
        .map_err(|e| MtaError::Docker(format!("failed to inspect image {image}: {e}")))?;
    Ok(inspected
        .config
        .and_then(|c| c.labels)
        .and_then(|l| l.get(PACKAGES_LABEL).cloned()))
}

/// debootstrap + docker import. Needs root, debootstrap and the docker CLI.
fn build_offline(suite: &str, image: &str, packages: &str) -> Result<(), MtaError> {
    let find = |tool: &str| {
        which(tool).ok_or_else(|| {
            MtaError::Image(format!(
                "`{tool}` is not installed; run ci/setup-docker.sh (it installs docker.io and debootstrap), or build fixtures/postfix/Dockerfile where a registry is reachable"
            ))
        })
    };
    let (debootstrap, docker, tar) = (find("debootstrap")?, find("docker")?, find("tar")?);
    let work = tempfile::Builder::new()
        .prefix("tlsharness-rootfs-")
        .tempdir_in("/var/tmp")
        .map_err(|e| MtaError::Image(format!("failed to make a build directory: {e}")))?;
    let root = work.path().join("root");
    let log_path = work.path().join("debootstrap.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| MtaError::Image(format!("failed to create {}: {e}", log_path.display())))?;
    eprintln!("tlsharness: building {image} with debootstrap ({suite}); this takes about a minute");
    // No mirror argument: debootstrap's own default is used.
    let status = Command::new(debootstrap)
        .args(["--variant=minbase", &format!("--include={packages}"), suite])
        .arg(&root)
        .stdout(Stdio::from(log.try_clone().map_err(io_err)?))
        .stderr(Stdio::from(log))
        .status()
        .map_err(|e| MtaError::Image(format!("failed to run debootstrap: {e}")))?;
    if !status.success() {
        return Err(MtaError::Image(format!(
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
        .map_err(|e| MtaError::Image(format!("failed to run tar: {e}")))?;
    let tar_out = tar.stdout.take().expect("stdout is piped");
    let import = Command::new(docker)
        .args(["import", "-c", r#"CMD ["/bin/sh"]"#, "-c"])
        .arg(format!("LABEL {PACKAGES_LABEL}={packages}"))
        .args(["-", image])
        .stdin(Stdio::from(tar_out))
        .stdout(Stdio::null())
        .output()
        .map_err(|e| MtaError::Image(format!("failed to run docker import: {e}")))?;
    let tar_status = tar.wait().map_err(io_err)?;
    if !tar_status.success() || !import.status.success() {
        return Err(MtaError::Image(format!(
            "docker import of {image} failed: {}",
            String::from_utf8_lossy(&import.stderr).trim()
        )));
    }
    eprintln!("tlsharness: built {image}");
    Ok(())
}

fn io_err(e: std::io::Error) -> MtaError {
    MtaError::Image(e.to_string())
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_dockerfile_installs_and_labels_the_same_packages() {
        let dockerfile = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/postfix/Dockerfile"),
        )
        .unwrap();
        assert!(
            dockerfile.contains(&format!("LABEL {PACKAGES_LABEL}={}\n", packages())),
            "{dockerfile}"
        );
        for p in PACKAGES {
            assert!(
                dockerfile.contains(&format!(" {p} ")),
                "{p} not installed: {dockerfile}"
            );
        }
    }

    use super::*;

    #[test]
    fn exim_s_dockerfile_installs_and_labels_the_same_packages() {
        let dockerfile = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/exim/Dockerfile"),
        )
        .unwrap();
        let list = EXIM_PACKAGES.join(",");
        assert!(
            dockerfile.contains(&format!("LABEL {PACKAGES_LABEL}={list}\n")),
            "{dockerfile}"
        );
        for p in EXIM_PACKAGES {
            assert!(dockerfile.contains(&format!(" {p} ")), "{p}: {dockerfile}");
        }
    }

    #[test]
    fn suite_names_map_to_images() {
        assert_eq!(image_for_suite("bookworm"), DEFAULT_IMAGE);
        assert_eq!(suite_of(DEFAULT_IMAGE), Some("bookworm"));
        assert_eq!(suite_of("example/postfix:prod"), None);
    }
}

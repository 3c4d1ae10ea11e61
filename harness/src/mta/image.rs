//! The MTAs' images. Where a registry is reachable, users build
//! `fixtures/postfix/Dockerfile` (or `fixtures/exim/Dockerfile`); here
//! nothing can be pulled, so the images are made offline: debootstrap a
//! minimal Debian with the MTA and `docker import` it.

use bollard::Docker;

use super::MtaError;
pub use crate::docker::offline::Ensured;
use crate::docker::offline::ensure_image;

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

/// The arguments of `tlsharness image build` that make `image`, for a
/// message saying it is missing.
pub fn build_args(image: &str) -> String {
    if image == EXIM_IMAGE {
        " --mta exim".to_owned()
    } else {
        suite_of(image)
            .map(|s| format!(" --suite {s}"))
            .unwrap_or_else(|| " (or build your own image with the MTA in it)".into())
    }
}

/// Makes sure the built-in image for `suite` exists, building it offline
/// when it does not (or when `rebuild` is set).
pub async fn ensure(docker: &Docker, suite: &str, rebuild: bool) -> Result<Ensured, MtaError> {
    if !SUITES.iter().any(|(s, _)| *s == suite) {
        return Err(MtaError::UnknownSuite(suite.to_owned()));
    }
    Ok(ensure_image(docker, suite, &image_for_suite(suite), &PACKAGES, rebuild).await?)
}

/// Makes sure the Exim image exists, building it offline when it does not
/// (or when `rebuild` is set).
pub async fn ensure_exim(docker: &Docker, rebuild: bool) -> Result<Ensured, MtaError> {
    Ok(ensure_image(docker, "bookworm", EXIM_IMAGE, &EXIM_PACKAGES, rebuild).await?)
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

#[cfg(test)]
mod tests {
    use crate::docker::offline::PACKAGES_LABEL;

    #[test]
    fn the_dockerfile_installs_and_labels_the_same_packages() {
        let dockerfile = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/postfix/Dockerfile"),
        )
        .unwrap();
        assert!(
            dockerfile.contains(&format!("LABEL {PACKAGES_LABEL}={}\n", PACKAGES.join(","))),
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

//! The MTAs' built-in images. Where a registry is reachable, users build
//! `fixtures/<mta>/Dockerfile`; here nothing can be pulled, so each image
//! is made offline: debootstrap a minimal Debian with the MTA's packages
//! and `docker import` it. Each MTA's driver lists its own
//! ([`super::Driver::images`]).

use bollard::Docker;

use super::{Mta, MtaError};
pub use crate::docker::offline::Ensured;
use crate::docker::offline::ensure_image;

/// An image the harness builds itself: a Debian suite with the MTA's
/// packages.
#[derive(Clone, Copy, Debug)]
pub struct BuiltIn {
    pub image: &'static str,
    pub suite: &'static str,
    pub packages: &'static [&'static str],
}

/// The MTA and recipe of a built-in image name, if it is one.
pub fn built_in(image: &str) -> Option<(Mta, &'static BuiltIn)> {
    Mta::ALL.into_iter().find_map(|mta| {
        mta.driver()
            .images()
            .iter()
            .find(|b| b.image == image)
            .map(|b| (mta, b))
    })
}

/// The arguments of `tlsharness image build` that make `image`, for a
/// message saying it is missing.
pub fn build_args(image: &str) -> String {
    match built_in(image) {
        Some((Mta::Postfix, b)) => format!(" --suite {}", b.suite),
        Some((mta, _)) if mta.driver().images().len() == 1 => format!(" --mta {mta}"),
        Some((mta, b)) => format!(" --mta {mta} --suite {}", b.suite),
        None => " (or build your own image with the MTA in it)".into(),
    }
}

/// Makes sure `mta`'s built-in image for `suite` exists, building it
/// offline when it does not (or when `rebuild` is set); says which image.
pub async fn ensure(
    docker: &Docker,
    mta: Mta,
    suite: &str,
    rebuild: bool,
) -> Result<(&'static str, Ensured), MtaError> {
    let images = mta.driver().images();
    let Some(b) = images.iter().find(|b| b.suite == suite) else {
        return Err(MtaError::UnknownSuite {
            mta,
            suite: suite.to_owned(),
            known: images
                .iter()
                .map(|b| b.suite)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let ensured = ensure_image(docker, b.suite, b.image, b.packages, rebuild).await?;
    Ok((b.image, ensured))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each MTA's Dockerfile (`fixtures/<mta>/Dockerfile`, for machines
    /// with a registry) installs and labels the packages of its default
    /// image, as the offline build does.
    #[test]
    fn every_mta_s_dockerfile_installs_and_labels_the_same_packages() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
        for mta in Mta::ALL {
            let path = fixtures.join(mta.as_str()).join("Dockerfile");
            let dockerfile = std::fs::read_to_string(&path).unwrap();
            let (_, built) = built_in(mta.driver().default_image()).expect("a built-in image");
            let label = crate::docker::offline::PACKAGES_LABEL;
            let list = built.packages.join(",");
            assert!(
                dockerfile.contains(&format!("LABEL {label}={list}\n")),
                "{}: {dockerfile}",
                path.display()
            );
            for p in built.packages {
                assert!(
                    dockerfile.contains(&format!(" {p} ")),
                    "{mta}: {p} not installed"
                );
            }
        }
    }

    #[test]
    fn every_built_in_image_says_how_it_is_built() {
        assert_eq!(build_args("tlsharness/postfix:trixie"), " --suite trixie");
        assert_eq!(build_args("tlsharness/exim:bookworm"), " --mta exim");
        assert!(build_args("example/postfix:prod").contains("your own image"));
        for mta in Mta::ALL {
            let default = mta.driver().default_image();
            assert_eq!(built_in(default).map(|(m, _)| m), Some(mta), "{default}");
        }
    }
}

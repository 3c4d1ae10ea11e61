//! Postfix's built-in images: one per Debian suite, each with the
//! Postfix that suite ships.

use crate::mta::image::BuiltIn;

/// The image a run uses unless told otherwise.
pub const DEFAULT_IMAGE: &str = "tlsharness/postfix:bookworm";

/// Debian suites the offline build supports, with the Postfix they ship.
pub const SUITES: [(&str, &str); 3] =
    [("bullseye", "3.5"), ("bookworm", "3.7"), ("trixie", "3.10")];

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

/// The built-in images, oldest Postfix first.
pub const IMAGES: [BuiltIn; 3] = [
    BuiltIn {
        image: "tlsharness/postfix:bullseye",
        suite: "bullseye",
        packages: &PACKAGES,
    },
    BuiltIn {
        image: DEFAULT_IMAGE,
        suite: "bookworm",
        packages: &PACKAGES,
    },
    BuiltIn {
        image: "tlsharness/postfix:trixie",
        suite: "trixie",
        packages: &PACKAGES,
    },
];

/// The built-in image name for a suite.
pub fn image_for_suite(suite: &str) -> String {
    format!("tlsharness/postfix:{suite}")
}

/// The suite of a built-in image name, if it is one.
pub fn suite_of(image: &str) -> Option<&'static str> {
    IMAGES.iter().find(|b| b.image == image).map(|b| b.suite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_names_map_to_images() {
        assert_eq!(image_for_suite("bookworm"), DEFAULT_IMAGE);
        assert_eq!(suite_of(DEFAULT_IMAGE), Some("bookworm"));
        assert_eq!(suite_of("example/postfix:prod"), None);
        for (b, (suite, _)) in IMAGES.iter().zip(SUITES) {
            assert_eq!(b.image, image_for_suite(suite));
        }
    }
}

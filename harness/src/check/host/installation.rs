//! What belongs to a Postfix installation rather than to its
//! configuration: where its programs, maps and documents are, whose they
//! are, and the system's store of trust anchors. Another distribution's
//! values (RHEL's `/usr/libexec/postfix`, its `ca-bundle.crt`) would not
//! fit the image, so they are replaced by the image's own.

/// The installation's parameters, and the value every built-in image
/// (Debian's build of Postfix) has for each: `postconf -d` on each image
/// says so (see the test in `check::host`).
const IMAGE: [(&str, &str); 16] = [
    ("config_directory", "/etc/postfix"),
    ("daemon_directory", "/usr/lib/postfix/sbin"),
    ("command_directory", "/usr/sbin"),
    ("shlib_directory", "/usr/lib/postfix"),
    ("meta_directory", "/etc/postfix"),
    ("queue_directory", "/var/spool/postfix"),
    ("data_directory", "/var/lib/postfix"),
    ("mail_owner", "postfix"),
    ("setgid_group", "postdrop"),
    ("sendmail_path", "/usr/sbin/sendmail"),
    ("newaliases_path", "/usr/bin/newaliases"),
    ("mailq_path", "/usr/bin/mailq"),
    ("manpage_directory", "/usr/share/man"),
    ("html_directory", "/usr/share/doc/postfix/html"),
    ("readme_directory", "/usr/share/doc/postfix"),
    ("sample_directory", "/etc/postfix"),
];

/// The installation's parameters, in the order of [`IMAGE`].
pub fn parameters() -> impl Iterator<Item = (&'static str, &'static str)> {
    IMAGE.iter().copied()
}

/// Whether `name` is one of the installation's parameters.
pub fn is_installation(name: &str) -> bool {
    IMAGE.iter().any(|(n, _)| *n == name)
}

/// The image's value for one of the installation's parameters.
pub fn image_default(name: &str) -> Option<&'static str> {
    IMAGE.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// The image's system trust store: Debian's ca-certificates, as a bundle
/// and as a hashed directory.
pub const IMAGE_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";
pub const IMAGE_CA_PATH: &str = "/etc/ssl/certs";

/// Systems' own trust stores, as distributions install them: the bundle
/// files, then the directories. Whatever a configuration names among
/// these means "the system's trust anchors", and the image's stand in.
const SYSTEM_CA_FILES: [(&str, &str); 11] = [
    (
        "/etc/ssl/certs/ca-certificates.crt",
        "Debian, Ubuntu, Arch, Alpine",
    ),
    (
        "/etc/pki/tls/certs/ca-bundle.crt",
        "RHEL, Alma, Rocky, Fedora",
    ),
    ("/etc/ssl/certs/ca-bundle.crt", "RHEL, Alma, Rocky, Fedora"),
    ("/etc/pki/tls/cert.pem", "RHEL, Alma, Rocky, Fedora"),
    (
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "RHEL, Alma, Rocky, Fedora",
    ),
    ("/etc/ssl/ca-bundle.pem", "SUSE"),
    ("/var/lib/ca-certificates/ca-bundle.pem", "SUSE"),
    ("/etc/ssl/cert.pem", "Alpine, FreeBSD, OpenBSD, macOS"),
    ("/usr/local/share/certs/ca-root-nss.crt", "FreeBSD"),
    ("/usr/local/etc/ssl/cert.pem", "FreeBSD"),
    (
        "/etc/ssl/certs/ca-bundle.trust.crt",
        "RHEL, Alma, Rocky, Fedora",
    ),
];

const SYSTEM_CA_PATHS: [(&str, &str); 5] = [
    (
        "/etc/ssl/certs",
        "Debian, Ubuntu, SUSE, Arch, Alpine, FreeBSD",
    ),
    ("/etc/pki/tls/certs", "RHEL, Alma, Rocky, Fedora"),
    ("/var/lib/ca-certificates/openssl", "SUSE"),
    ("/usr/local/share/certs", "FreeBSD"),
    ("/usr/local/etc/ssl/certs", "FreeBSD"),
];

/// A system trust store a TLS parameter names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemStore {
    /// Whose store the path is.
    pub systems: &'static str,
    /// The image's store of the same kind.
    pub image: &'static str,
}

/// If `path`, as `parameter` names it, is a system trust store: whose,
/// and the image's stand-in.
pub fn system_store(parameter: &str, path: &str) -> Option<SystemStore> {
    let path = path.trim_end_matches('/');
    let (table, image) = if parameter.ends_with("_tls_CAfile") {
        (&SYSTEM_CA_FILES[..], IMAGE_CA_FILE)
    } else if parameter.ends_with("_tls_CApath") {
        (&SYSTEM_CA_PATHS[..], IMAGE_CA_PATH)
    } else {
        return None;
    };
    table
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, systems)| SystemStore { systems, image })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhel_s_bundle_is_a_system_store_and_a_private_ca_is_not() {
        assert_eq!(
            system_store("smtp_tls_CAfile", "/etc/pki/tls/certs/ca-bundle.crt"),
            Some(SystemStore {
                systems: "RHEL, Alma, Rocky, Fedora",
                image: IMAGE_CA_FILE
            })
        );
        assert_eq!(
            system_store("lmtp_tls_CApath", "/etc/pki/tls/certs/").map(|s| s.image),
            Some(IMAGE_CA_PATH)
        );
        assert_eq!(
            system_store("smtp_tls_CAfile", "/etc/postfix/corp-ca.pem"),
            None
        );
        // A bundle's path named as a directory is not a store.
        assert_eq!(
            system_store("smtp_tls_CApath", "/etc/pki/tls/certs/ca-bundle.crt"),
            None
        );
    }

    /// Docker-backed: every built-in image has the installation this
    /// table says, and Debian's trust store where it is mapped to.
    #[test]
    fn the_table_is_each_built_in_image_s_own() {
        let names: Vec<&str> = IMAGE.iter().map(|(n, _)| *n).collect();
        let expected: String = IMAGE.iter().map(|(n, v)| format!("{n} = {v}\n")).collect();
        for (suite, _) in crate::mta::postfix::image::SUITES {
            let image = crate::mta::postfix::image::image_for_suite(suite);
            let out = std::process::Command::new("docker")
                .args(["run", "--rm", "--network", "none", "--entrypoint", "sh"])
                .arg(&image)
                .args([
                    "-c",
                    &format!(
                        "postconf -d {} && test -s {IMAGE_CA_FILE} && test -d {IMAGE_CA_PATH}",
                        names.join(" ")
                    ),
                ])
                .output()
                .expect("this test needs Docker and the built-in images: run ci/setup-docker.sh");
            assert!(
                out.status.success(),
                "{image}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{image}");
        }
    }
}

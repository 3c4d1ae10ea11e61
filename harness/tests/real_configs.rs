//! `check` on configurations as real hosts have them (fixtures/configs/real/,
//! each file citing where it comes from): run unchanged, with what the
//! harness brought, made up and replaced listed; and what it refuses
//! before anything starts.

mod common;

use std::path::{Path, PathBuf};

use common::tlsharness;
use tlsharness::exit;

fn check_with(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = tlsharness()
        .arg("check")
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of `from` (a directory of the repository) in a fresh directory,
/// with `edit` applied to its main.cf.
fn copy_of(from: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&common::root().join(from), dir.path());
    let main = dir.path().join("main.cf");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, edit(text)).unwrap();
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A Docker that is not there: a check that exits 2 with it never tried
/// to start anything (it would have exited 3, the environment's code).
const NO_DOCKER: [(&str, &str); 1] = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];

#[test]
fn a_missing_client_certificate_is_refused_before_anything_starts_naming_the_parameter_and_file() {
    let cur = copy_of("fixtures/configs/incident-before", |m| {
        m + "smtp_tls_cert_file = /etc/ssl/certs/alerts-client.pem\nsmtp_tls_key_file = /etc/ssl/private/alerts-client.key\n"
    });
    let dir = cur.path().display().to_string();
    let (code, stdout, stderr) = check_with(
        &["--config", &dir, "scenarios/incident-587-strip.toml"],
        &NO_DOCKER,
    );
    assert_eq!(code, Some(exit::BAD_INPUT), "{stdout}\n{stderr}");
    let main_cf = format!("{dir}/main.cf");
    assert!(
        stderr.contains(&format!(
            "{main_cf}:27: smtp_tls_cert_file names /etc/ssl/certs/alerts-client.pem, which was not given with --file; it is the client certificate smtp(8) presents, which can change the outbound TLS path"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{main_cf}:28: smtp_tls_key_file names /etc/ssl/private/alerts-client.key"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("give it with --file /etc/ssl/private/alerts-client.key (--file /etc/ssl/private/alerts-client.key=YOUR_COPY when your copy is elsewhere), or run check on the Postfix host itself with --config /etc/postfix"),
        "{stderr}"
    );
    assert!(!stderr.contains("checking"), "{stderr}");
    // Given, the same configuration gets past that (and on to Docker).
    let pem = cur.path().join("client.pem");
    std::fs::write(&pem, "not read before Postfix starts").unwrap();
    let (code, _, stderr) = check_with(
        &[
            "--config",
            &dir,
            "--file",
            &format!("/etc/ssl/certs/alerts-client.pem={}", pem.display()),
            "--file",
            &format!("/etc/ssl/private/alerts-client.key={}", pem.display()),
            "scenarios/incident-587-strip.toml",
        ],
        &NO_DOCKER,
    );
    assert_eq!(code, Some(exit::ENVIRONMENT), "{stderr}");
}

#[test]
fn a_missing_sasl_map_is_refused_before_anything_starts_with_both_ways_out() {
    // Debian's habit: the map in /etc/postfix/sasl/, and only its .db
    // copied along.
    let cur = copy_of("fixtures/configs/incident-before", |m| {
        m.replace(
            "hash:/etc/postfix/sasl_passwd",
            "hash:/etc/postfix/sasl/sasl_passwd",
        )
    });
    std::fs::create_dir_all(cur.path().join("sasl")).unwrap();
    std::fs::write(cur.path().join("sasl/sasl_passwd.db"), b"\0\x06\x15\x61").unwrap();
    let dir = cur.path().display().to_string();
    let (code, stdout, stderr) = check_with(
        &["--config", &dir, "scenarios/incident-587-strip.toml"],
        &NO_DOCKER,
    );
    assert_eq!(code, Some(exit::BAD_INPUT), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "{dir}/main.cf:25: smtp_sasl_password_maps names /etc/postfix/sasl/sasl_passwd, which is not in {dir} (only sasl/sasl_passwd.db, the compiled table, is: postmap needs the source it was made from); it is the credentials smtp(8) sends with AUTH"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "copy it into {dir} (as sasl/sasl_passwd), or give it with --file /etc/postfix/sasl/sasl_passwd"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("checking"), "{stderr}");
}

fn real(name: &str) -> PathBuf {
    common::root().join("fixtures/configs/real").join(name)
}

/// The incident's paths: the firewall that strips STARTTLS on 587, the
/// same relay when it offers AUTH before TLS (where a configuration that
/// authenticates shows whether its credentials would cross in
/// plaintext), and the clean relay.
const STRIPPED: &str = "scenarios/incident-587-strip.toml";
const STRIPPED_AUTH: &str = "scenarios/incident-587-strip-sasl-auth-before-tls.toml";
const CLEAN: &str = "scenarios/starttls-relay.toml";

/// `check --config fixtures/configs/real/NAME` on `scenarios` and
/// `images` (none: the default image; "all": --all-versions).
fn check_real(name: &str, all_versions: bool, scenarios: &[&str]) -> (Option<i32>, String, String) {
    let dir = real(name).display().to_string();
    let mut args = vec!["--config", dir.as_str()];
    if all_versions {
        args.push("--all-versions");
    }
    args.extend(scenarios);
    check_with(&args, &[])
}

/// Each result cell of `scenario`'s rows, one per image, in order.
fn cells(stdout: &str, scenario: &str) -> Vec<String> {
    common::row(stdout, scenario)
        .iter()
        .map(|l| l.trim_start()[scenario.len()..].trim().to_owned())
        .collect()
}

/// A stock `may` configuration (no SASL) on the incident's paths: the
/// stripped relay gets the mail in plaintext, the clean one over TLS.
/// TLS_README: "With opportunistic TLS, ... if the server does not
/// announce STARTTLS support, mail is sent in the clear"; Postfix logs no
/// TLS line and `status=sent (250 2.0.0 Ok: accepted in plaintext ...)`
/// on the first, `Trusted TLS connection established to
/// smtp.sendgrid.net[127.0.1.1]:587` on the second (the run's CA is
/// added to its trust anchors for that scenario).
fn a_stock_may_configuration(name: &str, all_versions: bool) -> String {
    let (code, stdout, stderr) = check_real(name, all_versions, &[STRIPPED, CLEAN]);
    assert_eq!(code, Some(exit::SUCCESS), "{name}: {stdout}\n{stderr}");
    let images = if all_versions { 3 } else { 1 };
    assert_eq!(
        cells(&stdout, "incident-587-strip"),
        vec!["PLAINTEXT"; images],
        "{name}: {stdout}"
    );
    assert_eq!(
        cells(&stdout, "starttls-relay"),
        vec!["tls trusted"; images],
        "{name}: {stdout}"
    );
    assert!(
        stdout.contains("Postfix applies TLS level may to [smtp.sendgrid.net]:587 (set by smtp_tls_security_level in main.cf)"),
        "{name}: {stdout}"
    );
    stdout
}

#[test]
fn debian_s_satellite_system_runs_as_dpkg_wrote_it_with_what_was_made_up_listed() {
    let stdout = a_stock_may_configuration("debian-satellite", false);
    let dir = real("debian-satellite").display().to_string();
    for said in [
        format!("made up /etc/mailname (myorigin, {dir}/main.cf:"),
        "holding mail.example.org: not given, and it cannot change the outbound TLS path"
            .to_owned(),
        format!("made up /etc/aliases (alias_maps, {dir}/main.cf:"),
        format!(
            "made up /etc/ssl/certs/ssl-cert-snakeoil.pem (smtpd_tls_cert_file, {dir}/main.cf:"
        ),
        format!(
            "made up /etc/ssl/private/ssl-cert-snakeoil.key (smtpd_tls_key_file, {dir}/main.cf:"
        ),
        "/etc/ssl/certs (smtp_tls_CApath, ".to_owned(),
        format!(
            "not installed from {dir}, the installation's own (the image's are used): dynamicmaps.cf, "
        ),
        "makedefs.out, master.cf.proto, post-install, postfix-files, postfix-script".to_owned(),
    ] {
        assert!(stdout.contains(&said), "{said}\n{stdout}");
    }
}

#[test]
fn debian_s_internet_with_smarthost_runs_as_dpkg_wrote_it() {
    a_stock_may_configuration("debian-smarthost", false);
}

#[test]
fn rhel_s_stock_configuration_runs_on_every_image_with_its_installation_replaced_and_listed() {
    let stdout = a_stock_may_configuration("rhel9", true);
    let dir = real("rhel9").display().to_string();
    for (name, theirs, image) in [
        (
            "daemon_directory",
            "/usr/libexec/postfix",
            "/usr/lib/postfix/sbin",
        ),
        ("shlib_directory", "/usr/lib64/postfix", "/usr/lib/postfix"),
        (
            "sendmail_path",
            "/usr/sbin/sendmail.postfix",
            "/usr/sbin/sendmail",
        ),
        (
            "newaliases_path",
            "/usr/bin/newaliases.postfix",
            "/usr/bin/newaliases",
        ),
        ("mailq_path", "/usr/bin/mailq.postfix", "/usr/bin/mailq"),
        ("html_directory", "no", "/usr/share/doc/postfix/html"),
        (
            "sample_directory",
            "/usr/share/doc/postfix/samples",
            "/etc/postfix",
        ),
        (
            "readme_directory",
            "/usr/share/doc/postfix/README_FILES",
            "/usr/share/doc/postfix",
        ),
    ] {
        let said = format!("{name} = {theirs} ({dir}/main.cf:");
        let line = stdout
            .lines()
            .find(|l| l.contains(&said))
            .unwrap_or_else(|| panic!("{said}\n{stdout}"));
        assert!(
            line.ends_with(&format!(
                ") is the installation's own: replaced with the image's, {image}"
            )),
            "{line}"
        );
    }
    // The same value as the image's is not replaced.
    assert!(!stdout.contains("mail_owner = postfix ("), "{stdout}");
    for said in [
        "/etc/pki/tls/certs/ca-bundle.crt (smtp_tls_CAfile, ",
        "the system trust store of RHEL, Alma, Rocky, Fedora: replaced with the image's own, /etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs (smtp_tls_CApath, ",
        "made up /etc/pki/tls/certs/postfix.pem (smtpd_tls_cert_file, ",
        "made up /etc/pki/tls/private/postfix.key (smtpd_tls_key_file, ",
        // RHEL listens on localhost for every protocol; the container has
        // IPv4 loopback only, and containment says so.
        "main.cf: inet_interfaces = localhost overridden with 127.0.0.1 (containment)",
    ] {
        assert!(stdout.contains(said), "{said}\n{stdout}");
    }
    for version in ["3.5.25", "3.7.11", "3.10.13"] {
        assert!(
            stdout.contains(&format!("(Postfix {version})")),
            "{version}: {stdout}"
        );
    }
}

#[test]
fn ubuntu_s_stock_configuration_runs_as_its_postinst_writes_it() {
    a_stock_may_configuration("ubuntu-2404", false);
}

/// A provider's documented smarthost settings with TLS required
/// (`encrypt`, explicit): where STARTTLS is stripped, Postfix defers
/// before it would authenticate (`dsn=4.7.4, status=deferred (TLS is
/// required, but was not offered by host smtp.sendgrid.net[127.0.1.1])`,
/// TLS_README: "the SMTP transaction is aborted unless the STARTTLS ESMTP
/// feature is supported by the remote SMTP server"); the clean relay gets
/// the mail over TLS.
fn a_provider_requiring_tls(name: &str, nexthop: &str) -> String {
    a_provider(
        name,
        nexthop,
        "encrypt",
        ["deferred 4.7.4", "deferred 4.7.4"],
    )
}

/// A provider's documented settings that leave Debian's `may` in place
/// and authenticate with `smtp_sasl_security_options = noanonymous`:
/// where STARTTLS is stripped the mail goes in plaintext, and where the
/// relay also offers AUTH before TLS, the password goes with it (SASL_README:
/// with `smtp_sasl_security_options = noanonymous`, plaintext mechanisms
/// are allowed where there is no TLS). Postfix logs no TLS line before
/// `dsn=2.0.0, status=sent (250 2.0.0 Ok: accepted in plaintext by
/// tlsharness relay smtp.mailgun.org)`, and the relay's transcript shows
/// `C: AUTH PLAIN AHBvc3RtYXN0ZXJAbXlkb21haW4uY29tAHBhc3N3b3Jk` on the
/// unencrypted session (Mailgun's documented placeholder credentials).
fn a_provider_leaving_may(name: &str, nexthop: &str) -> String {
    a_provider(
        name,
        nexthop,
        "may",
        ["PLAINTEXT", "PLAINTEXT +CREDENTIALS"],
    )
}

/// `name` on the stripped path, the stripped path with AUTH before TLS,
/// and the clean one (over TLS in every case): the level Postfix applies
/// to `nexthop` and the first two paths' cells.
fn a_provider(name: &str, nexthop: &str, level: &str, stripped: [&str; 2]) -> String {
    let (code, stdout, stderr) = check_real(name, false, &[STRIPPED, STRIPPED_AUTH, CLEAN]);
    assert_eq!(code, Some(exit::SUCCESS), "{name}: {stdout}\n{stderr}");
    assert_eq!(
        cells(&stdout, "incident-587-strip"),
        [stripped[0]],
        "{name}: {stdout}"
    );
    assert_eq!(
        cells(&stdout, "incident-587-strip-sasl-auth-before-tls"),
        [stripped[1]],
        "{name}: {stdout}"
    );
    assert_eq!(
        cells(&stdout, "starttls-relay"),
        ["tls trusted"],
        "{name}: {stdout}"
    );
    assert!(
        stdout.contains(&format!("Postfix applies TLS level {level} to {nexthop} (set by smtp_tls_security_level in main.cf")),
        "{name}: {stdout}"
    );
    stdout
}

#[test]
fn debian_with_sendgrid_s_settings_runs_unchanged_and_mailname_changes_no_path() {
    // The same configuration without myorigin = /etc/mailname: what a
    // user had to do by hand before.
    let without = copy_of("fixtures/configs/real/debian-sendgrid", |m| {
        m.lines()
            .filter(|l| !l.starts_with("myorigin ="))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let dir = real("debian-sendgrid").display().to_string();
    let (code, stdout, stderr) = check_with(
        &[
            "--config",
            &dir,
            "--candidate",
            without.path().to_str().unwrap(),
            STRIPPED,
            STRIPPED_AUTH,
            CLEAN,
        ],
        &[],
    );
    assert_eq!(code, Some(exit::SUCCESS), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("myorigin: /etc/mailname -> (not set)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("made up /etc/mailname (myorigin, {dir}/main.cf:")),
        "{stdout}"
    );
    assert!(stdout.contains("no path changes"), "{stdout}");
    for (scenario, cell) in [
        ("incident-587-strip", "deferred 4.7.4"),
        ("incident-587-strip-sasl-auth-before-tls", "deferred 4.7.4"),
        ("starttls-relay", "tls trusted"),
    ] {
        let row = common::row(&stdout, scenario);
        assert_eq!(row.len(), 1, "{scenario}: {stdout}");
        let words: Vec<&str> = row[0]
            .split("  ")
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect();
        assert_eq!(words, [scenario, cell, cell, "same"], "{stdout}");
    }
}

#[test]
fn amazon_ses_s_settings_require_tls_and_their_smtp_use_tls_is_ignored() {
    let stdout = a_provider_requiring_tls("amazon-ses", "[email-smtp.us-west-2.amazonaws.com]:587");
    // smtp.c pre_init(): a set smtp_tls_security_level overrides the
    // obsolete smtp_use_tls.
    assert!(
        stdout.contains("smtp_use_tls = yes in main.cf is ignored"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/etc/ssl/certs/ca-certificates.crt (smtp_tls_CAfile, "),
        "{stdout}"
    );
}

#[test]
fn postmark_s_settings_require_tls() {
    a_provider_requiring_tls("postmark", "[smtp.postmarkapp.com]:587");
}

#[test]
fn google_workspace_s_relay_settings_require_tls_with_the_map_in_debian_s_sasl_directory() {
    a_provider_requiring_tls("google-workspace", "[smtp-relay.gmail.com]:587");
}

#[test]
fn mailgun_s_settings_keep_may_and_send_the_password_in_plaintext_where_starttls_is_stripped() {
    let stdout = a_provider_leaving_may("mailgun", "[smtp.mailgun.org]:587");
    // The inbound certificate its instructions name, which no package
    // makes: made up.
    assert!(
        stdout.contains("made up /etc/ssl/certs/smtpd.crt (smtpd_tls_cert_file, "),
        "{stdout}"
    );
}

#[test]
fn microsoft_365_s_settings_keep_may_and_send_the_password_in_plaintext_where_starttls_is_stripped()
{
    a_provider_leaving_may("microsoft-365", "[smtp.office365.com]:587");
}

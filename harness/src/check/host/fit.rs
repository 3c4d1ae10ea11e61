//! Fitting a configuration as found to the image: each file it names is
//! placed (the user's directory, `--file`, this host, the image's trust
//! store, or made up where it cannot change the outbound TLS path) or
//! refused before anything starts; the installation's parameters become
//! the image's. Everything done is a note for the report.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::installation;
use super::references::{self, Kind, Place, Reference, normalise};
use crate::check::CheckError;
use crate::check::config::{self, UserConfig};

/// Where a configuration's own directory is installed.
pub const CONFIG_DIRECTORY: &str = "/etc/postfix";

/// A file given with `--file PATH` (taken from PATH) or `--file
/// PATH=LOCAL` (taken from LOCAL), installed at PATH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenFile {
    pub path: String,
    pub local: PathBuf,
}

impl std::str::FromStr for GivenFile {
    type Err = String;

    fn from_str(s: &str) -> Result<GivenFile, String> {
        let (path, local) = s.split_once('=').unwrap_or((s, s));
        if !path.starts_with('/') {
            return Err(format!(
                "`{path}` is not an absolute path: give the path the configuration names (e.g. /etc/postfix/sasl_passwd), and after `=` where to read it from if it is elsewhere here"
            ));
        }
        if path.split('/').any(|p| p == "..") {
            return Err(format!("`{path}` has a `..` in it"));
        }
        if local.is_empty() {
            return Err(format!("`{s}`: nothing after `=`"));
        }
        Ok(GivenFile {
            path: normalise(path),
            local: PathBuf::from(local),
        })
    }
}

/// What fits a configuration to the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fit {
    /// Files installed by absolute path (given, from this host, or made
    /// up), over the user's directory and the image.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Directories made up, empty.
    pub dirs: Vec<String>,
    /// Edits of the configuration, in order.
    pub edits: Vec<Edit>,
    /// What was done and why, in words, for the report.
    pub notes: Vec<String>,
}

/// One edit: a parameter set or removed (so that the image's default
/// applies), in main.cf or on a master.cf service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    /// `name/type` of a master.cf service; `None` for main.cf.
    pub service: Option<String>,
    pub parameter: String,
    /// `None`: removed.
    pub value: Option<String>,
}

impl Edit {
    /// The edit as `postconf` arguments, one per line of the edits file
    /// (see `check::install`): `-e name=value`, `-X name`, and `-P` /
    /// `-PX` with `service/type/name` for a service.
    pub fn postconf_line(&self) -> String {
        let name = match &self.service {
            Some(s) => format!("{s}/{}", self.parameter),
            None => self.parameter.clone(),
        };
        match (&self.service, &self.value) {
            (None, Some(v)) => format!("-e {name}={v}"),
            (None, None) => format!("-X {name}"),
            (Some(_), Some(v)) => format!("-P {name}={v}"),
            (Some(_), None) => format!("-PX {name}"),
        }
    }
}

/// A file that can change the outbound TLS path, named by the
/// configuration and found nowhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingFile {
    /// The configuration file that names it (main.cf or master.cf).
    pub file: PathBuf,
    pub line: usize,
    pub parameter: String,
    pub path: String,
    /// What it is to smtp(8).
    pub role: &'static str,
    /// Why it was not found.
    pub why: String,
    /// Its path under the configuration's directory, when it is there.
    pub inside: Option<(PathBuf, String)>,
}

impl fmt::Display for MissingFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} names {}, which {}; it is {}, which can change the outbound TLS path, so check will not make it up. Either ",
            self.file.display(),
            self.line,
            self.parameter,
            self.path,
            self.why,
            self.role
        )?;
        if let Some((dir, rel)) = &self.inside {
            write!(f, "copy it into {} (as {rel}), or ", dir.display())?;
        }
        write!(
            f,
            "give it with --file {} (--file {}=YOUR_COPY when your copy is elsewhere), or run check on the Postfix host itself with --config /etc/postfix",
            self.path, self.path
        )
    }
}

/// What a file is to the outbound TLS path, if it can change it.
fn role(parameter: &str) -> Option<&'static str> {
    let p = match parameter.strip_prefix("lmtp_") {
        Some(rest) => format!("smtp_{rest}"),
        None => parameter.to_owned(),
    };
    Some(match p.as_str() {
        "smtp_tls_CAfile" | "smtp_tls_CApath" => {
            "the trust anchors smtp(8) verifies the relay's certificate with"
        }
        "smtp_tls_cert_file"
        | "smtp_tls_dcert_file"
        | "smtp_tls_eccert_file"
        | "smtp_tls_chain_files" => "the client certificate smtp(8) presents",
        "smtp_tls_key_file" | "smtp_tls_dkey_file" | "smtp_tls_eckey_file" => {
            "the private key of the client certificate smtp(8) presents"
        }
        "smtp_tls_policy_maps" => "the TLS policy smtp(8) applies per next hop",
        "smtp_tls_per_site" => "the obsolete per-site TLS policy smtp(8) still applies",
        "smtp_sasl_password_maps" => "the credentials smtp(8) sends with AUTH",
        "smtp_sasl_mechanism_filter" => "the AUTH mechanisms smtp(8) will use",
        "smtp_discard_ehlo_keyword_address_maps" => {
            "the EHLO keywords, STARTTLS among them, smtp(8) ignores per server"
        }
        "smtp_reply_filter" => {
            "the filter smtp(8) reads server replies, EHLO's among them, through"
        }
        "smtp_dns_reply_filter" => "the filter of the DNS records, MX among them, smtp(8) uses",
        "transport_maps"
        | "sender_dependent_relayhost_maps"
        | "sender_dependent_default_transport_maps" => "where Postfix routes mail",
        "tls_config_file" => "OpenSSL's configuration for every TLS connection",
        _ => return None,
    })
}

/// The files of a `--file`, by the path they are installed at.
fn read_given(given: &GivenFile) -> Result<Vec<(String, Vec<u8>)>, CheckError> {
    let bad = |why: String| CheckError::Input(format!("--file {}: {why}", given.path));
    let meta = std::fs::metadata(&given.local)
        .map_err(|e| bad(format!("cannot read {}: {e}", given.local.display())))?;
    if !meta.is_dir() {
        let bytes = std::fs::read(&given.local)
            .map_err(|e| bad(format!("cannot read {}: {e}", given.local.display())))?;
        return Ok(vec![(given.path.clone(), bytes)]);
    }
    read_tree(&given.local, &given.path).map_err(bad)
}

/// Every file under `dir`, by the path it has under `at`.
fn read_tree(dir: &Path, at: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let p = entry.path();
        if !p.is_file() {
            continue;
        }
        let rel = p.strip_prefix(dir).unwrap_or(p).to_string_lossy();
        let bytes = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        out.push((format!("{at}/{rel}"), bytes));
    }
    Ok(out)
}

/// Whether `files` (by absolute path) hold `path`, or something under it
/// when it names a directory.
fn holds(files: &BTreeMap<String, Vec<u8>>, path: &str, kind: Kind) -> bool {
    files.contains_key(path)
        || (kind == Kind::Directory && files.keys().any(|k| k.starts_with(&format!("{path}/"))))
}

/// Fits `config` to the image (see the module's words); `root` is where
/// this host's files are (`/`; a test gives another). The configuration
/// is this host's own when its directory is `root`'s /etc/postfix: the
/// files it names elsewhere are then read from this host.
pub fn fit(
    config: &UserConfig,
    given: &[GivenFile],
    root: &Path,
) -> Result<UserConfig, CheckError> {
    fit_from(config, given, root, is_hosts_own(config, root))
}

/// Whether `config` is this host's own: its directory is `root`'s
/// /etc/postfix.
pub fn is_hosts_own(config: &UserConfig, root: &Path) -> bool {
    config.source.is_dir()
        && std::fs::canonicalize(&config.source).ok()
            == std::fs::canonicalize(root.join("etc/postfix")).ok()
}

/// [`fit`], the files named outside the directory read from `root` when
/// `host` (a candidate made from this host's own configuration is fitted
/// as that configuration is).
pub fn fit_from(
    config: &UserConfig,
    given: &[GivenFile],
    root: &Path,
    host: bool,
) -> Result<UserConfig, CheckError> {
    let mut fit = Fit::default();
    let mut brought: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for g in given {
        for (path, bytes) in read_given(g)? {
            brought.insert(path, bytes);
        }
        fit.notes.push(format!(
            "brought with --file: {} (from {})",
            g.path,
            g.local.display()
        ));
    }
    let is_dir = config.source.is_dir();
    // The user's directory, by absolute path.
    let theirs: BTreeMap<String, Vec<u8>> = config
        .files
        .iter()
        .map(|(rel, b)| (format!("{CONFIG_DIRECTORY}/{rel}"), b.clone()))
        .collect();
    let main = String::from_utf8_lossy(config.files.get("main.cf").map_or(&[][..], |b| b));
    let values = config::parameters(&main);
    let mut missing = Vec::new();
    let mut made_up = MadeUp::new(&values);
    let all = references::references(config);
    for (i, r) in all.iter().enumerate() {
        // Each path once, in words that name every parameter naming it
        // the same way (alias_maps and alias_database, say).
        if all[..i].iter().any(|o| o.path == r.path) {
            continue;
        }
        let at = all
            .iter()
            .filter(|o| o.path == r.path && o.kind == r.kind)
            .map(|o| format!("{}, {}", o.parameter, located(config, o)))
            .collect::<Vec<_>>()
            .join("; ");
        let r = r.clone();
        if holds(&brought, &r.path, r.kind) {
            continue;
        }
        if map_store(&r, &at, &mut fit) {
            continue;
        }
        if holds(&theirs, &r.path, r.kind) {
            continue;
        }
        let inside = r
            .path
            .strip_prefix(&format!("{CONFIG_DIRECTORY}/"))
            .map(str::to_owned);
        let on_host = root.join(r.path.trim_start_matches('/'));
        let mut why = match &inside {
            Some(rel) if is_dir => {
                format!("is not in {}", config.source.display()) + &compiled_only(config, rel)
            }
            Some(_) => "is not given: --config names a lone main.cf".to_owned(),
            None => "was not given with --file".to_owned(),
        };
        if host && inside.is_none() && on_host.exists() {
            match read_host(&on_host, &r.path) {
                Ok(files) => {
                    fit.files.extend(files);
                    fit.notes
                        .push(format!("taken from this host: {} ({at})", r.path));
                    continue;
                }
                Err(e) => why = format!("is on this host, but {e}"),
            }
        } else if host && inside.is_none() {
            why = "is not on this host".to_owned();
        }
        match role(&r.parameter) {
            Some(role) => missing.push(MissingFile {
                file: at_file(config, &r),
                line: r.line,
                parameter: r.parameter.clone(),
                path: r.path.clone(),
                role,
                why,
                inside: inside
                    .filter(|_| is_dir)
                    .map(|rel| (config.source.clone(), rel)),
            }),
            None => {
                if let Some(note) = made_up.add(&r, &at, &mut fit) {
                    fit.notes.push(note);
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(CheckError::Missing(missing));
    }
    fit.files.extend(brought);
    installation_edits(&main, config, &mut fit);
    left_out_notes(config, &mut fit);
    let mut fitted = config.clone();
    fitted.fit = fit;
    Ok(fitted)
}

/// Maps `r` to the image's trust store if it names a system's; whether
/// it did.
fn map_store(r: &Reference, at: &str, fit: &mut Fit) -> bool {
    let Some(store) = installation::system_store(&r.parameter, &r.path) else {
        return false;
    };
    if r.path.trim_end_matches('/') == store.image {
        fit.notes.push(format!(
            "{} ({at}) is the system trust store ({}); the image has its own at the same path (Debian's ca-certificates)",
            r.path, store.systems
        ));
        return true;
    }
    fit.edits.push(Edit {
        service: match &r.set_in {
            Place::MainCf => None,
            Place::Service(s) => Some(s.clone()),
        },
        parameter: r.parameter.clone(),
        value: Some(store.image.to_owned()),
    });
    fit.notes.push(format!(
        "{} ({at}), the system trust store of {}: replaced with the image's own, {} (Debian's ca-certificates)",
        r.path, store.systems, store.image
    ));
    true
}

/// This host's file (or directory) at `on_host`, by the path `path` it
/// is installed at.
fn read_host(on_host: &Path, path: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    if on_host.is_dir() {
        read_tree(on_host, path)
    } else {
        std::fs::read(on_host)
            .map(|b| vec![(path.to_owned(), b)])
            .map_err(|e| format!("cannot read {}: {e}", on_host.display()))
    }
}

/// The files of the user's directory left out, one note per reason.
fn left_out_notes(config: &UserConfig, fit: &mut Fit) {
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for l in &config.left_out {
        let (path, why) = l.split_once(": ").unwrap_or((l, ""));
        match reasons.iter_mut().find(|(w, _)| *w == why) {
            Some((_, paths)) => paths.push(path),
            None => reasons.push((why, vec![path])),
        }
    }
    for (why, paths) in reasons {
        fit.notes.push(format!(
            "not installed from {}, {why}: {}",
            config.source.display(),
            paths.join(", ")
        ));
    }
}

/// ` (it has NAME.db, a compiled table: postmap needs the source)` when
/// only the compiled table of `rel` is in the directory.
fn compiled_only(config: &UserConfig, rel: &str) -> String {
    let compiled: Vec<&str> = config
        .left_out
        .iter()
        .filter_map(|l| l.split_once(':').map(|(p, _)| p))
        .filter(|p| p.strip_prefix(rel).is_some_and(|s| s.starts_with('.')))
        .collect();
    if compiled.is_empty() {
        String::new()
    } else {
        format!(
            " (only {}, the compiled table, is: postmap needs the source it was made from)",
            compiled.join(", ")
        )
    }
}

/// The installation's parameters main.cf sets otherwise than the image:
/// removed, so that the image's own apply.
fn installation_edits(main: &str, config: &UserConfig, fit: &mut Fit) {
    // main.cf read once; the last assignment of a name is Postfix's.
    let assignments = config::assignments(main);
    for (name, image) in installation::parameters() {
        let Some(last) = assignments.iter().rfind(|a| a.name == name) else {
            continue;
        };
        let (value, line) = (&last.value, last.line);
        if value == image {
            continue;
        }
        fit.edits.push(Edit {
            service: None,
            parameter: name.to_owned(),
            value: None,
        });
        fit.notes.push(format!(
            "{name} = {value} ({}:{line}) is the installation's own: replaced with the image's, {image}",
            main_cf(config).display()
        ));
    }
}

fn main_cf(config: &UserConfig) -> PathBuf {
    if config.source.is_dir() {
        config.source.join("main.cf")
    } else {
        config.source.clone()
    }
}

fn at_file(config: &UserConfig, r: &Reference) -> PathBuf {
    match r.set_in {
        Place::MainCf => main_cf(config),
        Place::Service(_) => config.source.join("master.cf"),
    }
}

/// `main.cf:12`, or `master.cf:40, service relay/unix`.
fn located(config: &UserConfig, r: &Reference) -> String {
    let file = at_file(config, r);
    match &r.set_in {
        Place::MainCf => format!("{}:{}", file.display(), r.line),
        Place::Service(s) => format!("{}:{}, service {s}", file.display(), r.line),
    }
}

/// Harmless stand-ins for files that cannot change the outbound TLS
/// path: empty tables and lists, the host name for `myorigin`, and one
/// self-signed certificate and key for every certificate parameter.
struct MadeUp {
    hostname: String,
    pair: Option<(String, String)>,
}

impl MadeUp {
    fn new(values: &BTreeMap<String, String>) -> MadeUp {
        let hostname = ["mydomain", "myhostname"]
            .iter()
            .filter_map(|n| values.get(*n))
            .find(|v| !v.is_empty() && !v.contains('$'))
            .cloned()
            .unwrap_or_else(|| "localhost.localdomain".to_owned());
        MadeUp {
            hostname,
            pair: None,
        }
    }

    /// The certificate and key, made once.
    fn pair(&mut self) -> (String, String) {
        self.pair
            .get_or_insert_with(|| {
                let c = rcgen::generate_simple_self_signed(vec![self.hostname.clone()])
                    .expect("a self-signed certificate for a host name");
                (c.cert.pem(), c.signing_key.serialize_pem())
            })
            .clone()
    }

    /// Makes up `r`'s file in `fit`; the note, or none when nothing needs
    /// it.
    fn add(&mut self, r: &Reference, at: &str, fit: &mut Fit) -> Option<String> {
        let p = r.parameter.as_str();
        let (bytes, what) = match r.kind {
            Kind::Directory => {
                fit.dirs.push(r.path.clone());
                return Some(format!(
                    "made up {}/ ({at}), an empty directory: not given, and it cannot change the outbound TLS path",
                    r.path
                ));
            }
            Kind::Table | Kind::Aliases => (String::new(), "an empty table".to_owned()),
            Kind::List if p == "myorigin" => (
                format!("{}\n", self.hostname),
                format!("holding {}", self.hostname),
            ),
            Kind::List => (String::new(), "an empty list".to_owned()),
            Kind::File if p.contains("_dh") => {
                return Some(format!(
                    "not made up: {} ({at}); only an smtpd reads it, and Postfix uses its built-in parameters without it",
                    r.path
                ));
            }
            Kind::File => {
                let (cert, key) = self.pair();
                let is_key = p.ends_with("key_file");
                let pem = if p.ends_with("_chain_files") {
                    format!("{key}{cert}")
                } else if is_key {
                    key
                } else {
                    cert
                };
                let what = if is_key {
                    "a private key made for the check"
                } else {
                    "a self-signed certificate made for the check"
                };
                (pem, what.to_owned())
            }
        };
        // A certificate and its key in one file: both.
        let entry = fit.files.entry(r.path.clone()).or_default();
        if !entry.ends_with(bytes.as_bytes()) {
            entry.extend_from_slice(bytes.as_bytes());
        }
        Some(format!(
            "made up {} ({at}), {what}: not given, and it cannot change the outbound TLS path",
            r.path
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory holding `files` (path under it, text), loaded.
    fn dir(files: &[(&str, &str)]) -> (tempfile::TempDir, UserConfig) {
        let d = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let c = config::load(d.path()).unwrap();
        (d, c)
    }

    fn nowhere() -> PathBuf {
        PathBuf::from("/nonexistent-root")
    }

    #[test]
    fn harmless_files_are_made_up_and_the_installation_and_trust_store_become_the_image_s() {
        let (_d, c) = dir(&[
            (
                "main.cf",
                "myhostname = mail.example.org\nmyorigin = /etc/mailname\nalias_maps = hash:/etc/aliases\nalias_database = hash:/etc/aliases\n\
                 smtpd_tls_cert_file = /etc/pki/tls/certs/postfix.pem\nsmtpd_tls_key_file = /etc/pki/tls/private/postfix.key\n\
                 smtp_tls_CAfile = /etc/pki/tls/certs/ca-bundle.crt\nsmtp_tls_CApath = /etc/pki/tls/certs\n\
                 daemon_directory = /usr/libexec/postfix\nmail_owner = postfix\nheader_checks = regexp:/etc/postfix/header_checks\n",
            ),
            (
                "dynamicmaps.cf",
                "lmdb /usr/lib64/postfix/postfix-lmdb.so dict_lmdb_open\n",
            ),
            ("postfix-files.d/ldap.files", "x\n"),
        ]);
        let f = fit(&c, &[], &nowhere()).unwrap().fit;
        assert_eq!(f.files["/etc/mailname"], b"mail.example.org\n");
        assert_eq!(f.files["/etc/aliases"], b"");
        assert_eq!(f.files["/etc/postfix/header_checks"], b"");
        assert!(
            String::from_utf8_lossy(&f.files["/etc/pki/tls/certs/postfix.pem"])
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(
            String::from_utf8_lossy(&f.files["/etc/pki/tls/private/postfix.key"])
                .contains("PRIVATE KEY")
        );
        let edits: Vec<String> = f.edits.iter().map(Edit::postconf_line).collect();
        assert_eq!(
            edits,
            [
                "-e smtp_tls_CAfile=/etc/ssl/certs/ca-certificates.crt",
                "-e smtp_tls_CApath=/etc/ssl/certs",
                "-X daemon_directory",
            ]
        );
        let notes = f.notes.join("\n");
        for said in [
            "made up /etc/aliases (alias_maps, ",
            "main.cf:3; alias_database, ",
            "made up /etc/mailname (myorigin, ",
            "holding mail.example.org",
            "the system trust store of RHEL, Alma, Rocky, Fedora: replaced with the image's own, /etc/ssl/certs/ca-certificates.crt",
            "daemon_directory = /usr/libexec/postfix (",
            "the installation's own (the image's are used): dynamicmaps.cf, postfix-files.d/",
        ] {
            assert!(notes.contains(said), "{said}: {notes}");
        }
        // The same value as the image's is not an edit.
        assert!(!notes.contains("mail_owner"), "{notes}");
    }

    #[test]
    fn a_missing_client_key_or_sasl_map_is_refused_located_with_both_ways_out() {
        let (d, c) = dir(&[
            (
                "main.cf",
                "relayhost = [smtp.example.com]:587\nsmtp_sasl_auth_enable = yes\n\
                 smtp_sasl_password_maps = hash:/etc/postfix/sasl/sasl_passwd\n\
                 smtp_tls_cert_file = /etc/ssl/certs/client.pem\nsmtp_tls_key_file = /etc/ssl/private/client.key\n",
            ),
            ("sasl/sasl_passwd.db", "binary"),
        ]);
        let Err(CheckError::Missing(missing)) = fit(&c, &[], &nowhere()) else {
            panic!("not refused");
        };
        let text: Vec<String> = missing.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:#?}");
        let main = d.path().join("main.cf").display().to_string();
        assert!(text[0].starts_with(&format!("{main}:3: smtp_sasl_password_maps names /etc/postfix/sasl/sasl_passwd, which is not in {} (only sasl/sasl_passwd.db, the compiled table, is", d.path().display())), "{}", text[0]);
        assert!(text[0].contains(&format!("copy it into {} (as sasl/sasl_passwd), or give it with --file /etc/postfix/sasl/sasl_passwd", d.path().display())), "{}", text[0]);
        assert!(text[1].starts_with(&format!("{main}:4: smtp_tls_cert_file names /etc/ssl/certs/client.pem, which was not given with --file; it is the client certificate smtp(8) presents")), "{}", text[1]);
        assert!(text[2].contains("--file /etc/ssl/private/client.key (--file /etc/ssl/private/client.key=YOUR_COPY when your copy is elsewhere), or run check on the Postfix host itself with --config /etc/postfix"), "{}", text[2]);
        let e = CheckError::Missing(missing);
        assert!(e.is_bad_input());

        // Given, they are installed where the configuration names them.
        let local = d.path().join("key.pem");
        std::fs::write(&local, "KEY").unwrap();
        std::fs::write(d.path().join("cert.pem"), "CERT").unwrap();
        std::fs::write(
            d.path().join("sasl/sasl_passwd"),
            "[smtp.example.com]:587 u:p\n",
        )
        .unwrap();
        let c = config::load(d.path()).unwrap();
        let given: Vec<GivenFile> = [
            format!("/etc/ssl/private/client.key={}", local.display()),
            format!(
                "/etc/ssl/certs/client.pem={}",
                d.path().join("cert.pem").display()
            ),
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let f = fit(&c, &given, &nowhere()).unwrap().fit;
        assert_eq!(f.files["/etc/ssl/private/client.key"], b"KEY");
        assert_eq!(f.files["/etc/ssl/certs/client.pem"], b"CERT");
        assert!(
            f.notes
                .iter()
                .any(|n| n.starts_with("brought with --file: /etc/ssl/private/client.key (from "))
        );
    }

    #[test]
    fn on_the_host_itself_the_files_it_names_are_read_from_the_host() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc/postfix");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(root.path().join("etc/ssl/private")).unwrap();
        std::fs::write(
            etc.join("main.cf"),
            "smtp_tls_key_file = /etc/ssl/private/client.key\nsmtp_tls_cert_file = /etc/ssl/private/client.pem\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/ssl/private/client.key"), "KEY").unwrap();
        let c = config::load(&etc).unwrap();
        assert!(is_hosts_own(&c, root.path()));
        // What the host lacks is still refused, as not on this host.
        let Err(CheckError::Missing(m)) = fit(&c, &[], root.path()) else {
            panic!("not refused")
        };
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].why, "is not on this host");
        std::fs::write(root.path().join("etc/ssl/private/client.pem"), "CERT").unwrap();
        let f = fit(&c, &[], root.path()).unwrap().fit;
        assert_eq!(f.files["/etc/ssl/private/client.key"], b"KEY");
        assert!(f.notes.iter().any(|n| n.starts_with(
            "taken from this host: /etc/ssl/private/client.key (smtp_tls_key_file, "
        )));
        // A copy elsewhere is not the host's.
        assert!(!is_hosts_own(&c, &nowhere()));
    }

    #[test]
    fn given_files_are_absolute_paths() {
        assert_eq!(
            "/etc/postfix//x".parse::<GivenFile>().unwrap(),
            GivenFile {
                path: "/etc/postfix/x".into(),
                local: "/etc/postfix//x".into()
            }
        );
        assert_eq!(
            "/a=b".parse::<GivenFile>().unwrap().local,
            PathBuf::from("b")
        );
        assert!("sasl_passwd".parse::<GivenFile>().is_err());
        assert!("/etc/../x".parse::<GivenFile>().is_err());
        assert!("/x=".parse::<GivenFile>().is_err());
    }
}

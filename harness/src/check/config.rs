//! The user's Postfix configuration: a directory (main.cf, optional
//! master.cf and the lookup tables they use) or a lone main.cf.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::CheckError;

/// A configuration to check, as found on disk.
#[derive(Clone, Debug, Default)]
pub struct UserConfig {
    /// What the user named (directory or file), for reports.
    pub source: PathBuf,
    /// Files installed into /etc/postfix, by their path under it
    /// (`main.cf`, `sasl/sasl_passwd`).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The files of the user's directory that are not installed: the
    /// installation's own (the image's are used) and compiled tables
    /// (rebuilt from their sources).
    pub left_out: Vec<String>,
    /// What fits the configuration to the image (see `check::host`):
    /// empty until [`super::host::fit`] has run.
    pub fit: super::host::Fit,
    /// `relayhost` as main.cf sets it, if it does (Postfix's own resolver
    /// decides where mail goes: see `check::routes`).
    pub relayhost: Option<String>,
    /// `smtp_tls_security_level` as main.cf sets it (empty when unset).
    pub level: String,
}

/// `relayhost`, split up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayhost {
    /// As written, e.g. `[smtp.sendgrid.net]:587`: the next hop kept as is.
    pub raw: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Relayhost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Relayhost {
    /// Parses a next hop as relayhost or a transport map writes it:
    /// `[name]:port`, `name:port`, `[name]` or `name` (the first of a
    /// list).
    pub fn parse(value: &str) -> Result<Relayhost, String> {
        let first = value
            .split([',', ' ', '\t'])
            .find(|s| !s.is_empty())
            .ok_or_else(|| "relayhost is empty".to_owned())?;
        if first.contains('$') {
            return Err(format!(
                "relayhost `{first}` uses a $variable; write the host name out"
            ));
        }
        let (host, port) = if let Some(rest) = first.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("relayhost `{first}` has no closing ]"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p
                    .parse()
                    .map_err(|_| format!("relayhost `{first}`: bad port"))?,
                None if after.is_empty() => 25,
                None => return Err(format!("relayhost `{first}` is malformed")),
            };
            (host.to_owned(), port)
        } else {
            match first.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse()
                        .map_err(|_| format!("relayhost `{first}`: bad port"))?,
                ),
                None => (first.to_owned(), 25),
            }
        };
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Err(format!(
                "relayhost `{first}` is an IP address; the harness redirects the relay by name (through /etc/hosts), so give the name"
            ));
        }
        if crate::scenario::Hostname::parse(&host.to_ascii_lowercase()).is_err() {
            return Err(format!("relayhost `{first}`: `{host}` is not a host name"));
        }
        Ok(Relayhost {
            raw: first.to_owned(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// A Postfix configuration file's logical lines, as Postfix reads main.cf
/// and master.cf alike: a line that starts with whitespace continues the
/// one before, `#` lines and empty lines are dropped.
/// Each comes with the number of the line it starts on.
fn numbered_lines(text: &str) -> Vec<(usize, String)> {
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, last)) = logical.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
            continue;
        }
        logical.push((n + 1, line.to_owned()));
    }
    logical
}

/// One `name = value` of main.cf, and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// main.cf's assignments in file order, repeats included (the last of a
/// name is the one Postfix uses).
pub fn assignments(main_cf: &str) -> Vec<Assignment> {
    numbered_lines(main_cf)
        .into_iter()
        .filter_map(|(line, l)| {
            let (k, v) = l.split_once('=')?;
            Some(Assignment {
                name: k.trim().to_owned(),
                value: v.trim().to_owned(),
                line,
            })
        })
        .collect()
}

/// main.cf assignments in file order (continuation lines joined,
/// comments dropped); the last assignment of a name wins, as in Postfix.
pub fn parameters(main_cf: &str) -> BTreeMap<String, String> {
    assignments(main_cf)
        .into_iter()
        .map(|a| (a.name, a.value))
        .collect()
}

/// One master.cf service as written: `name type private unpriv chroot
/// wakeup maxproc command args...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterService {
    pub name: String,
    pub kind: String,
    /// The command's name, without a directory: smtp(8) decides by it
    /// whether it speaks SMTP or LMTP.
    pub command: String,
    /// The `-o name=value` (or `-o { name = value }`) options, in order;
    /// where a name repeats, the last is the one the service uses.
    pub options: Vec<(String, String)>,
    /// The line of master.cf the service starts on.
    pub line: usize,
}

/// master.cf's services, as Postfix reads the file: a line that starts
/// with whitespace continues the one before, `#` lines are comments,
/// and `{ ... }` holds one argument with spaces (Postfix 3.0 and later).
/// A malformed line is skipped; Postfix itself refuses it at start.
pub fn services(master_cf: &str) -> Vec<MasterService> {
    let logical = numbered_lines(master_cf);
    logical
        .iter()
        .filter_map(|(line, l)| {
            let words = master_words(l);
            let [name, kind, _, _, _, _, _, command, args @ ..] = words.as_slice() else {
                return None;
            };
            let mut options = Vec::new();
            let mut args = args.iter();
            while let Some((arg, _)) = args.next() {
                let option = match arg.strip_prefix("-o") {
                    Some("") => args.next().map(|(a, _)| a.as_str()),
                    Some(joined) => Some(joined),
                    None => None,
                };
                if let Some((k, v)) = option.and_then(|o| o.split_once('=')) {
                    options.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
            Some(MasterService {
                name: name.0.clone(),
                kind: kind.0.clone(),
                command: command
                    .0
                    .rsplit('/')
                    .next()
                    .unwrap_or(&command.0)
                    .to_owned(),
                options,
                line: *line,
            })
        })
        .collect()
}

/// The whitespace-separated words of a master.cf line, a `{ ... }` group
/// as one word without its braces (flagged `true`).
fn master_words(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let end = inner.char_indices().find_map(|(i, c)| match c {
                '{' => {
                    depth += 1;
                    None
                }
                '}' if depth == 0 => Some(i),
                '}' => {
                    depth -= 1;
                    None
                }
                _ => None,
            });
            let end = end.unwrap_or(inner.len());
            out.push((inner[..end].trim().to_owned(), true));
            rest = inner.get(end + 1..).unwrap_or("").trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push((rest[..end].to_owned(), false));
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// Files of a Postfix installation that sit in its configuration
/// directory but describe the installation, not the configuration: the
/// image's own are kept, since another build's (its map plugins' paths,
/// its file list, its scripts) would not fit the image.
const INSTALLATION_FILES: [&str; 15] = [
    "dynamicmaps.cf",
    "dynamicmaps.cf.d",
    "postfix-files",
    "postfix-files.d",
    "post-install",
    "postfix-script",
    "makedefs.out",
    "main.cf.proto",
    "master.cf.proto",
    "main.cf.default",
    "main.cf.dist",
    "master.cf.dist",
    "bounce.cf.default",
    "LICENSE",
    "TLS_LICENSE",
];

/// Compiled lookup tables: the image's postmap rebuilds each from its
/// source (another host's Berkeley DB or LMDB files may not even open).
const COMPILED: [&str; 6] = [".db", ".lmdb", ".lmdb-lock", ".cdb", ".dir", ".pag"];

/// Whether a file of the user's directory (its path under it) is left
/// out, and why.
fn left_out(relative: &str) -> Option<&'static str> {
    let top = relative.split('/').next().unwrap_or(relative);
    if INSTALLATION_FILES.contains(&top) {
        Some("the installation's own (the image's are used)")
    } else if COMPILED.iter().any(|s| relative.ends_with(s)) {
        Some("compiled tables (postmap rebuilds each from its source)")
    } else {
        None
    }
}

/// Reads a configuration from a directory (every regular file in it and
/// in its subdirectories, as a copy of /etc/postfix has them) or from a
/// main.cf. Nothing is changed or started.
pub fn load(path: &Path) -> Result<UserConfig, CheckError> {
    let bad = |why: String| CheckError::Config {
        path: path.to_owned(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut files = BTreeMap::new();
    let mut skipped = Vec::new();
    if meta.is_dir() {
        // Symbolic links to files are followed; to directories, not (a
        // link back up would never end).
        let mut walk = walkdir::WalkDir::new(path)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = walk.next() {
            let entry = entry.map_err(|e| bad(format!("cannot read: {e}")))?;
            let p = entry.path();
            let relative = p
                .strip_prefix(path)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned();
            if let Some(why) = left_out(&relative) {
                if entry.file_type().is_dir() {
                    walk.skip_current_dir();
                    skipped.push(format!("{relative}/: {why}"));
                } else {
                    skipped.push(format!("{relative}: {why}"));
                }
                continue;
            }
            if !p.is_file() {
                continue;
            }
            let bytes = std::fs::read(p).map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (Postfix's password maps and keys are often readable by root alone: run check as root, or give a copy of the directory you can read)"
                } else {
                    ""
                };
                bad(format!("cannot read {relative}: {e}{hint}"))
            })?;
            files.insert(relative, bytes);
        }
        if !files.contains_key("main.cf") {
            return Err(bad("the directory has no main.cf".into()));
        }
    } else {
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        files.insert("main.cf".to_owned(), bytes);
    }
    let main_cf = String::from_utf8_lossy(&files["main.cf"]).into_owned();
    let params = parameters(&main_cf);
    let relayhost = params.get("relayhost").filter(|v| !v.is_empty()).cloned();
    Ok(UserConfig {
        source: path.to_owned(),
        files,
        left_out: skipped,
        fit: Default::default(),
        relayhost,
        level: params
            .get("smtp_tls_security_level")
            .cloned()
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayhost_forms() {
        let r = Relayhost::parse("[smtp.sendgrid.net]:587").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("smtp.sendgrid.net", 587));
        assert_eq!(Relayhost::parse("[mx.example.com]").unwrap().port, 25);
        assert_eq!(Relayhost::parse("mx.example.com:2525").unwrap().port, 2525);
        assert_eq!(
            Relayhost::parse("[a.example.com]:587, [b.example.com]:587")
                .unwrap()
                .host,
            "a.example.com"
        );
        assert!(Relayhost::parse("").is_err());
        assert!(Relayhost::parse("[192.0.2.1]:587").is_err());
        assert!(Relayhost::parse("$relay").is_err());
    }

    #[test]
    fn master_cf_services_and_their_options() {
        let s = services(
            "# comment\n\
             smtp      inet  n       -       y       -       -       smtpd\n\
             smtp      unix  -       -       y       -       -       smtp\n\
             \x20 -o smtp_bind_address=192.0.2.7\n\
             #  -o smtp_helo_name=commented.out\n\
             \t-o { smtp_fallback_relay = [192.0.2.1]:25, [192.0.2.2] }\n\
             \x20 -osmtp_host_lookup=dns\n\
             \x20 -o smtp_bind_address=192.0.2.8\n\
             relay     unix  -       -       y       -       -       /usr/lib/postfix/sbin/smtp -o syslog_name=postfix/$service_name\n\
             maildrop  unix  -       n       n       -       -       pipe\n\
             \x20 flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}\n\
             broken unix -\n",
        );
        let names: Vec<(&str, &str, &str)> = s
            .iter()
            .map(|m| (m.name.as_str(), m.kind.as_str(), m.command.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("smtp", "inet", "smtpd"),
                ("smtp", "unix", "smtp"),
                ("relay", "unix", "smtp"),
                ("maildrop", "unix", "pipe"),
            ]
        );
        let o = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            s[1].options,
            [
                o("smtp_bind_address", "192.0.2.7"),
                o("smtp_fallback_relay", "[192.0.2.1]:25, [192.0.2.2]"),
                o("smtp_host_lookup", "dns"),
                o("smtp_bind_address", "192.0.2.8"),
            ]
        );
        assert_eq!(s[2].options, [o("syslog_name", "postfix/$service_name")]);
        assert!(s[3].options.is_empty());
    }

    #[test]
    fn parameters_follow_postfix_rules() {
        let p = parameters(
            "# comment\nrelayhost = [a.example.com]:587\nsmtp_tls_security_level = may\n  # not a continuation? comments skip\nmynetworks = 127.0.0.0/8\n  10.0.0.0/8\nsmtp_tls_security_level=encrypt\n",
        );
        assert_eq!(p["smtp_tls_security_level"], "encrypt");
        assert_eq!(p["mynetworks"], "127.0.0.0/8 10.0.0.0/8");
    }
}

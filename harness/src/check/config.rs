//! The user's Postfix configuration: a directory (main.cf, optional
//! master.cf and the lookup tables they use) or a lone main.cf.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::CheckError;

/// A configuration to check, as found on disk.
#[derive(Clone, Debug)]
pub struct UserConfig {
    /// What the user named (directory or file), for reports.
    pub source: PathBuf,
    /// Files installed into /etc/postfix, by name (main.cf first).
    pub files: BTreeMap<String, Vec<u8>>,
    pub relayhost: Relayhost,
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
    /// Parses a relayhost value: `[name]:port`, `name:port`, `[name]` or
    /// `name` (the first of a list).
    pub fn parse(value: &str) -> Result<Relayhost, String> {
        let first = value
            .split([',', ' ', '\t'])
            .find(|s| !s.is_empty())
            .ok_or_else(|| {
                "relayhost is empty: check follows the path to the relayhost, so it needs one"
                    .to_owned()
            })?;
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

/// main.cf assignments in file order (continuation lines joined,
/// comments dropped); the last assignment of a name wins, as in Postfix.
pub fn parameters(main_cf: &str) -> BTreeMap<String, String> {
    let mut logical: Vec<String> = Vec::new();
    for line in main_cf.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = logical.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
            continue;
        }
        logical.push(line.to_owned());
    }
    let mut out = BTreeMap::new();
    for l in logical {
        if let Some((k, v)) = l.split_once('=') {
            out.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

/// Reads a configuration from a directory (every regular file in it) or
/// from a main.cf.
pub fn load(path: &Path) -> Result<UserConfig, CheckError> {
    let bad = |why: String| CheckError::Config {
        path: path.to_owned(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut files = BTreeMap::new();
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| bad(format!("cannot read: {e}")))?;
            let p = entry.path();
            if !p.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).map_err(|e| bad(format!("cannot read {name}: {e}")))?;
            files.insert(name, bytes);
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
    let relayhost = Relayhost::parse(params.get("relayhost").map_or("", String::as_str))
        .map_err(|why| bad(format!("main.cf: {why}")))?;
    Ok(UserConfig {
        source: path.to_owned(),
        files,
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
    fn parameters_follow_postfix_rules() {
        let p = parameters(
            "# comment\nrelayhost = [a.example.com]:587\nsmtp_tls_security_level = may\n  # not a continuation? comments skip\nmynetworks = 127.0.0.0/8\n  10.0.0.0/8\nsmtp_tls_security_level=encrypt\n",
        );
        assert_eq!(p["smtp_tls_security_level"], "encrypt");
        assert_eq!(p["mynetworks"], "127.0.0.0/8 10.0.0.0/8");
    }
}

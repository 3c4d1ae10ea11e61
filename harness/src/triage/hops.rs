//! Where the configuration sends mail, read from the configuration alone
//! (no Postfix to ask, unlike `check::routes`): `relayhost`, and the
//! plain-text sources of `transport_maps` and
//! `sender_dependent_relayhost_maps` entries that name a relay. Whatever
//! cannot be read that way is listed, not guessed.

use std::fmt;

use super::source::HostConfig;
use crate::check::{MasterService, Relayhost, services};

/// One relay the configuration sends mail to, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Which mail goes there, in words.
    pub mail: String,
    pub relay: Relayhost,
    /// The master.cf service that carries it (`smtp` unless named).
    pub transport: String,
    /// `smtp_tls_wrappermode = yes`: TLS from the first byte, as on 465.
    pub wrapper_mode: bool,
    /// The TLS level Postfix applies, as a main.cf value (`encrypt`, ...).
    pub level: String,
    /// Where the level comes from, in words.
    pub level_from: String,
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} port {}, via {}, smtp_tls_security_level = {} ({}), {}",
            self.mail,
            self.relay.host,
            self.relay.port,
            self.transport,
            self.level,
            self.level_from,
            if self.wrapper_mode {
                "wrapper mode (TLS from the first byte)"
            } else {
                "STARTTLS (smtp_tls_wrappermode = no)"
            }
        )
    }
}

/// Every relay found, and what could not be resolved.
#[derive(Clone, Debug, Default)]
pub struct Routing {
    pub hops: Vec<NextHop>,
    /// Mail whose next hop triage could not tell, and why.
    pub unresolved: Vec<String>,
}

/// Table types whose source file is `key value` lines.
const TEXT_TABLES: [&str; 7] = ["hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"];

pub fn next_hops(config: &HostConfig) -> Routing {
    let master = config
        .user
        .files
        .get("master.cf")
        .map(|b| services(&String::from_utf8_lossy(b)))
        .unwrap_or_default();
    let mut routing = Routing::default();
    let default_transport = config
        .param("default_transport")
        .filter(|t| !t.is_empty())
        .unwrap_or("smtp")
        .to_owned();
    match config.param("relayhost").filter(|v| !v.is_empty()) {
        Some(value) => routing.add(
            config,
            &master,
            "all mail (relayhost)",
            &default_transport,
            value,
        ),
        None => routing.unresolved.push(
            "mail to other domains goes to their MX hosts (relayhost is unset): triage probes relays, not MX hosts".to_owned(),
        ),
    }
    for (key, value, table) in entries(config, "transport_maps", &mut routing.unresolved) {
        let (transport, nexthop) = value.split_once(':').unwrap_or((value.as_str(), ""));
        let transport = if transport.is_empty() {
            default_transport.as_str()
        } else {
            transport
        };
        let mail = format!("mail to {key} (transport_maps {table})");
        if !speaks_smtp(transport, &master) {
            routing.unresolved.push(format!(
                "{mail}: transport `{transport}` is not an smtp(8) client; not probed"
            ));
            continue;
        }
        if nexthop.is_empty() {
            continue;
        }
        routing.add(config, &master, &mail, transport, nexthop);
    }
    for (key, value, table) in entries(
        config,
        "sender_dependent_relayhost_maps",
        &mut routing.unresolved,
    ) {
        let mail = format!("mail from {key} (sender_dependent_relayhost_maps {table})");
        routing.add(config, &master, &mail, &default_transport, &value);
    }
    routing
}

impl Routing {
    fn add(
        &mut self,
        config: &HostConfig,
        master: &[MasterService],
        mail: &str,
        transport: &str,
        nexthop: &str,
    ) {
        let relay = match Relayhost::parse(nexthop) {
            Ok(r) => r,
            Err(why) => {
                self.unresolved.push(format!("{mail}: {why}"));
                return;
            }
        };
        let (level, level_from) = level(config, master, transport);
        let wrapper_mode = setting(config, master, transport, "smtp_tls_wrappermode")
            .is_some_and(|(v, _)| v.eq_ignore_ascii_case("yes"));
        if config
            .param("smtp_tls_policy_maps")
            .is_some_and(|v| !v.is_empty())
        {
            self.unresolved.push(format!(
                "{mail}: smtp_tls_policy_maps may set another TLS level for {}; triage assumes {level}",
                relay.host
            ));
        }
        let hop = NextHop {
            mail: mail.to_owned(),
            relay,
            transport: transport.to_owned(),
            wrapper_mode,
            level,
            level_from,
        };
        let same_path = |h: &NextHop| {
            h.relay.host == hop.relay.host
                && h.relay.port == hop.relay.port
                && h.wrapper_mode == hop.wrapper_mode
                && h.level == hop.level
        };
        if !self.hops.iter().any(same_path) {
            self.hops.push(hop);
        }
    }
}

/// A parameter for one transport: its master.cf `-o` override, else main.cf.
fn setting(
    config: &HostConfig,
    master: &[MasterService],
    transport: &str,
    name: &str,
) -> Option<(String, String)> {
    let service = master
        .iter()
        .find(|s| s.name == transport && s.kind == "unix");
    if let Some((_, v)) = service
        .into_iter()
        .flat_map(|s| s.options.iter())
        .rfind(|(k, _)| k == name)
    {
        return Some((v.clone(), format!("master.cf {transport} -o {name}")));
    }
    config
        .param(name)
        .filter(|v| !v.is_empty())
        .map(|v| (v.to_owned(), format!("main.cf {name}")))
}

/// The TLS level a transport applies, with the legacy switches Postfix
/// reads when `smtp_tls_security_level` is empty.
fn level(config: &HostConfig, master: &[MasterService], transport: &str) -> (String, String) {
    if let Some(found) = setting(config, master, transport, "smtp_tls_security_level") {
        return found;
    }
    let yes = |name| {
        setting(config, master, transport, name).is_some_and(|(v, _)| v.eq_ignore_ascii_case("yes"))
    };
    if yes("smtp_enforce_tls") {
        ("encrypt".into(), "smtp_enforce_tls = yes".into())
    } else if yes("smtp_use_tls") {
        ("may".into(), "smtp_use_tls = yes".into())
    } else {
        ("none".into(), "Postfix's default".into())
    }
}

/// Whether mail on `transport` leaves through an smtp(8) client.
fn speaks_smtp(transport: &str, master: &[MasterService]) -> bool {
    match master
        .iter()
        .find(|s| s.name == transport && s.kind == "unix")
    {
        Some(s) => s.command == "smtp",
        None => matches!(transport, "smtp" | "relay"),
    }
}

/// `(key, value, table)` for each entry of the text-sourced tables a
/// parameter lists; the tables that cannot be read so go to `unresolved`.
fn entries(
    config: &HostConfig,
    param: &str,
    unresolved: &mut Vec<String>,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Some(value) = config.param(param) else {
        return out;
    };
    for table in value.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
        let readable = table
            .split_once(':')
            .filter(|(kind, _)| TEXT_TABLES.contains(kind))
            .and_then(|(_, path)| file_name(config, path));
        let Some(name) = readable else {
            unresolved.push(format!(
                "{param} {table}: not resolved (only the source files of hash/btree/lmdb/cdb/texthash tables in the configuration directory are read)"
            ));
            continue;
        };
        let text = String::from_utf8_lossy(&config.user.files[&name]).into_owned();
        for line in text.lines() {
            if line.starts_with([' ', '\t']) || line.trim_start().starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            if let (Some(k), Some(v)) = (words.next(), words.next()) {
                out.push((k.to_ascii_lowercase(), v.to_owned(), table.to_owned()));
            }
        }
    }
    out
}

/// The configuration file a table's path names, if triage has it.
fn file_name(config: &HostConfig, path: &str) -> Option<String> {
    let dir = config.path().to_string_lossy().into_owned();
    let name = path
        .strip_prefix("/etc/postfix/")
        .or_else(|| path.strip_prefix(&format!("{}/", dir.trim_end_matches('/'))))?;
    config
        .user
        .files
        .contains_key(name)
        .then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::UserConfig;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn config(main: &str, files: &[(&str, &str)]) -> HostConfig {
        let mut all = BTreeMap::new();
        all.insert("main.cf".to_owned(), main.as_bytes().to_vec());
        for (n, t) in files {
            all.insert((*n).to_owned(), t.as_bytes().to_vec());
        }
        HostConfig {
            user: UserConfig {
                source: PathBuf::from("/nonexistent/postfix"),
                files: all,
                relayhost: None,
                level: String::new(),
                ..Default::default()
            },
            params: crate::check::parameters(main),
            origin: "test".into(),
        }
    }

    #[test]
    fn relayhost_and_table_entries_become_hops() {
        let c = config(
            "relayhost = [smtp.sendgrid.net]:587\nsmtp_tls_security_level = encrypt\n\
             transport_maps = hash:/etc/postfix/transport, regexp:/etc/postfix/re\n\
             sender_dependent_relayhost_maps = hash:/etc/postfix/sender_relay\n",
            &[
                (
                    "transport",
                    "example.com relay:[mx.example.com]:2525\nlocal.test local:\nbare.test :\n",
                ),
                ("sender_relay", "@alerts.test [smtp.mailgun.org]:465\n"),
                (
                    "master.cf",
                    "relay unix - - y - - smtp\n  -o smtp_tls_security_level=verify\n",
                ),
            ],
        );
        let r = next_hops(&c);
        let hops: Vec<(&str, u16, &str, &str)> = r
            .hops
            .iter()
            .map(|h| {
                (
                    h.relay.host.as_str(),
                    h.relay.port,
                    h.transport.as_str(),
                    h.level.as_str(),
                )
            })
            .collect();
        assert_eq!(
            hops,
            [
                ("smtp.sendgrid.net", 587, "smtp", "encrypt"),
                ("mx.example.com", 2525, "relay", "verify"),
                ("smtp.mailgun.org", 465, "smtp", "encrypt"),
            ]
        );
        assert_eq!(
            r.hops[1].level_from,
            "master.cf relay -o smtp_tls_security_level"
        );
        assert!(
            r.unresolved
                .iter()
                .any(|u| u.contains("regexp:/etc/postfix/re") && u.contains("not resolved")),
            "{:?}",
            r.unresolved
        );
        assert!(
            r.unresolved.iter().any(|u| u.contains("`local`")),
            "{:?}",
            r.unresolved
        );
    }

    #[test]
    fn legacy_switches_and_wrapper_mode() {
        let c = config(
            "relayhost = [smtp.sendgrid.net]:465\nsmtp_enforce_tls = yes\nsmtp_tls_wrappermode = yes\n",
            &[],
        );
        let hop = &next_hops(&c).hops[0];
        assert!(hop.wrapper_mode);
        assert_eq!(
            (hop.level.as_str(), hop.level_from.as_str()),
            ("encrypt", "smtp_enforce_tls = yes")
        );
        let none = config("relayhost =\n", &[]);
        let r = next_hops(&none);
        assert!(r.hops.is_empty());
        assert!(r.unresolved[0].contains("MX hosts"));
    }
}

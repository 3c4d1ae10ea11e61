//! Which files a configuration names, and where: every `type:/path`
//! lookup table in any parameter, and the plain paths of the parameters
//! Postfix reads a file or directory for (certificates, trust anchors,
//! `myorigin`, the lists that take a `/file/name`). `$name` is expanded
//! as Postfix expands it, the installation's own parameters as the
//! image sets them (they are replaced, see [`super::installation`]).

use std::collections::BTreeMap;

use super::installation;
use crate::check::config::{self, UserConfig};

/// What a configuration names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A lookup table's source file (`hash:`, `regexp:`, ...), or a
    /// database client's configuration file (`ldap:`, `mysql:`, ...).
    Table,
    /// A table Postfix reads as aliases (`alias_maps`, `alias_database`).
    Aliases,
    /// A certificate, key, trust anchor or parameter file.
    File,
    /// A directory of trust anchors (`*_tls_CApath`).
    Directory,
    /// A list in a file (`/file/name` in `mydestination`, `myorigin`...).
    List,
}

/// One file a parameter names, and where the parameter is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The parameter, as main.cf or the `-o` option names it.
    pub parameter: String,
    /// `main.cf`, or `master.cf service NAME/TYPE`.
    pub set_in: Place,
    /// The line it is set on, in that file.
    pub line: usize,
    /// The path, expanded.
    pub path: String,
    pub kind: Kind,
}

/// Where a parameter is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    MainCf,
    /// A `-o` option of a master.cf service (`name/type`).
    Service(String),
}

/// Table types whose name after the colon is a file.
const FILE_TABLES: [&str; 15] = [
    "hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash", "regexp", "pcre", "cidr", "ldap",
    "mysql", "pgsql", "sqlite", "memcache",
];

/// Table types that hold other tables in `{ ... }`.
const TABLE_LISTS: [&str; 2] = ["unionmap", "pipemap"];

/// Parameters whose table Postfix writes itself: nothing to bring.
fn is_cache(parameter: &str) -> bool {
    parameter.ends_with("_cache_database")
        || parameter.ends_with("_cache_map")
        || parameter.ends_with("_cache_name")
        || parameter == "address_verify_map"
}

/// The suffixes of TLS parameters that name a file.
const TLS_FILES: [&str; 11] = [
    "_tls_CAfile",
    "_tls_cert_file",
    "_tls_key_file",
    "_tls_dcert_file",
    "_tls_dkey_file",
    "_tls_eccert_file",
    "_tls_eckey_file",
    "_tls_dh1024_param_file",
    "_tls_dh512_param_file",
    "_tls_chain_files",
    "_tls_dh2048_param_file",
];

/// Parameters that take `/file/name` in a list (postconf(5): "Specify a
/// list of ..., "/file/name" or "type:table" patterns").
const LISTS: [&str; 18] = [
    "myorigin",
    "mydestination",
    "mynetworks",
    "relay_domains",
    "permit_mx_backup_networks",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
    "smtp_sasl_mechanism_filter",
    "lmtp_sasl_mechanism_filter",
    "debug_peer_list",
    "fast_flush_domains",
    "authorized_submit_users",
    "authorized_flush_users",
    "authorized_mailq_users",
    "smtpd_sasl_exceptions_networks",
    "smtp_connection_cache_destinations",
    "smtpd_authorized_xclient_hosts",
    "smtpd_authorized_xforward_hosts",
];

/// What kind of path a plain `/path` in `parameter`'s value is, if the
/// parameter reads one.
fn plain_kind(parameter: &str) -> Option<Kind> {
    if parameter.ends_with("_tls_CApath") {
        Some(Kind::Directory)
    } else if TLS_FILES.iter().any(|s| parameter.ends_with(s)) || parameter == "tls_config_file" {
        Some(Kind::File)
    } else if LISTS.contains(&parameter) {
        Some(Kind::List)
    } else {
        None
    }
}

/// Every file the configuration's main.cf and master.cf name, in order.
pub fn references(config: &UserConfig) -> Vec<Reference> {
    let text = |name: &str| {
        config
            .files
            .get(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let main = text("main.cf");
    let values = config::parameters(&main);
    let mut out = Vec::new();
    for a in config::assignments(&main) {
        // Only the assignment Postfix uses counts.
        if values.get(&a.name) != Some(&a.value) {
            continue;
        }
        scan(&a.name, &a.value, Place::MainCf, a.line, &values, &mut out);
    }
    let master = text("master.cf");
    for service in config::services(&master) {
        let place = Place::Service(format!("{}/{}", service.name, service.kind));
        for (k, v) in &service.options {
            scan(k, v, place.clone(), service.line, &values, &mut out);
        }
    }
    out
}

fn scan(
    parameter: &str,
    value: &str,
    set_in: Place,
    line: usize,
    values: &BTreeMap<String, String>,
    out: &mut Vec<Reference>,
) {
    if is_cache(parameter) {
        return;
    }
    let expanded = expand(value, values, 0);
    let aliases = parameter == "alias_maps" || parameter == "alias_database";
    let mut push = |path: &str, kind: Kind| {
        if path.starts_with('/') {
            out.push(Reference {
                parameter: parameter.to_owned(),
                set_in: set_in.clone(),
                line,
                path: normalise(path),
                kind,
            });
        }
    };
    for word in words(&expanded) {
        for (kind, path) in tables(&word) {
            push(&path, if aliases { Kind::Aliases } else { kind });
        }
        if word.starts_with('/')
            && let Some(kind) = plain_kind(parameter)
        {
            push(&word, kind);
        }
    }
}

/// `/a//b/./c` as `/a/b/c` (`..` is kept: it is the user's to explain).
pub(super) fn normalise(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// The files a word names as tables: `hash:/p`, `proxy:hash:/p`,
/// `unionmap:{ hash:/a, cdb:/b }`.
fn tables(word: &str) -> Vec<(Kind, String)> {
    let Some((kind, rest)) = word.split_once(':') else {
        return Vec::new();
    };
    if kind == "proxy" {
        return tables(rest);
    }
    if TABLE_LISTS.contains(&kind) {
        let inner = rest.trim().trim_start_matches('{').trim_end_matches('}');
        return words(inner).iter().flat_map(|w| tables(w)).collect();
    }
    if FILE_TABLES.contains(&kind) {
        return vec![(Kind::Table, rest.to_owned())];
    }
    Vec::new()
}

/// A value's words, split at whitespace and commas outside `{ }`.
fn words(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '{' => {
                depth += 1;
                word.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                word.push(c);
            }
            c if depth == 0 && (c.is_whitespace() || c == ',') => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// `$name`, `${name}` and `$(name)` replaced by main.cf's value (itself
/// expanded), else the image's for the installation's parameters. A name
/// neither knows, or a conditional form (`${name?value}`), is left as
/// written: such a path is not one the check can place.
pub fn expand(value: &str, values: &BTreeMap<String, String>, depth: usize) -> String {
    if depth > 10 || !value.contains('$') {
        return value.to_owned();
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.chars().next() {
            Some(open @ ('{' | '(')) => {
                let close = if open == '{' { '}' } else { ')' };
                match after.find(close) {
                    Some(end) => (&after[1..end], end + 1),
                    None => ("", 0),
                }
            }
            _ => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        let known = if installation::is_installation(name) {
            installation::image_default(name).map(str::to_owned)
        } else {
            values
                .get(name)
                .cloned()
                .or_else(|| installation::image_default(name).map(str::to_owned))
        };
        match known {
            Some(v) if !name.is_empty() => out.push_str(&expand(&v, values, depth + 1)),
            _ => {
                out.push('$');
                out.push_str(&after[..len]);
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(main: &str, master: &str) -> UserConfig {
        let mut files: BTreeMap<String, Vec<u8>> =
            [("main.cf".to_owned(), main.as_bytes().to_vec())].into();
        if !master.is_empty() {
            files.insert("master.cf".to_owned(), master.as_bytes().to_vec());
        }
        UserConfig {
            source: "postfix".into(),
            files,
            ..Default::default()
        }
    }

    fn found(c: &UserConfig) -> Vec<(String, String, Kind, usize)> {
        references(c)
            .into_iter()
            .map(|r| (r.parameter, r.path, r.kind, r.line))
            .collect()
    }

    #[test]
    fn tables_files_and_lists_are_found_with_their_lines_and_caches_are_not() {
        let c = config(
            "myorigin = /etc/mailname\n\
             alias_maps = hash:/etc/aliases, nis:mail.aliases\n\
             smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem\n\
             smtp_tls_CApath=/etc/ssl/certs\n\
             smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache\n\
             smtp_sasl_password_maps = proxy:hash:$config_directory/sasl/sasl_passwd\n\
             transport_maps = unionmap:{ texthash:/etc/postfix/a, inline:{ x=y } },\n  regexp:/etc/postfix/re\n\
             smtpd_recipient_restrictions = permit_mynetworks, check_client_access cidr:/etc/postfix/access.cidr, reject\n\
             mailbox_command = /usr/bin/procmail -a \"$EXTENSION\"\n\
             debugger_command = PATH=/bin:/usr/bin ddd $daemon_directory/$process_name\n\
             smtp_sasl_password_maps = static:apikey:SG.x\n\
             tls_random_source = dev:/dev/urandom\n",
            "smtp unix - - y - - smtp\n  -o smtp_tls_CAfile=/etc/pki/tls/certs/ca-bundle.crt\n",
        );
        use Kind::*;
        let s = |p: &str, path: &str, k, l| (p.to_owned(), path.to_owned(), k, l);
        assert_eq!(
            found(&c),
            [
                s("myorigin", "/etc/mailname", List, 1),
                s("alias_maps", "/etc/aliases", Aliases, 2),
                s(
                    "smtpd_tls_cert_file",
                    "/etc/ssl/certs/ssl-cert-snakeoil.pem",
                    File,
                    3
                ),
                s("smtp_tls_CApath", "/etc/ssl/certs", Directory, 4),
                // Only the last smtp_sasl_password_maps counts (static:).
                s("transport_maps", "/etc/postfix/a", Table, 7),
                s("transport_maps", "/etc/postfix/re", Table, 7),
                s(
                    "smtpd_recipient_restrictions",
                    "/etc/postfix/access.cidr",
                    Table,
                    9
                ),
                s(
                    "smtp_tls_CAfile",
                    "/etc/pki/tls/certs/ca-bundle.crt",
                    File,
                    1
                ),
            ]
        );
    }

    #[test]
    fn expansion_follows_main_cf_and_the_image_for_installation_parameters() {
        let values: BTreeMap<String, String> = [
            ("a".to_owned(), "$b/x".to_owned()),
            ("b".to_owned(), "/srv".to_owned()),
            (
                "daemon_directory".to_owned(),
                "/usr/libexec/postfix".to_owned(),
            ),
            ("loop".to_owned(), "$loop".to_owned()),
        ]
        .into();
        assert_eq!(expand("${a}/y", &values, 0), "/srv/x/y");
        assert_eq!(expand("$(b)", &values, 0), "/srv");
        assert_eq!(expand("$config_directory/t", &values, 0), "/etc/postfix/t");
        assert_eq!(
            expand("$daemon_directory/smtp", &values, 0),
            "/usr/lib/postfix/sbin/smtp"
        );
        assert_eq!(expand("$nope/t", &values, 0), "$nope/t");
        assert_eq!(expand("${b?yes}", &values, 0), "${b?yes}");
        assert!(expand("$loop", &values, 0).starts_with('$'));
    }
}

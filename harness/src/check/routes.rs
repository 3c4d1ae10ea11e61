//! Where the user's configuration sends mail, as Postfix itself decides:
//! each probe address is put to the configuration's own address resolver
//! (trivial-rewrite(8), run stand-alone with `-S` in a container of the
//! check's first image, on no network), which answers with the transport
//! and next hop the queue manager would use. `relayhost`,
//! `transport_maps` (wildcard and per domain), `sender_dependent_relayhost_maps`
//! and everything else Postfix weighs are weighed by Postfix; the harness
//! only picks the addresses to ask about.
//!
//! The probes: one message to a domain nothing names, plus one per key of
//! the tables that route by recipient or sender (read from the table's
//! source file; `regexp:` and `pcre:` tables are not enumerated). Probes
//! that take the same route on every side are one class of mail; each
//! class whose route is an smtp(8) client to a named relay becomes a path
//! the scenarios run on.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::config::{self, Relayhost, UserConfig};
use super::{CheckError, Refusal, Stage};

/// The domain of the probe addresses nothing in a configuration names.
const ELSEWHERE: &str = "elsewhere.tlsharness.invalid";
/// The sender of the probes that are not about a sender.
pub const SENDER: &str = "check@tlsharness.invalid";

/// One address pair put to the resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub sender: String,
    pub recipient: String,
    /// Which mail it stands for, in words.
    pub label: String,
}

/// Where Postfix sends a class of mail: the master.cf service and the
/// next hop the resolver names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    pub transport: String,
    pub nexthop: String,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.nexthop)
    }
}

/// Mail that takes one route on each side: a path the scenarios run on.
#[derive(Clone, Debug)]
pub struct MailClass {
    /// Which mail, in words ("all mail" when there is one class).
    pub label: String,
    /// Per side, in the order of the sides: the route and its relay.
    pub routes: Vec<SideRoute>,
}

/// One side's route for a class of mail, and where it leads.
pub type SideRoute = (Route, Hop);

/// Where a route leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hop {
    /// A relay by name (`[host]:port` or `host:port`): the scenarios
    /// without `[dns]` run on it, the relay's name pointed at the fakes.
    Relay(Relayhost),
    /// The recipient domain's MX hosts, through DNS: the scenarios with
    /// `[dns]` run on it, their domain standing for the recipient's.
    Mx,
}

/// The routing of every side, as Postfix resolved it.
#[derive(Clone, Debug, Default)]
pub struct Routing {
    pub classes: Vec<MailClass>,
    /// Mail the check does not follow, and why, in words.
    pub unchecked: Vec<String>,
}

/// The tables whose keys name mail that may be routed its own way, and
/// whether they are keyed by sender.
const ROUTING_TABLES: [(&str, bool); 3] = [
    ("transport_maps", false),
    ("sender_dependent_relayhost_maps", true),
    ("sender_dependent_default_transport_maps", true),
];

/// Table types whose source file lists the keys one per line.
const KEYED_TYPES: [&str; 7] = ["hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"];

/// The probes for every side's configuration: the default one first.
pub fn probes(configs: &[&UserConfig]) -> Vec<Probe> {
    let mut out = vec![Probe {
        sender: SENDER.to_owned(),
        recipient: format!("someone@{ELSEWHERE}"),
        label: "any other mail".to_owned(),
    }];
    for config in configs {
        let main = String::from_utf8_lossy(config.files.get("main.cf").map_or(&[][..], |b| b));
        let params = config::parameters(&main);
        for (param, by_sender) in ROUTING_TABLES {
            for key in params
                .get(param)
                .map(|v| table_keys(v, config))
                .unwrap_or_default()
            {
                let Some(probe) = probe_for(&key, by_sender) else {
                    continue;
                };
                if !out
                    .iter()
                    .any(|p| p.sender == probe.sender && p.recipient == probe.recipient)
                {
                    out.push(probe);
                }
            }
        }
    }
    out
}

/// The keys of the tables a parameter lists, where their source files are
/// among the configuration's files (`type:/etc/postfix/name`).
fn table_keys(value: &str, config: &UserConfig) -> Vec<String> {
    let mut keys = Vec::new();
    for table in value.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
        let Some((kind, path)) = table.split_once(':') else {
            continue;
        };
        if !KEYED_TYPES.contains(&kind) {
            continue;
        }
        let Some(name) = path.strip_prefix("/etc/postfix/") else {
            continue;
        };
        let Some(bytes) = config.files.get(name) else {
            continue;
        };
        for line in String::from_utf8_lossy(bytes).lines() {
            if line.starts_with([' ', '\t']) || line.trim_start().starts_with('#') {
                continue;
            }
            if let Some(key) = line.split_whitespace().next() {
                keys.push(key.to_ascii_lowercase());
            }
        }
    }
    keys
}

/// The probe for one table key: a recipient for a transport map's, a
/// sender for a sender-dependent table's.
fn probe_for(key: &str, by_sender: bool) -> Option<Probe> {
    if key == "*" || key.contains(['\0', '\t', '\n']) {
        return None;
    }
    let (address, named) = if let Some(domain) = key.strip_prefix('@') {
        (format!("someone@{domain}"), key.to_owned())
    } else if let Some(parent) = key.strip_prefix('.') {
        (
            format!("someone@sub.{parent}"),
            format!("subdomains of {parent}"),
        )
    } else if key.contains('@') {
        (key.to_owned(), key.to_owned())
    } else if by_sender {
        // A bare local part of the sender.
        (format!("{key}@{ELSEWHERE}"), format!("{key}@any domain"))
    } else {
        (format!("someone@{key}"), key.to_owned())
    };
    Some(if by_sender {
        Probe {
            label: format!("mail from {named}"),
            sender: address,
            recipient: format!("someone@{ELSEWHERE}"),
        }
    } else {
        Probe {
            label: format!("mail to {named}"),
            sender: SENDER.to_owned(),
            recipient: address,
        }
    })
}

/// What the resolver said about one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub flags: u32,
    pub transport: String,
    pub nexthop: String,
    /// The command of the transport's master.cf service (empty if none).
    pub command: String,
}

const RESOLVE_FLAG_ERROR: u32 = 1 << 2;
const RESOLVE_FLAG_FAIL: u32 = 1 << 3;
/// The address classes of mail that stays on the machine
/// (mydestination, virtual_alias_domains, virtual_mailbox_domains).
const RESOLVE_CLASS_STAYS: u32 = (1 << 8) | (1 << 9) | (1 << 10);

/// The script that installs a configuration and asks its trivial-rewrite
/// about each probe of `$src/probes` (`sender TAB recipient` lines); it
/// prints `index TAB flags TAB transport TAB nexthop TAB command` lines.
/// The request and reply are Postfix's own attribute protocol (name and
/// value, each ended by a NUL; a NUL ends the record).
const SCRIPT: &str = r#"set -eu
src=/tlsharness
sh "$src/install.sh" "$src"
d=$(postconf -h daemon_directory)
i=0
tab=$(printf '\t')
while IFS="$tab" read -r sender recipient; do
  printf 'request\0resolve\0sender\0%s\0address\0%s\0\0' "$sender" "$recipient" \
    | "$d/trivial-rewrite" -S > /tmp/reply
  IFS="$tab" read -r flags transport nexthop <<EOF
$(tr '\0' '\n' < /tmp/reply | awk 'NR % 2 == 1 { k = $0; next } { v[k] = $0 } END { printf "%s\t%s\t%s\n", (v["flags"] == "" ? "-" : v["flags"]), (v["transport"] == "" ? "-" : v["transport"]), (v["nexthop"] == "" ? "-" : v["nexthop"]) }')
EOF
  command=$(postconf -M "$transport/unix" 2>/dev/null | awk '{ n = split($8, c, "/"); print c[n] }')
  printf '%s\t%s\t%s\t%s\t%s\n' "$i" "$flags" "$transport" "$nexthop" "${command:--}"
  i=$((i + 1))
done < "$src/probes"
"#;

/// Asks each side's Postfix (on `image`) where each probe's mail goes,
/// and groups the probes into classes of mail.
pub async fn discover(
    sides: &[(String, UserConfig)],
    image: &str,
    run_id: &str,
    deadline: Duration,
) -> Result<Routing, CheckError> {
    let configs: Vec<&UserConfig> = sides.iter().map(|(_, c)| c).collect();
    let probes = probes(&configs);
    let asked = futures_util::future::join_all(sides.iter().enumerate().map(|(n, (_, config))| {
        let probes = &probes;
        async move {
            let mut files = super::install::files(config);
            let lines: String = probes
                .iter()
                .map(|p| format!("{}\t{}\n", p.sender, p.recipient))
                .collect();
            files.push(("probes".to_owned(), lines.into_bytes()));
            files.push(("routes.sh".to_owned(), SCRIPT.as_bytes().to_vec()));
            crate::mta::run_once(
                image,
                run_id,
                &format!("tlsharness-{run_id}-routes-{n}"),
                &files,
                "routes.sh",
                deadline,
            )
            .await
        }
    }))
    .await;
    let mut resolved = Vec::new();
    let mut refusals = Vec::new();
    for ((side, config), ran) in sides.iter().zip(asked) {
        let ran = ran?;
        if ran.code != Some(0) {
            refusals.push(Refusal {
                side: side.clone(),
                path: config.source.clone(),
                image: image.to_owned(),
                stage: Stage::Routing,
                words: postfix_words(&ran.stderr) + &named_by(config, &ran.stderr),
            });
            continue;
        }
        resolved.push(
            parse(&ran.stdout, probes.len()).map_err(|why| CheckError::Config {
                path: config.source.clone(),
                why,
            })?,
        );
    }
    if !refusals.is_empty() {
        return Err(CheckError::Refused(refusals));
    }
    classify(sides, &probes, &resolved)
}

/// For each file Postfix's words name that the configuration names too,
/// which setting names it, so that the user knows what to change.
fn named_by(config: &UserConfig, said: &str) -> String {
    let mut out = String::new();
    for r in super::host::references(config) {
        if said.contains(&format!("{}:", r.path)) {
            let place = match &r.set_in {
                super::host::Place::MainCf => format!("main.cf line {}", r.line),
                super::host::Place::Service(s) => {
                    format!("master.cf line {}, service {s}", r.line)
                }
            };
            out.push_str(&format!(
                "\n({} is named by {}, {place}; pass it with --file {} if the harness should use your copy)",
                r.path, r.parameter, r.path
            ));
        }
    }
    out
}

/// Postfix's objections in a tool's standard error (all of it when none
/// is marked as one).
fn postfix_words(stderr: &str) -> String {
    let said = super::objections(stderr);
    if said.is_empty() {
        stderr.trim().to_owned()
    } else {
        said.join("\n")
    }
}

/// The script's output, by probe.
fn parse(out: &str, probes: usize) -> Result<Vec<Resolved>, String> {
    let mut found: BTreeMap<usize, Resolved> = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [i, flags, transport, nexthop, command] = f.as_slice() else {
            continue;
        };
        let field = |s: &str| {
            if s == "-" {
                String::new()
            } else {
                s.to_owned()
            }
        };
        let (Ok(i), Ok(flags)) = (i.parse::<usize>(), flags.parse::<u32>()) else {
            continue;
        };
        found.insert(
            i,
            Resolved {
                flags,
                transport: field(transport),
                nexthop: field(nexthop),
                command: field(command),
            },
        );
    }
    (0..probes)
        .map(|i| {
            found.remove(&i).ok_or_else(|| {
                format!("Postfix's address resolver gave no answer for probe {i}: {out}")
            })
        })
        .collect()
}

/// Why a resolved route is not one the check follows, if it is not; else
/// where it leads.
fn relay_of(r: &Resolved, probe: &Probe) -> Result<Hop, String> {
    if r.flags & RESOLVE_FLAG_FAIL != 0 {
        return Err(format!(
            "Postfix could not resolve it (a table lookup failed): transport {}",
            r.transport
        ));
    }
    if r.flags & RESOLVE_FLAG_ERROR != 0 || r.flags & RESOLVE_CLASS_STAYS != 0 {
        return Err(format!(
            "it stays on this machine ({}:{})",
            r.transport, r.nexthop
        ));
    }
    if r.command != "smtp" {
        let what = if r.command.is_empty() {
            "a transport master.cf does not define".to_owned()
        } else {
            format!("a service of command {}, not an smtp client", r.command)
        };
        return Err(format!("it goes to {}:{}, {what}", r.transport, r.nexthop));
    }
    let domain = probe.recipient.rsplit_once('@').map_or("", |(_, d)| d);
    if r.nexthop.eq_ignore_ascii_case(domain) {
        return Ok(Hop::Mx);
    }
    Relayhost::parse(&r.nexthop).map(Hop::Relay).map_err(|why| {
        format!(
            "it goes to {}:{}: {}",
            r.transport,
            r.nexthop,
            why.replacen("relayhost", "next hop", 1)
        )
    })
}

/// Groups the probes by the route they take on every side; probes that
/// some side does not send to an smtp relay are listed as unchecked.
fn classify(
    sides: &[(String, UserConfig)],
    probes: &[Probe],
    resolved: &[Vec<Resolved>],
) -> Result<Routing, CheckError> {
    let mut routing = Routing::default();
    let mut groups: Vec<(Vec<&Probe>, Vec<SideRoute>)> = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let mut routes: Vec<SideRoute> = Vec::new();
        let mut skipped = None;
        for ((side, _), r) in sides.iter().zip(resolved) {
            let r = &r[i];
            match relay_of(r, probe) {
                Ok(relay) => routes.push((
                    Route {
                        transport: r.transport.clone(),
                        nexthop: r.nexthop.clone(),
                    },
                    relay,
                )),
                Err(why) => {
                    let sides = if sides.len() > 1 {
                        " on either side"
                    } else {
                        ""
                    };
                    skipped = Some(format!(
                        "{}: not checked{sides}, because on the {side} side {why}",
                        probe.label
                    ));
                    break;
                }
            }
        }
        let kinds: Vec<bool> = routes.iter().map(|(_, h)| *h == Hop::Mx).collect();
        if skipped.is_none() && kinds.windows(2).any(|w| w[0] != w[1]) {
            skipped = Some(format!(
                "{}: not checked, because one side relays it and the other delivers it by MX ({})",
                probe.label,
                routes
                    .iter()
                    .zip(sides)
                    .map(|((r, _), (side, _))| format!("{side}: {r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // One class of mail by MX: the scenarios' zones are named per
        // scenario and level, once per Postfix.
        if skipped.is_none()
            && kinds.first() == Some(&true)
            && groups
                .iter()
                .any(|(_, r)| r.first().is_some_and(|(_, h)| *h == Hop::Mx))
        {
            skipped = Some(format!(
                "{}: not checked, because another class of mail already goes by MX; check runs the scenarios with [dns] on one",
                probe.label
            ));
        }
        if let Some(why) = skipped {
            routing.unchecked.push(why);
            continue;
        }
        match groups.iter_mut().find(|(_, r)| *r == routes) {
            Some((members, _)) => members.push(probe),
            None => groups.push((vec![probe], routes)),
        }
    }
    if groups.is_empty() {
        let (_, first) = &sides[0];
        return Err(CheckError::Config {
            path: first.source.clone(),
            why: format!(
                "no mail leaves through an smtp client, to a named relay or by MX, as Postfix's own address resolver answers, so there is no path to check:\n  {}",
                routing.unchecked.join("\n  ")
            ),
        });
    }
    let one = groups.len() == 1 && routing.unchecked.is_empty();
    for (members, routes) in groups {
        let label = if one {
            "all mail".to_owned()
        } else {
            members
                .iter()
                .map(|p| p.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        routing.classes.push(MailClass { label, routes });
    }
    Ok(routing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(main: &str, tables: &[(&str, &str)]) -> UserConfig {
        let mut files: BTreeMap<String, Vec<u8>> =
            [("main.cf".to_owned(), main.as_bytes().to_vec())].into();
        for (name, text) in tables {
            files.insert((*name).to_owned(), text.as_bytes().to_vec());
        }
        UserConfig {
            source: "postfix".into(),
            files,
            relayhost: None,
            level: String::new(),
            ..Default::default()
        }
    }

    #[test]
    fn a_refusal_about_a_file_names_the_setting_that_names_it() {
        let c = config("mydomain = example.org\nmyorigin = /etc/mailname\n", &[]);
        assert_eq!(
            named_by(
                &c,
                "postmap: fatal: /etc/mailname: cannot open file: Is a directory"
            ),
            "\n(/etc/mailname is named by myorigin, main.cf line 2; pass it with --file /etc/mailname if the harness should use your copy)"
        );
        assert_eq!(
            named_by(&c, "postmap: fatal: /etc/other: cannot open file"),
            ""
        );
    }

    #[test]
    fn probes_come_from_the_routing_tables_keys() {
        let c = config(
            "transport_maps = hash:/etc/postfix/transport, regexp:/etc/postfix/re\nsender_dependent_relayhost_maps = texthash:/etc/postfix/by_sender\n",
            &[
                (
                    "transport",
                    "# comment\n*   smtp:[a.example]:587\nexample.com relay:[b.example]:465\n.sub.example.org smtp:[c]\nuser@example.net smtp:[d]\n",
                ),
                (
                    "by_sender",
                    "@alerts.example [a.example]:2525\nops@x.example [e]\n",
                ),
                ("re", "/./ smtp:[f]\n"),
            ],
        );
        let labels: Vec<String> = probes(&[&c]).into_iter().map(|p| p.label).collect();
        assert_eq!(
            labels,
            [
                "any other mail",
                "mail to example.com",
                "mail to subdomains of sub.example.org",
                "mail to user@example.net",
                "mail from @alerts.example",
                "mail from ops@x.example",
            ]
        );
    }

    #[test]
    fn the_resolver_s_answers_are_parsed_and_grouped() {
        let sides = vec![
            ("current".to_owned(), config("", &[])),
            ("candidate".to_owned(), config("", &[])),
        ];
        let probes = vec![
            probe_for("x", false).unwrap(),
            probe_for("example.com", false).unwrap(),
            probe_for("@alerts.example", true).unwrap(),
        ];
        let current = parse(
            "0\t4096\tsmtp\t[smtp.sendgrid.net]:587\tsmtp\n1\t4096\tsmtp\t[smtp.sendgrid.net]:587\tsmtp\n2\t4096\tsmtp\t[smtp.sendgrid.net]:587\tsmtp\n",
            3,
        )
        .unwrap();
        let candidate = parse(
            "0\t4096\tsmtp\t[smtp.sendgrid.net]:465\tsmtp\n1\t4096\tsmtp\t[smtp.sendgrid.net]:465\tsmtp\n2\t256\tlocal\thost.example\tlocal\n",
            3,
        )
        .unwrap();
        let routing = classify(&sides, &probes, &[current, candidate]).unwrap();
        assert_eq!(routing.classes.len(), 1);
        assert_eq!(routing.classes[0].label, "mail to x, mail to example.com");
        assert_eq!(
            routing.classes[0].routes[1].0.to_string(),
            "smtp:[smtp.sendgrid.net]:465"
        );
        let Hop::Relay(relay) = &routing.classes[0].routes[1].1 else {
            panic!("not a relay")
        };
        assert_eq!(relay.port, 465);
        assert_eq!(
            routing.unchecked,
            [
                "mail from @alerts.example: not checked on either side, because on the candidate side it stays on this machine (local:host.example)"
            ]
        );
        // Direct delivery to the recipient's domain is by MX.
        let direct = parse("0\t4096\tsmtp\tx\tsmtp\n", 1).unwrap();
        let routing = classify(&sides[..1], &probes[..1], &[direct]).unwrap();
        assert_eq!(routing.classes[0].routes[0].1, Hop::Mx);
        assert!(parse("", 1).is_err());
    }
}

//! Rendering the Postfix configuration of a run: main.cf, master.cf, the
//! transport map, hosts entries, the CA file and the container entry point.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

pub use crate::mta::{CASE_DOMAIN, MOUNT, SENDER};
/// Where the harness's own maps and CA live inside the container.
pub const CONF_DIR: &str = "/etc/postfix/tlsharness";

/// An smtp(8) client transport with `-o` overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transport {
    pub name: String,
    pub settings: BTreeMap<String, String>,
}

/// One transport_maps entry: mail for `domain` goes to `transport:nexthop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub domain: String,
    pub transport: String,
    pub nexthop: String,
}

/// Everything needed to render a run's Postfix configuration.
#[derive(Clone, Debug)]
pub struct PostfixConfig {
    /// Where Postfix's smtpd listens for injected mail (loopback).
    pub inject: SocketAddr,
    pub transports: Vec<Transport>,
    pub routes: Vec<Route>,
    /// Host names the smtp client resolves, via /etc/hosts.
    pub hosts: BTreeMap<String, Vec<IpAddr>>,
    /// The CA Postfix trusts, PEM.
    pub ca_pem: String,
    /// main.cf settings that apply to the whole instance.
    pub main_overrides: BTreeMap<String, String>,
    /// Lookup tables (texthash) installed in CONF_DIR, by file name.
    pub maps: BTreeMap<String, String>,
    /// The zones of the cases whose mail goes by MX; with any, the
    /// container signs and serves them and runs a validating resolver.
    pub zones: Vec<crate::dns::Zone>,
}

impl PostfixConfig {
    pub fn main_cf(&self) -> String {
        let mut out = String::from(
            "# Written by tlsharness for one run. Everything outside the harness's\n\
             # own transports is contained: no DNS, no relayhost, loopback only,\n\
             # and any destination not in the transport map is refused locally.\n",
        );
        let mut settings: BTreeMap<&str, String> = BTreeMap::new();
        for (k, v) in [
            ("maillog_file", "/dev/stdout".to_owned()),
            ("myhostname", "postfix.tlsharness.test".to_owned()),
            ("mydomain", CASE_DOMAIN.to_owned()),
            ("myorigin", "$myhostname".to_owned()),
            ("mydestination", String::new()),
            ("local_recipient_maps", String::new()),
            ("alias_maps", String::new()),
            ("alias_database", String::new()),
            (
                "local_transport",
                "error:5.1.1 local delivery is disabled by tlsharness".to_owned(),
            ),
            (
                "default_transport",
                "error:5.7.1 tlsharness delivers only to the run's fake relays".to_owned(),
            ),
            ("relayhost", String::new()),
            ("inet_interfaces", self.inject.ip().to_string()),
            ("inet_protocols", "ipv4".to_owned()),
            ("mynetworks", "127.0.0.0/8".to_owned()),
            (
                "smtpd_relay_restrictions",
                "permit_mynetworks, reject".to_owned(),
            ),
            ("smtpd_recipient_restrictions", String::new()),
            ("smtpd_tls_security_level", "none".to_owned()),
            ("in_flow_delay", "0s".to_owned()),
            ("biff", "no".to_owned()),
            ("transport_maps", format!("texthash:{CONF_DIR}/transport")),
            // The smtp client resolves names from /etc/hosts only, and can
            // only originate connections from loopback.
            ("smtp_dns_support_level", "disabled".to_owned()),
            ("smtp_host_lookup", "native".to_owned()),
            ("smtp_bind_address", "127.0.0.1".to_owned()),
            ("smtp_address_preference", "ipv4".to_owned()),
            // Every case stands alone: no cached connections or sessions.
            ("smtp_connection_cache_on_demand", "no".to_owned()),
            ("smtp_tls_session_cache_database", String::new()),
            // One summary line per TLS session, and a note of STARTTLS offers.
            ("smtp_tls_loglevel", "1".to_owned()),
            ("smtp_tls_note_starttls_offer", "yes".to_owned()),
            ("smtp_tls_CAfile", format!("{CONF_DIR}/ca.pem")),
            ("smtp_tls_CApath", String::new()),
            ("smtp_tls_security_level", "none".to_owned()),
        ] {
            settings.insert(k, v);
        }
        for (k, v) in &self.main_overrides {
            settings.insert(k, v.clone());
        }
        for (k, v) in settings {
            let _ = writeln!(out, "{k} = {v}");
        }
        out
    }

    pub fn master_cf(&self) -> String {
        let mut out = String::from(
            "# Written by tlsharness. No service is chrooted, so the smtp client\n\
             # resolves names from the container's /etc/hosts.\n",
        );
        let _ = writeln!(out, "{} inet n - n - - smtpd", self.inject);
        for line in [
            "pickup    unix  n - n 60 1 pickup",
            "cleanup   unix  n - n -  0 cleanup",
            "qmgr      unix  n - n 300 1 qmgr",
            "tlsmgr    unix  - - n 1000? 1 tlsmgr",
            "rewrite   unix  - - n -  - trivial-rewrite",
            "bounce    unix  - - n -  0 bounce",
            "defer     unix  - - n -  0 bounce",
            "trace     unix  - - n -  0 bounce",
            "verify    unix  - - n -  1 verify",
            "flush     unix  n - n 1000? 0 flush",
            "proxymap  unix  - - n -  - proxymap",
            "showq     unix  n - n -  - showq",
            "error     unix  - - n -  - error",
            "retry     unix  - - n -  - error",
            "discard   unix  - - n -  - discard",
            "anvil     unix  - - n -  1 anvil",
            "scache    unix  - - n -  1 scache",
            "postlog   unix-dgram n - n - 1 postlogd",
            "smtp      unix  - - n -  - smtp",
            "relay     unix  - - n -  - smtp",
        ] {
            out.push_str(line);
            out.push('\n');
        }
        for t in &self.transports {
            let _ = writeln!(out, "{} unix - - n - - smtp", t.name);
            for (k, v) in &t.settings {
                if v.contains(char::is_whitespace) {
                    // Postfix 3.0+ syntax for values with spaces.
                    let _ = writeln!(out, "  -o {{ {k} = {v} }}");
                } else {
                    let _ = writeln!(out, "  -o {k}={v}");
                }
            }
        }
        out
    }

    pub fn transport_map(&self) -> String {
        let mut out = String::new();
        for r in &self.routes {
            let _ = writeln!(out, "{} {}:{}", r.domain, r.transport, r.nexthop);
        }
        // Bounces to the harness's sender, and anything else under the
        // harness's domain, are discarded inside Postfix.
        let _ = writeln!(out, "{CASE_DOMAIN} discard:");
        let _ = writeln!(out, ".{CASE_DOMAIN} discard:");
        out
    }

    pub fn hosts(&self) -> String {
        let mut by_addr: BTreeMap<IpAddr, Vec<&str>> = BTreeMap::new();
        for (name, addrs) in &self.hosts {
            for a in addrs {
                by_addr.entry(*a).or_default().push(name);
            }
        }
        let mut out = String::from("# tlsharness: the run's fake relays\n");
        for (addr, names) in by_addr {
            let _ = writeln!(out, "{addr} {}", names.join(" "));
        }
        out
    }

    /// Every file the entry point installs, by path under [`MOUNT`].
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![
            ("main.cf".to_owned(), self.main_cf().into_bytes()),
            ("master.cf".to_owned(), self.master_cf().into_bytes()),
            ("transport".to_owned(), self.transport_map().into_bytes()),
            ("hosts".to_owned(), self.hosts().into_bytes()),
            ("ca.pem".to_owned(), self.ca_pem.clone().into_bytes()),
            ("entrypoint.sh".to_owned(), ENTRYPOINT.as_bytes().to_vec()),
        ];
        for (name, content) in &self.maps {
            files.push((format!("maps/{name}"), content.clone().into_bytes()));
        }
        files.extend(dns_files(&self.zones));
        files
    }
}

/// The files that sign and serve `zones` and start the validating
/// resolver ([`DNS_SCRIPT`], run by the entry point when present); none
/// without zones.
pub fn dns_files(zones: &[crate::dns::Zone]) -> Vec<(String, Vec<u8>)> {
    if zones.is_empty() {
        return Vec::new();
    }
    let refs: Vec<&crate::dns::Zone> = zones.iter().collect();
    let mut files = vec![
        (
            "dns/root.zone".to_owned(),
            crate::dns::root_zone(
                &refs,
                crate::dns::proxy::PATH.into(),
                crate::dns::proxy::QUIET.into(),
            )
            .into_bytes(),
        ),
        (
            "dns/server".to_owned(),
            crate::dns::SERVER.to_string().into_bytes(),
        ),
        (
            "dns/zones.list".to_owned(),
            crate::dns::zone_list(&refs).into_bytes(),
        ),
    ];
    for z in zones {
        files.push((format!("dns/zones/{}", z.name), z.text.clone().into_bytes()));
    }
    files.push(("dns.sh".to_owned(), DNS_SCRIPT.as_bytes().to_vec()));
    files
}

/// Installs the run's configuration over the image's own and runs Postfix
/// in the foreground. The image's compatibility_level is kept, so Postfix
/// behaves as that distribution ships it.
pub const ENTRYPOINT: &str = concat!(
    r#"#!/bin/sh
# tlsharness entry point (runs inside the Postfix container).
set -eu
src=/tlsharness
compat=$(postconf -h compatibility_level 2>/dev/null || true)
queue=$(postconf -h queue_directory)
# The queue's directories, as Postfix's first start makes them (Debian
# trixie's image has none before it), while master.cf is still the
# image's own: post-install reads it with postconf, several times.
if [ ! -d "$queue/pid" ]; then postfix post-install create-missing >/dev/null; fi
cp "$src/main.cf" "$src/master.cf" /etc/postfix/
mkdir -p /etc/postfix/tlsharness
cp "$src/transport" "$src/ca.pem" /etc/postfix/tlsharness/
for map in "$src"/maps/*; do
  if [ -f "$map" ]; then cp "$map" /etc/postfix/tlsharness/; fi
done
# Appended, not `postconf -e`: postconf reads master.cf, and with a
# transport per case that costs a noticeable part of a second per call.
if [ -n "$compat" ]; then echo "compatibility_level = $compat" >> /etc/postfix/main.cf; fi
cat "$src/hosts" >> /etc/hosts
# Scenarios whose mail goes by MX: their zones, signed and served here,
# and a validating resolver for Postfix (see dns.sh).
if [ -f "$src/dns.sh" ]; then sh "$src/dns.sh"; fi
# The run's queue is fresh (made above) and every file here is the
# harness's: Postfix's own quick-start marker skips the installation check
# at start (post-install and a dozen postconf calls, seconds with a
# thousand transports), as after `postfix quick-stop`.
touch "$queue/quick-start"
"#,
    entrypoint_tail!()
);

/// Signs the cases' zones (a key pair per zone and for the root, made
/// here for this run), serves them with nsd on the run's name server
/// address (behind the agent's DNS middlebox, which the root zone and the
/// root hints name), and starts unbound on 127.0.0.1 as the validating resolver
/// Postfix asks (resolv.conf, `options trust-ad`), with the run's root key
/// as its only trust anchor and the run's name server as its only root.
/// A signed zone has a DS record in the root; an unsigned one none; a
/// bogus one has a DS, but signatures that expired in 2020.
const DNS_SCRIPT: &str = r#"set -eu
src=/tlsharness
for tool in unbound nsd ldns-keygen ldns-signzone ldns-key2ds drill mta-sts-daemon python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "tlsharness: fatal: this Postfix image has no $tool, which scenarios with [dns] need; rebuild it: tlsharness image build --rebuild (with --suite for bullseye or trixie)" >&2
    exit 1
  fi
done
d=/var/lib/tlsharness-dns
mkdir -p "$d"
cd "$d"
cp "$src/dns/root.zone" root.zone
# nsd serves the zones on $server; the root zone (and the resolver's root
# hints) name the DNS middlebox's address instead, which passes queries on.
server=$(cat "$src/dns/server")
path=$(awk '$1 == "ns.tlsharness." && $2 == "A" { print $3 }' root.zone)
conf="$d/nsd.conf"
printf 'server:\n  ip-address: %s\n  port: 53\n  username: ""\n  zonesdir: "%s"\n  database: ""\n  pidfile: "%s/nsd.pid"\n  zonelistfile: "%s/zone.list"\n  xfrdfile: "%s/xfrd.state"\n  logfile: "%s/nsd.log"\n  verbosity: 1\nremote-control:\n  control-enable: no\n' \
  "$server" "$d" "$d" "$d" "$d" "$d" > "$conf"
# sign ZONE FILE STATE: prints the key signing key's file name.
sign() {
  ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$1")
  zsk=$(ldns-keygen -a ECDSAP256SHA256 "$1")
  if [ "$3" = bogus ]; then
    ldns-signzone -i 20190101000000 -e 20200101000000 "$2" "$ksk" "$zsk"
  else
    ldns-signzone "$2" "$ksk" "$zsk"
  fi
  echo "$ksk"
}
while read -r zone state; do
  file="$zone.zone"
  cp "$src/dns/zones/$zone" "$file"
  if [ "$state" != unsigned ]; then
    ksk=$(sign "$zone" "$file" "$state")
    file="$file.signed"
    ldns-key2ds -n -2 "$ksk.key" >> root.zone
  fi
  printf 'zone:\n  name: "%s"\n  zonefile: "%s"\n' "$zone" "$file" >> "$conf"
done < "$src/dns/zones.list"
root=$(sign . root.zone signed)
ldns-key2ds -n -2 "$root.key" > "$d/root.ds"
printf 'zone:\n  name: "."\n  zonefile: "root.zone.signed"\n' >> "$conf"
nsd -c "$conf"
printf '. 3600000 NS ns.tlsharness.\nns.tlsharness. 3600000 A %s\n' "$path" > "$d/root.hints"
printf '%s\n' \
  'server:' \
  '  interface: 127.0.0.1' \
  '  port: 53' \
  '  do-ip6: no' \
  '  access-control: 127.0.0.0/8 allow' \
  '  do-not-query-localhost: no' \
  "  root-hints: \"$d/root.hints\"" \
  "  trust-anchor-file: \"$d/root.ds\"" \
  '  module-config: "validator iterator"' \
  '  qname-minimisation: no' \
  '  val-log-level: 2' \
  '  verbosity: 1' \
  '  chroot: ""' \
  '  username: ""' \
  "  directory: \"$d\"" \
  "  pidfile: \"$d/unbound.pid\"" \
  '  use-syslog: no' \
  "  logfile: \"$d/unbound.log\"" \
  'remote-control:' \
  '  control-enable: no' > "$d/unbound.conf"
# Both bind their sockets before they return: no wait is needed.
unbound -c "$d/unbound.conf"
printf 'nameserver 127.0.0.1\noptions trust-ad\n' > /etc/resolv.conf
# (Whether it validates the run's root is asked once the agent, whose DNS
# middlebox is on the way to nsd, has joined: see RESOLVER_CHECK.)
# MTA-STS: Debian's postfix-mta-sts-resolver answers Postfix's socketmap
# lookups (on its default address, where a configuration that uses it
# looks); it asks the validating resolver for _mta-sts TXT records and
# fetches policies over HTTPS from the agent, trusting the run's CA only.
printf '%s\n' \
  'host: 127.0.0.1' \
  'port: 8461' \
  'reuse_port: true' \
  'shutdown_timeout: 1' \
  'cache:' \
  '  type: internal' \
  '  options:' \
  '    cache_size: 10000' \
  'default_zone:' \
  '  strict_testing: false' \
  '  timeout: 15' > "$d/mta-sts-daemon.yml"
SSL_CERT_FILE="$src/ca.pem" mta-sts-daemon -c "$d/mta-sts-daemon.yml" -l "$d/mta-sts.log" -v info &
# Wait (at most 20 s) until it accepts connections.
if ! python3 -c '
import socket, sys, time
end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", 8461), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
'; then
  echo "tlsharness: fatal: the MTA-STS resolver daemon did not start:" >&2
  tail -5 "$d/mta-sts.log" >&2
  exit 1
fi
echo "tlsharness: $(wc -l < "$src/dns/zones.list") zone(s) signed and served, validating resolver on 127.0.0.1" >&2
"#;

/// Asks the run's validating resolver, once everything on its path is up,
/// for the root zone's SOA with DNSSEC: it prints `validating` when the
/// answer carries the AD bit, `no-dns` without zones, and otherwise the
/// resolver's last log lines. No DANE case means anything unless the
/// resolver validates the run's own root.
pub const RESOLVER_CHECK: &str = r#"d=/var/lib/tlsharness-dns
if [ ! -f "$d/root.ds" ]; then echo no-dns; exit 0; fi
if drill -D @127.0.0.1 . SOA | grep -q '^;; flags:.* ad'; then echo validating; exit 0; fi
echo "the run's validating resolver does not validate the run's root zone (unbound's log):"
tail -5 "$d/unbound.log"
"#;

/// How every entrypoint (the run's, and `check`'s) ends: a chrooted smtp
/// client reads the chroot's copies of the system files (Debian's init
/// script would make them; under start-fg nobody does), then Postfix
/// checks its installation and runs in the foreground.
macro_rules! entrypoint_tail {
    () => {
        r#"# A chrooted smtp client reads the chroot's copies (Debian's init script
# would make them; under start-fg nobody does).
mkdir -p /var/spool/postfix/etc
for f in hosts host.conf services resolv.conf nsswitch.conf localtime; do
  if [ -f "/etc/$f" ]; then cp "/etc/$f" /var/spool/postfix/etc/; fi
done
# (postfix start-fg checks the installation itself, as `postfix check`
# would: once is enough.)
echo "tlsharness: configuration installed" >&2
exec postfix start-fg
"#
    };
}
pub(crate) use entrypoint_tail;

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PostfixConfig {
        PostfixConfig {
            inject: "127.0.0.1:2525".parse().unwrap(),
            transports: vec![Transport {
                name: "tlsh-encrypt".into(),
                settings: [("smtp_tls_security_level".to_owned(), "encrypt".to_owned())].into(),
            }],
            routes: vec![Route {
                domain: "c1.tlsharness.test".into(),
                transport: "tlsh-encrypt".into(),
                nexthop: "[smtp.relay.test]:4000".into(),
            }],
            hosts: [(
                "smtp.relay.test".to_owned(),
                vec!["127.0.0.1".parse().unwrap()],
            )]
            .into(),
            ca_pem: String::new(),
            main_overrides: BTreeMap::new(),
            maps: BTreeMap::new(),
            zones: Vec::new(),
        }
    }

    #[test]
    fn renders_transports_routes_and_hosts() {
        let c = config();
        assert!(
            c.master_cf()
                .contains("127.0.0.1:2525 inet n - n - - smtpd\n")
        );
        assert!(
            c.master_cf().contains(
                "tlsh-encrypt unix - - n - - smtp\n  -o smtp_tls_security_level=encrypt\n"
            )
        );
        assert!(
            c.transport_map()
                .starts_with("c1.tlsharness.test tlsh-encrypt:[smtp.relay.test]:4000\n")
        );
        assert!(c.hosts().contains("127.0.0.1 smtp.relay.test\n"));
    }

    #[test]
    fn main_cf_contains_mail() {
        let main = config().main_cf();
        assert!(main.contains("relayhost = \n"));
        assert!(main.contains("smtp_dns_support_level = disabled\n"));
        assert!(main.contains("default_transport = error:"));
        assert!(main.contains("smtp_bind_address = 127.0.0.1\n"));
    }
}

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
        crate::mta::hosts_file(&self.hosts)
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
        files.extend(crate::mta::dns::files(&self.zones, true));
        files
    }
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

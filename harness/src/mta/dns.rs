//! The run's DNS, inside the MTA's container, for scenarios whose mail goes
//! by MX: the cases' zones signed and served, and a validating resolver
//! the MTA asks. Any MTA's entry point runs the script when it is there.

/// The files that sign and serve `zones` and start the validating
/// resolver ([`DNS_SCRIPT`], run by the entry point when present), and
/// with `mta_sts` the MTA-STS policy daemon Postfix asks; none without
/// zones.
pub fn files(zones: &[crate::dns::Zone], mta_sts: bool) -> Vec<(String, Vec<u8>)> {
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
    if mta_sts {
        files.push(("dns/mta-sts".to_owned(), Vec::new()));
    }
    files.push(("dns.sh".to_owned(), DNS_SCRIPT.as_bytes().to_vec()));
    files
}

/// Signs the cases' zones (a key pair per zone and for the root, made
/// here for this run), serves them with nsd on the run's name server
/// address (behind the agent's DNS middlebox, which the root zone and the
/// root hints name), and starts unbound on 127.0.0.1 as the validating resolver
/// the MTA asks (resolv.conf, `options trust-ad`), with the run's root key
/// as its only trust anchor and the run's name server as its only root.
/// A signed zone has a DS record in the root; an unsigned one none; a
/// bogus one has a DS, but signatures that expired in 2020.
const DNS_SCRIPT: &str = r#"set -eu
src=/tlsharness
tools="unbound nsd ldns-keygen ldns-signzone ldns-key2ds drill"
if [ -f "$src/dns/mta-sts" ]; then tools="$tools mta-sts-daemon python3"; fi
for tool in $tools; do
  if ! command -v "$tool" >/dev/null; then
    echo "tlsharness: fatal: this image has no $tool, which scenarios with [dns] need; rebuild it: tlsharness image build --rebuild (with --suite, or --mta exim)" >&2
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
  '  log-servfail: yes' \
  '  verbosity: 1' \
  '  chroot: ""' \
  '  username: ""' \
  "  directory: \"$d\"" \
  "  pidfile: \"$d/unbound.pid\"" \
  '  use-syslog: no' \
  "  logfile: \"$d/unbound.log\"" > "$d/unbound.conf"
# Unbound's DNSBomb mitigation (upstream 1.20; Debian backports it, so
# bookworm's 1.17.1-2+deb12u4 has it too, bullseye's 1.13.1 not) sends no
# reply at all to a query whose recursion took over discard-timeout
# (1.9 s), and keeps at most wait-limit replies waiting per client address.
# The run's one client is the MTA on 127.0.0.1, and on a busy machine a
# recursion through the run's name server can take longer: unbound then
# counted the query as dropped ("requestlist ... exceeded N"), the MTA's
# resolver asked again and, asked twice in vain, Postfix deferred 4.4.3
# (Host not found, try again) or went on without an MTA-STS policy. The
# mitigation guards against floods from forged addresses, which the run's
# loopback does not have: off wherever this unbound knows it.
for option in discard-timeout wait-limit; do
  if unbound-checkconf -o "$option" "$d/unbound.conf" >/dev/null 2>&1; then
    printf '  %s: 0\n' "$option" >> "$d/unbound.conf"
  fi
done
printf 'remote-control:\n  control-enable: no\n' >> "$d/unbound.conf"
# Both bind their sockets before they return: no wait is needed.
unbound -c "$d/unbound.conf"
printf 'nameserver 127.0.0.1\noptions trust-ad\n' > /etc/resolv.conf
# (Whether it validates the run's root is asked once the agent, whose DNS
# middlebox is on the way to nsd, has joined: see RESOLVER_CHECK.)
if [ -f "$src/dns/mta-sts" ]; then
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

/// Prints the run's DNS logs (the validating resolver's, the name
/// server's, the MTA-STS daemon's), for the artifacts of DNS cases that
/// did not pass; nothing without zones.
pub const LOGS: &str = r#"d=/var/lib/tlsharness-dns
for f in unbound.log nsd.log mta-sts.log; do
  if [ -f "$d/$f" ]; then echo "==> $f <=="; tail -n 5000 "$d/$f"; fi
done
"#;

//! A scenario's `[dns]` section and the zone files a case's domain is
//! served from.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use crate::scenario::Hostname;

use super::mta_sts;
use super::proxy::DnsBehaviour;

/// `[dns]`: the recipient domain, delivered by its MX hosts.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSpec {
    /// The recipient domain; Postfix looks up its MX records.
    pub domain: Hostname,
    /// The zone's DNSSEC state.
    #[serde(default)]
    pub zone: ZoneState,
    /// The domain's MX hosts, one per path, in the paths' order.
    pub mx: Vec<MxSpec>,
    /// What the DNS path between the resolver and the zone's name server
    /// does (the DNS middlebox); empty: nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub behaviour: Vec<DnsBehaviour>,
}

/// A zone's DNSSEC state, as a validating resolver judges it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZoneState {
    /// Signed, with a DS record in its parent: answers validate (secure).
    #[default]
    Signed,
    /// Not signed, no DS in its parent: answers are insecure.
    Unsigned,
    /// Signed with a DS in its parent, but the signatures have expired:
    /// answers are bogus, and the resolver answers SERVFAIL.
    Bogus,
}

impl ZoneState {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneState::Signed => "signed",
            ZoneState::Unsigned => "unsigned",
            ZoneState::Bogus => "bogus",
        }
    }
}

/// One MX record and the TLSA records of its host (`_25._tcp.HOST`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MxSpec {
    pub preference: u16,
    /// The MX host; a name under the domain.
    pub host: Hostname,
    #[serde(default)]
    pub tlsa: Vec<TlsaSpec>,
}

/// A TLSA record: usage, selector and matching type as RFC 6698 numbers
/// it, and whose certificate it names.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsaSpec {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    #[serde(deserialize_with = "usage")]
    pub usage: u8,
    /// 0 the whole certificate, 1 its public key (SubjectPublicKeyInfo).
    #[serde(deserialize_with = "selector")]
    pub selector: u8,
    /// 0 the data itself, 1 its SHA-256, 2 its SHA-512.
    #[serde(deserialize_with = "matching")]
    pub matching: u8,
    /// Whose certificate: the relay's own, the CA that issued it, or one
    /// the relay does not have (a record left over from before a
    /// certificate rollover).
    pub of: TlsaOf,
}

/// Whose certificate a TLSA record names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsaOf {
    Relay,
    Issuer,
    Other,
}

fn bounded<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
    max: u8,
    names: &str,
) -> Result<u8, D::Error> {
    let v = i64::deserialize(d)?;
    u8::try_from(v)
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(|| de::Error::custom(format!("{what} {v} is not a TLSA {what} ({names})")))
}

fn usage<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    bounded(d, "usage", 3, "0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE")
}

fn selector<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    bounded(d, "selector", 1, "0 certificate, 1 public key")
}

fn matching<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    bounded(d, "matching type", 2, "0 full, 1 SHA-256, 2 SHA-512")
}

impl TlsaSpec {
    /// The record's data for `cert` (DER), in zone-file form.
    pub fn record(&self, cert: &[u8]) -> String {
        let selected: Vec<u8> = if self.selector == 1 {
            spki(cert).unwrap_or_else(|| cert.to_vec())
        } else {
            cert.to_vec()
        };
        let data = match self.matching {
            1 => Sha256::digest(&selected).to_vec(),
            2 => Sha512::digest(&selected).to_vec(),
            _ => selected,
        };
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        format!("{} {} {} {hex}", self.usage, self.selector, self.matching)
    }
}

/// A certificate's SubjectPublicKeyInfo, DER.
fn spki(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    Some(parsed.tbs_certificate.subject_pki.raw.to_vec())
}

/// The label a case's names carry: its scenario's id (as a mail local
/// part: lower case, letters, digits and `-`) and its level, at most 63
/// characters, as a DNS label allows.
pub fn case_label(scenario: &str, level: &str) -> String {
    let label = format!("{scenario}-{level}");
    let label: String = label.chars().take(63).collect();
    label.trim_matches('-').to_owned()
}

/// `name` (the domain or a name under it) as the case labelled `label`
/// has it: the label inserted before the domain.
pub fn case_name(name: &str, domain: &str, label: &str) -> String {
    match name.strip_suffix(domain) {
        Some(prefix) => format!("{prefix}{label}.{domain}"),
        None => name.to_owned(),
    }
}

/// The name of the server every zone is delegated to; the root zone has
/// its address.
pub const NAME_SERVER: &str = "ns.tlsharness.";

/// The name server of the zones whose DNS path drops queries: the same
/// middlebox on another address ([`super::proxy::QUIET`]). A resolver remembers
/// a server's timeouts by its address, so the dropped queries of those
/// zones must not slow every other zone's answers, as they would in life
/// where each domain has servers of its own.
pub const QUIET_NAME_SERVER: &str = "ns-quiet.tlsharness.";

/// Where the run's name server serves every zone, in the run's namespace.
/// The root zone names the DNS middlebox ([`super::proxy::PATH`]) instead, which
/// passes queries on to it.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 2, 2);

/// One case's zone, ready for the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// The zone's name, without the final dot.
    pub name: String,
    pub state: ZoneState,
    /// The zone file (unsigned: the container signs it).
    pub text: String,
    /// Whether its DNS path drops queries (then its name server is
    /// [`QUIET_NAME_SERVER`]).
    pub quiet: bool,
}

/// Certificates TLSA records can name, DER.
pub struct Certificates<'a> {
    pub relay: &'a [u8],
    pub issuer: &'a [u8],
    pub other: &'a [u8],
}

/// The zone of the case labelled `label` for `spec`, its MX hosts at
/// `addresses` (one per MX, in order); with an MTA-STS policy (the case's
/// text, and where its server is), the policy's TXT record and its
/// server's name.
pub fn zone(
    spec: &DnsSpec,
    label: &str,
    addresses: &[IpAddr],
    certs: &Certificates,
    sts: Option<(&str, IpAddr)>,
) -> Zone {
    let domain = spec.domain.as_str();
    let name = case_name(domain, domain, label);
    let quiet = spec.behaviour.contains(&DnsBehaviour::DropTlsa);
    let ns = if quiet {
        QUIET_NAME_SERVER
    } else {
        NAME_SERVER
    };
    let mut text = String::new();
    let _ = writeln!(text, "$ORIGIN {name}.");
    let _ = writeln!(text, "$TTL 300");
    let _ = writeln!(
        text,
        "@ SOA {NAME_SERVER} hostmaster.tlsharness. 1 3600 600 86400 300"
    );
    let _ = writeln!(text, "@ NS {ns}");
    if let Some((policy, server)) = sts {
        let id = mta_sts::policy_id(policy);
        let _ = writeln!(text, "_mta-sts.{name}. TXT \"v=STSv1; id={id}\"");
        let _ = writeln!(text, "mta-sts.{name}. A {server}");
    }
    for (mx, address) in spec.mx.iter().zip(addresses) {
        let host = case_name(mx.host.as_str(), domain, label);
        let _ = writeln!(text, "@ MX {} {host}.", mx.preference);
        let _ = writeln!(text, "{host}. A {address}");
        for t in &mx.tlsa {
            let cert = match t.of {
                TlsaOf::Relay => certs.relay,
                TlsaOf::Issuer => certs.issuer,
                TlsaOf::Other => certs.other,
            };
            let _ = writeln!(text, "_25._tcp.{host}. TLSA {}", t.record(cert));
        }
    }
    Zone {
        name,
        state: spec.zone,
        text,
        quiet,
    }
}

/// The root zone: the name servers' addresses (`server`, and `quiet` for
/// the zones whose path drops queries), and a delegation for every zone
/// (the container adds each signed zone's DS record).
pub fn root_zone(zones: &[&Zone], server: IpAddr, quiet: IpAddr) -> String {
    let mut text = String::from("$ORIGIN .\n$TTL 300\n");
    let _ = writeln!(
        text,
        ". SOA {NAME_SERVER} hostmaster.tlsharness. 1 3600 600 86400 300"
    );
    let _ = writeln!(text, ". NS {NAME_SERVER}");
    let _ = writeln!(text, "{NAME_SERVER} A {server}");
    let _ = writeln!(text, "{QUIET_NAME_SERVER} A {quiet}");
    for z in zones {
        let ns = if z.quiet {
            QUIET_NAME_SERVER
        } else {
            NAME_SERVER
        };
        let _ = writeln!(text, "{}. NS {ns}", z.name);
    }
    text
}

/// The list the container reads: `name state` per zone.
pub fn zone_list(zones: &[&Zone]) -> String {
    zones
        .iter()
        .map(|z| format!("{} {}\n", z.name, z.state.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_s_names_carry_its_label_before_the_domain() {
        let label = case_label("dane-strip", "may");
        assert_eq!(
            case_name("hoge.example", "hoge.example", &label),
            "dane-strip-may.hoge.example"
        );
        assert_eq!(
            case_name("mx1.hoge.example", "hoge.example", &label),
            "mx1.dane-strip-may.hoge.example"
        );
        assert_eq!(case_label(&"x".repeat(70), "dane").len(), 63);
    }

    #[test]
    fn tlsa_data_is_the_selected_part_digested() {
        let pki = crate::pki::Pki::new("dns-test").unwrap();
        let id = pki
            .identity(crate::pki::CertKind::Trusted, "mx1.hoge.example")
            .unwrap();
        let cert = id.leaf().as_ref();
        let t = |usage, selector, matching| TlsaSpec {
            usage,
            selector,
            matching,
            of: TlsaOf::Relay,
        };
        let full = t(3, 0, 0).record(cert);
        assert!(full.starts_with("3 0 0 30"), "{full}");
        assert_eq!(full.len(), 6 + 2 * cert.len());
        let key = spki(cert).unwrap();
        assert!(key.len() < cert.len());
        let digest: String = Sha256::digest(&key)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(t(3, 1, 1).record(cert), format!("3 1 1 {digest}"));
        assert_eq!(t(2, 1, 2).record(cert).len(), 6 + 128);
    }

    #[test]
    fn zones_delegate_from_the_root() {
        let spec: DnsSpec = toml::from_str(
            "domain = \"hoge.example\"\nmx = [{ preference = 10, host = \"mx1.hoge.example\", tlsa = [{ usage = 3, selector = 1, matching = 1, of = \"other\" }] }]\n",
        )
        .unwrap();
        let pki = crate::pki::Pki::new("dns-test").unwrap();
        let id = pki
            .identity(crate::pki::CertKind::Trusted, "mx1.hoge.example")
            .unwrap();
        let der = id.leaf().as_ref();
        let z = zone(
            &spec,
            "c3",
            &["127.0.1.1".parse().unwrap()],
            &Certificates {
                relay: der,
                issuer: der,
                other: der,
            },
            None,
        );
        assert_eq!(z.name, "c3.hoge.example");
        assert!(z.text.contains("@ MX 10 mx1.c3.hoge.example.\n"));
        assert!(z.text.contains("mx1.c3.hoge.example. A 127.0.1.1\n"));
        assert!(z.text.contains("_25._tcp.mx1.c3.hoge.example. TLSA 3 1 1 "));
        let root = root_zone(
            &[&z],
            "127.0.2.2".parse().unwrap(),
            "127.0.2.3".parse().unwrap(),
        );
        assert!(root.contains("ns.tlsharness. A 127.0.2.2\n"));
        assert!(root.contains("c3.hoge.example. NS ns.tlsharness.\n"));
        assert_eq!(zone_list(&[&z]), "c3.hoge.example signed\n");
        // A record that does not parse is refused where it is written.
        let bad = toml::from_str::<DnsSpec>(
            "domain = \"hoge.example\"\nmx = [{ preference = 10, host = \"mx1.hoge.example\", tlsa = [{ usage = 4, selector = 1, matching = 1, of = \"relay\" }] }]\n",
        )
        .unwrap_err();
        assert!(
            bad.to_string().contains("usage 4 is not a TLSA usage"),
            "{bad}"
        );
    }
}

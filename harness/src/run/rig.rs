//! A case's fakes: its relay and one middlebox per path, as the agent is
//! to start them in the run's namespace, and what the MTA needs to reach
//! them ([`crate::mta::Target`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::plan::Case;
use crate::lab::protocol::{DnsPathSpec, PathSpec, PolicySpec, RelaySpec, RigSpec};
use crate::lab::{Fakes, path_address, source_address};
use crate::pki::{CertKind, Identity, Pki, PkiError};
use crate::scenario::{AuthMechanism, MiddleboxSpec, PortFate, ServiceMode};
use crate::upstream::ReplaySpec;

/// Who presents a certificate: the relay, or a middlebox in its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Relay,
    Middlebox,
}

/// Everything that makes the fakes of a run: the CA and a certificate cache.
pub(crate) struct Workshop {
    pub pki: Arc<Pki>,
    identities: HashMap<(Role, CertKind, String), (u64, Identity)>,
    pub idle_timeout: Duration,
    /// Relays with AUTH accept any credentials (for `check`).
    pub any_credentials: bool,
}

/// One case's fakes, and where the MTA finds them.
pub(crate) struct Rig {
    /// The rig's id with the agent.
    pub id: u64,
    pub fakes: Fakes,
    pub hostname: String,
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    /// The address the case's mail must come from (run: its own).
    pub source: Option<IpAddr>,
    /// The relay certificate's fingerprint, as an admin would pin it.
    pub relay_fingerprint: String,
    pub message_id: String,
    /// The case's own zone, when its mail goes by MX through DNS.
    pub zone: Option<crate::dns::Zone>,
}

impl Rig {
    /// The case as the MTA is to deliver it.
    pub fn target<'a>(&self, case: &'a Case) -> crate::mta::Target<'a> {
        crate::mta::Target {
            index: case.index,
            rig: self.id,
            policy: case.level,
            scenario: &case.scenario,
            hostname: self.hostname.clone(),
            port: self.port,
            paths: self.addresses.len(),
            source: self.source,
            relay_fingerprint: self.relay_fingerprint.clone(),
            zone: self.zone.clone(),
        }
    }
}

/// A case's MTA-STS policy, as its zone and the agent need it.
struct Policy {
    text: String,
    /// Where `mta-sts.DOMAIN` points.
    server: IpAddr,
    /// What the policy server serves, if it answers at all.
    served: Option<PolicySpec>,
    identity: Option<(u64, Identity)>,
}

/// Whose connections a rig takes, and under which name.
#[derive(Clone, Debug)]
pub(crate) enum Placement {
    /// The case's own: its transport sends from its own source address
    /// (run: every case shares the relay's listeners).
    Case,
    /// Every connection to the relay's addresses, under `hostname` and on
    /// `port` instead of the scenario's (check: one scenario at a time).
    Fixed { port: u16, hostname: String },
}

/// `AB:CD:...`: the SHA-256 digest of a certificate as Postfix writes it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Workshop {
    pub fn new(pki: Arc<Pki>, idle_timeout: Duration) -> Workshop {
        Workshop {
            pki,
            identities: HashMap::new(),
            idle_timeout,
            any_credentials: false,
        }
    }

    /// An identity for `hosts` and its key with the agent, made once per
    /// run.
    fn identity(
        &mut self,
        role: Role,
        kind: CertKind,
        hosts: &[String],
    ) -> Result<(u64, Identity), PkiError> {
        let key = (role, kind, hosts.join(" "));
        if let Some(id) = self.identities.get(&key) {
            return Ok(id.clone());
        }
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let made = (
            self.identities.len() as u64,
            self.pki.identity_for(kind, &names)?,
        );
        self.identities.insert(key, made.clone());
        Ok(made)
    }

    /// The case's zone: its MX hosts at `addresses`, TLSA records naming
    /// the relay's certificate (`relay`), its issuer or one the relay does
    /// not have, and the MTA-STS records when it has a policy.
    fn zone(
        &mut self,
        d: &crate::dns::DnsSpec,
        label: &str,
        addresses: &[IpAddr],
        relay: &Identity,
        policy: Option<&Policy>,
    ) -> Result<crate::dns::Zone, PkiError> {
        let other = self.identity(
            Role::Relay,
            CertKind::SelfSigned,
            &["rolled-over.tlsharness.test".to_owned()],
        )?;
        let ca = self.pki.ca_der().clone();
        let issuer = relay.chain.get(1).map_or(ca.as_ref(), |c| c.as_ref());
        Ok(crate::dns::zone(
            d,
            label,
            addresses,
            &crate::dns::Certificates {
                relay: relay.leaf().as_ref(),
                issuer,
                other: other.1.leaf().as_ref(),
            },
            policy.map(|p| (p.text.as_str(), p.server)),
        ))
    }

    /// The case's MTA-STS policy: its text, where `mta-sts.DOMAIN` points,
    /// and what the agent's policy server serves there (nothing when the
    /// scenario's server is unreachable).
    fn policy(
        &mut self,
        d: &crate::dns::DnsSpec,
        sts: &crate::dns::mta_sts::MtaStsSpec,
        label: &str,
    ) -> Result<Policy, PkiError> {
        use crate::dns::mta_sts::{self, PolicyServer};
        let domain = d.domain.as_str();
        let hosts: Vec<&str> = d.mx.iter().map(|m| m.host.as_str()).collect();
        let text = mta_sts::case_policy(&sts.text(&hosts), domain, label);
        let host = format!("mta-sts.{}", crate::dns::case_name(domain, domain, label));
        let cert = match sts.server {
            PolicyServer::Unreachable => {
                return Ok(Policy {
                    text,
                    server: mta_sts::NOWHERE.into(),
                    served: None,
                    identity: None,
                });
            }
            PolicyServer::WrongCertificate => CertKind::WrongName,
            PolicyServer::Ok => CertKind::Trusted,
        };
        let id = self.identity(Role::Middlebox, cert, std::slice::from_ref(&host))?;
        Ok(Policy {
            served: Some(PolicySpec {
                host,
                identity: id.0,
                policy: text.clone(),
            }),
            text,
            server: mta_sts::SERVER.into(),
            identity: Some(id),
        })
    }

    /// Plans case `id`'s relay and middleboxes, and where the MTA finds them.
    pub fn rig(
        &mut self,
        id: u64,
        case: &Case,
        run_id: &str,
        placement: &Placement,
    ) -> Result<Rig, PkiError> {
        let scenario = &case.scenario;
        let (hostname, port, source) = match placement {
            Placement::Case => (
                scenario.relay.hostname.as_str().to_owned(),
                scenario.relay.port,
                Some(source_address(case.index)),
            ),
            Placement::Fixed { hostname, port } => (hostname.clone(), *port, None),
        };
        // By MX, the case's own names: its zone's, one per MX host.
        let dns = scenario.dns.as_ref();
        let label = crate::dns::case_label(&scenario.local_part(48), case.level.as_str());
        let names: Vec<String> = match dns {
            Some(d) => {
                d.mx.iter()
                    .map(|mx| crate::dns::case_name(mx.host.as_str(), d.domain.as_str(), &label))
                    .collect()
            }
            None => vec![hostname],
        };
        let hostname = names[0].clone();
        let relay = self.relay(&scenario.relay, &names, port)?;
        let mut identities = vec![relay.identity.clone()];
        let addresses: Vec<IpAddr> = (0..scenario.paths.len()).map(path_address).collect();
        let paths = self.paths(
            &scenario.paths,
            &addresses,
            port,
            relay.serves,
            &names,
            &mut identities,
        )?;
        let (zone, policy) = match dns {
            Some(d) => {
                let sts = scenario.mta_sts.as_ref();
                let (zone, policy) = self.by_mx(
                    d,
                    sts,
                    &label,
                    &addresses,
                    &relay.identity.1,
                    &mut identities,
                )?;
                (Some(zone), policy)
            }
            None => (None, None),
        };
        Ok(Rig {
            id,
            fakes: Fakes {
                spec: RigSpec {
                    rig: id,
                    relay: relay.spec,
                    paths,
                    source,
                    connect_timeout_ms: 10_000,
                    dns: zone.as_ref().zip(dns).map(|(z, d)| DnsPathSpec {
                        zone: z.name.clone(),
                        behaviours: d.behaviour.clone(),
                    }),
                    mta_sts: policy,
                },
                identities,
            },
            hostname,
            addresses,
            port,
            source,
            relay_fingerprint: fingerprint(relay.identity.1.leaf()),
            message_id: format!("<case-{}.{run_id}@tlsharness.test>", case.index),
            zone,
        })
    }

    /// The case's relay under `names`, as it answers on `port`.
    fn relay(
        &mut self,
        spec: &crate::scenario::RelaySpec,
        names: &[String],
        port: u16,
    ) -> Result<PlannedRelay, PkiError> {
        // The relay's listener on the port Postfix connects to: run's is
        // the scenario's first; check's is the configuration's, which the
        // relay may not serve at all (RelaySpec::service_for).
        let service = spec.service_for(port);
        let mode = service.as_ref().map_or(ServiceMode::None, |s| s.mode);
        // That listener's own certificate and recording, when it has them.
        let certificate = service
            .as_ref()
            .and_then(|s| s.certificate)
            .unwrap_or(spec.certificate);
        let replay = service
            .as_ref()
            .and_then(|s| s.replay.clone())
            .or_else(|| spec.replay.clone());
        let identity = self.identity(Role::Relay, certificate, names)?;
        let (auth, auth_before_tls, auth_optional) = match (&spec.auth, &replay) {
            (Some(a), _) => (a.mechanisms.clone(), a.before_tls, false),
            (None, Some(r)) => recorded_auth(r, mode.implicit_tls()),
            (None, None) => (Vec::new(), false, false),
        };
        let relay = RelaySpec {
            hostname: names[0].clone(),
            identity: (mode != ServiceMode::None).then_some(identity.0),
            tls_versions: spec.tls_versions,
            implicit_tls: mode.implicit_tls(),
            auth,
            auth_before_tls,
            auth_optional,
            require_tls: spec.require_tls,
            credentials: spec
                .auth
                .as_ref()
                .map(|a| (a.username.clone(), a.password.clone())),
            any_credentials: self.any_credentials,
            idle_timeout_ms: self.idle_timeout.as_millis() as u64,
            replay,
        };
        Ok(PlannedRelay {
            spec: relay,
            identity,
            serves: service.is_some(),
        })
    }

    /// Each path's listener on `port` at its address, if anything listens
    /// there; the identities its middlebox presents go to `identities`.
    fn paths(
        &mut self,
        paths: &[MiddleboxSpec],
        addresses: &[IpAddr],
        port: u16,
        serves: bool,
        names: &[String],
        identities: &mut Vec<(u64, Identity)>,
    ) -> Result<Vec<PathSpec>, PkiError> {
        let mut specs = Vec::new();
        for (address, path) in addresses.iter().zip(paths) {
            // Nothing listens where the relay has no service or the path
            // blocks the port: Postfix's connection is refused, as in life.
            let behaviours = match path.fate(port) {
                PortFate::Refused => continue,
                PortFate::Dropped => {
                    specs.push(PathSpec {
                        listen: SocketAddr::new(*address, port),
                        behaviours: Vec::new(),
                        acceptors: Vec::new(),
                        drop: true,
                    });
                    continue;
                }
                PortFate::Passes(_) if !serves => continue,
                PortFate::Passes(b) => b,
            };
            let mut acceptors = Vec::new();
            for kind in behaviours.iter().filter_map(|b| b.certificate()) {
                let id = self.identity(Role::Middlebox, kind, names)?;
                acceptors.push((kind, id.0));
                identities.push(id);
            }
            specs.push(PathSpec {
                listen: SocketAddr::new(*address, port),
                behaviours,
                acceptors,
                drop: false,
            });
        }
        Ok(specs)
    }

    /// By MX: the case's zone, and what the agent's policy server serves
    /// for it (its identity goes to `identities`).
    fn by_mx(
        &mut self,
        d: &crate::dns::DnsSpec,
        sts: Option<&crate::dns::mta_sts::MtaStsSpec>,
        label: &str,
        addresses: &[IpAddr],
        relay: &Identity,
        identities: &mut Vec<(u64, Identity)>,
    ) -> Result<(crate::dns::Zone, Option<PolicySpec>), PkiError> {
        let policy = match sts {
            Some(sts) => Some(self.policy(d, sts, label)?),
            None => None,
        };
        let zone = self.zone(d, label, addresses, relay, policy.as_ref())?;
        if let Some(id) = policy.as_ref().and_then(|p| p.identity.clone()) {
            identities.push(id);
        }
        Ok((zone, policy.and_then(|p| p.served)))
    }
}

/// A case's relay as the agent is to start it, and its identity.
struct PlannedRelay {
    spec: RelaySpec,
    identity: (u64, Identity),
    /// Whether it has a service on the port the MTA connects to.
    serves: bool,
}

/// The AUTH a replayed relay offers: what its recorded EHLO replies list
/// (PLAIN and LOGIN, the mechanisms the fake relay speaks), before TLS
/// when the plaintext reply lists it. Optional, since the probe never sent
/// MAIL: whether the real relay requires AUTH is unknown, and a client
/// that authenticates (a check of a configuration with SASL) must not be
/// refused for it.
fn recorded_auth(r: &ReplaySpec, implicit_tls: bool) -> (Vec<AuthMechanism>, bool, bool) {
    let inside = if implicit_tls {
        &r.ehlo
    } else {
        r.tls_ehlo.as_ref().unwrap_or(&r.ehlo)
    };
    let before: Vec<String> = if implicit_tls {
        Vec::new()
    } else {
        r.ehlo.auth_mechanisms()
    };
    let mut names = inside.auth_mechanisms();
    names.extend(before.iter().cloned());
    let mut mechanisms = Vec::new();
    for (name, m) in [
        ("PLAIN", AuthMechanism::Plain),
        ("LOGIN", AuthMechanism::Login),
    ] {
        if names.iter().any(|n| n == name) {
            mechanisms.push(m);
        }
    }
    let before_tls = !mechanisms.is_empty() && !before.is_empty();
    (mechanisms, before_tls, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_separated_upper_hex() {
        let fp = fingerprint(b"abc");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.starts_with("BA:78:16:BF"), "{fp}");
    }
}

//! A case's fakes: its relay, one middlebox per path (all on one port,
//! one loopback address each), and what Postfix needs to reach them.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::plan::Case;
use crate::level::Level;
use crate::middlebox::{BuildContext, ConnectionRecord, Middlebox, MiddleboxConfig};
use crate::pki::{CertKind, Identity, Pki, PkiError};
use crate::postfix::config::CONF_DIR;
use crate::scenario::AuthMechanism;
use crate::tls::{TlsVersions, server_config};
use crate::upstream::{Policy, Relay, RelayConfig};

/// Who presents a certificate: the relay, or a middlebox in its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Relay,
    Middlebox,
}

/// Everything that makes the fakes of a run: the CA and a certificate cache.
pub(crate) struct Workshop {
    pub pki: Arc<Pki>,
    identities: HashMap<(Role, CertKind, String), Identity>,
    pub tasks: TaskTracker,
    pub stop: CancellationToken,
    pub idle_timeout: Duration,
    /// Relays with AUTH accept any credentials (for `check`).
    pub any_credentials: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RigError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("{0}")]
    Setup(String),
}

/// One case's fakes and its Postfix-side settings.
pub(crate) struct Rig {
    pub relay: Relay,
    /// One per path, in the order of the relay name's addresses.
    pub middleboxes: Vec<Middlebox>,
    pub hostname: String,
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    /// The `-o` settings of the case's smtp transport.
    pub settings: BTreeMap<String, String>,
    /// A smtp_sasl_password_maps value for the next hop.
    pub sasl: Option<String>,
    /// A smtp_tls_policy_maps value for the next hop.
    pub tls_policy: Option<String>,
    pub message_id: String,
}

impl Rig {
    /// `[name]:port`, the case's next hop in Postfix's terms.
    pub fn nexthop(&self) -> String {
        format!("[{}]:{}", self.hostname, self.port)
    }

    /// How many connections have ended, per path.
    pub fn ended(&self) -> Vec<usize> {
        self.middleboxes.iter().map(Middlebox::ended).collect()
    }

    /// Connections that ended after `since` (from [`Rig::ended`]), every
    /// path together, in the order they began.
    pub fn records_since(&self, since: &[usize]) -> Vec<ConnectionRecord> {
        let mut all: Vec<ConnectionRecord> = self
            .middleboxes
            .iter()
            .zip(since.iter().copied().chain(std::iter::repeat(0)))
            .flat_map(|(m, n)| m.records().into_iter().skip(n))
            .collect();
        all.sort_by_key(|r| r.started_ms);
        all
    }

    /// How many connections are open now, every path together.
    pub fn open(&self) -> usize {
        self.middleboxes.iter().map(Middlebox::open).sum()
    }

    /// Waits until no path has an open connection, or the deadline passes.
    pub async fn idle(&self, deadline: tokio::time::Instant) -> bool {
        for m in &self.middleboxes {
            if !m.idle(deadline).await {
                return false;
            }
        }
        true
    }
}

/// Where a case's middleboxes listen.
#[derive(Clone, Debug)]
pub(crate) enum Placement {
    /// An ephemeral port on 127.0.0.1 (or 127.0.0.2, .3, ... for several paths).
    Ephemeral,
    /// A given port on `first`, `first + 1`, ... (one address per path);
    /// the relay's name is `hostname` instead of the scenario's.
    Fixed {
        first: Ipv4Addr,
        port: u16,
        hostname: String,
    },
}

/// The loopback address of path `index` when a name has `count` paths:
/// 127.0.0.1 alone, or 127.0.0.2, .3, ... for several.
pub(crate) fn path_address(index: usize, count: usize) -> IpAddr {
    if count == 1 {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + index as u8))
    }
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
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            idle_timeout,
            any_credentials: false,
        }
    }

    fn identity(&mut self, role: Role, kind: CertKind, host: &str) -> Result<Identity, PkiError> {
        let key = (role, kind, host.to_owned());
        if let Some(id) = self.identities.get(&key) {
            return Ok(id.clone());
        }
        let id = self.pki.identity(kind, host)?;
        self.identities.insert(key, id.clone());
        Ok(id)
    }

    /// Starts a case's relay and middleboxes.
    pub async fn rig(
        &mut self,
        case: &Case,
        run_id: &str,
        placement: &Placement,
    ) -> Result<Rig, RigError> {
        let scenario = &case.scenario;
        let spec = &scenario.relay;
        let hostname = match placement {
            Placement::Ephemeral => spec.hostname.as_str().to_owned(),
            Placement::Fixed { hostname, .. } => hostname.clone(),
        };
        let relay_id = self.identity(Role::Relay, spec.certificate, &hostname)?;
        let tls = if spec.starttls || spec.implicit_tls {
            Some(server_config(&relay_id, spec.tls_versions).map_err(tls_error)?)
        } else {
            None
        };
        let mut relay_config = RelayConfig::new(hostname.clone(), tls);
        relay_config.implicit_tls = spec.implicit_tls;
        relay_config.replay = spec.replay.clone();
        relay_config.idle_timeout = self.idle_timeout;
        relay_config.policy = Policy {
            require_tls: spec.require_tls,
            credentials: None,
            any_credentials: self.any_credentials,
        };
        if let Some(auth) = &spec.auth {
            relay_config.auth = auth
                .mechanisms
                .iter()
                .map(|m| match m {
                    AuthMechanism::Plain => mailin_embedded::AuthMechanism::Plain,
                    AuthMechanism::Login => mailin_embedded::AuthMechanism::Login,
                })
                .collect();
            relay_config.auth_before_tls = auth.before_tls;
            relay_config.policy.credentials = Some((auth.username.clone(), auth.password.clone()));
        }
        let relay = Relay::start(
            bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?,
            relay_config,
            &self.tasks,
            self.stop.clone(),
        )
        .map_err(listen_error)?;

        let count = scenario.paths.len();
        let (addresses, fixed_port): (Vec<IpAddr>, Option<u16>) = match placement {
            Placement::Ephemeral => ((0..count).map(|i| path_address(i, count)).collect(), None),
            Placement::Fixed { first, port, .. } => {
                let base = u32::from(*first);
                (
                    (0..count)
                        .map(|i| IpAddr::V4(Ipv4Addr::from(base + i as u32)))
                        .collect(),
                    Some(*port),
                )
            }
        };
        let listeners = match fixed_port {
            None => bind_all(&addresses).await?,
            Some(port) => {
                let mut all = Vec::new();
                for a in &addresses {
                    all.push(bind(SocketAddr::new(*a, port)).await?);
                }
                all
            }
        };
        let port = listeners[0].local_addr().map_err(listen_error)?.port();
        let mut middleboxes = Vec::new();
        for (listener, path) in listeners.into_iter().zip(&scenario.paths) {
            let mut context = BuildContext::default();
            for kind in path.behaviour.iter().filter_map(|b| b.certificate()) {
                let id = self.identity(Role::Middlebox, kind, &hostname)?;
                let acceptor = server_config(&id, TlsVersions::Any).map_err(tls_error)?;
                context.acceptors.insert(kind, acceptor);
            }
            let middlebox = Middlebox::start(
                listener,
                MiddleboxConfig {
                    upstream: relay.addr(),
                    relay_name: hostname.clone(),
                    behaviours: path.behaviour.clone(),
                    context,
                    connect_timeout: Duration::from_secs(10),
                    implicit_tls: spec.implicit_tls,
                },
                &self.tasks,
                self.stop.clone(),
            )
            .map_err(listen_error)?;
            middleboxes.push(middlebox);
        }

        let mut settings = BTreeMap::new();
        for (k, v) in case.level.settings() {
            settings.insert(k.to_owned(), v.to_owned());
        }
        if !scenario.postfix.trust_ca {
            settings.insert("smtp_tls_CAfile".into(), String::new());
        }
        if let Some(after) = scenario.delivery.retry_after {
            settings.insert("minimal_backoff_time".into(), format!("{}s", after.0));
        }
        if case.level == Level::Fingerprint {
            // The admin pinned the real relay's certificate.
            settings.insert("smtp_tls_fingerprint_digest".into(), "sha256".into());
            settings.insert(
                "smtp_tls_fingerprint_cert_match".into(),
                fingerprint(relay_id.leaf()),
            );
        }
        if count > 1 {
            // Postfix would shuffle the addresses; the paths are in order.
            settings.insert("smtp_randomize_addresses".into(), "no".into());
        }
        let sasl = scenario
            .postfix
            .sasl
            .as_ref()
            .map(|s| format!("{}:{}", s.username, s.password));
        if sasl.is_some() {
            settings.insert("smtp_sasl_auth_enable".into(), "yes".into());
            settings.insert(
                "smtp_sasl_password_maps".into(),
                format!("texthash:{CONF_DIR}/sasl_passwd"),
            );
        }
        let tls_policy = scenario
            .postfix
            .tls_policy
            .as_ref()
            .map(|p| p.as_str().to_owned());
        if tls_policy.is_some() {
            settings.insert(
                "smtp_tls_policy_maps".into(),
                format!("texthash:{CONF_DIR}/tls_policy"),
            );
        }
        for (k, v) in &scenario.postfix.settings {
            settings.insert(k.as_str().to_owned(), v.as_str().to_owned());
        }
        Ok(Rig {
            relay,
            middleboxes,
            hostname,
            addresses,
            port,
            settings,
            sasl,
            tls_policy,
            message_id: format!("<case-{}.{run_id}@tlsharness.test>", case.index),
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RigError> {
    TcpListener::bind(addr).await.map_err(listen_error)
}

/// Listeners on one port on every address.
async fn bind_all(addresses: &[IpAddr]) -> Result<Vec<TcpListener>, RigError> {
    let mut last_error = None;
    'attempt: for _ in 0..32 {
        let first = bind(SocketAddr::new(addresses[0], 0)).await?;
        let port = first.local_addr().map_err(listen_error)?.port();
        let mut all = vec![first];
        for addr in &addresses[1..] {
            match TcpListener::bind(SocketAddr::new(*addr, port)).await {
                Ok(l) => all.push(l),
                Err(e) => {
                    // Taken on this address: try another port.
                    last_error = Some(e);
                    continue 'attempt;
                }
            }
        }
        return Ok(all);
    }
    Err(RigError::Setup(format!(
        "failed to find one free port on {addresses:?}: {}",
        last_error.map(|e| e.to_string()).unwrap_or_default()
    )))
}

fn listen_error(e: std::io::Error) -> RigError {
    RigError::Setup(format!("failed to listen on loopback: {e}"))
}

fn tls_error(e: rustls::Error) -> RigError {
    RigError::Setup(format!("failed to configure TLS: {e}"))
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

    #[test]
    fn one_path_uses_localhost_several_use_their_own_addresses() {
        assert_eq!(path_address(0, 1).to_string(), "127.0.0.1");
        assert_eq!(path_address(1, 2).to_string(), "127.0.0.3");
    }
}

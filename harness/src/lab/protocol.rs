//! The line protocol between the harness and its agent: one JSON object
//! per line, requests on the agent's stdin, replies on its stdout, each
//! reply carrying its request's id. Keys travel here and nowhere else:
//! never through a file, never through the agent's image.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::middlebox::{BehaviourSpec, ConnectionRecord};
use crate::pki::CertKind;
use crate::scenario::AuthMechanism;
use crate::tls::TlsVersions;
use crate::upstream::{Received, ReplaySpec};

/// What the first line the agent writes says, so that a binary that is
/// not the agent (or another version of it) is recognised at once.
pub const GREETING: &str = "tlsharness-agent 1";

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub call: Call,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum Call {
    /// A certificate chain and its key (DER, hex), known by `key` from now
    /// on.
    Identity {
        key: u64,
        chain: Vec<Hex>,
        private_key: Hex,
    },
    /// Start a case's relay and middleboxes.
    Rig(Box<RigSpec>),
    /// Stop a rig and forget it.
    Unrig { rig: u64 },
    /// What a rig has seen; with `idle_ms`, first wait (at most that long)
    /// until none of its connections is open.
    State { rig: u64, idle_ms: Option<u64> },
    /// Hand one message to the MTA's listener.
    Inject {
        recipient: String,
        subject: String,
        message_id: String,
    },
    /// Wait (at most `timeout_ms`) until the MTA's listener greets; from
    /// then on inject at most `injections` messages at once (the first
    /// `Ready` says).
    Ready { timeout_ms: u64, injections: usize },
    /// The agent's peak resident memory so far.
    Usage,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(flatten)]
    pub reply: Reply,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Reply {
    Done,
    State(Box<RigState>),
    Injected { response: String },
    Usage { peak_rss_kb: u64 },
    Failed { error: String },
}

/// A case's fakes, as the agent starts them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RigSpec {
    pub rig: u64,
    pub relay: RelaySpec,
    /// One middlebox per path, each on its own address.
    pub paths: Vec<PathSpec>,
    /// Only connections from this address are the rig's (every case's
    /// transport sends from its own); `None`: any.
    pub source: Option<IpAddr>,
    pub connect_timeout_ms: u64,
    /// The case's zone and what the DNS path does to it, when its mail
    /// goes by MX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsPathSpec>,
    /// The case's MTA-STS policy server, when it has one that answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mta_sts: Option<PolicySpec>,
}

/// One case's policy on the MTA-STS policy server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicySpec {
    /// `mta-sts.DOMAIN`: the name the client asks for (SNI).
    pub host: String,
    pub identity: u64,
    pub policy: String,
}

/// One case's zone on the DNS path.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DnsPathSpec {
    pub zone: String,
    pub behaviours: Vec<crate::dns::DnsBehaviour>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RelaySpec {
    pub hostname: String,
    /// The relay's identity, when it speaks TLS at all.
    pub identity: Option<u64>,
    pub tls_versions: TlsVersions,
    pub implicit_tls: bool,
    pub auth: Vec<AuthMechanism>,
    pub auth_before_tls: bool,
    /// AUTH is offered but MAIL without it is taken (a replayed relay:
    /// whether the real one requires AUTH is unknown).
    #[serde(default)]
    pub auth_optional: bool,
    pub require_tls: bool,
    pub credentials: Option<(String, String)>,
    pub any_credentials: bool,
    pub idle_timeout_ms: u64,
    pub replay: Option<ReplaySpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PathSpec {
    pub listen: SocketAddr,
    pub behaviours: Vec<BehaviourSpec>,
    /// Identities an intercepting middlebox presents, by certificate kind.
    pub acceptors: Vec<(CertKind, u64)>,
    /// The path drops connections to `listen` silently: a listener whose
    /// accept queue is kept full, so the kernel leaves every SYN unanswered
    /// and the client's connect times out, as behind a DROP rule.
    #[serde(default)]
    pub drop: bool,
}

/// What a rig has seen so far.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RigState {
    /// Per path, the connections that have ended, in the order they ended.
    pub paths: Vec<Vec<ConnectionRecord>>,
    /// Connections open now, every path together.
    pub open: usize,
    /// Messages the relay accepted, in order.
    pub received: Vec<Received>,
    /// What the DNS middlebox did in the case's zone, then what the
    /// MTA-STS policy server served, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
}

impl RigState {
    /// How many connections have ended, per path.
    pub fn ended(&self) -> Vec<usize> {
        self.paths.iter().map(Vec::len).collect()
    }

    /// Connections that ended after `since` (from [`RigState::ended`]),
    /// every path together, in the order they began.
    pub fn records_since(&self, since: &[usize]) -> Vec<ConnectionRecord> {
        let mut all: Vec<ConnectionRecord> = self
            .paths
            .iter()
            .zip(since.iter().copied().chain(std::iter::repeat(0)))
            .flat_map(|(p, n)| p.iter().skip(n).cloned())
            .collect();
        all.sort_by_key(|r| r.started_ms);
        all
    }
}

/// Bytes as lower-case hex in JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd-length hex"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map(Hex)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let h = Hex(vec![0, 1, 0xab, 0xff]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, "\"0001abff\"");
        assert_eq!(serde_json::from_str::<Hex>(&json).unwrap(), h);
        assert!(serde_json::from_str::<Hex>("\"abc\"").is_err());
    }

    #[test]
    fn every_builtin_path_survives_the_line_protocol() {
        // The agent rebuilds each behaviour from what the harness sends:
        // what arrives must be what the scenario said.
        for scenario in crate::scenario::builtin::load().expect("built-in scenarios load") {
            for path in &scenario.paths {
                let json = serde_json::to_string(&path.behaviour).unwrap();
                let back: Vec<BehaviourSpec> = serde_json::from_str(&json)
                    .unwrap_or_else(|e| panic!("{}: {json}: {e}", scenario.id));
                assert_eq!(back, path.behaviour, "{}", scenario.id);
            }
            if let Some(replay) = &scenario.relay.replay {
                let json = serde_json::to_string(replay).unwrap();
                let back: ReplaySpec = serde_json::from_str(&json).unwrap();
                assert_eq!(&back, replay, "{}", scenario.id);
            }
        }
    }

    #[test]
    fn requests_are_one_line_each() {
        let r = Request {
            id: 7,
            call: Call::State {
                rig: 3,
                idle_ms: Some(10),
            },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        let back: Request = serde_json::from_str(&line).unwrap();
        assert!(matches!(back.call, Call::State { rig: 3, .. }));
    }
}

//! The DNS middlebox: between the run's validating resolver and the run's
//! name server, on the address the root zone names for it. It passes every
//! query through untouched, except in the zones whose case asked for a
//! behaviour, where it does what a meddling resolver path does to TLSA
//! queries. The resolver still judges every answer; the middlebox only
//! decides what reaches it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// What the DNS path does to a zone's TLSA queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsBehaviour {
    /// Answers TLSA queries itself with SERVFAIL, as a resolver path that
    /// chokes on the type does.
    ServfailTlsa,
    /// Drops TLSA queries: no answer at all, as a firewall that filters
    /// unknown record types does.
    DropTlsa,
    /// Answers TLSA queries itself: "no such record", without signatures,
    /// as an attacker denying the records would.
    ForgeNoTlsa,
}

impl DnsBehaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsBehaviour::ServfailTlsa => "servfail-tlsa",
            DnsBehaviour::DropTlsa => "drop-tlsa",
            DnsBehaviour::ForgeNoTlsa => "forge-no-tlsa",
        }
    }
}

/// Where the middlebox listens: the address the root zone gives the run's
/// name server.
pub const PATH: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 2, 1);
/// Its second address, for the zones whose path drops queries (see
/// `dns::QUIET_NAME_SERVER`).
pub const QUIET: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 2, 3);

/// The longest the middlebox waits for the name server's answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// The zones with behaviours, and what the middlebox did in each.
#[derive(Clone, Default)]
pub struct Table {
    zones: Arc<Mutex<HashMap<String, Vec<DnsBehaviour>>>>,
    events: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl Table {
    /// `zone`'s queries meet `behaviours` from now on.
    pub fn set(&self, zone: &str, behaviours: Vec<DnsBehaviour>) {
        let zone = zone.to_ascii_lowercase();
        self.events
            .lock()
            .expect("poisoned")
            .insert(zone.clone(), Vec::new());
        self.zones
            .lock()
            .expect("poisoned")
            .insert(zone, behaviours);
    }

    /// Forgets `zone`, and returns what the middlebox did in it.
    pub fn remove(&self, zone: &str) -> Vec<String> {
        let zone = zone.to_ascii_lowercase();
        self.zones.lock().expect("poisoned").remove(&zone);
        self.events
            .lock()
            .expect("poisoned")
            .remove(&zone)
            .unwrap_or_default()
    }

    /// What the middlebox did in `zone` so far.
    pub fn events(&self, zone: &str) -> Vec<String> {
        self.events
            .lock()
            .expect("poisoned")
            .get(&zone.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// The zone `name` is in, and its behaviours.
    fn lookup(&self, name: &str) -> Option<(String, Vec<DnsBehaviour>)> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let zones = self.zones.lock().expect("poisoned");
        zones
            .iter()
            .find(|(z, _)| name == **z || name.ends_with(&format!(".{z}")))
            .map(|(z, b)| (z.clone(), b.clone()))
    }

    fn note(&self, zone: &str, event: String) {
        if let Some(e) = self.events.lock().expect("poisoned").get_mut(zone) {
            e.push(event);
        }
    }

    /// What to do with one query.
    fn decide(&self, query: &[u8]) -> Action {
        let Ok(message) = Message::from_vec(query) else {
            return Action::Forward;
        };
        let Some(q) = message.queries.first() else {
            return Action::Forward;
        };
        if q.query_type() != RecordType::TLSA {
            return Action::Forward;
        }
        let name = q.name().to_ascii();
        let Some((zone, behaviours)) = self.lookup(&name) else {
            return Action::Forward;
        };
        let Some(b) = behaviours.first().copied() else {
            return Action::Forward;
        };
        let said = |what: &str| format!("TLSA query for {name}: {what} ({})", b.as_str());
        let reply = |code: ResponseCode| {
            let mut r = Message::new(
                message.metadata.id,
                MessageType::Response,
                message.metadata.op_code,
            );
            r.metadata.response_code = code;
            r.metadata.authoritative = code == ResponseCode::NoError;
            r.metadata.recursion_desired = message.metadata.recursion_desired;
            r.queries = message.queries.clone();
            r.edns = message.edns.clone();
            r.to_vec().map_or(Action::Drop, Action::Reply)
        };
        match b {
            DnsBehaviour::ServfailTlsa => {
                self.note(&zone, said("answered SERVFAIL"));
                reply(ResponseCode::ServFail)
            }
            DnsBehaviour::DropTlsa => {
                self.note(&zone, said("dropped, no answer"));
                Action::Drop
            }
            DnsBehaviour::ForgeNoTlsa => {
                self.note(&zone, said("answered \"no such record\", unsigned"));
                reply(ResponseCode::NoError)
            }
        }
    }
}

enum Action {
    Forward,
    Reply(Vec<u8>),
    Drop,
}

/// The middlebox's sockets, bound (UDP and TCP on one address).
pub struct Bound {
    udp: UdpSocket,
    tcp: TcpListener,
}

/// Binds the middlebox's sockets, so that queries are taken from then on.
pub async fn bind(listen: SocketAddr) -> std::io::Result<Bound> {
    Ok(Bound {
        udp: UdpSocket::bind(listen).await?,
        tcp: TcpListener::bind(listen).await?,
    })
}

/// Serves on `bound` until `stop`, passing queries on to `upstream` as
/// `table` says.
pub async fn serve(
    bound: Bound,
    upstream: SocketAddr,
    table: Table,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let udp = Arc::new(bound.udp);
    let tcp = bound.tcp;
    let mut buf = vec![0u8; 65_535];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            got = udp.recv_from(&mut buf) => {
                let Ok((n, client)) = got else { continue };
                let query = buf[..n].to_vec();
                let (udp, table) = (udp.clone(), table.clone());
                tokio::spawn(async move {
                    let answer = match table.decide(&query) {
                        Action::Drop => return,
                        Action::Reply(r) => r,
                        Action::Forward => match forward_udp(&query, upstream).await {
                            Some(r) => r,
                            None => return,
                        },
                    };
                    let _ = udp.send_to(&answer, client).await;
                });
            }
            got = tcp.accept() => {
                let Ok((stream, _)) = got else { continue };
                let table = table.clone();
                tokio::spawn(async move { let _ = serve_tcp(stream, upstream, table).await; });
            }
        }
    }
}

async fn forward_udp(query: &[u8], upstream: SocketAddr) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(SocketAddr::new(PATH.into(), 0))
        .await
        .ok()?;
    socket.send_to(query, upstream).await.ok()?;
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(UPSTREAM_TIMEOUT, socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// DNS over TCP: each message behind its two-byte length.
async fn serve_tcp(
    mut client: TcpStream,
    upstream: SocketAddr,
    table: Table,
) -> std::io::Result<()> {
    loop {
        let len = match client.read_u16().await {
            Ok(l) => l as usize,
            Err(_) => return Ok(()),
        };
        let mut query = vec![0u8; len];
        client.read_exact(&mut query).await?;
        let answer = match table.decide(&query) {
            Action::Drop => return Ok(()),
            Action::Reply(r) => r,
            Action::Forward => {
                let mut up = tokio::time::timeout(UPSTREAM_TIMEOUT, TcpStream::connect(upstream))
                    .await
                    .map_err(|_| std::io::ErrorKind::TimedOut)??;
                up.write_u16(query.len() as u16).await?;
                up.write_all(&query).await?;
                let n = tokio::time::timeout(UPSTREAM_TIMEOUT, up.read_u16())
                    .await
                    .map_err(|_| std::io::ErrorKind::TimedOut)?? as usize;
                let mut r = vec![0u8; n];
                up.read_exact(&mut r).await?;
                r
            }
        };
        client.write_u16(answer.len() as u16).await?;
        client.write_all(&answer).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut m = Message::new(7, MessageType::Query, hickory_proto::op::OpCode::Query);
        m.queries
            .push(Query::query(Name::from_ascii(name).unwrap(), kind));
        m.to_vec().unwrap()
    }

    #[test]
    fn only_tlsa_queries_in_a_zone_with_behaviours_are_touched() {
        let t = Table::default();
        t.set("dane-x-dane.hoge.example", vec![DnsBehaviour::ServfailTlsa]);
        let tlsa = query("_25._tcp.mx1.dane-x-dane.hoge.example.", RecordType::TLSA);
        let Action::Reply(r) = t.decide(&tlsa) else {
            panic!("not answered")
        };
        let r = Message::from_vec(&r).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(r.metadata.id, 7);
        assert!(matches!(
            t.decide(&query("mx1.dane-x-dane.hoge.example.", RecordType::A)),
            Action::Forward
        ));
        assert!(matches!(
            t.decide(&query("_25._tcp.mx1.other.hoge.example.", RecordType::TLSA)),
            Action::Forward
        ));
        assert_eq!(
            t.remove("dane-x-dane.hoge.example"),
            [
                "TLSA query for _25._tcp.mx1.dane-x-dane.hoge.example.: answered SERVFAIL (servfail-tlsa)"
            ]
        );
        assert!(matches!(t.decide(&tlsa), Action::Forward));
    }
}

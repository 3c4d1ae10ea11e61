use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection::{Connection, ConnectionRecord, Setup};
use super::spec::{BehaviourSpec, BuildContext};

/// Where a middlebox forwards to, and what it does on the way.
#[derive(Clone, Debug)]
pub struct MiddleboxConfig {
    pub upstream: SocketAddr,
    /// The relay's name (SNI when the middlebox itself speaks TLS to it).
    pub relay_name: String,
    pub behaviours: Vec<BehaviourSpec>,
    pub context: BuildContext,
    pub connect_timeout: Duration,
    /// The path is TLS from the first byte (implicit TLS, port 465).
    pub implicit_tls: bool,
}

/// A running middlebox: connections Postfix makes to its address, and the
/// records of every connection that has ended.
#[derive(Clone)]
pub struct Middlebox {
    addr: SocketAddr,
    config: Arc<MiddleboxConfig>,
    records: Arc<Mutex<Vec<ConnectionRecord>>>,
    /// Connections accepted and not yet ended.
    active: watch::Receiver<usize>,
    active_tx: Arc<watch::Sender<usize>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Middlebox {
    /// Serves on an already bound listener until `shutdown` fires.
    pub fn start(
        listener: TcpListener,
        config: MiddleboxConfig,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> io::Result<Middlebox> {
        let mb = Middlebox::new(listener.local_addr()?, config, tasks, shutdown.clone());
        let accepting = mb.clone();
        tasks.spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = crate::smtp::accept(&listener) => accepted,
                };
                accepting.serve(stream, peer);
            }
        });
        Ok(mb)
    }

    /// A middlebox for connections accepted elsewhere (a listener shared
    /// by several, see [`Middlebox::serve`]) on `addr`.
    pub fn new(
        addr: SocketAddr,
        config: MiddleboxConfig,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Middlebox {
        let (active_tx, active) = watch::channel(0usize);
        Middlebox {
            addr,
            config: Arc::new(config),
            records: Arc::new(Mutex::new(Vec::new())),
            active,
            active_tx: Arc::new(active_tx),
            tasks: tasks.clone(),
            shutdown,
        }
    }

    /// Carries one accepted connection through to the relay, until it
    /// ends or the middlebox is shut down.
    pub fn serve(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        if self.shutdown.is_cancelled() {
            return;
        }
        self.active_tx.send_modify(|n| *n += 1);
        let config = &self.config;
        let setup = Setup {
            local: self.addr,
            upstream: config.upstream,
            relay_name: config.relay_name.clone(),
            behaviours: config
                .behaviours
                .iter()
                .map(|b| b.build(&config.context))
                .collect(),
            connect_timeout: config.connect_timeout,
            implicit_tls: config.implicit_tls,
        };
        let records = self.records.clone();
        let active_tx = self.active_tx.clone();
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let record = Connection::run(stream, peer, setup, shutdown).await;
            records
                .lock()
                .expect("middlebox records poisoned")
                .push(record);
            active_tx.send_modify(|n| *n -= 1);
        });
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Records of the connections that have ended, in the order they ended.
    pub fn records(&self) -> Vec<ConnectionRecord> {
        self.records
            .lock()
            .expect("middlebox records poisoned")
            .clone()
    }

    /// How many connections have ended.
    pub fn ended(&self) -> usize {
        self.records
            .lock()
            .expect("middlebox records poisoned")
            .len()
    }

    /// How many connections are open now.
    pub fn open(&self) -> usize {
        *self.active.borrow()
    }

    /// Waits until no connection is open, or the deadline passes.
    pub async fn idle(&self, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.active.clone();
        tokio::time::timeout_at(deadline, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertKind, Pki};
    use crate::upstream::{Relay, RelayConfig};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    struct Path {
        relay: Relay,
        middlebox: Middlebox,
        stop: CancellationToken,
        tasks: TaskTracker,
        pki: Arc<Pki>,
    }

    async fn path(behaviours: Vec<BehaviourSpec>) -> Path {
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let pki = Pki::new("mb").unwrap();
        let id = pki.identity(CertKind::Trusted, "smtp.relay.test").unwrap();
        let relay = Relay::start(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            RelayConfig::new(
                "smtp.relay.test",
                Some(crate::tls::server_config(&id, Default::default()).unwrap()),
            ),
            &tasks,
            stop.clone(),
        )
        .unwrap();
        let middlebox = Middlebox::start(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            MiddleboxConfig {
                upstream: relay.addr(),
                relay_name: "smtp.relay.test".into(),
                behaviours,
                context: BuildContext::default(),
                connect_timeout: Duration::from_secs(5),
                implicit_tls: false,
            },
            &tasks,
            stop.clone(),
        )
        .unwrap();
        Path {
            relay,
            middlebox,
            stop,
            tasks,
            pki,
        }
    }

    async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).await.unwrap() > 0, "{lines:?}");
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.trim_end().to_owned());
            if last {
                return lines;
            }
        }
    }

    async fn finish(p: Path) -> Vec<ConnectionRecord> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        assert!(p.middlebox.idle(deadline).await);
        let records = p.middlebox.records();
        p.stop.cancel();
        p.tasks.close();
        p.tasks.wait().await;
        records
    }

    #[tokio::test]
    async fn strips_starttls_and_sees_the_plaintext_message() {
        let p = path(vec![BehaviourSpec::StripStarttls]).await;
        let mut c = BufReader::new(TcpStream::connect(p.middlebox.addr()).await.unwrap());
        reply(&mut c).await;
        c.get_mut()
            .write_all(b"EHLO client.test\r\n")
            .await
            .unwrap();
        let ehlo = reply(&mut c).await;
        assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
        assert!(ehlo.last().unwrap().as_bytes()[3] == b' ', "{ehlo:?}");
        for cmd in [
            "MAIL FROM:<a@b.test>\r\n",
            "RCPT TO:<c@d.test>\r\n",
            "DATA\r\n",
        ] {
            c.get_mut().write_all(cmd.as_bytes()).await.unwrap();
            reply(&mut c).await;
        }
        c.get_mut()
            .write_all(b"Subject: hi\r\n\r\nbody\r\n.\r\n")
            .await
            .unwrap();
        assert!(reply(&mut c).await[0].contains("in plaintext"));
        c.get_mut().write_all(b"QUIT\r\n").await.unwrap();
        reply(&mut c).await;
        drop(c);
        let received = p.relay.received();
        let records = finish(p).await;
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert!(r.relay_offered_starttls && !r.client_saw_starttls);
        assert!(r.plaintext_mail && r.plaintext_data && !r.tls_started);
        assert!(r.transcript.to_string().contains("S~ 250 STARTTLS"));
        assert_eq!(received.len(), 1);
        assert!(!received[0].tls);
    }

    #[tokio::test]
    async fn hands_over_tls_untouched() {
        let p = path(vec![]).await;
        let stream = TcpStream::connect(p.middlebox.addr()).await.unwrap();
        let mut c = BufReader::new(stream);
        reply(&mut c).await;
        c.get_mut()
            .write_all(b"EHLO client.test\r\n")
            .await
            .unwrap();
        assert!(reply(&mut c).await.iter().any(|l| l.ends_with("STARTTLS")));
        c.get_mut().write_all(b"STARTTLS\r\n").await.unwrap();
        assert!(reply(&mut c).await[0].starts_with("220"));
        // A verifying client: the relay's certificate crosses unchanged.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(p.pki.ca_der().clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tls = connector
            .connect("smtp.relay.test".try_into().unwrap(), c.into_inner())
            .await
            .expect("handshake through the middlebox");
        let mut c = BufReader::new(tls);
        c.get_mut()
            .write_all(b"EHLO client.test\r\n")
            .await
            .unwrap();
        reply(&mut c).await;
        c.get_mut().write_all(b"QUIT\r\n").await.unwrap();
        reply(&mut c).await;
        drop(c);
        let records = finish(p).await;
        let r = &records[0];
        assert!(r.client_sent_starttls && r.tls_started);
        assert!(!r.plaintext_mail && !r.plaintext_data);
        assert!(r.tls_bytes_up > 0 && r.tls_bytes_down > 0);
    }
}

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection::{Connection, ConnectionRecord};
use super::spec::BehaviourSpec;

/// Where a middlebox forwards to, and what it does on the way.
#[derive(Clone, Debug)]
pub struct MiddleboxConfig {
    pub upstream: SocketAddr,
    pub behaviours: Vec<BehaviourSpec>,
    pub connect_timeout: Duration,
}

/// A running middlebox: a listener Postfix connects to, and the records of
/// every connection that has ended.
#[derive(Clone)]
pub struct Middlebox {
    addr: SocketAddr,
    records: Arc<Mutex<Vec<ConnectionRecord>>>,
    /// Connections accepted and not yet ended.
    active: watch::Receiver<usize>,
}

impl Middlebox {
    /// Serves on an already bound listener until `shutdown` fires.
    pub fn start(
        listener: TcpListener,
        config: MiddleboxConfig,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> io::Result<Middlebox> {
        let addr = listener.local_addr()?;
        let records = Arc::new(Mutex::new(Vec::new()));
        let (active_tx, active) = watch::channel(0usize);
        let active_tx = Arc::new(active_tx);
        let mb = Middlebox {
            addr,
            records: records.clone(),
            active,
        };
        let tracker = tasks.clone();
        tasks.spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                active_tx.send_modify(|n| *n += 1);
                let behaviours = config.behaviours.iter().map(BehaviourSpec::build).collect();
                let records = records.clone();
                let active_tx = active_tx.clone();
                let shutdown = shutdown.clone();
                let upstream = config.upstream;
                let timeout = config.connect_timeout;
                tracker.spawn(async move {
                    let record =
                        Connection::run(stream, peer, upstream, behaviours, timeout, shutdown)
                            .await;
                    records
                        .lock()
                        .expect("middlebox records poisoned")
                        .push(record);
                    active_tx.send_modify(|n| *n -= 1);
                });
            }
        });
        Ok(mb)
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

    /// Waits until no connection is open, or the deadline passes.
    pub async fn idle(&self, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.active.clone();
        tokio::time::timeout_at(deadline, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

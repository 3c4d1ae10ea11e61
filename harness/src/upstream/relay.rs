use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mailin::SessionBuilder;
use mailin_embedded::{Action, AuthMechanism, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Received;
use super::recorder::{Policy, Recorder, RelayLog, SessionRecord};
use super::replay::{self, ReplaySpec, Step};
use crate::smtp::{BoxIo, Chunk, LineReader, split_handle};

/// How a relay behaves.
#[derive(Clone)]
pub struct RelayConfig {
    /// The name in the greeting and in accepted-message replies.
    pub hostname: String,
    /// Offered via STARTTLS when present (or, with `implicit_tls`, used
    /// from the first byte).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS from the first byte (port 465 style) instead of STARTTLS.
    pub implicit_tls: bool,
    /// SMTP AUTH mechanisms offered; when any, AUTH is required before MAIL.
    pub auth: Vec<AuthMechanism>,
    /// AUTH is offered, not required: MAIL without it is taken.
    pub auth_optional: bool,
    /// Offer AUTH before TLS as well.
    pub auth_before_tls: bool,
    pub policy: Policy,
    /// A session idle this long is closed.
    pub idle_timeout: Duration,
    /// Recorded replies sent instead of the relay's own (`[relay.replay]`).
    pub replay: Option<ReplaySpec>,
}

impl RelayConfig {
    /// A relay with the given name and STARTTLS configuration, no AUTH.
    pub fn new(hostname: impl Into<String>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        RelayConfig {
            hostname: hostname.into(),
            tls,
            implicit_tls: false,
            auth: Vec::new(),
            auth_before_tls: false,
            auth_optional: false,
            policy: Policy::default(),
            idle_timeout: Duration::from_secs(120),
            replay: None,
        }
    }
}

/// A running fake relay. It stops when the run's shutdown token fires.
#[derive(Clone)]
pub struct Relay {
    addr: SocketAddr,
    log: Arc<RelayLog>,
}

impl Relay {
    /// Serves SMTP on an already bound listener until `shutdown` fires.
    pub fn start(
        listener: TcpListener,
        config: RelayConfig,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> io::Result<Relay> {
        let addr = listener.local_addr()?;
        let log = Arc::new(RelayLog::default());
        let relay = Relay {
            addr,
            log: log.clone(),
        };
        let config = Arc::new(config);
        let tracker = tasks.clone();
        tasks.spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = crate::smtp::accept(&listener) => accepted,
                };
                let config = config.clone();
                let log = log.clone();
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    let tls = Arc::new(AtomicBool::new(false));
                    let end = tokio::select! {
                        _ = shutdown.cancelled() => "the run ended".to_owned(),
                        r = session(stream, peer, &config, log.clone(), tls.clone()) => match r {
                            Ok(end) => end,
                            Err(e) => format!("error: {e}"),
                        },
                    };
                    log.sessions
                        .lock()
                        .expect("relay log poisoned")
                        .push(SessionRecord {
                            peer,
                            tls: tls.load(Ordering::SeqCst),
                            end,
                        });
                    log.ended.send_modify(|n| *n += 1);
                });
            }
        });
        Ok(relay)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.log
            .received
            .lock()
            .expect("relay log poisoned")
            .clone()
    }

    /// Waits until `n` sessions have ended, or the deadline passes.
    pub async fn sessions_ended(&self, n: usize, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.log.ended.subscribe();
        tokio::time::timeout_at(deadline, rx.wait_for(|ended| *ended >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Sessions that have ended so far.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.log
            .sessions
            .lock()
            .expect("relay log poisoned")
            .clone()
    }
}

async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    config: &RelayConfig,
    log: Arc<RelayLog>,
    tls: Arc<AtomicBool>,
) -> io::Result<String> {
    stream.set_nodelay(true)?;
    // A second handle on the socket, to end a replayed session with a reset.
    let (stream, socket) = split_handle(stream)?;
    let replay = config.replay.as_ref();
    let mut builder = SessionBuilder::new(config.hostname.clone());
    let starttls = match replay {
        Some(r) => r.accepts_starttls(),
        None => config.tls.is_some() && !config.implicit_tls,
    };
    if starttls {
        builder.enable_start_tls();
    }
    for m in &config.auth {
        builder.enable_auth(m.clone());
    }
    if config.auth_before_tls {
        builder.insecure_enable_plaintext_auth();
    }
    let authenticated = Arc::new(AtomicBool::new(false));
    let handler = Recorder::new(
        peer,
        tls.clone(),
        authenticated.clone(),
        log,
        config.hostname.clone(),
        config.policy.clone(),
    );
    let mut session = builder.build(peer.ip(), handler);
    let mut io: BoxIo = Box::new(stream);
    if config.implicit_tls {
        io = match begin_tls(io, config, &mut session, &tls).await {
            Ok(io) => io,
            Err(end) => return Ok(end),
        };
    }
    let mut reader = LineReader::default();
    let mut in_data = false;
    match replay {
        Some(r) => write_bytes(&mut io, &r.greeting.to_bytes()).await?,
        None => write(&mut io, &session.greeting()).await?,
    }
    loop {
        let chunk = match tokio::time::timeout(config.idle_timeout, reader.next(&mut io)).await {
            Err(_) => {
                io.write_all(b"421 4.4.2 idle too long, closing\r\n")
                    .await?;
                return Ok("idle timeout".into());
            }
            Ok(r) => r?,
        };
        let Some(chunk) = chunk else {
            return Ok("client closed".into());
        };
        let line = match chunk {
            Chunk::Line(line) => line,
            // Message content may be passed on in pieces; a command may not.
            Chunk::Partial(piece) if in_data => piece,
            Chunk::Partial(_) => {
                io.write_all(b"500 5.5.2 line too long\r\n").await?;
                return Ok("line too long".into());
            }
        };
        let mut line = line;
        if in_data {
            in_data = line != b".\r\n";
        } else if !config.auth.is_empty()
            && !config.auth_optional
            && !authenticated.load(Ordering::SeqCst)
            && crate::smtp::command_verb(&line) == "MAIL"
        {
            // mailin answers "503 Bad sequence"; a relay that requires AUTH
            // says so (RFC 4954).
            io.write_all(b"530 5.7.0 Authentication required\r\n")
                .await?;
            continue;
        } else if let Some(r) = replay {
            // On an implicit-TLS listener the recorded `ehlo` is already
            // the reply inside TLS: only STARTTLS leads to `tls_ehlo`.
            let after_starttls = tls.load(Ordering::SeqCst) && !config.implicit_tls;
            match r.on_command(&mut session, &line, after_starttls)? {
                Step::Mailin(rewritten) => line = rewritten,
                Step::Send(bytes) => {
                    write_bytes(&mut io, &bytes).await?;
                    continue;
                }
                Step::StartTls(bytes) => {
                    write_bytes(&mut io, &bytes).await?;
                    io = match upgrade(io, &mut reader, config, &mut session, &tls).await {
                        Ok(io) => io,
                        Err(end) => return Ok(end),
                    };
                    continue;
                }
                Step::BreakTls(bytes, how) => {
                    write_bytes(&mut io, &bytes).await?;
                    let hello = reader.take_buffered();
                    return Ok(replay::break_tls(
                        &mut io,
                        &hello,
                        how,
                        &socket,
                        config.idle_timeout,
                    )
                    .await);
                }
                Step::Drop(how) => {
                    return Ok(
                        replay::drop_connection(&mut io, how, &socket, config.idle_timeout).await,
                    );
                }
            }
        }
        let response = session.process(&line);
        match response.action {
            Action::NoReply => {}
            Action::Reply => {
                write(&mut io, &response).await?;
                in_data = response.code == 354;
            }
            Action::Close => {
                write(&mut io, &response).await?;
                return Ok(format!("closed with {}", response.code));
            }
            Action::UpgradeTls => {
                write(&mut io, &response).await?;
                io = match upgrade(io, &mut reader, config, &mut session, &tls).await {
                    Ok(io) => io,
                    Err(end) => return Ok(end),
                };
            }
        }
    }
}

/// Answers the client's TLS handshake after a 2xx to STARTTLS. Plaintext
/// pipelined after STARTTLS is dropped, never treated as sent inside TLS
/// (the CVE-2011-0411 class).
async fn upgrade<H: mailin::Handler>(
    io: BoxIo,
    reader: &mut LineReader,
    config: &RelayConfig,
    session: &mut mailin::Session<H>,
    tls: &AtomicBool,
) -> Result<BoxIo, String> {
    let _ = reader.take_buffered();
    begin_tls(io, config, session, tls).await
}

/// Answers the client's TLS handshake and marks the session (and its
/// record) as inside TLS. `Err` says why the session ended instead.
async fn begin_tls<H: mailin::Handler>(
    io: BoxIo,
    config: &RelayConfig,
    session: &mut mailin::Session<H>,
    tls: &AtomicBool,
) -> Result<BoxIo, String> {
    let Some(server) = config.tls.clone() else {
        return Err("TLS was due, but the relay has no certificate".into());
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let stream = match tokio::time::timeout(config.idle_timeout, acceptor.accept(io)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
        Err(_) => return Err("no TLS handshake".into()),
    };
    tls.store(true, Ordering::SeqCst);
    session.tls_active();
    Ok(Box::new(stream))
}

async fn write(io: &mut BoxIo, response: &Response) -> io::Result<()> {
    write_bytes(io, &response.buffer()?).await
}

async fn write_bytes(io: &mut BoxIo, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> (Relay, CancellationToken) {
        start_with(RelayConfig::new("smtp.relay.test", tls)).await
    }

    async fn start_with(config: RelayConfig) -> (Relay, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token = CancellationToken::new();
        let relay = Relay::start(listener, config, &TaskTracker::new(), token.clone()).unwrap();
        (relay, token)
    }

    fn certificate() -> (Arc<rustls::ServerConfig>, Arc<crate::pki::Pki>) {
        let pki = crate::pki::Pki::new("t").unwrap();
        let id = pki
            .identity(crate::pki::CertKind::Trusted, "smtp.relay.test")
            .unwrap();
        (
            crate::tls::server_config(&id, Default::default()).unwrap(),
            pki,
        )
    }

    /// A relay replaying a recorded session whose STARTTLS is answered by `starttls`.
    async fn replaying(starttls: &str) -> (Relay, CancellationToken) {
        #[derive(serde::Deserialize)]
        struct Holder {
            replay: crate::upstream::ReplaySpec,
        }
        let text = format!(
            r#"replay = {{ greeting = ["220-recorded.test ESMTP", "220 second line"], ehlo = ["250-recorded.test", "250-SIZE 1000", "250 STARTTLS"], tls_ehlo = ["250-inside.test", "250 AUTH PLAIN"], starttls = {starttls} }}"#
        );
        let replay = toml::from_str::<Holder>(&text).unwrap().replay;
        let mut config = RelayConfig::new("smtp.relay.test", Some(certificate().0));
        config.replay = Some(replay);
        start_with(config).await
    }

    async fn read_all(c: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
            .await
            .expect("the relay ends the connection")?;
        Ok(got)
    }

    async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            let done = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.trim_end().to_owned());
            if done {
                return lines;
            }
        }
    }

    async fn send(r: &mut BufReader<TcpStream>, line: &str) -> Vec<String> {
        r.get_mut().write_all(line.as_bytes()).await.unwrap();
        reply(r).await
    }

    #[tokio::test]
    async fn accepts_and_records_a_plaintext_message() {
        let (relay, token) = start(None).await;
        let mut c = BufReader::new(TcpStream::connect(relay.addr()).await.unwrap());
        assert!(reply(&mut c).await[0].starts_with("220 smtp.relay.test"));
        let ehlo = send(&mut c, "EHLO client.test\r\n").await;
        assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
        send(&mut c, "MAIL FROM:<a@b.test>\r\n").await;
        send(&mut c, "RCPT TO:<c@d.test>\r\n").await;
        assert!(send(&mut c, "DATA\r\n").await[0].starts_with("354"));
        let done = send(&mut c, "Message-ID: <m1@x>\r\n\r\nhi\r\n.\r\n").await;
        assert!(done[0].contains("in plaintext"), "{done:?}");
        let got = relay.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rcpt_to, vec!["c@d.test".to_owned()]);
        assert_eq!(got[0].message_id.as_deref(), Some("<m1@x>"));
        assert!(!got[0].tls);
        token.cancel();
    }

    #[tokio::test]
    async fn offers_starttls_when_configured_and_refuses_overlong_commands() {
        let (cfg, _pki) = certificate();
        let (relay, token) = start(Some(cfg)).await;
        let mut c = BufReader::new(TcpStream::connect(relay.addr()).await.unwrap());
        reply(&mut c).await;
        let ehlo = send(&mut c, "EHLO client.test\r\n").await;
        assert!(ehlo.iter().any(|l| l.ends_with("STARTTLS")), "{ehlo:?}");
        let long = format!("NOOP {}\r\n", "x".repeat(crate::smtp::MAX_LINE));
        assert!(send(&mut c, &long).await[0].starts_with("500"));
        token.cancel();
    }

    #[tokio::test]
    async fn huge_data_is_counted_not_kept() {
        let (relay, token) = start(None).await;
        let mut c = BufReader::new(TcpStream::connect(relay.addr()).await.unwrap());
        reply(&mut c).await;
        send(&mut c, "EHLO client.test\r\n").await;
        send(&mut c, "MAIL FROM:<a@b.test>\r\n").await;
        send(&mut c, "RCPT TO:<c@d.test>\r\n").await;
        send(&mut c, "DATA\r\n").await;
        let line = format!("{}\r\n", "x".repeat(998));
        let chunk = line.repeat(1000);
        for _ in 0..20 {
            c.get_mut().write_all(chunk.as_bytes()).await.unwrap();
        }
        assert!(send(&mut c, ".\r\n").await[0].starts_with("250"));
        let got = relay.received();
        assert_eq!(got[0].size, 20 * 1000 * line.len());
        token.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_client_is_told_and_dropped() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token = CancellationToken::new();
        let mut config = RelayConfig::new("smtp.relay.test", None);
        config.idle_timeout = Duration::from_secs(30);
        let relay = Relay::start(listener, config, &TaskTracker::new(), token.clone()).unwrap();
        let mut c = BufReader::new(TcpStream::connect(relay.addr()).await.unwrap());
        reply(&mut c).await;
        // Time is paused: the relay's deadline passes without a real wait.
        assert!(reply(&mut c).await[0].starts_with("421"));
        token.cancel();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// Whatever a client sends, then closing: the session ends and is
        /// recorded (a panicking session would never be).
        #[test]
        fn any_client_input_ends_cleanly(input in proptest::collection::vec(proptest::num::u8::ANY, 0..3000)) {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let tasks = TaskTracker::new();
                let token = CancellationToken::new();
                let relay = Relay::start(
                    TcpListener::bind("127.0.0.1:0").await.unwrap(),
                    RelayConfig::new("smtp.relay.test", None),
                    &tasks,
                    token.clone(),
                )
                .unwrap();
                let mut c = TcpStream::connect(relay.addr()).await.unwrap();
                let _ = c.write_all(&input).await;
                let _ = c.shutdown().await;
                let mut sink = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read_to_end(&mut c, &mut sink)).await;
                drop(c);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                proptest::prop_assert!(relay.sessions_ended(1, deadline).await);
                proptest::prop_assert_eq!(relay.sessions().len(), 1);
                token.cancel();
                Ok(())
            })?;
        }
    }

    #[tokio::test]
    async fn replays_a_refused_starttls_and_still_takes_the_mail() {
        let (relay, token) = replaying(r#"{ reply = ["454 4.7.0 recorded refusal"] }"#).await;
        let mut c = BufReader::new(TcpStream::connect(relay.addr()).await.unwrap());
        assert_eq!(
            reply(&mut c).await,
            ["220-recorded.test ESMTP", "220 second line"]
        );
        let ehlo = send(&mut c, "EHLO client.test\r\n").await;
        assert_eq!(ehlo, ["250-recorded.test", "250-SIZE 1000", "250 STARTTLS"]);
        let refused = send(&mut c, "STARTTLS\r\n").await;
        assert_eq!(refused, ["454 4.7.0 recorded refusal"]);
        // The recorded reply announced SIZE, so a client sends it.
        assert!(send(&mut c, "MAIL FROM:<a@b.test> SIZE=40\r\n").await[0].starts_with("250"));
        assert!(send(&mut c, "RCPT TO:<c@d.test>\r\n").await[0].starts_with("250"));
        assert!(send(&mut c, "DATA\r\n").await[0].starts_with("354"));
        let done = send(&mut c, "Subject: x\r\n\r\nhi\r\n.\r\n").await;
        assert!(done[0].contains("in plaintext"), "{done:?}");
        assert_eq!(relay.received().len(), 1);
        token.cancel();
    }

    #[tokio::test]
    async fn replays_an_accepted_starttls_with_the_recorded_tls_ehlo() {
        let (relay, token) = replaying(r#"{ reply = ["220 2.0.0 recorded go ahead"] }"#).await;
        let mut c = BufReader::new(TcpStream::connect(relay.addr()).await.unwrap());
        reply(&mut c).await;
        send(&mut c, "EHLO client.test\r\n").await;
        assert_eq!(
            send(&mut c, "STARTTLS\r\n").await,
            ["220 2.0.0 recorded go ahead"]
        );
        let connector = tokio_rustls::TlsConnector::from(crate::tls::accept_any_client_config());
        let tls = connector
            .connect("smtp.relay.test".try_into().unwrap(), c.into_inner())
            .await
            .expect("the relay completes the handshake");
        let mut c = BufReader::new(tls);
        c.get_mut()
            .write_all(b"EHLO client.test\r\n")
            .await
            .unwrap();
        assert_eq!(reply(&mut c).await, ["250-inside.test", "250 AUTH PLAIN"]);
        assert!(send_mail(&mut c).await[0].contains("over TLS"));
        assert!(relay.received()[0].tls);
        token.cancel();
    }

    /// Sends one message on an open session; the reply to its end of data.
    async fn send_mail<S>(c: &mut BufReader<S>) -> Vec<String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        for cmd in [
            "MAIL FROM:<a@b.test>\r\n",
            "RCPT TO:<c@d.test>\r\n",
            "DATA\r\n",
        ] {
            c.get_mut().write_all(cmd.as_bytes()).await.unwrap();
            reply(c).await;
        }
        c.get_mut()
            .write_all(b"Subject: x\r\n\r\nhi\r\n.\r\n")
            .await
            .unwrap();
        reply(c).await
    }

    #[tokio::test]
    async fn replays_a_recording_inside_implicit_tls() {
        #[derive(serde::Deserialize)]
        struct Holder {
            replay: crate::upstream::ReplaySpec,
        }
        let text = r#"replay = { greeting = ["220 recorded inside TLS"], ehlo = ["250-inside.test", "250 AUTH PLAIN"] }"#;
        let mut config = RelayConfig::new("smtp.relay.test", Some(certificate().0));
        config.implicit_tls = true;
        config.replay = Some(toml::from_str::<Holder>(text).unwrap().replay);
        let (relay, token) = start_with(config).await;
        let plain = TcpStream::connect(relay.addr()).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(crate::tls::accept_any_client_config());
        let tls = connector
            .connect("smtp.relay.test".try_into().unwrap(), plain)
            .await
            .expect("TLS from the first byte");
        let mut c = BufReader::new(tls);
        assert_eq!(reply(&mut c).await, ["220 recorded inside TLS"]);
        c.get_mut()
            .write_all(b"EHLO client.test\r\n")
            .await
            .unwrap();
        assert_eq!(reply(&mut c).await, ["250-inside.test", "250 AUTH PLAIN"]);
        assert!(send_mail(&mut c).await[0].contains("over TLS"));
        assert!(relay.received()[0].tls);
        token.cancel();
    }

    #[tokio::test]
    async fn replays_a_broken_handshake_and_a_dropped_starttls() {
        let (relay, token) =
            replaying(r#"{ reply = ["220 2.0.0 go"], handshake = "alert" }"#).await;
        let mut c = BufReader::new(TcpStream::connect(relay.addr()).await.unwrap());
        reply(&mut c).await;
        send(&mut c, "EHLO client.test\r\n").await;
        assert_eq!(send(&mut c, "STARTTLS\r\n").await, ["220 2.0.0 go"]);
        c.get_mut()
            .write_all(b"\x16\x03\x01 a ClientHello")
            .await
            .unwrap();
        assert_eq!(
            read_all(&mut c).await.unwrap(),
            crate::tls::HANDSHAKE_FAILURE_ALERT
        );
        token.cancel();

        let (relay, token) = replaying(r#"{ drop = "reset" }"#).await;
        let mut c = BufReader::new(TcpStream::connect(relay.addr()).await.unwrap());
        reply(&mut c).await;
        send(&mut c, "EHLO client.test\r\n").await;
        c.get_mut().write_all(b"STARTTLS\r\n").await.unwrap();
        let e = read_all(&mut c).await.expect_err("a reset, not a reply");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
        token.cancel();
    }
}

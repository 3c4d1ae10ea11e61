//! One connection through the middlebox. In plaintext the pump reads the
//! dialogue line by line, pairs each reply with the command it answers, and
//! lets the behaviours act. Once STARTTLS succeeds it hands the bytes over
//! untouched, breaks the handshake, or intercepts TLS and keeps reading.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::behaviour::{
    Behaviour, CloseKind, CommandVerdict, Interception, ReplyContext, Shaping, TlsVerdict,
};
use super::shaping::Shaped;
use super::transcript::{CLOSED, CONTENT, Dir, INTERCEPTED, TLS_BEGAN, TLS_ENDED, Transcript};
use crate::smtp::{
    BoxIo, Chunk, LineReader, Reply, ReplyAssembler, Unit, abort_on_close, command_verb,
    split_handle,
};
use crate::tls::{HandshakeBreak, break_handshake};

/// What a connection showed about the path.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub peer: Option<SocketAddr>,
    /// The middlebox address Postfix connected to (one per path).
    pub local: Option<SocketAddr>,
    /// When the connection was accepted (milliseconds since the epoch).
    pub started_ms: u64,
    /// The relay's EHLO reply listed STARTTLS.
    pub relay_offered_starttls: bool,
    /// An EHLO reply Postfix received listed STARTTLS.
    pub client_saw_starttls: bool,
    /// The MTA's client sent STARTTLS (whether or not the middlebox passed it on).
    pub client_sent_starttls: bool,
    /// TLS started end to end between Postfix and the relay (the middlebox
    /// saw the STARTTLS exchange succeed and handed the handshake over).
    pub tls_started: bool,
    /// How the middlebox broke the handshake, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_broken: Option<String>,
    /// The middlebox terminated Postfix's TLS with its own certificate.
    pub intercepted: bool,
    /// The TLS version Postfix negotiated with the intercepting middlebox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intercept_protocol: Option<String>,
    /// The intercepting middlebox spoke TLS to the relay.
    pub intercept_relay_tls: bool,
    /// MAIL FROM crossed the Postfix side of the wire in plaintext.
    pub plaintext_mail: bool,
    /// Message content crossed the Postfix side of the wire in plaintext.
    pub plaintext_data: bool,
    /// An AUTH command crossed the Postfix side of the wire in plaintext.
    pub plaintext_auth: bool,
    /// The middlebox could read the message content (plaintext, or intercepted).
    pub middlebox_read_data: bool,
    /// Message content crossed the relay side of the wire in plaintext.
    pub relay_side_plaintext_data: bool,
    /// Bytes relayed after TLS began, Postfix to relay and back.
    pub tls_bytes_up: u64,
    pub tls_bytes_down: u64,
    /// How the connection ended.
    pub end: String,
    pub transcript: Transcript,
}

/// How many lines of message content the transcript shows.
const CONTENT_LINES_SHOWN: usize = 12;
/// The longest the middlebox waits for a TLS handshake it takes part in.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `fail-handshake` in silence mode holds a connection: longer
/// than Postfix's default smtp_starttls_timeout (300s), so Postfix is the
/// one that gives up, yet not for ever.
const SILENCE_LIMIT: Duration = Duration::from_secs(600);

enum Pending {
    /// Forwarded to the relay; its reply is awaited.
    Relay(String),
    /// Answered by the middlebox; sent once the replies before it are.
    Local(String, Reply, String),
}

enum Step {
    Continue,
    End(String),
    /// End abortively: the client sees a reset, not an orderly close.
    Reset(String),
    Tls,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Plain,
    Intercepted,
}

/// What a connection needs besides its socket.
pub(crate) struct Setup {
    pub local: SocketAddr,
    pub upstream: SocketAddr,
    /// The relay's name, for SNI when the middlebox speaks TLS to it.
    pub relay_name: String,
    pub behaviours: Vec<Box<dyn Behaviour>>,
    pub connect_timeout: Duration,
    /// TLS from the first byte: no plaintext dialogue to read.
    pub implicit_tls: bool,
}

pub(crate) struct Connection {
    client: BoxIo,
    /// A second handle on the client socket, for socket options the boxed
    /// stream hides (an abortive close).
    client_socket: std::net::TcpStream,
    server: BoxIo,
    relay_name: String,
    client_lines: LineReader,
    server_lines: LineReader,
    replies: ReplyAssembler,
    pending: VecDeque<Pending>,
    greeted: bool,
    in_data: bool,
    content_lines: usize,
    content_bytes: usize,
    phase: Phase,
    implicit_tls: bool,
    behaviours: Vec<Box<dyn Behaviour>>,
    notes: Arc<Mutex<Vec<String>>>,
    record: ConnectionRecord,
}

impl Connection {
    pub async fn run(
        client: TcpStream,
        peer: SocketAddr,
        setup: Setup,
        shutdown: CancellationToken,
    ) -> ConnectionRecord {
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let mut record = ConnectionRecord {
            peer: Some(peer),
            local: Some(setup.local),
            started_ms,
            transcript: Transcript::new(),
            ..Default::default()
        };
        let names: Vec<_> = setup.behaviours.iter().map(|b| b.name()).collect();
        record.transcript.note(format!(
            "connection from {peer} to {}; behaviours: {}",
            setup.local,
            if names.is_empty() {
                "pass-through".to_owned()
            } else {
                names.join(", ")
            }
        ));
        let upstream = setup.upstream;
        let server =
            match tokio::time::timeout(setup.connect_timeout, TcpStream::connect(upstream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    record.end = format!("could not reach the relay at {upstream}: {e}");
                    record.transcript.note(record.end.clone());
                    return record;
                }
                Err(_) => {
                    record.end = format!("timed out connecting to the relay at {upstream}");
                    record.transcript.note(record.end.clone());
                    return record;
                }
            };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client, client_socket) = match split_handle(client) {
            Ok(pair) => pair,
            Err(e) => {
                record.end = format!("could not set up the client socket: {e}");
                return record;
            }
        };
        let mut shaping = Shaping::default();
        for b in &setup.behaviours {
            b.shape(&mut shaping);
        }
        let notes = Arc::new(Mutex::new(Vec::new()));
        let (client, server): (BoxIo, BoxIo) = if shaping == Shaping::default() {
            (Box::new(client), Box::new(server))
        } else {
            (
                Box::new(Shaped::new(
                    Box::new(client),
                    shaping.to_client,
                    "the MTA",
                    notes.clone(),
                )),
                Box::new(Shaped::new(
                    Box::new(server),
                    shaping.to_server,
                    "the relay",
                    notes.clone(),
                )),
            )
        };
        let mut conn = Connection {
            client,
            client_socket,
            server,
            relay_name: setup.relay_name,
            client_lines: LineReader::default(),
            server_lines: LineReader::default(),
            replies: ReplyAssembler::new(),
            pending: VecDeque::new(),
            greeted: false,
            in_data: false,
            content_lines: 0,
            content_bytes: 0,
            phase: Phase::Plain,
            implicit_tls: setup.implicit_tls,
            behaviours: setup.behaviours,
            notes,
            record,
        };
        let end = tokio::select! {
            _ = shutdown.cancelled() => "the run ended".to_owned(),
            end = conn.pump() => end,
        };
        conn.drain_notes();
        conn.record.transcript.note(format!("{CLOSED}{end}"));
        conn.record.end = end;
        conn.record
    }

    async fn pump(&mut self) -> String {
        if self.implicit_tls {
            self.record
                .transcript
                .note("implicit TLS: the connection is TLS from its first byte");
            match self.start_tls().await {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(e) => return format!("i/o error during TLS: {e}"),
            }
        }
        loop {
            let step = tokio::select! {
                c = self.client_lines.next(&mut self.client) => self.on_client_chunk(c).await,
                s = self.server_lines.next(&mut self.server) => self.on_server_chunk(s).await,
            };
            self.drain_notes();
            match step {
                Ok(Step::Continue) => {}
                Ok(Step::End(why)) => {
                    let _ = self.client.shutdown().await;
                    let _ = self.server.shutdown().await;
                    return why;
                }
                Ok(Step::Reset(why)) => {
                    self.reset_client();
                    let _ = self.server.shutdown().await;
                    return why;
                }
                Ok(Step::Tls) => match self.start_tls().await {
                    Ok(None) => {}
                    Ok(Some(end)) => return end,
                    Err(e) => return format!("i/o error during TLS: {e}"),
                },
                Err(e) => return format!("i/o error: {e}"),
            }
        }
    }

    fn drain_notes(&mut self) {
        let notes: Vec<String> = std::mem::take(&mut *self.notes.lock().expect("notes poisoned"));
        for n in notes {
            self.record.transcript.note(n);
        }
    }

    fn reset_client(&mut self) {
        abort_on_close(&self.client_socket);
    }

    async fn on_client_chunk(&mut self, chunk: io::Result<Option<Chunk>>) -> io::Result<Step> {
        let Some(chunk) = chunk? else {
            return Ok(Step::End("the MTA closed the connection".into()));
        };
        if self.in_data {
            return self.content(chunk).await;
        }
        let line = match chunk {
            Chunk::Line(line) => line,
            Chunk::Partial(piece) => {
                self.record.transcript.push(
                    Dir::Client,
                    &piece,
                    Some("not a complete line; forwarded as is".into()),
                );
                self.server.write_all(&piece).await?;
                return Ok(Step::Continue);
            }
        };
        let verb = command_verb(&line);
        // The client asked for TLS, whatever the middlebox makes of it.
        if verb == "STARTTLS" {
            self.record.client_sent_starttls = true;
        }
        let mut verdict = CommandVerdict::Pass;
        let mut by = "";
        for b in &mut self.behaviours {
            match b.on_command(&verb, &line) {
                CommandVerdict::Pass => {}
                other => {
                    verdict = other;
                    by = b.name();
                    break;
                }
            }
        }
        match verdict {
            CommandVerdict::Pass => {
                self.note_command(&verb);
                let note = (verb == "AUTH" && self.phase == Phase::Plain)
                    .then(|| "credentials in plaintext".to_owned());
                self.record.transcript.push(Dir::Client, &line, note);
                let mut bytes = line;
                for b in &mut self.behaviours {
                    if let Some(extra) = b.after_command(&verb) {
                        let note = format!("{}: sent in the same packet", b.name());
                        self.record
                            .transcript
                            .push_lines(Dir::ToServer, &extra, Some(&note));
                        bytes.extend_from_slice(&extra);
                    }
                }
                self.server.write_all(&bytes).await?;
                self.pending.push_back(Pending::Relay(verb));
                Ok(Step::Continue)
            }
            CommandVerdict::Answer(reply) => {
                self.record.transcript.push(
                    Dir::ClientHeld,
                    &line,
                    Some(format!("{by}: not forwarded, answered by the middlebox")),
                );
                self.pending
                    .push_back(Pending::Local(verb, reply, by.to_owned()));
                self.flush_local().await
            }
            CommandVerdict::Close(kind) => {
                self.record.transcript.push(
                    Dir::ClientHeld,
                    &line,
                    Some(format!("{by}: not forwarded; connection closed ({kind:?})")),
                );
                let why = format!("{by} closed the connection on {verb}");
                Ok(match kind {
                    CloseKind::Fin => Step::End(why),
                    CloseKind::Reset => Step::Reset(why),
                })
            }
        }
    }

    fn note_command(&mut self, verb: &str) {
        let plain = self.phase == Phase::Plain;
        match verb {
            "MAIL" if plain => self.record.plaintext_mail = true,
            "AUTH" if plain => self.record.plaintext_auth = true,
            _ => {}
        }
    }

    /// Message content, between DATA's 354 and the lone dot.
    async fn content(&mut self, chunk: Chunk) -> io::Result<Step> {
        self.server.write_all(chunk.bytes()).await?;
        self.record.middlebox_read_data = true;
        match self.phase {
            Phase::Plain => {
                self.record.plaintext_data = true;
                self.record.relay_side_plaintext_data = true;
            }
            Phase::Intercepted => {
                if !self.record.intercept_relay_tls {
                    self.record.relay_side_plaintext_data = true;
                }
            }
        }
        let end = matches!(&chunk, Chunk::Line(l) if l == b".\r\n" || l == b".\n");
        if end {
            self.in_data = false;
            if self.content_lines > CONTENT_LINES_SHOWN {
                let how = match self.phase {
                    Phase::Plain => "in plaintext",
                    Phase::Intercepted => "read by the intercepting middlebox",
                };
                self.record.transcript.note(format!(
                    "{CONTENT}{} lines, {} bytes, {how}",
                    self.content_lines, self.content_bytes
                ));
            }
            self.record
                .transcript
                .push(Dir::Client, chunk.bytes(), None);
            self.pending.push_back(Pending::Relay("DATA-END".into()));
        } else {
            self.content_lines += 1;
            self.content_bytes += chunk.bytes().len();
            if self.content_lines <= CONTENT_LINES_SHOWN {
                self.record
                    .transcript
                    .push(Dir::Client, chunk.bytes(), None);
            }
        }
        Ok(Step::Continue)
    }

    async fn on_server_chunk(&mut self, chunk: io::Result<Option<Chunk>>) -> io::Result<Step> {
        let Some(chunk) = chunk? else {
            if let Some(Unit::Raw(rest)) = self.replies.finish() {
                self.record
                    .transcript
                    .push(Dir::Server, &rest, Some("incomplete reply".into()));
                self.client.write_all(&rest).await?;
            }
            return Ok(Step::End("the relay closed the connection".into()));
        };
        let complete = matches!(chunk, Chunk::Line(_));
        for unit in self.replies.push(chunk.bytes(), complete) {
            match unit {
                Unit::Raw(bytes) => {
                    self.record.transcript.push(
                        Dir::Server,
                        &bytes,
                        Some("not a well-formed reply; forwarded as is".into()),
                    );
                    self.client.write_all(&bytes).await?;
                }
                Unit::Reply(reply) => {
                    if let Step::Tls = self.reply(reply).await? {
                        return Ok(Step::Tls);
                    }
                }
            }
        }
        Ok(Step::Continue)
    }

    async fn reply(&mut self, mut reply: Reply) -> io::Result<Step> {
        let answering = if self.greeted {
            match self.pending.pop_front() {
                Some(Pending::Relay(verb)) => Some(verb),
                Some(local @ Pending::Local(..)) => {
                    // Not reached: local answers at the front are sent at once.
                    self.pending.push_front(local);
                    None
                }
                None => None,
            }
        } else {
            self.greeted = true;
            None
        };
        let ctx = ReplyContext {
            answering: answering.as_deref(),
        };
        let is_ehlo = ctx.answering == Some("EHLO");
        if is_ehlo && self.phase == Phase::Plain && reply.offers_starttls() {
            self.record.relay_offered_starttls = true;
        }
        let original = reply.to_bytes();
        let mut notes = Vec::new();
        for b in &mut self.behaviours {
            if let Some(note) = b.on_reply(ctx, &mut reply) {
                notes.push(format!("{}: {note}", b.name()));
            }
        }
        let mut delivered = reply.to_bytes();
        if delivered == original {
            self.record
                .transcript
                .push_lines(Dir::Server, &original, None);
        } else {
            self.record.transcript.push_lines(
                Dir::ServerHeld,
                &original,
                Some("as the relay sent it"),
            );
            let note = notes.join("; ");
            self.record
                .transcript
                .push_lines(Dir::ToClient, &delivered, Some(&note));
        }
        for b in &mut self.behaviours {
            if let Some(extra) = b.after_reply(ctx, &reply) {
                let note = format!("{}: sent in the same packet", b.name());
                self.record
                    .transcript
                    .push_lines(Dir::ToClient, &extra, Some(&note));
                delivered.extend_from_slice(&extra);
            }
        }
        if is_ehlo && reply.offers_starttls() {
            self.record.client_saw_starttls = true;
        }
        self.client.write_all(&delivered).await?;
        let code = reply.code();
        match answering.as_deref() {
            Some("DATA") if code == 354 => {
                self.in_data = true;
                self.content_lines = 0;
                self.content_bytes = 0;
            }
            Some("STARTTLS") if (200..300).contains(&code) => return Ok(Step::Tls),
            _ => {}
        }
        self.flush_local().await
    }

    /// Sends middlebox answers that are next in line. A 2xx answer to
    /// STARTTLS starts TLS with the middlebox.
    async fn flush_local(&mut self) -> io::Result<Step> {
        while let Some(Pending::Local(..)) = self.pending.front() {
            let Some(Pending::Local(verb, reply, by)) = self.pending.pop_front() else {
                unreachable!("front was checked");
            };
            let bytes = reply.to_bytes();
            self.record.transcript.push_lines(
                Dir::ToClient,
                &bytes,
                Some(&format!("{by}: answer")),
            );
            self.client.write_all(&bytes).await?;
            if verb == "STARTTLS" && (200..300).contains(&reply.code()) {
                return Ok(Step::Tls);
            }
        }
        Ok(Step::Continue)
    }

    /// Both sides expect a TLS handshake now. `None`: keep pumping (the
    /// middlebox intercepted); `Some`: the connection is over.
    async fn start_tls(&mut self) -> io::Result<Option<String>> {
        if self.phase == Phase::Intercepted {
            // A second STARTTLS inside intercepted TLS: nothing to hand over.
            return Ok(None);
        }
        let verdict = self
            .behaviours
            .iter_mut()
            .map(|b| b.on_tls())
            .find(|v| !matches!(v, TlsVerdict::Pass))
            .unwrap_or(TlsVerdict::Pass);
        match verdict {
            TlsVerdict::Pass => Ok(Some(self.tls_passthrough().await)),
            TlsVerdict::Break(how) => self.break_tls(how).await.map(Some),
            TlsVerdict::Intercept(i) => self.intercept(i).await,
        }
    }

    async fn tls_passthrough(&mut self) -> String {
        self.record.tls_started = true;
        self.record.transcript.note(format!(
            "{TLS_BEGAN}from here the MTA and the relay exchange ciphertext the middlebox cannot read"
        ));
        // Whatever either side sent right behind the STARTTLS exchange goes
        // on unchanged, as on a plain wire.
        let up = self.client_lines.take_buffered();
        let down = self.server_lines.take_buffered();
        let (up_n, down_n, error) =
            relay_bytes(&mut self.client, &mut self.server, &up, &down).await;
        self.record.tls_bytes_up = up_n;
        self.record.tls_bytes_down = down_n;
        self.record.transcript.note(format!(
            "{TLS_ENDED}{up_n} bytes MTA to relay, {down_n} bytes relay to MTA"
        ));
        match error {
            None => "closed after TLS".into(),
            Some(e) => format!("closed after TLS: {e}"),
        }
    }

    async fn break_tls(&mut self, how: HandshakeBreak) -> io::Result<String> {
        let what = how.describe();
        self.record.tls_broken = Some(what.to_owned());
        self.record
            .transcript
            .note(format!("fail-handshake: the middlebox {what}"));
        // The relay is left waiting for a handshake that will not come.
        let _ = self.server.shutdown().await;
        let hello = self.client_lines.take_buffered();
        let wait = match how {
            HandshakeBreak::Silence => SILENCE_LIMIT,
            _ => HANDSHAKE_TIMEOUT,
        };
        let broken =
            break_handshake(&mut self.client, &hello, how, &self.client_socket, wait).await?;
        let n = broken.client_bytes;
        if how == HandshakeBreak::Silence {
            if !broken.client_gave_up {
                self.record.transcript.note(format!(
                    "the MTA sent {n} bytes of handshake and was still waiting after {}s; closed",
                    SILENCE_LIMIT.as_secs()
                ));
                return Ok("fail-handshake silence outlasted its limit".into());
            }
            self.record
                .transcript
                .note(format!("the MTA sent {n} bytes of handshake and gave up"));
            return Ok("the MTA gave up waiting".into());
        }
        self.record.transcript.note(format!(
            "the MTA sent {n} bytes of handshake{}",
            if broken.handshake_record {
                " (a TLS handshake record)"
            } else {
                ""
            }
        ));
        let shown: &[u8] = match how {
            HandshakeBreak::Alert => b"[TLS alert record: fatal, handshake_failure]",
            other => other.answer(),
        };
        if !shown.is_empty() {
            self.record
                .transcript
                .push(Dir::ToClient, shown, Some("fail-handshake".into()));
        }
        Ok(match how {
            HandshakeBreak::Reset => "fail-handshake reset the connection",
            _ => "fail-handshake closed the connection",
        }
        .into())
    }

    async fn intercept(&mut self, i: Interception) -> io::Result<Option<String>> {
        self.record.intercepted = true;
        // Plaintext pipelined behind STARTTLS is never taken into TLS.
        let _ = self.client_lines.take_buffered();
        let _ = self.server_lines.take_buffered();
        self.record.transcript.note(
            "intercept-tls: the middlebox answers the MTA's TLS handshake with its own certificate",
        );
        let client = std::mem::replace(&mut self.client, placeholder());
        let accepted = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tokio_rustls::TlsAcceptor::from(i.acceptor).accept(client),
        )
        .await;
        match accepted {
            Ok(Ok(tls)) => {
                let version = tls
                    .get_ref()
                    .1
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                self.record.intercept_protocol = Some(version);
                self.client = Box::new(tls);
            }
            Ok(Err(e)) => {
                let why = format!("the MTA's TLS handshake with the middlebox failed: {e}");
                self.record.transcript.note(why.clone());
                let _ = self.server.shutdown().await;
                return Ok(Some(why));
            }
            Err(_) => {
                let _ = self.server.shutdown().await;
                return Ok(Some("the MTA never completed its TLS handshake".into()));
            }
        }
        if i.upstream_tls || self.implicit_tls {
            let server = std::mem::replace(&mut self.server, placeholder());
            let name = rustls::pki_types::ServerName::try_from(self.relay_name.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let connector =
                tokio_rustls::TlsConnector::from(crate::tls::accept_any_client_config());
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, server)).await {
                Ok(Ok(tls)) => {
                    self.server = Box::new(tls);
                    self.record.intercept_relay_tls = true;
                }
                Ok(Err(e)) => {
                    let why = format!("the middlebox's TLS handshake with the relay failed: {e}");
                    self.record.transcript.note(why.clone());
                    return Ok(Some(why));
                }
                Err(_) => return Ok(Some("the relay never completed its TLS handshake".into())),
            }
        }
        self.phase = Phase::Intercepted;
        self.pending.clear();
        self.in_data = false;
        self.replies = ReplyAssembler::new();
        self.record.transcript.note(format!(
            "{INTERCEPTED}({}), {} with the relay; the middlebox reads everything from here",
            self.record.intercept_protocol.as_deref().unwrap_or("?"),
            if self.record.intercept_relay_tls {
                "TLS"
            } else {
                "plaintext"
            }
        ));
        Ok(None)
    }
}

/// Copies bytes both ways until both sides have closed (or one fails),
/// starting with bytes already read. Counts survive an error.
async fn relay_bytes(
    client: &mut BoxIo,
    server: &mut BoxIo,
    up_first: &[u8],
    down_first: &[u8],
) -> (u64, u64, Option<io::Error>) {
    let (mut up, mut down) = (0u64, 0u64);
    let result: io::Result<()> = async {
        server.write_all(up_first).await?;
        up += up_first.len() as u64;
        client.write_all(down_first).await?;
        down += down_first.len() as u64;
        let (mut client_open, mut server_open) = (true, true);
        let mut a = [0u8; 16 * 1024];
        let mut b = [0u8; 16 * 1024];
        while client_open || server_open {
            tokio::select! {
                n = client.read(&mut a), if client_open => {
                    let n = n?;
                    if n == 0 {
                        client_open = false;
                        let _ = server.shutdown().await;
                    } else {
                        server.write_all(&a[..n]).await?;
                        up += n as u64;
                    }
                }
                n = server.read(&mut b), if server_open => {
                    let n = n?;
                    if n == 0 {
                        server_open = false;
                        let _ = client.shutdown().await;
                    } else {
                        client.write_all(&b[..n]).await?;
                        down += n as u64;
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    (up, down, result.err())
}

/// Stands in for a stream while it is being wrapped in TLS.
fn placeholder() -> BoxIo {
    Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()))
}

//! One connection through the middlebox. In plaintext the pump reads the
//! dialogue line by line, pairs each reply with the command it answers, and
//! lets the behaviours act; once STARTTLS succeeds it hands the bytes over
//! untouched and counts them.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::behaviour::{Behaviour, CloseKind, CommandVerdict, ReplyContext, TlsVerdict};
use super::transcript::{Dir, Transcript};
use crate::smtp::{BoxIo, Chunk, LineReader, Reply, ReplyAssembler, Unit, command_verb};

/// What a connection showed about the path.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConnectionRecord {
    pub peer: Option<SocketAddr>,
    /// The relay's EHLO reply listed STARTTLS.
    pub relay_offered_starttls: bool,
    /// The EHLO reply Postfix received listed STARTTLS.
    pub client_saw_starttls: bool,
    /// Postfix sent STARTTLS.
    pub client_sent_starttls: bool,
    /// TLS started between Postfix and the relay (the middlebox saw the
    /// STARTTLS exchange succeed and handed over the handshake).
    pub tls_started: bool,
    /// MAIL FROM crossed the wire in plaintext.
    pub plaintext_mail: bool,
    /// Message content crossed the wire in plaintext.
    pub plaintext_data: bool,
    /// An AUTH command crossed the wire in plaintext.
    pub plaintext_auth: bool,
    /// Bytes relayed after TLS began, Postfix to relay and back.
    pub tls_bytes_up: u64,
    pub tls_bytes_down: u64,
    /// How the connection ended.
    pub end: String,
    pub transcript: Transcript,
}

/// How many lines of message content the transcript shows.
const CONTENT_LINES_SHOWN: usize = 12;

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

pub(crate) struct Connection {
    client: BoxIo,
    /// A second handle on the client socket, for socket options the boxed
    /// stream hides (an abortive close).
    client_socket: std::net::TcpStream,
    server: BoxIo,
    client_lines: LineReader,
    server_lines: LineReader,
    replies: ReplyAssembler,
    pending: VecDeque<Pending>,
    greeted: bool,
    in_data: bool,
    content_lines: usize,
    content_bytes: usize,
    behaviours: Vec<Box<dyn Behaviour>>,
    record: ConnectionRecord,
}

impl Connection {
    pub async fn run(
        client: TcpStream,
        peer: SocketAddr,
        upstream: SocketAddr,
        behaviours: Vec<Box<dyn Behaviour>>,
        connect_timeout: Duration,
        shutdown: CancellationToken,
    ) -> ConnectionRecord {
        let mut record = ConnectionRecord {
            peer: Some(peer),
            transcript: Transcript::new(),
            ..Default::default()
        };
        let names: Vec<_> = behaviours.iter().map(|b| b.name()).collect();
        record.transcript.note(format!(
            "connection from {peer}; behaviours: {}",
            if names.is_empty() {
                "pass-through".to_owned()
            } else {
                names.join(", ")
            }
        ));
        let server = match tokio::time::timeout(connect_timeout, TcpStream::connect(upstream)).await
        {
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
        let mut conn = Connection {
            client: Box::new(client),
            client_socket,
            server: Box::new(server),
            client_lines: LineReader::default(),
            server_lines: LineReader::default(),
            replies: ReplyAssembler::new(),
            pending: VecDeque::new(),
            greeted: false,
            in_data: false,
            content_lines: 0,
            content_bytes: 0,
            behaviours,
            record,
        };
        let end = tokio::select! {
            _ = shutdown.cancelled() => "the run ended".to_owned(),
            end = conn.pump() => end,
        };
        conn.record.transcript.note(format!("closed: {end}"));
        conn.record.end = end;
        conn.record
    }

    async fn pump(&mut self) -> String {
        loop {
            let step = tokio::select! {
                c = self.client_lines.next(&mut self.client) => self.on_client_chunk(c).await,
                s = self.server_lines.next(&mut self.server) => self.on_server_chunk(s).await,
            };
            match step {
                Ok(Step::Continue) => {}
                Ok(Step::End(why)) => {
                    let _ = self.client.shutdown().await;
                    let _ = self.server.shutdown().await;
                    return why;
                }
                Ok(Step::Reset(why)) => {
                    // Linger zero turns the close into a RST.
                    let _ = socket2::SockRef::from(&self.client_socket)
                        .set_linger(Some(Duration::ZERO));
                    let _ = self.server.shutdown().await;
                    return why;
                }
                Ok(Step::Tls) => return self.tls().await,
                Err(e) => return format!("i/o error: {e}"),
            }
        }
    }

    async fn on_client_chunk(&mut self, chunk: io::Result<Option<Chunk>>) -> io::Result<Step> {
        let Some(chunk) = chunk? else {
            return Ok(Step::End("Postfix closed the connection".into()));
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
                self.record.transcript.push(Dir::Client, &line, None);
                self.server.write_all(&line).await?;
                self.pending.push_back(Pending::Relay(verb));
            }
            CommandVerdict::Answer(reply) => {
                self.record.transcript.push(
                    Dir::ClientHeld,
                    &line,
                    Some(format!("{by}: not forwarded, answered by the middlebox")),
                );
                self.pending
                    .push_back(Pending::Local(verb, reply, by.to_owned()));
                self.flush_local().await?;
            }
            CommandVerdict::Close(kind) => {
                self.record.transcript.push(
                    Dir::ClientHeld,
                    &line,
                    Some(format!("{by}: not forwarded; connection closed ({kind:?})")),
                );
                let why = format!("{by} closed the connection on {verb}");
                return Ok(match kind {
                    CloseKind::Fin => Step::End(why),
                    CloseKind::Reset => Step::Reset(why),
                });
            }
        }
        Ok(Step::Continue)
    }

    fn note_command(&mut self, verb: &str) {
        match verb {
            "STARTTLS" => self.record.client_sent_starttls = true,
            "MAIL" => self.record.plaintext_mail = true,
            "AUTH" => self.record.plaintext_auth = true,
            _ => {}
        }
    }

    /// Message content, between DATA's 354 and the lone dot.
    async fn content(&mut self, chunk: Chunk) -> io::Result<Step> {
        self.server.write_all(chunk.bytes()).await?;
        self.record.plaintext_data = true;
        let end = matches!(&chunk, Chunk::Line(l) if l == b".\r\n" || l == b".\n");
        if end {
            self.in_data = false;
            if self.content_lines > CONTENT_LINES_SHOWN {
                self.record.transcript.note(format!(
                    "message content: {} lines, {} bytes, in plaintext",
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
                    // Cannot happen: local answers at the front are sent at once.
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
        if is_ehlo && has_starttls(&reply) {
            self.record.relay_offered_starttls = true;
        }
        let original = reply.to_bytes();
        let mut notes = Vec::new();
        for b in &mut self.behaviours {
            if let Some(note) = b.on_reply(ctx, &mut reply) {
                notes.push(format!("{}: {note}", b.name()));
            }
        }
        let delivered = reply.to_bytes();
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
        if is_ehlo && has_starttls(&reply) {
            self.record.client_saw_starttls = true;
        }
        self.client.write_all(&delivered).await?;
        self.flush_local().await?;
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
        Ok(Step::Continue)
    }

    /// Sends middlebox answers that are next in line.
    async fn flush_local(&mut self) -> io::Result<()> {
        while let Some(Pending::Local(..)) = self.pending.front() {
            let Some(Pending::Local(_verb, reply, by)) = self.pending.pop_front() else {
                unreachable!("front was checked");
            };
            let bytes = reply.to_bytes();
            self.record.transcript.push_lines(
                Dir::ToClient,
                &bytes,
                Some(&format!("{by}: answer")),
            );
            self.client.write_all(&bytes).await?;
        }
        Ok(())
    }

    async fn tls(&mut self) -> String {
        let verdict = self
            .behaviours
            .iter_mut()
            .map(|b| b.on_tls())
            .find(|v| !matches!(v, TlsVerdict::Pass))
            .unwrap_or(TlsVerdict::Pass);
        match verdict {
            TlsVerdict::Pass => self.tls_passthrough().await,
        }
    }

    async fn tls_passthrough(&mut self) -> String {
        self.record.tls_started = true;
        self.record.transcript.note(
            "TLS began: from here Postfix and the relay exchange ciphertext the middlebox cannot read",
        );
        // Whatever either side sent right behind the STARTTLS exchange goes
        // on unchanged, as on a plain wire.
        let up = self.client_lines.take_buffered();
        let down = self.server_lines.take_buffered();
        let result = async {
            self.server.write_all(&up).await?;
            self.client.write_all(&down).await?;
            tokio::io::copy_bidirectional(&mut self.client, &mut self.server).await
        }
        .await;
        let (up_n, down_n) = match &result {
            Ok((a, b)) => (*a, *b),
            Err(_) => (0, 0),
        };
        self.record.tls_bytes_up = up_n + up.len() as u64;
        self.record.tls_bytes_down = down_n + down.len() as u64;
        self.record.transcript.note(format!(
            "TLS ended: {} bytes Postfix to relay, {} bytes relay to Postfix",
            self.record.tls_bytes_up, self.record.tls_bytes_down
        ));
        match result {
            Ok(_) => "closed after TLS".into(),
            Err(e) => format!("closed after TLS: {e}"),
        }
    }
}

fn has_starttls(reply: &Reply) -> bool {
    reply
        .lines
        .iter()
        .skip(1)
        .any(|l| l.keyword() == "STARTTLS")
}

/// The stream for tokio plus a duplicate handle on the same socket.
fn split_handle(stream: TcpStream) -> io::Result<(TcpStream, std::net::TcpStream)> {
    let std = stream.into_std()?;
    let dup = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, dup))
}

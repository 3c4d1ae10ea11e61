//! Breaking a TLS handshake on purpose, as a server or a device on the
//! path does after it let STARTTLS succeed: the middlebox's
//! `fail-handshake` and a replaying relay's `handshake = "..."` both come
//! here, so the two cannot drift apart.

use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::smtp::{abort_on_close, hold};

/// A fatal TLS alert record (handshake_failure), as a server that refuses
/// the ClientHello sends it.
pub const HANDSHAKE_FAILURE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

/// What `garbage` answers: plainly not a TLS record.
const GARBAGE: &[u8] = b"this is not TLS\r\n";

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// How the server side breaks the handshake the client begins, and so how
/// the failure looks to the client. Written in scenarios by these names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandshakeBreak {
    /// A fatal TLS alert (handshake_failure) answers the ClientHello.
    #[default]
    Alert,
    /// Bytes that are not TLS answer the ClientHello.
    Garbage,
    /// An orderly close (FIN) after the ClientHello.
    Close,
    /// A reset (RST) after the ClientHello.
    Reset,
    /// No answer at all: the connection stays open and silent until the
    /// client gives up.
    Silence,
}

impl HandshakeBreak {
    pub const ALL: [HandshakeBreak; 5] = [
        HandshakeBreak::Alert,
        HandshakeBreak::Garbage,
        HandshakeBreak::Close,
        HandshakeBreak::Reset,
        HandshakeBreak::Silence,
    ];

    /// The name a scenario uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            HandshakeBreak::Alert => "alert",
            HandshakeBreak::Garbage => "garbage",
            HandshakeBreak::Close => "close",
            HandshakeBreak::Reset => "reset",
            HandshakeBreak::Silence => "silence",
        }
    }

    /// What the breaking side does, after "the middlebox" or "the relay".
    pub fn describe(self) -> &'static str {
        match self {
            HandshakeBreak::Alert => "answers the ClientHello with a fatal TLS alert",
            HandshakeBreak::Garbage => "answers the ClientHello with bytes that are not TLS",
            HandshakeBreak::Close => "closes the connection after the ClientHello",
            HandshakeBreak::Reset => "resets the connection after the ClientHello",
            HandshakeBreak::Silence => "says nothing, holding the connection open",
        }
    }

    /// The bytes sent in answer to the ClientHello (none for the modes
    /// that only end the connection or stay silent).
    pub fn answer(self) -> &'static [u8] {
        match self {
            HandshakeBreak::Alert => &HANDSHAKE_FAILURE_ALERT,
            HandshakeBreak::Garbage => GARBAGE,
            HandshakeBreak::Close | HandshakeBreak::Reset | HandshakeBreak::Silence => b"",
        }
    }
}

/// What the client did while its handshake was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broken {
    /// Bytes of handshake the client sent, those read before included.
    pub client_bytes: usize,
    /// They began with a TLS handshake record.
    pub handshake_record: bool,
    /// `silence` only: the client closed the connection within the wait
    /// (else the breaking side stopped waiting).
    pub client_gave_up: bool,
}

/// Breaks the handshake the client is starting on `io`. `hello` holds
/// bytes already read behind the STARTTLS reply; `socket` is the same
/// connection, for the reset. `wait` bounds the wait for the ClientHello,
/// or with `silence` how long the connection is held. Leaves the stream
/// shut down (or, after a reset, to be dropped): the session is over.
pub async fn break_handshake<S>(
    io: &mut S,
    hello: &[u8],
    how: HandshakeBreak,
    socket: &std::net::TcpStream,
    wait: Duration,
) -> io::Result<Broken>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut seen = Seen::new(hello);
    if how == HandshakeBreak::Silence {
        let gave_up = hold(io, wait, |bytes| seen.saw(bytes)).await;
        seen.client_gave_up = gave_up;
        return Ok(seen.broken());
    }
    if seen.bytes == 0 {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(wait, io.read(&mut buf))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no ClientHello within {}s", wait.as_secs()),
                )
            })??;
        seen.saw(&buf[..n]);
    }
    if how == HandshakeBreak::Reset {
        abort_on_close(socket);
        return Ok(seen.broken());
    }
    io.write_all(how.answer()).await?;
    let _ = io.shutdown().await;
    Ok(seen.broken())
}

/// The client's side of the handshake, as far as the breaking side read it.
struct Seen {
    bytes: usize,
    first: Option<u8>,
    client_gave_up: bool,
}

impl Seen {
    fn new(hello: &[u8]) -> Seen {
        let mut seen = Seen {
            bytes: 0,
            first: None,
            client_gave_up: false,
        };
        seen.saw(hello);
        seen
    }

    fn saw(&mut self, bytes: &[u8]) {
        self.first = self.first.or(bytes.first().copied());
        self.bytes += bytes.len();
    }

    fn broken(&self) -> Broken {
        Broken {
            client_bytes: self.bytes,
            handshake_record: self.first == Some(HANDSHAKE_RECORD),
            client_gave_up: self.client_gave_up,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: the breaking side (with a second handle on its
    /// socket) and the client.
    async fn pair() -> ((TcpStream, std::net::TcpStream), TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (crate::smtp::split_handle(server).unwrap(), client)
    }

    /// Breaks the handshake after the client sent a ClientHello-like
    /// record; returns what the client then read, or how reading failed.
    async fn broken(how: HandshakeBreak) -> (Broken, io::Result<Vec<u8>>) {
        let ((mut server, socket), mut client) = pair().await;
        client.write_all(b"\x16\x03\x01 hello").await.unwrap();
        let b = break_handshake(&mut server, b"", how, &socket, Duration::from_secs(10))
            .await
            .unwrap();
        drop((server, socket));
        let mut got = Vec::new();
        let read = client.read_to_end(&mut got).await.map(|_| got);
        (b, read)
    }

    #[tokio::test]
    async fn each_mode_answers_as_it_says() {
        for how in [
            HandshakeBreak::Alert,
            HandshakeBreak::Garbage,
            HandshakeBreak::Close,
        ] {
            let (b, read) = broken(how).await;
            assert_eq!(read.unwrap(), how.answer(), "{how:?}");
            assert_eq!(b.client_bytes, 9, "{how:?}");
            assert!(b.handshake_record, "{how:?}");
        }
        let (_, read) = broken(HandshakeBreak::Reset).await;
        assert_eq!(
            read.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset,
            "a reset, not a close"
        );
    }

    #[tokio::test]
    async fn silence_holds_until_the_client_gives_up() {
        let ((mut server, socket), mut client) = pair().await;
        let held = tokio::spawn(async move {
            break_handshake(
                &mut server,
                b"\x16\x03",
                HandshakeBreak::Silence,
                &socket,
                Duration::from_secs(60),
            )
            .await
        });
        client.write_all(b"\x01 hello").await.unwrap();
        // The client gives up: the silent side sees the close at once.
        drop(client);
        let b = held.await.unwrap().unwrap();
        assert_eq!(
            b,
            Broken {
                client_bytes: 9,
                handshake_record: true,
                client_gave_up: true,
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_and_a_missing_hello_end_at_the_wait() {
        let ((mut server, socket), _client) = pair().await;
        let wait = Duration::from_secs(600);
        let b = break_handshake(&mut server, b"", HandshakeBreak::Silence, &socket, wait)
            .await
            .unwrap();
        assert!(!b.client_gave_up && b.client_bytes == 0);
        let e = break_handshake(&mut server, b"", HandshakeBreak::Alert, &socket, wait)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn names_are_the_scenario_names() {
        for how in HandshakeBreak::ALL {
            let written = toml::Value::try_from(how).unwrap();
            assert_eq!(written.as_str(), Some(how.as_str()));
        }
    }
}

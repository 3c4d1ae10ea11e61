//! The client side of one SMTP conversation: every read and write has a
//! deadline, lines and replies are bounded, and everything is written down.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::smtp::{BoxIo, Chunk, LineReader, Reply, ReplyAssembler, Unit, printable};
use crate::upstream::{MAX_LINE_LEN, MAX_LINES};

/// How the transcript shows long lines.
const SHOWN: usize = 200;

/// What went wrong with one step of the conversation.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing within the step's deadline.
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The server reset the connection.
    Reset,
    Io(io::Error),
    /// Bytes that are not an SMTP reply (shown printable, shortened).
    NotAReply(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Failure::Reset,
            io::ErrorKind::UnexpectedEof => Failure::Closed,
            _ => Failure::Io(e),
        }
    }
}

pub(crate) struct Dialogue {
    io: BoxIo,
    lines: LineReader,
    step: Duration,
    pub transcript: Vec<String>,
    /// What [`take_stream`](Self::take_stream)'s caller set aside.
    pub behind_starttls_reply: Option<String>,
}

impl Dialogue {
    pub fn new(io: BoxIo, step: Duration) -> Dialogue {
        Dialogue {
            io,
            // The line ending comes on top of the longest recorded line.
            lines: LineReader::new(MAX_LINE_LEN + 2),
            step,
            transcript: Vec::new(),
            behind_starttls_reply: None,
        }
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.transcript.push(format!("-- {}", text.into()));
    }

    /// Sends one command line.
    pub async fn send(&mut self, command: &str) -> Result<(), Failure> {
        self.transcript.push(format!("C: {command}"));
        let line = format!("{command}\r\n");
        let write = async {
            self.io.write_all(line.as_bytes()).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.step, write).await {
            Ok(r) => r.map_err(Failure::from),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Reads one complete reply; the whole reply must arrive within the
    /// step's deadline.
    pub async fn reply(&mut self) -> Result<Reply, Failure> {
        let read = async {
            let mut assembler = ReplyAssembler::new();
            for _ in 0..MAX_LINES {
                let line = match self.lines.next(&mut self.io).await? {
                    None => return Err(Failure::Closed),
                    Some(Chunk::Line(line)) => line,
                    Some(Chunk::Partial(piece)) => {
                        let why = if piece.len() > MAX_LINE_LEN {
                            format!("a line longer than {MAX_LINE_LEN} bytes")
                        } else {
                            "a line cut short by the end of the connection".to_owned()
                        };
                        return Err(Failure::NotAReply(format!("{why}: {}", shown(&piece))));
                    }
                };
                self.transcript.push(format!("S: {}", shown(&line)));
                // The last unit is the reply this line ends, or the line
                // itself when it is not part of a reply.
                match assembler.push(&line, true).pop() {
                    Some(Unit::Reply(reply)) => return Ok(reply),
                    Some(Unit::Raw(bytes)) => return Err(Failure::NotAReply(shown(&bytes))),
                    None => {}
                }
            }
            Err(Failure::NotAReply(format!(
                "a reply of more than {MAX_LINES} lines"
            )))
        };
        match tokio::time::timeout(self.step, read).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Says QUIT, waits (within the deadline) for the answer, and closes.
    pub async fn quit(&mut self) {
        if self.send("QUIT").await.is_ok() {
            let _ = self.reply().await;
        }
        let _ = tokio::time::timeout(self.step, self.io.shutdown()).await;
    }

    /// Hands the stream over (for TLS) and returns, apart, any bytes the
    /// server sent behind its last reply. They are not passed on: Postfix
    /// purges its input before the handshake (see
    /// scenarios/inject-response.toml), so the probe does too.
    pub fn take_stream(&mut self) -> (BoxIo, Vec<u8>) {
        let stream = std::mem::replace(
            &mut self.io,
            Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())),
        );
        (stream, self.lines.take_buffered())
    }

    /// Continues the conversation on another stream (inside TLS).
    pub fn set_stream(&mut self, io: BoxIo) {
        self.io = io;
        self.lines = LineReader::new(MAX_LINE_LEN + 2);
    }
}

fn shown(bytes: &[u8]) -> String {
    crate::smtp::ellipsize(printable(bytes), SHOWN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn dialogue(server_says: &'static [u8]) -> Dialogue {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            server.write_all(server_says).await.unwrap();
            // Keep the server side open until the client is done.
            let mut sink = Vec::new();
            let _ = server.read_to_end(&mut sink).await;
        });
        Dialogue::new(Box::new(client), Duration::from_millis(300))
    }

    #[tokio::test]
    async fn reads_a_multiline_reply() {
        let mut d = dialogue(b"250-a\r\n250 b\r\n").await;
        let r = d.reply().await.unwrap();
        assert_eq!(r.to_bytes(), b"250-a\r\n250 b\r\n");
        assert_eq!(d.transcript, ["S: 250-a", "S: 250 b"]);
    }

    #[tokio::test]
    async fn bounds_lines_and_replies() {
        let long: &'static [u8] = Box::leak(vec![b'2'; MAX_LINE_LEN + 10].into_boxed_slice());
        let mut d = dialogue(long).await;
        assert!(matches!(d.reply().await, Err(Failure::NotAReply(m)) if m.contains("longer than")));
        let many: &'static [u8] = Box::leak(
            "250-x\r\n"
                .repeat(MAX_LINES + 1)
                .into_bytes()
                .into_boxed_slice(),
        );
        let mut d = dialogue(many).await;
        assert!(matches!(d.reply().await, Err(Failure::NotAReply(m)) if m.contains("more than")));
    }

    #[tokio::test]
    async fn a_reply_that_never_ends_times_out() {
        // A slow drip of continuation lines must not outlive the deadline.
        let mut d = dialogue(b"250-a\r\n250-b\r\n").await;
        assert!(matches!(d.reply().await, Err(Failure::Timeout)));
    }

    #[tokio::test]
    async fn early_bytes_are_set_apart_not_handed_over() {
        let (client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"220 go\r\nEARLY").await.unwrap();
        let mut d = Dialogue::new(Box::new(client), Duration::from_secs(2));
        d.reply().await.unwrap();
        let (mut s, early) = d.take_stream();
        assert_eq!(early, b"EARLY");
        server.write_all(b"LATE").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"LATE");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever a server sends, reading a reply ends (within the
        /// deadline) with a reply or a failure, never a panic.
        #[test]
        fn any_bytes_end_in_a_reply_or_a_failure(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                let mut d = dialogue(bytes).await;
                let _ = d.reply().await;
            });
        }
    }
}

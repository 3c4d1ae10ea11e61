//! A stream wrapper that delays and stalls what is written to it, so that
//! latency and stalls apply alike to plaintext and to TLS bytes.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::behaviour::Direction;
use crate::smtp::BoxIo;

/// Writes to the wrapped stream are shaped per [`Direction`]; reads pass.
pub struct Shaped {
    inner: BoxIo,
    shape: Direction,
    /// Where this stream's writes go, for notes ("the MTA", "the relay").
    to: &'static str,
    written: u64,
    sleep: Option<Pin<Box<Sleep>>>,
    notes: Arc<Mutex<Vec<String>>>,
    stalled: bool,
}

impl Shaped {
    pub fn new(
        inner: BoxIo,
        shape: Direction,
        to: &'static str,
        notes: Arc<Mutex<Vec<String>>>,
    ) -> Shaped {
        Shaped {
            inner,
            shape,
            to,
            written: 0,
            sleep: None,
            notes,
            stalled: false,
        }
    }
}

impl AsyncRead for Shaped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Shaped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut len = buf.len();
        if let Some(limit) = self.shape.stall_after {
            let room = limit.saturating_sub(self.written);
            if room == 0 {
                if !self.stalled {
                    self.stalled = true;
                    let note = format!(
                        "stall: holding everything to {} after {} bytes",
                        self.to, self.written
                    );
                    self.notes.lock().expect("notes poisoned").push(note);
                }
                // Swallowed: the peer waits for bytes that never come.
                return Poll::Ready(Ok(buf.len()));
            }
            len = len.min(usize::try_from(room).unwrap_or(usize::MAX));
        }
        if !self.shape.delay.is_zero() {
            let delay = self.shape.delay;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let result = Pin::new(&mut self.inner).poll_write(cx, &buf[..len]);
        if let Poll::Ready(Ok(n)) = &result {
            self.written += *n as u64;
            self.sleep = None;
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair(shape: Direction) -> (Shaped, tokio::io::DuplexStream, Arc<Mutex<Vec<String>>>) {
        let (a, b) = tokio::io::duplex(1024);
        let notes = Arc::new(Mutex::new(Vec::new()));
        (
            Shaped::new(Box::new(a), shape, "the MTA", notes.clone()),
            b,
            notes,
        )
    }

    #[tokio::test]
    async fn stall_forwards_exactly_the_allowance() {
        let (mut s, mut peer, notes) = pair(Direction {
            stall_after: Some(5),
            ..Default::default()
        });
        s.write_all(b"220 hello\r\n").await.unwrap();
        s.write_all(b"more").await.unwrap();
        drop(s);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"220 h");
        assert_eq!(notes.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_holds_each_write() {
        let (mut s, mut peer, _) = pair(Direction {
            delay: Duration::from_millis(300),
            ..Default::default()
        });
        let start = tokio::time::Instant::now();
        s.write_all(b"abc").await.unwrap();
        let mut got = [0u8; 3];
        peer.read_exact(&mut got).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));
    }
}

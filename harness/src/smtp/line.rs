use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest line kept in memory. RFC 5321 allows 512 octets for a
/// command line and 1000 for a text line; anything longer than this is
/// handed on in pieces rather than buffered.
pub const MAX_LINE: usize = 64 * 1024;

/// What one read from a [`LineReader`] yields.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// A whole line, ending with `\n`.
    Line(Vec<u8>),
    /// Part of a line: the limit was reached, or the peer closed mid-line.
    Partial(Vec<u8>),
}

impl Chunk {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Line(b) | Chunk::Partial(b) => b,
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Chunk::Line(b) | Chunk::Partial(b) => b,
        }
    }
}

/// Reads lines with bounded memory. Cancel-safe: bytes are only moved into
/// the buffer after a read completes, so dropping `next` loses nothing.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    limit: usize,
    eof: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader::new(MAX_LINE)
    }
}

impl LineReader {
    pub fn new(limit: usize) -> Self {
        LineReader {
            buf: Vec::new(),
            limit: limit.max(1),
            eof: false,
        }
    }

    /// The next line or piece of one; `None` once the peer has closed and
    /// everything buffered has been returned.
    pub async fn next<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        r: &mut R,
    ) -> io::Result<Option<Chunk>> {
        loop {
            if let Some(chunk) = self.take_chunk() {
                return Ok(Some(chunk));
            }
            if self.eof {
                return Ok(None);
            }
            let mut tmp = [0u8; 8192];
            let n = r.read(&mut tmp).await?;
            if n == 0 {
                self.eof = true;
            } else {
                self.buf.extend_from_slice(&tmp[..n]);
            }
        }
    }

    fn take_chunk(&mut self) -> Option<Chunk> {
        if let Some(pos) = self.buf.iter().take(self.limit).position(|&b| b == b'\n') {
            let rest = self.buf.split_off(pos + 1);
            return Some(Chunk::Line(std::mem::replace(&mut self.buf, rest)));
        }
        if self.buf.len() >= self.limit {
            let rest = self.buf.split_off(self.limit);
            return Some(Chunk::Partial(std::mem::replace(&mut self.buf, rest)));
        }
        if self.eof && !self.buf.is_empty() {
            return Some(Chunk::Partial(std::mem::take(&mut self.buf)));
        }
        None
    }

    /// Bytes read but not yet returned (e.g. what followed STARTTLS).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn chunks(input: &[u8], limit: usize) -> Vec<Chunk> {
        let mut r = input;
        let mut reader = LineReader::new(limit);
        let mut out = Vec::new();
        while let Some(c) = reader.next(&mut r).await.unwrap() {
            out.push(c);
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_and_keeps_the_tail() {
        let got = chunks(b"a\r\nbc\r\nd", 100).await;
        assert_eq!(
            got,
            vec![
                Chunk::Line(b"a\r\n".to_vec()),
                Chunk::Line(b"bc\r\n".to_vec()),
                Chunk::Partial(b"d".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn long_lines_come_in_bounded_pieces() {
        let got = chunks(b"abcdefg\n", 3).await;
        assert_eq!(
            got,
            vec![
                Chunk::Partial(b"abc".to_vec()),
                Chunk::Partial(b"def".to_vec()),
                Chunk::Line(b"g\n".to_vec())
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn reassembles_any_input(input in proptest::collection::vec(proptest::num::u8::ANY, 0..400), limit in 1usize..50) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = rt.block_on(chunks(&input, limit));
            let joined: Vec<u8> = got.iter().flat_map(|c| c.bytes().to_vec()).collect();
            proptest::prop_assert_eq!(&joined, &input);
            for c in &got {
                proptest::prop_assert!(c.bytes().len() <= limit.max(1));
            }
        }
    }
}

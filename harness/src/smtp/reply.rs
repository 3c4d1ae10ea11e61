use std::fmt;
use std::ops::Range;

/// One line of an SMTP reply: `250-PIPELINING` is code 250, not last,
/// text `PIPELINING`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: [u8; 3],
    pub last: bool,
    pub text: Vec<u8>,
}

impl ReplyLine {
    /// Parses a reply line (with or without its line ending). `None` when
    /// the line is not `DDD`, `DDD text` or `DDD-text`.
    pub fn parse(line: &[u8]) -> Option<ReplyLine> {
        let line = trim_eol(line);
        // A bare CR or LF inside a line makes it something other than a reply.
        if line.len() < 3
            || !line[..3].iter().all(u8::is_ascii_digit)
            || line.contains(&b'\r')
            || line.contains(&b'\n')
        {
            return None;
        }
        let code = [line[0], line[1], line[2]];
        match line.get(3) {
            None => Some(ReplyLine {
                code,
                last: true,
                text: Vec::new(),
            }),
            Some(b' ') => Some(ReplyLine {
                code,
                last: true,
                text: line[4..].to_vec(),
            }),
            Some(b'-') => Some(ReplyLine {
                code,
                last: false,
                text: line[4..].to_vec(),
            }),
            Some(_) => None,
        }
    }

    pub fn code(&self) -> u16 {
        self.code
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
    }

    /// Where the EHLO keyword is in the text: the first word, words ending
    /// at a space, a tab or `=`, as Postfix splits an EHLO line
    /// (`mystrtok(..., " \t=")` in smtp_proto.c). Empty when there is none.
    pub fn keyword_span(&self) -> Range<usize> {
        let separator = |b: &u8| matches!(b, b' ' | b'\t' | b'=');
        let start = self
            .text
            .iter()
            .position(|b| !separator(b))
            .unwrap_or(self.text.len());
        let end = self.text[start..]
            .iter()
            .position(separator)
            .map_or(self.text.len(), |n| start + n);
        start..end
    }

    /// The EHLO keyword, upper-cased.
    pub fn keyword(&self) -> String {
        String::from_utf8_lossy(&self.text[self.keyword_span()]).to_ascii_uppercase()
    }

    /// Whether this EHLO extension line is STARTTLS (in any case, as
    /// Postfix compares it).
    pub fn is_starttls(&self) -> bool {
        self.text[self.keyword_span()].eq_ignore_ascii_case(b"STARTTLS")
    }
}

/// A complete SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// A one-line reply from text such as `454 4.7.0 TLS not available`.
    pub fn parse_single(text: &str) -> Option<Reply> {
        let mut line = ReplyLine::parse(text.as_bytes())?;
        line.last = true;
        Some(Reply { lines: vec![line] })
    }

    pub fn code(&self) -> u16 {
        self.lines.first().map_or(0, ReplyLine::code)
    }

    /// Whether this EHLO reply offers STARTTLS, read as Postfix reads it:
    /// a 2xx reply (else Postfix falls back to HELO) with an extension
    /// line that [is STARTTLS](ReplyLine::is_starttls). The first line
    /// names the server; it is not an extension.
    pub fn offers_starttls(&self) -> bool {
        self.code() / 100 == 2 && self.lines.iter().skip(1).any(ReplyLine::is_starttls)
    }

    /// Serialises with CRLF endings and the separators fixed: `-` on every
    /// line but the last, which has a space (or nothing, if its text is empty).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            out.extend_from_slice(&line.code);
            if i + 1 < n {
                out.push(b'-');
                out.extend_from_slice(&line.text);
            } else if !line.text.is_empty() {
                out.push(b' ');
                out.extend_from_slice(&line.text);
            }
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// True when every line has the same code and only the last is marked last.
    pub fn is_well_formed(&self) -> bool {
        let Some(first) = self.lines.first() else {
            return false;
        };
        let n = self.lines.len();
        self.lines.iter().enumerate().all(|(i, l)| {
            l.code == first.code
                && l.last == (i + 1 == n)
                && !l.text.contains(&b'\n')
                && !l.text.contains(&b'\r')
        })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printable(&self.to_bytes()))
    }
}

/// What the server side of the wire yields, reply by reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A complete, parseable reply.
    Reply(Reply),
    /// Bytes that are not part of a well-formed reply; passed on untouched.
    Raw(Vec<u8>),
}

/// Groups server lines into replies. Lines that do not parse, and pieces of
/// overlong lines, come out as [`Unit::Raw`] so nothing is ever lost.
#[derive(Debug, Default)]
pub struct ReplyAssembler {
    pending: Vec<ReplyLine>,
    pending_raw: Vec<u8>,
    /// The most lines one reply may have before it is flushed raw.
    max_lines: usize,
}

impl ReplyAssembler {
    pub fn new() -> Self {
        ReplyAssembler {
            max_lines: 1000,
            ..Default::default()
        }
    }

    /// Feeds one line (with its ending) or a partial line.
    pub fn push(&mut self, chunk: &[u8], complete_line: bool) -> Vec<Unit> {
        let mut out = Vec::new();
        let parsed = complete_line
            .then(|| ReplyLine::parse(chunk))
            .flatten()
            .filter(|l| self.pending.first().is_none_or(|f| f.code == l.code));
        match parsed {
            Some(line) => {
                let last = line.last;
                self.pending.push(line);
                self.pending_raw.extend_from_slice(chunk);
                if last {
                    out.push(Unit::Reply(Reply {
                        lines: std::mem::take(&mut self.pending),
                    }));
                    self.pending_raw.clear();
                } else if self.pending.len() >= self.max_lines {
                    out.push(self.flush_raw());
                }
            }
            None => {
                if !self.pending.is_empty() {
                    out.push(self.flush_raw());
                }
                out.push(Unit::Raw(chunk.to_vec()));
            }
        }
        out
    }

    /// Whatever is pending, as raw bytes (used at end of stream).
    pub fn finish(&mut self) -> Option<Unit> {
        (!self.pending.is_empty()).then(|| self.flush_raw())
    }

    fn flush_raw(&mut self) -> Unit {
        self.pending.clear();
        Unit::Raw(std::mem::take(&mut self.pending_raw))
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The command verb of a client line, upper-cased (`EHLO`, `STARTTLS`).
pub fn command_verb(line: &[u8]) -> String {
    let line = trim_eol(line);
    let word = line.split(|b| *b == b' ').next().unwrap_or(&[]);
    String::from_utf8_lossy(word).to_ascii_uppercase()
}

/// Whether a character from the peer must not reach a terminal or a file
/// as it is: controls (which include line breaks and ESC) and the bidi
/// overrides that make text read differently from what it is.
pub fn unsafe_to_show(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character [`unsafe_to_show`] replaced by `?`: fit for
/// one line of a terminal, a log or a comment.
pub fn censor(text: &str) -> String {
    text.chars()
        .map(|c| if unsafe_to_show(c) { '?' } else { c })
        .collect()
}

/// `text` cut to its first `max` characters, with `...` when cut.
pub fn ellipsize(text: String, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// Bytes as readable text: line endings dropped, other control bytes and
/// invalid UTF-8 escaped.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' | '\n' => {}
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if unsafe_to_show(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reply_lines() {
        let l = ReplyLine::parse(b"250-PIPELINING\r\n").unwrap();
        assert_eq!(l.code(), 250);
        assert!(!l.last);
        assert_eq!(l.keyword(), "PIPELINING");
        assert!(ReplyLine::parse(b"250\r\n").unwrap().last);
        assert!(ReplyLine::parse(b"25x ok\r\n").is_none());
        assert!(ReplyLine::parse(b"250:ok\r\n").is_none());
    }

    fn ehlo(lines: &[&str]) -> Reply {
        let mut a = ReplyAssembler::new();
        let units: Vec<Unit> = lines
            .iter()
            .flat_map(|l| a.push(format!("{l}\r\n").as_bytes(), true))
            .collect();
        match units.as_slice() {
            [Unit::Reply(r)] => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn starttls_is_offered_as_postfix_reads_it() {
        let offered = |lines: &[&str]| ehlo(lines).offers_starttls();
        assert!(offered(&["250-x", "250 STARTTLS"]));
        assert!(offered(&["250-x", "250 starttls"]));
        assert!(offered(&["250-x", "250-STARTTLS=yes", "250 SIZE"]));
        assert!(offered(&["250-x", "250  STARTTLS"]));
        assert!(!offered(&["250-x", "250 XXXXXXXA"]));
        assert!(!offered(&["250-x", "250 STARTTLSX"]));
        // The first line names the server; it is not an extension.
        assert!(!offered(&["250 STARTTLS"]));
        // A refused EHLO sends Postfix to HELO, which has no extensions.
        assert!(!offered(&["502-x", "502 STARTTLS"]));
        let line = ReplyLine::parse(b"250- AUTH=LOGIN PLAIN").unwrap();
        assert_eq!((line.keyword_span(), line.keyword()), (1..5, "AUTH".into()));
        assert_eq!(ReplyLine::parse(b"250-").unwrap().keyword(), "");
    }

    #[test]
    fn assembles_multiline_replies() {
        let mut a = ReplyAssembler::new();
        assert!(a.push(b"250-a\r\n", true).is_empty());
        let out = a.push(b"250 b\r\n", true);
        let [Unit::Reply(r)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(r.to_bytes(), b"250-a\r\n250 b\r\n");
        assert!(r.is_well_formed());
    }

    #[test]
    fn garbage_passes_through_raw() {
        let mut a = ReplyAssembler::new();
        a.push(b"250-a\r\n", true);
        let out = a.push(b"hello\r\n", true);
        assert_eq!(
            out,
            vec![
                Unit::Raw(b"250-a\r\n".to_vec()),
                Unit::Raw(b"hello\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn printable_escapes_controls() {
        assert_eq!(printable(b"a\x00b\xff\r\n"), "a\\x00b\\xff");
        assert_eq!(printable("a\u{202e}b".as_bytes()), "a\\u{202e}b");
        assert_eq!(ellipsize("héllo".into(), 2), "hé...");
        assert_eq!(ellipsize("hé".into(), 2), "hé");
    }
}

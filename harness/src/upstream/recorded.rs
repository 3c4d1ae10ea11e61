//! A server reply as a probe recorded it and a scenario writes it: one
//! string per line, exactly as it crossed the wire
//! (`["250-relay.example", "250 STARTTLS"]`).

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::smtp::{Reply, ReplyLine};

/// The most lines a recorded reply may have. Real EHLO replies have a
/// dozen or two; the bound keeps a hostile server's reply small.
pub const MAX_LINES: usize = 100;
/// The longest recorded line, without its line ending. RFC 5321 allows
/// 512 octets; real servers stay well below.
pub const MAX_LINE_LEN: usize = 2048;

/// A complete, well-formed SMTP reply whose text is UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedReply(Reply);

impl RecordedReply {
    /// Checks a reply read from the wire: it must be well formed, within
    /// the bounds, and printable as scenario text.
    pub fn new(reply: Reply) -> Result<RecordedReply, String> {
        if reply.lines.is_empty() {
            return Err("an empty reply: give at least one line".into());
        }
        if reply.lines.len() > MAX_LINES {
            return Err(format!(
                "{} lines: a recorded reply has at most {MAX_LINES}",
                reply.lines.len()
            ));
        }
        let code = reply.lines[0].code;
        if !(b'2'..=b'5').contains(&code[0]) {
            return Err(format!(
                "code {}: a reply code is 200-599",
                String::from_utf8_lossy(&code)
            ));
        }
        let n = reply.lines.len();
        for (i, line) in reply.lines.iter().enumerate() {
            let shown = || line_text(line);
            if line.code != code {
                return Err(format!(
                    "`{}`: every line of a reply has the same code ({})",
                    shown(),
                    String::from_utf8_lossy(&code)
                ));
            }
            if line.last != (i + 1 == n) {
                return Err(if line.last {
                    format!(
                        "`{}`: only the last line ends the reply; write `{}-...` on every line but the last",
                        shown(),
                        String::from_utf8_lossy(&code)
                    )
                } else {
                    format!(
                        "`{}`: the last line ends the reply; write `{} ...`",
                        shown(),
                        String::from_utf8_lossy(&code)
                    )
                });
            }
            if line.text.len() + 4 > MAX_LINE_LEN {
                return Err(format!(
                    "a line of {} bytes: a recorded line has at most {MAX_LINE_LEN}",
                    line.text.len() + 4
                ));
            }
            if std::str::from_utf8(&line.text).is_err() {
                return Err("a line that is not UTF-8".into());
            }
            if line.text.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(format!(
                    "`{}`: a line may not contain CR, LF or NUL",
                    shown()
                ));
            }
        }
        Ok(RecordedReply(reply))
    }

    /// Reads the lines as a scenario writes them.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<RecordedReply, String> {
        let mut parsed = Vec::with_capacity(lines.len());
        for line in lines {
            let line = line.as_ref();
            if line.contains(['\r', '\n']) {
                return Err(format!(
                    "`{}`: one string per line, without line endings",
                    line.escape_debug()
                ));
            }
            let Some(l) = ReplyLine::parse(line.as_bytes()) else {
                return Err(format!(
                    "`{line}` is not an SMTP reply line (three digits, then a space or `-`, then text)"
                ));
            };
            parsed.push(l);
        }
        RecordedReply::new(Reply { lines: parsed })
    }

    pub fn reply(&self) -> &Reply {
        &self.0
    }

    pub fn code(&self) -> u16 {
        self.0.code()
    }

    /// The lines as written in a scenario.
    pub fn lines(&self) -> Vec<String> {
        self.0.lines.iter().map(line_text).collect()
    }

    /// The SASL mechanisms an EHLO reply lists (`AUTH PLAIN LOGIN`, or
    /// the old `AUTH=PLAIN` form), upper-cased, in order.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in self.0.lines.iter().skip(1) {
            let text = String::from_utf8_lossy(&line.text).to_ascii_uppercase();
            let Some(rest) = text
                .strip_prefix("AUTH ")
                .or_else(|| text.strip_prefix("AUTH="))
            else {
                continue;
            };
            for m in rest.split_whitespace() {
                if !out.iter().any(|o| o == m) {
                    out.push(m.to_owned());
                }
            }
        }
        out
    }

    /// The reply as sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// Whether an EHLO reply lists STARTTLS ([`Reply::offers_starttls`]).
    pub fn lists_starttls(&self) -> bool {
        self.0.offers_starttls()
    }
}

/// One line as written: code, separator, text.
fn line_text(line: &ReplyLine) -> String {
    let sep = if line.last { " " } else { "-" };
    let text = String::from_utf8_lossy(&line.text);
    if line.last && text.is_empty() {
        String::from_utf8_lossy(&line.code).into_owned()
    } else {
        format!("{}{sep}{text}", String::from_utf8_lossy(&line.code))
    }
}

impl fmt::Display for RecordedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join(" / "))
    }
}

impl Serialize for RecordedReply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.lines().serialize(s)
    }
}

impl<'de> Deserialize<'de> for RecordedReply {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        RecordedReply::parse(&lines).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn lists_the_auth_mechanisms_of_an_ehlo_reply() {
        let r = RecordedReply::parse(&[
            "250-smtp.sendgrid.net",
            "250-AUTH PLAIN LOGIN",
            "250-AUTH=login",
            "250 SIZE 31457280",
        ])
        .unwrap();
        assert_eq!(r.auth_mechanisms(), ["PLAIN", "LOGIN"]);
        let none = RecordedReply::parse(&["250-x", "250 AUTHX PLAIN"]).unwrap();
        assert!(none.auth_mechanisms().is_empty());
    }

    use super::*;

    #[test]
    fn reads_and_writes_lines_as_sent() {
        let r = RecordedReply::parse(&["250-relay.test", "250-SIZE 100", "250 STARTTLS"]).unwrap();
        assert_eq!(
            r.to_bytes(),
            b"250-relay.test\r\n250-SIZE 100\r\n250 STARTTLS\r\n"
        );
        assert_eq!(
            r.lines(),
            ["250-relay.test", "250-SIZE 100", "250 STARTTLS"]
        );
        assert!(r.lists_starttls());
        let bare = RecordedReply::parse(&["220"]).unwrap();
        assert_eq!(bare.lines(), ["220"]);
    }

    #[test]
    fn refuses_what_is_not_one_reply() {
        let bad = |lines: &[&str]| RecordedReply::parse(lines).unwrap_err();
        assert!(bad(&[]).contains("empty"));
        assert!(bad(&["hello"]).contains("not an SMTP reply line"));
        assert!(bad(&["250 a", "250 b"]).contains("only the last line"));
        assert!(bad(&["250-a", "250-b"]).contains("the last line ends"));
        assert!(bad(&["250-a", "251 b"]).contains("same code"));
        assert!(bad(&["250 a\r\n250 b"]).contains("without line endings"));
        assert!(bad(&["199 x"]).contains("200-599"));
        let long = format!("250 {}", "x".repeat(MAX_LINE_LEN));
        assert!(bad(&[long.as_str()]).contains("at most"));
        let many: Vec<String> = (0..=MAX_LINES)
            .map(|i| format!("250{}x", if i == MAX_LINES { ' ' } else { '-' }))
            .collect();
        assert!(RecordedReply::parse(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn starttls_is_read_as_postfix_reads_it() {
        let listed = |lines: &[&str]| RecordedReply::parse(lines).unwrap().lists_starttls();
        assert!(listed(&["250-x", "250 starttls"]));
        assert!(listed(&["250-x", "250 STARTTLS=yes"]));
        assert!(!listed(&["250-x", "250 XXXXXXXA"]));
        // The first line names the server; it is not an extension.
        assert!(!listed(&["250 STARTTLS"]));
        assert!(!listed(&["502-x", "502 STARTTLS"]));
    }

    proptest::proptest! {
        /// Whatever a scenario says, reading it never panics, and what is
        /// read is written back the same.
        #[test]
        fn parse_is_total_and_round_trips(lines in proptest::collection::vec("[0-9]{3}[ -]?[ -~\t\x00\r\né]{0,12}", 0..5)) {
            if let Ok(r) = RecordedReply::parse(&lines) {
                proptest::prop_assert_eq!(RecordedReply::parse(&r.lines()).unwrap(), r.clone());
                proptest::prop_assert!(r.reply().is_well_formed());
            }
        }
    }
}

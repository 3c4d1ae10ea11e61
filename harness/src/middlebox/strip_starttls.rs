//! `strip-starttls`: removes the STARTTLS line from the relay's EHLO reply
//! and repairs the multi-line separators, as firewalls with SMTP inspection
//! do (the incident's intranet).

use super::behaviour::{Behaviour, ReplyContext};
use crate::smtp::Reply;

pub struct StripStarttls;

impl Behaviour for StripStarttls {
    fn name(&self) -> &'static str {
        "strip-starttls"
    }

    fn on_reply(&mut self, ctx: ReplyContext<'_>, reply: &mut Reply) -> Option<String> {
        if ctx.answering != Some("EHLO") {
            return None;
        }
        strip(reply).then(|| "removed STARTTLS from the EHLO reply".to_owned())
    }
}

/// Removes every STARTTLS extension line (never the first line, which
/// names the server). Returns whether anything was removed.
pub fn strip(reply: &mut Reply) -> bool {
    let before = reply.lines.len();
    let mut index = 0;
    reply.lines.retain(|line| {
        let keep = index == 0 || !line.is_starttls();
        index += 1;
        keep
    });
    let n = reply.lines.len();
    for (i, line) in reply.lines.iter_mut().enumerate() {
        line.last = i + 1 == n;
    }
    n != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::{ReplyAssembler, ReplyLine, Unit};
    use proptest::prelude::*;

    fn reply(lines: &[&str]) -> Reply {
        let mut a = ReplyAssembler::new();
        let mut out = Vec::new();
        for l in lines {
            out.extend(a.push(format!("{l}\r\n").as_bytes(), true));
        }
        match out.pop() {
            Some(Unit::Reply(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn strips_a_last_line_and_fixes_the_dash() {
        // mailin puts STARTTLS last: the line before must become the last.
        let mut r = reply(&["250-relay", "250-8BITMIME", "250 STARTTLS"]);
        assert!(strip(&mut r));
        assert_eq!(r.to_bytes(), b"250-relay\r\n250 8BITMIME\r\n");
    }

    #[test]
    fn strips_a_middle_line() {
        let mut r = reply(&["250-relay", "250-STARTTLS", "250 SIZE 100"]);
        assert!(strip(&mut r));
        assert_eq!(r.to_bytes(), b"250-relay\r\n250 SIZE 100\r\n");
    }

    #[test]
    fn leaves_other_replies_alone() {
        let mut r = reply(&["250-relay", "250 8BITMIME"]);
        assert!(!strip(&mut r));
        let mut b = StripStarttls;
        let mut helo = reply(&["250-relay", "250 STARTTLS"]);
        let ctx = ReplyContext {
            answering: Some("HELO"),
        };
        assert!(b.on_reply(ctx, &mut helo).is_none());
    }

    fn extension() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("STARTTLS".to_owned()),
            Just("starttls".to_owned()),
            Just("STARTTLS extra".to_owned()),
            "[A-Z0-9][A-Z0-9 =.-]{0,20}",
        ]
    }

    proptest! {
        /// Any EHLO reply: the result is well formed, has no STARTTLS
        /// extension, and keeps every other line in order.
        #[test]
        fn strip_keeps_everything_else(first in "[a-z.]{1,20}", exts in proptest::collection::vec(extension(), 0..12)) {
            let mut lines = vec![ReplyLine { code: *b"250", last: false, text: first.into_bytes() }];
            lines.extend(exts.iter().map(|e| ReplyLine { code: *b"250", last: false, text: e.clone().into_bytes() }));
            let n = lines.len();
            lines[n - 1].last = true;
            let original = Reply { lines };
            let mut stripped = original.clone();
            strip(&mut stripped);

            prop_assert!(stripped.is_well_formed());
            // Serialising and parsing again gives the same reply.
            let mut a = ReplyAssembler::new();
            let bytes = stripped.to_bytes();
            let mut units = Vec::new();
            for line in bytes.split_inclusive(|b| *b == b'\n') {
                units.extend(a.push(line, true));
            }
            prop_assert_eq!(units, vec![Unit::Reply(stripped.clone())]);
            prop_assert!(!stripped.offers_starttls());
            let kept: Vec<_> = original.lines.iter().enumerate()
                .filter(|(i, l)| *i == 0 || !l.is_starttls())
                .map(|(_, l)| l.text.clone()).collect();
            let got: Vec<_> = stripped.lines.iter().map(|l| l.text.clone()).collect();
            prop_assert_eq!(got, kept);
        }
    }
}

//! `mask-starttls`: overwrites the STARTTLS keyword in the EHLO reply with
//! X's, as Cisco ASA/PIX ESMTP inspection does (`250-XXXXXXXA`). With
//! `allow`, every other extension outside the list is masked too, as the
//! inspection engine does with extensions it does not know.

use serde::{Deserialize, Serialize};

use super::behaviour::{Behaviour, ReplyContext};
use crate::smtp::Reply;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaskStarttlsConfig {
    /// Extensions left readable; STARTTLS is masked even if listed. When
    /// absent, only STARTTLS is masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
}

pub struct MaskStarttls(pub MaskStarttlsConfig);

impl Behaviour for MaskStarttls {
    fn name(&self) -> &'static str {
        "mask-starttls"
    }

    fn on_reply(&mut self, ctx: ReplyContext<'_>, reply: &mut Reply) -> Option<String> {
        if ctx.answering != Some("EHLO") {
            return None;
        }
        let masked = mask(reply, self.0.allow.as_deref());
        (!masked.is_empty()).then(|| format!("masked {}", masked.join(", ")))
    }
}

/// Masks the keyword of every extension line (never the first line) that
/// is STARTTLS or, with an allow list, not on it. Returns what it masked.
pub fn mask(reply: &mut Reply, allow: Option<&[String]>) -> Vec<String> {
    let mut masked = Vec::new();
    for line in reply.lines.iter_mut().skip(1) {
        let keyword = line.keyword();
        let allowed = allow.is_none_or(|a| a.iter().any(|k| k.eq_ignore_ascii_case(&keyword)));
        if keyword.is_empty() || (!line.is_starttls() && allowed) {
            continue;
        }
        let span = line.keyword_span();
        let replacement: Vec<u8> = std::iter::repeat_n(b'X', span.len() - 1)
            .chain([b'A'])
            .collect();
        line.text.splice(span, replacement);
        masked.push(keyword);
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::{ReplyAssembler, ReplyLine, Unit};
    use proptest::prelude::*;

    fn reply(text: &str) -> Reply {
        let mut a = ReplyAssembler::new();
        let mut units = Vec::new();
        for l in text.split_inclusive('\n') {
            units.extend(a.push(l.as_bytes(), true));
        }
        match units.pop() {
            Some(Unit::Reply(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn masks_starttls_as_the_asa_does() {
        let mut r = reply("250-relay\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
        assert_eq!(mask(&mut r, None), vec!["STARTTLS"]);
        assert_eq!(
            r.to_bytes(),
            b"250-relay\r\n250-PIPELINING\r\n250 XXXXXXXA\r\n"
        );
        // Whatever Postfix would read as STARTTLS is masked, and only the keyword.
        let mut r = reply("250-relay\r\n250 starttls=yes\r\n");
        assert_eq!(mask(&mut r, None), vec!["STARTTLS"]);
        assert_eq!(r.to_bytes(), b"250-relay\r\n250 XXXXXXXA=yes\r\n");
    }

    #[test]
    fn masks_unlisted_extensions_and_keeps_parameters() {
        let mut r = reply("250-relay\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 STARTTLS\r\n");
        let allow = vec!["SIZE".to_owned(), "STARTTLS".to_owned()];
        assert_eq!(mask(&mut r, Some(&allow)), vec!["8BITMIME", "STARTTLS"]);
        assert_eq!(
            r.to_bytes(),
            b"250-relay\r\n250-SIZE 1000\r\n250-XXXXXXXA\r\n250 XXXXXXXA\r\n"
        );
    }

    proptest! {
        /// Any reply: still well formed, same number of lines, no STARTTLS
        /// keyword left, line lengths unchanged.
        #[test]
        fn masking_keeps_the_shape(exts in proptest::collection::vec("(STARTTLS|[A-Z0-9]{1,10})( [a-z0-9]{1,5})?", 0..10)) {
            let mut lines = vec![ReplyLine { code: *b"250", last: false, text: b"relay".to_vec() }];
            lines.extend(exts.iter().map(|e| ReplyLine { code: *b"250", last: false, text: e.clone().into_bytes() }));
            let n = lines.len();
            lines[n - 1].last = true;
            let original = Reply { lines };
            let mut r = original.clone();
            mask(&mut r, None);
            prop_assert!(r.is_well_formed());
            prop_assert_eq!(r.lines.len(), original.lines.len());
            prop_assert!(!r.offers_starttls());
            for (a, b) in r.lines.iter().zip(&original.lines) {
                prop_assert_eq!(a.text.len(), b.text.len());
            }
        }
    }
}

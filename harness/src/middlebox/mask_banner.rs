//! `mask-banner`: replaces the text of the relay's greeting with asterisks,
//! as Cisco PIX "SMTP fixup" did. Postfix recognises such a banner and
//! turns on its PIX workarounds (`smtp_pix_workarounds`): by default it
//! then speaks HELO instead of EHLO, so no extension, STARTTLS included,
//! is ever seen.

use super::behaviour::{Behaviour, ReplyContext};
use crate::smtp::Reply;

pub struct MaskBanner;

impl Behaviour for MaskBanner {
    fn name(&self) -> &'static str {
        "mask-banner"
    }

    fn on_reply(&mut self, ctx: ReplyContext<'_>, reply: &mut Reply) -> Option<String> {
        if ctx.answering.is_some() {
            return None;
        }
        mask(reply).then(|| "replaced the greeting text with asterisks".to_owned())
    }
}

/// Replaces every character of every line's text with `*`.
pub fn mask(reply: &mut Reply) -> bool {
    let mut changed = false;
    for line in &mut reply.lines {
        let n = String::from_utf8_lossy(&line.text).chars().count().max(1);
        let masked = vec![b'*'; n];
        changed |= line.text != masked;
        line.text = masked;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_becomes_asterisks_of_the_same_length() {
        let mut r = Reply::parse_single("220 smtp.relay.test ESMTP").unwrap();
        let mut b = MaskBanner;
        assert!(
            b.on_reply(ReplyContext { answering: None }, &mut r)
                .is_some()
        );
        assert_eq!(
            r.to_bytes(),
            format!("220 {}\r\n", "*".repeat(21)).into_bytes()
        );
        // Postfix's test: only "20 *" characters in the reply.
        assert!(r.to_bytes().iter().all(|b| b"20 *\r\n".contains(b)));
        let mut ehlo = Reply::parse_single("250 relay").unwrap();
        assert!(
            b.on_reply(
                ReplyContext {
                    answering: Some("EHLO")
                },
                &mut ehlo
            )
            .is_none()
        );
    }
}

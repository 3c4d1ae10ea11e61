//! The replaying relay: mailin still runs the session and accepts the
//! mail, but the greeting, the EHLO replies and the answer to STARTTLS are
//! the ones a probe recorded on a real network path (`[relay.replay]`).

use std::io;
use std::time::Duration;

use mailin::{Handler, Session};
use mailin_embedded::{Action, Response};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use tokio::io::AsyncWriteExt;

use super::recorded::RecordedReply;
use crate::smtp::{BoxIo, abort_on_close, command_verb, hold};
use crate::tls::{HandshakeBreak, break_handshake};

/// `[relay.replay]`: what the relay says instead of its own replies.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySpec {
    /// Sent instead of the relay's greeting.
    pub greeting: RecordedReply,
    /// Sent in answer to EHLO before TLS.
    pub ehlo: RecordedReply,
    /// How STARTTLS is answered; needed when `ehlo` lists STARTTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<StarttlsAnswer>,
    /// Sent in answer to EHLO inside TLS; the relay's own reply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ehlo: Option<RecordedReply>,
}

/// How the recorded path answered STARTTLS.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "RawStarttls", into = "RawStarttls")]
pub enum StarttlsAnswer {
    /// A 2xx reply, then the handshake went as recorded.
    Accept {
        reply: RecordedReply,
        handshake: Handshake,
    },
    /// Any other reply; the session goes on in plaintext.
    Refuse { reply: RecordedReply },
    /// No reply at all.
    Drop(DropKind),
}

/// How the TLS handshake after an accepted STARTTLS went: `"complete"`,
/// or the name of the way it broke.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Handshake {
    /// It completed: the relay presents `[relay] certificate`.
    #[default]
    Complete,
    /// It broke this way.
    Broken(HandshakeBreak),
}

impl Handshake {
    pub fn as_str(self) -> &'static str {
        match self {
            Handshake::Complete => "complete",
            Handshake::Broken(how) => how.as_str(),
        }
    }
}

/// Every name `handshake` takes, for the error that lists them.
const HANDSHAKE_NAMES: &[&str] = &{
    let mut names = ["complete"; 1 + HandshakeBreak::ALL.len()];
    let mut i = 0;
    while i < HandshakeBreak::ALL.len() {
        names[i + 1] = HandshakeBreak::ALL[i].as_str();
        i += 1;
    }
    names
};

impl Serialize for Handshake {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Handshake {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        std::iter::once(Handshake::Complete)
            .chain(HandshakeBreak::ALL.map(Handshake::Broken))
            .find(|h| h.as_str() == name)
            .ok_or_else(|| de::Error::unknown_variant(&name, HANDSHAKE_NAMES))
    }
}

/// How STARTTLS went unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropKind {
    /// The connection was closed (FIN).
    Close,
    /// The connection was reset (RST).
    Reset,
    /// No answer; the connection stayed open.
    Silence,
}

impl DropKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DropKind::Close => "close",
            DropKind::Reset => "reset",
            DropKind::Silence => "silence",
        }
    }
}

/// `starttls = { reply = [...], handshake = "..." }` or `{ drop = "..." }`
/// as written.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawStarttls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply: Option<RecordedReply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handshake: Option<Handshake>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drop: Option<DropKind>,
}

impl TryFrom<RawStarttls> for StarttlsAnswer {
    type Error = String;

    fn try_from(raw: RawStarttls) -> Result<Self, String> {
        match (raw.reply, raw.drop) {
            (Some(_), Some(_)) => Err(
                "give either `reply` (what answered STARTTLS) or `drop` (nothing did), not both"
                    .into(),
            ),
            (None, None) => Err(
                "say how STARTTLS was answered: `reply = [\"220 2.0.0 Ready to start TLS\"]` or `drop = \"close\"`"
                    .into(),
            ),
            (None, Some(_)) if raw.handshake.is_some() => {
                Err("`handshake` needs a 2xx `reply`: without one no TLS starts".into())
            }
            (None, Some(kind)) => Ok(StarttlsAnswer::Drop(kind)),
            (Some(reply), None) if reply.code() / 100 == 2 => Ok(StarttlsAnswer::Accept {
                reply,
                handshake: raw.handshake.unwrap_or_default(),
            }),
            (Some(_), None) if raw.handshake.is_some() => Err(
                "`handshake` applies only to a 2xx reply: after a refusal no TLS starts".into(),
            ),
            (Some(reply), None) => Ok(StarttlsAnswer::Refuse { reply }),
        }
    }
}

impl From<StarttlsAnswer> for RawStarttls {
    fn from(a: StarttlsAnswer) -> RawStarttls {
        match a {
            StarttlsAnswer::Accept { reply, handshake } => RawStarttls {
                reply: Some(reply),
                handshake: (handshake != Handshake::Complete).then_some(handshake),
                drop: None,
            },
            StarttlsAnswer::Refuse { reply } => RawStarttls {
                reply: Some(reply),
                handshake: None,
                drop: None,
            },
            StarttlsAnswer::Drop(kind) => RawStarttls {
                reply: None,
                handshake: None,
                drop: Some(kind),
            },
        }
    }
}

/// What the relay does with one command line of a replayed session.
#[derive(Debug)]
pub(crate) enum Step {
    /// mailin handles this line.
    Mailin(Vec<u8>),
    /// Send these bytes; the session goes on.
    Send(Vec<u8>),
    /// Send these bytes, then answer the TLS handshake.
    StartTls(Vec<u8>),
    /// Send these bytes, then break the handshake this way.
    BreakTls(Vec<u8>, HandshakeBreak),
    /// Answer nothing; end the connection this way.
    Drop(DropKind),
}

impl ReplaySpec {
    /// Whether the relay accepts STARTTLS (so mailin must allow it).
    pub fn accepts_starttls(&self) -> bool {
        matches!(self.starttls, Some(StarttlsAnswer::Accept { .. }))
    }

    /// Whether a TLS session completes, so the relay needs a certificate.
    pub fn completes_tls(&self) -> bool {
        matches!(
            self.starttls,
            Some(StarttlsAnswer::Accept {
                handshake: Handshake::Complete,
                ..
            })
        )
    }

    /// Decides what happens to a command (not message content).
    pub(crate) fn on_command<H: Handler>(
        &self,
        session: &mut Session<H>,
        line: &[u8],
        tls: bool,
    ) -> io::Result<Step> {
        match command_verb(line).as_str() {
            "EHLO" => {
                let recorded = if tls {
                    self.tls_ehlo.as_ref()
                } else {
                    Some(&self.ehlo)
                };
                let Some(recorded) = recorded else {
                    return Ok(Step::Mailin(line.to_vec()));
                };
                // A refused EHLO leaves mailin waiting for HELO, as the
                // recorded server was.
                if recorded.code() / 100 != 2 {
                    return Ok(Step::Send(recorded.to_bytes()));
                }
                let response = session.process(line);
                if response.is_error {
                    return Ok(Step::Send(response.buffer()?));
                }
                Ok(Step::Send(recorded.to_bytes()))
            }
            "STARTTLS" if !tls => self.starttls(session, line),
            // The recorded EHLO reply may announce SIZE, DSN or SMTPUTF8,
            // whose parameters mailin's parser refuses; the replay is about
            // the TLS path, not about parameters.
            "MAIL" | "RCPT" => Ok(Step::Mailin(without_parameters(line))),
            _ => Ok(Step::Mailin(line.to_vec())),
        }
    }

    fn starttls<H: Handler>(&self, session: &mut Session<H>, line: &[u8]) -> io::Result<Step> {
        match &self.starttls {
            None => Ok(Step::Mailin(line.to_vec())),
            Some(StarttlsAnswer::Refuse { reply }) => Ok(Step::Send(reply.to_bytes())),
            Some(StarttlsAnswer::Drop(kind)) => Ok(Step::Drop(*kind)),
            Some(StarttlsAnswer::Accept { reply, handshake }) => {
                let response: Response = session.process(line);
                if response.action != Action::UpgradeTls {
                    // Out of sequence (e.g. before EHLO): mailin's refusal.
                    return Ok(Step::Send(response.buffer()?));
                }
                Ok(match handshake {
                    Handshake::Complete => Step::StartTls(reply.to_bytes()),
                    Handshake::Broken(how) => Step::BreakTls(reply.to_bytes(), *how),
                })
            }
        }
    }
}

/// `MAIL FROM:<a@b> SIZE=10` -> `MAIL FROM:<a@b>`; other lines unchanged.
fn without_parameters(line: &[u8]) -> Vec<u8> {
    let Some(open) = line.iter().position(|b| *b == b'<') else {
        return line.to_vec();
    };
    let Some(close) = line[open..].iter().position(|b| *b == b'>') else {
        return line.to_vec();
    };
    let mut out = line[..open + close + 1].to_vec();
    out.extend_from_slice(b"\r\n");
    out
}

/// Breaks the handshake the client is starting; returns why the session
/// ended. `hello` holds bytes already read behind STARTTLS.
pub(crate) async fn break_tls(
    io: &mut BoxIo,
    hello: &[u8],
    how: HandshakeBreak,
    socket: &std::net::TcpStream,
    wait: Duration,
) -> String {
    match break_handshake(io, hello, how, socket, wait).await {
        Err(e) => format!("replay: while breaking the TLS handshake: {e}"),
        Ok(_) if how == HandshakeBreak::Silence => "replay: said nothing to the ClientHello".into(),
        Ok(_) if how == HandshakeBreak::Reset => {
            "replay: reset the connection after the ClientHello".into()
        }
        Ok(_) => format!("replay: broke the TLS handshake ({})", how.as_str()),
    }
}

/// Ends a session whose STARTTLS goes unanswered; returns why it ended.
pub(crate) async fn drop_connection(
    io: &mut BoxIo,
    how: DropKind,
    socket: &std::net::TcpStream,
    wait: Duration,
) -> String {
    match how {
        DropKind::Close => {
            let _ = io.shutdown().await;
            "replay: closed the connection on STARTTLS".into()
        }
        DropKind::Reset => {
            abort_on_close(socket);
            "replay: reset the connection on STARTTLS".into()
        }
        DropKind::Silence => {
            hold(io, wait, |_| {}).await;
            "replay: never answered STARTTLS".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Holder {
        replay: ReplaySpec,
    }

    fn parse(text: &str) -> Result<ReplaySpec, String> {
        toml::from_str::<Holder>(text)
            .map(|h| h.replay)
            .map_err(|e| e.message().to_owned())
    }

    const BASE: &str = r#"replay = { greeting = ["220 relay.test ESMTP"], ehlo = ["250-relay.test", "250 STARTTLS"], "#;

    #[test]
    fn starttls_answers_in_every_form() {
        let accept = parse(&format!("{BASE}starttls = {{ reply = [\"220 go\"] }} }}")).unwrap();
        assert!(accept.accepts_starttls() && accept.completes_tls());
        let broken = parse(&format!(
            "{BASE}starttls = {{ reply = [\"220 go\"], handshake = \"alert\" }} }}"
        ))
        .unwrap();
        assert!(broken.accepts_starttls() && !broken.completes_tls());
        let refused = parse(&format!(
            "{BASE}starttls = {{ reply = [\"454 4.7.0 no\"] }} }}"
        ))
        .unwrap();
        assert!(matches!(
            refused.starttls,
            Some(StarttlsAnswer::Refuse { .. })
        ));
        let dropped = parse(&format!("{BASE}starttls = {{ drop = \"reset\" }} }}")).unwrap();
        assert_eq!(
            dropped.starttls,
            Some(StarttlsAnswer::Drop(DropKind::Reset))
        );
    }

    #[test]
    fn contradictions_are_refused() {
        let e = |s: &str| parse(&format!("{BASE}starttls = {s} }}")).unwrap_err();
        assert!(e(r#"{ reply = ["454 no"], handshake = "alert" }"#).contains("only to a 2xx"));
        assert!(e(r#"{ reply = ["220 go"], drop = "close" }"#).contains("not both"));
        assert!(e(r#"{ drop = "close", handshake = "close" }"#).contains("needs a 2xx"));
        assert!(e("{}").contains("say how STARTTLS was answered"));
        assert!(e(r#"{ drop = "explode" }"#).contains("explode"));
        assert!(
            e(r#"{ reply = ["220 go"], handshake = "explode" }"#).contains(
                "unknown variant `explode`, expected one of `complete`, `alert`, `garbage`, `close`, `reset`, `silence`"
            )
        );
        assert!(e(r#"{ reply = ["220 go"], extra = 1 }"#).contains("extra"));
    }

    #[test]
    fn round_trips_through_toml() {
        let spec = parse(&format!(
            "{BASE}starttls = {{ reply = [\"220 go\"], handshake = \"garbage\" }}, tls_ehlo = [\"250 relay.test\"] }}"
        ))
        .unwrap();
        #[derive(Serialize)]
        struct Out<'a> {
            replay: &'a ReplaySpec,
        }
        let text = toml::to_string(&Out { replay: &spec }).unwrap();
        assert_eq!(parse(&text).unwrap(), spec, "{text}");
    }

    #[test]
    fn parameters_are_cut_from_mail_and_rcpt() {
        assert_eq!(
            without_parameters(b"MAIL FROM:<a@b.test> SIZE=10 BODY=8BITMIME\r\n"),
            b"MAIL FROM:<a@b.test>\r\n"
        );
        assert_eq!(
            without_parameters(b"RCPT TO:<c@d.test> NOTIFY=NEVER\r\n"),
            b"RCPT TO:<c@d.test>\r\n"
        );
        assert_eq!(without_parameters(b"MAIL FROM:x\r\n"), b"MAIL FROM:x\r\n");
    }
}

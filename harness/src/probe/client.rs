//! The probe's conversation: greeting, EHLO, STARTTLS, the TLS handshake,
//! EHLO inside TLS, QUIT. It never sends MAIL, RCPT or DATA, says QUIT
//! whenever the session is still alive, and every step has a deadline.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::{ServerName, UnixTime};
use tokio::net::TcpStream;

use super::certs::{self, ChainSummary, TrustAnchors};
use super::dialogue::{Dialogue, Failure};
use super::error::ProbeError;
use super::observation::{HandshakeFailure, Lost, Observation, Starttls, TlsObservation};
use super::target::Target;
use crate::smtp::{Reply, printable};
use crate::tls::HandshakeBreak;
use crate::upstream::RecordedReply;

/// The EHLO name unless told otherwise.
pub const DEFAULT_EHLO: &str = "probe.tlsharness.test";

/// How to probe.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// The name the probe gives in EHLO.
    pub ehlo_name: String,
    /// Sent as SNI and checked against the certificate: the relay's name.
    pub server_name: String,
    /// The deadline of each step (connect, each reply, the handshake).
    pub step_timeout: Duration,
    /// What the certificate chain is checked against.
    pub anchors: TrustAnchors,
}

impl ProbeOptions {
    /// Defaults: the probe's EHLO name, 10s per step.
    pub fn new(server_name: impl Into<String>, anchors: TrustAnchors) -> Self {
        ProbeOptions {
            ehlo_name: DEFAULT_EHLO.to_owned(),
            server_name: server_name.into(),
            step_timeout: Duration::from_secs(10),
            anchors,
        }
    }
}

/// Probes `target` as an SMTP client would, up to and into TLS: plaintext
/// first, then STARTTLS. A port that sends no greeting within the step's
/// deadline is tried once more with TLS from the first byte; when that
/// handshake completes, the port is recorded as implicit TLS.
pub async fn probe(target: &Target, opts: &ProbeOptions) -> Result<Observation, ProbeError> {
    let silent = match session(target, opts, false).await {
        Err(e @ ProbeError::Timeout { .. }) if e.is_silent_greeting() => e,
        other => return other,
    };
    match session(target, opts, true).await {
        Ok(mut obs) => {
            let note = format!(
                "-- no greeting within {}s in plaintext: a TLS handshake then completed, so this port speaks implicit TLS",
                opts.step_timeout.as_secs_f64()
            );
            obs.transcript.insert(0, note);
            Ok(obs)
        }
        // Neither plaintext nor TLS: the silence is what was seen.
        Err(_) => Err(silent),
    }
}

/// Probes `target` with TLS from the first byte (RFC 8314), as on 465:
/// the handshake, then the greeting and EHLO inside TLS, QUIT.
pub async fn probe_implicit_tls(
    target: &Target,
    opts: &ProbeOptions,
) -> Result<Observation, ProbeError> {
    session(target, opts, true).await
}

/// One session: connect, TLS first when `implicit`, greeting, EHLO, and
/// STARTTLS when plaintext and listed.
async fn session(
    target: &Target,
    opts: &ProbeOptions,
    implicit: bool,
) -> Result<Observation, ProbeError> {
    let step = opts.step_timeout;
    let (stream, addr) = connect(target, step).await?;
    let mut d = Dialogue::new(Box::new(stream), step);
    d.note(format!("connected to {addr}"));
    let wrapped = if implicit {
        d.note("TLS from the first byte (implicit TLS)");
        match handshake(&mut d, opts).await? {
            Ok(facts) => Some(facts),
            Err(failure) => {
                return Err(ProbeError::ImplicitTls {
                    addr,
                    detail: failure.detail,
                });
            }
        }
    } else {
        None
    };

    let greeting = d
        .reply()
        .await
        .map_err(|f| failed(f, addr, step, "waiting for the greeting"))?;
    let greeting = RecordedReply::new(clean(greeting)).map_err(|e| ProbeError::NotSmtp {
        addr,
        detail: format!("its greeting is not a usable reply: {e}"),
    })?;
    match greeting.code() {
        220 => {}
        code if code >= 400 => {
            d.quit().await;
            return Err(ProbeError::SessionRefused {
                addr,
                reply: greeting.to_string(),
            });
        }
        _ => {
            return Err(ProbeError::NotSmtp {
                addr,
                detail: format!("its greeting is `{greeting}`, not a 220 reply"),
            });
        }
    }

    let ehlo_step = "waiting for the EHLO reply";
    let ehlo = match ehlo(&mut d, opts).await {
        Ok(r) => recorded(r, ehlo_step),
        Err(f) => Err(failed(f, addr, step, ehlo_step)),
    };
    let ehlo = match ehlo {
        Ok(r) => r,
        Err(e) => {
            if !matches!(e, ProbeError::Closed { .. } | ProbeError::Reset { .. }) {
                d.quit().await;
            }
            return Err(e);
        }
    };

    let (starttls, implicit_tls) = match wrapped {
        Some((version, cipher, chain)) => {
            if ehlo.lists_starttls() {
                d.note("STARTTLS listed inside implicit TLS: not sent");
            }
            d.quit().await;
            let tls = TlsObservation {
                version,
                cipher,
                chain,
                ehlo: Ok(ehlo.clone()),
            };
            (Starttls::NotOffered, Some(tls))
        }
        None if ehlo.lists_starttls() => (starttls(&mut d, opts, addr).await?, None),
        None => {
            d.note("STARTTLS not listed: not sent");
            d.quit().await;
            (Starttls::NotOffered, None)
        }
    };
    Ok(Observation {
        target: target.clone(),
        addr,
        server_name: opts.server_name.clone(),
        ehlo_name: opts.ehlo_name.clone(),
        at: time::OffsetDateTime::now_utc(),
        step_timeout: step,
        implicit_tls,
        greeting,
        ehlo,
        starttls,
        behind_starttls_reply: d.behind_starttls_reply,
        transcript: d.transcript,
    })
}

/// Resolves the target and connects to its first address that answers.
async fn connect(target: &Target, step: Duration) -> Result<(TcpStream, SocketAddr), ProbeError> {
    let resolve = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(step, resolve).await {
        Err(_) => {
            return Err(ProbeError::Timeout {
                step: format!("resolving {}", target.host),
                after: step,
            });
        }
        Ok(Err(source)) => {
            return Err(ProbeError::Resolve {
                host: target.host.clone(),
                source,
            });
        }
        Ok(Ok(a)) => a.collect(),
    };
    let mut last = None;
    for addr in addrs {
        let error = match tokio::time::timeout(step, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, addr));
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                ProbeError::Refused { addr }
            }
            Ok(Err(source)) => ProbeError::Connect { addr, source },
            Err(_) => ProbeError::ConnectTimeout { addr, after: step },
        };
        last = Some(error);
    }
    Err(last.unwrap_or_else(|| ProbeError::NoAddress {
        host: target.host.clone(),
    }))
}

async fn starttls(
    d: &mut Dialogue,
    opts: &ProbeOptions,
    addr: SocketAddr,
) -> Result<Starttls, ProbeError> {
    let step = opts.step_timeout;
    let lost = |f: Failure| match f {
        Failure::Timeout => Ok(Starttls::NoReply(Lost::Silent)),
        Failure::Closed => Ok(Starttls::NoReply(Lost::Closed)),
        Failure::Reset => Ok(Starttls::NoReply(Lost::Reset)),
        other => Err(failed(other, addr, step, "waiting for the STARTTLS reply")),
    };
    if let Err(f) = d.send("STARTTLS").await {
        return lost(f);
    }
    let reply = match d.reply().await {
        Ok(r) => recorded(r, "to STARTTLS")?,
        Err(f) => {
            let seen = lost(f);
            if let Ok(Starttls::NoReply(how)) = &seen {
                d.note(format!("no reply to STARTTLS: {how:?}"));
            }
            if matches!(seen, Ok(Starttls::NoReply(Lost::Silent))) {
                d.quit().await;
            }
            return seen;
        }
    };
    if reply.code() / 100 != 2 {
        // A refusal leaves the session in plaintext, alive.
        d.quit().await;
        return Ok(Starttls::Refused(reply));
    }
    let (stream, early) = d.take_stream();
    if !early.is_empty() {
        let shown = printable(&early);
        d.note(format!(
            "{} byte(s) behind the STARTTLS reply, discarded before the handshake as Postfix does: {shown}",
            early.len()
        ));
        d.behind_starttls_reply = Some(shown);
    }
    d.set_stream(stream);
    let (version, cipher, chain) = match handshake(d, opts).await? {
        Ok(facts) => facts,
        Err(failure) => return Ok(Starttls::HandshakeFailed { reply, failure }),
    };
    let ehlo = ehlo(d, opts).await;
    if !matches!(ehlo, Err(Failure::Closed | Failure::Reset)) {
        d.quit().await;
    }
    let ehlo = match ehlo {
        Ok(r) => recorded(r, "to EHLO inside TLS").map_err(|e| e.to_string()),
        Err(f) => Err(lost_words(&f, step)),
    };
    Ok(Starttls::Established {
        reply,
        tls: TlsObservation {
            version,
            cipher,
            chain,
            ehlo,
        },
    })
}

/// What a completed handshake showed: version, cipher, the chain's verdict.
type TlsFacts = (String, String, ChainSummary);

/// Runs the client's TLS handshake on the dialogue's stream; on success
/// the dialogue goes on inside TLS. The inner `Err` is a handshake the
/// server broke, as the client saw it.
async fn handshake(
    d: &mut Dialogue,
    opts: &ProbeOptions,
) -> Result<Result<TlsFacts, HandshakeFailure>, ProbeError> {
    let step = opts.step_timeout;
    let name =
        ServerName::try_from(opts.server_name.clone()).map_err(|e| ProbeError::Protocol {
            step: "for the TLS handshake".into(),
            detail: format!("`{}` is not a server name: {e}", opts.server_name),
        })?;
    let connector = tokio_rustls::TlsConnector::from(crate::tls::accept_any_client_config());
    let (stream, _) = d.take_stream();
    let tls = match tokio::time::timeout(step, connector.connect(name.clone(), stream)).await {
        Err(_) => {
            d.note("the TLS handshake got no answer");
            return Ok(Err(HandshakeFailure {
                kind: HandshakeBreak::Silence,
                detail: format!("no answer within {}s", step.as_secs_f64()),
            }));
        }
        Ok(Err(e)) => {
            let failure = handshake_failure(&e);
            d.note(format!("the TLS handshake failed: {}", failure.detail));
            return Ok(Err(failure));
        }
        Ok(Ok(tls)) => tls,
    };
    let conn = tls.get_ref().1;
    let version = conn
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .replace("TLSv1_", "TLSv1.");
    let cipher = conn
        .negotiated_cipher_suite()
        .and_then(|c| c.suite().as_str())
        .unwrap_or("unknown")
        .to_owned();
    let chain = certs::evaluate(
        conn.peer_certificates().unwrap_or(&[]),
        &name,
        &opts.anchors,
        UnixTime::now(),
    );
    d.note(format!(
        "TLS began: {version}, {cipher}; certificate: {}",
        chain.verdict()
    ));
    d.set_stream(Box::new(tls));
    Ok(Ok((version, cipher, chain)))
}

/// Says EHLO and reads the reply.
async fn ehlo(d: &mut Dialogue, opts: &ProbeOptions) -> Result<Reply, Failure> {
    d.send(&format!("EHLO {}", opts.ehlo_name)).await?;
    d.reply().await
}

/// The error for a step that failed before there was anything to record.
fn failed(f: Failure, addr: SocketAddr, after: Duration, step: &str) -> ProbeError {
    let step = step.to_owned();
    match f {
        Failure::Timeout => ProbeError::Timeout { step, after },
        Failure::Closed => ProbeError::Closed {
            step: format!("while {step}"),
        },
        Failure::Reset => ProbeError::Reset {
            step: format!("while {step}"),
        },
        Failure::Io(source) => ProbeError::Io {
            step: format!("while {step}"),
            source,
        },
        Failure::NotAReply(text) if step == "waiting for the greeting" => ProbeError::NotSmtp {
            addr,
            detail: format!("it greeted with `{text}`"),
        },
        Failure::NotAReply(detail) => ProbeError::Protocol {
            step: format!("while {step}"),
            detail,
        },
    }
}

fn lost_words(f: &Failure, step: Duration) -> String {
    match f {
        Failure::Timeout => format!("no reply within {}s", step.as_secs_f64()),
        Failure::Closed => "the connection was closed".into(),
        Failure::Reset => "the connection was reset".into(),
        Failure::Io(e) => format!("i/o error: {e}"),
        Failure::NotAReply(text) => format!("not an SMTP reply: {text}"),
    }
}

fn recorded(reply: Reply, step: &str) -> Result<RecordedReply, ProbeError> {
    RecordedReply::new(clean(reply)).map_err(|detail| ProbeError::Protocol {
        step: step.to_owned(),
        detail,
    })
}

/// Text as Postfix sees it: bytes that are not printable UTF-8 become `?`
/// (Postfix censors them the same way), so the reply can be written down.
fn clean(mut reply: Reply) -> Reply {
    for line in &mut reply.lines {
        let mut text = Vec::with_capacity(line.text.len());
        for chunk in line.text.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c != '\t' && crate::smtp::unsafe_to_show(c) {
                    text.push(b'?');
                } else {
                    let mut buf = [0u8; 4];
                    text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
            text.extend(std::iter::repeat_n(b'?', chunk.invalid().len()));
        }
        line.text = text;
    }
    reply
}

/// Reads a failed handshake the way a replay can reproduce it.
fn handshake_failure(e: &io::Error) -> HandshakeFailure {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let kind = match (tls, e.kind()) {
        (Some(rustls::Error::InvalidMessage(_)), _)
        | (Some(rustls::Error::InappropriateMessage { .. }), _)
        | (Some(rustls::Error::InappropriateHandshakeMessage { .. }), _) => HandshakeBreak::Garbage,
        (Some(_), _) => HandshakeBreak::Alert,
        (None, io::ErrorKind::UnexpectedEof) => HandshakeBreak::Close,
        (
            None,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe,
        ) => HandshakeBreak::Reset,
        (None, _) => HandshakeBreak::Close,
    };
    HandshakeFailure {
        kind,
        detail: printable(e.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::{BoxIo, ReplyLine};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    fn options(step: Duration) -> ProbeOptions {
        let mut o = ProbeOptions::new("smtp.relay.test", TrustAnchors::only(&[]));
        o.step_timeout = step;
        o
    }

    fn target(addr: SocketAddr) -> Target {
        format!("{addr}").parse().unwrap()
    }

    /// A server that says `greeting`, then answers every command from
    /// `answers` (by verb, `*` for any other), upgrading to TLS after a 2xx
    /// to STARTTLS; it records every line it receives.
    async fn fake(
        greeting: &'static str,
        answers: &'static [(&'static str, &'static str)],
    ) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let pki = crate::pki::Pki::new("fake").unwrap();
        let id = pki
            .identity(crate::pki::CertKind::SelfSigned, "smtp.relay.test")
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(&id, Default::default()).unwrap(),
        );
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut io: BufReader<BoxIo> = BufReader::new(Box::new(stream));
            io.get_mut().write_all(greeting.as_bytes()).await.unwrap();
            loop {
                let mut line = String::new();
                if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end().to_owned();
                log.lock().unwrap().push(line.clone());
                let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                let answer = answers
                    .iter()
                    .find(|(v, _)| *v == verb)
                    .or_else(|| answers.iter().find(|(v, _)| *v == "*"))
                    .map_or("250 ok\r\n", |(_, a)| a);
                io.get_mut().write_all(answer.as_bytes()).await.unwrap();
                if verb == "QUIT" {
                    return;
                }
                if verb == "STARTTLS" && answer.starts_with('2') {
                    let plain = io.into_inner();
                    let tls = acceptor.accept(plain).await.unwrap();
                    io = BufReader::new(Box::new(tls));
                }
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn a_refused_port_is_a_clear_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let e = probe(&target(addr), &options(Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeError::Refused { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("connection refused by 127.0.0.1:"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_at_the_greeting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and holds the connection without a word.
        let held = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
        let started = std::time::Instant::now();
        let e = probe(&target(addr), &options(Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ProbeError::Timeout { step, .. } if step == "waiting for the greeting"),
            "{e}"
        );
        assert!(e.to_string().contains("--timeout"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
    }

    #[tokio::test]
    async fn a_server_that_is_not_smtp_is_named() {
        let (addr, seen) = fake("HTTP/1.1 400 Bad Request\r\n\r\n", &[]).await;
        let e = probe(&target(addr), &options(Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeError::NotSmtp { .. }), "{e}");
        assert!(e.to_string().contains("HTTP/1.1 400 Bad Request"), "{e}");
        assert!(seen.lock().unwrap().is_empty(), "nothing was said to it");
    }

    #[tokio::test]
    async fn a_refusing_greeting_is_answered_with_quit() {
        let (addr, seen) = fake(
            "554 5.7.1 no service for you\r\n",
            &[("QUIT", "221 bye\r\n")],
        )
        .await;
        let e = probe(&target(addr), &options(Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeError::SessionRefused { .. }), "{e}");
        assert_eq!(*seen.lock().unwrap(), ["QUIT"]);
    }

    #[tokio::test]
    async fn never_sends_mail_even_to_a_server_that_accepts_everything() {
        let (addr, seen) = fake(
            "220 fake ESMTP\r\n",
            &[
                ("EHLO", "250-fake\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
                ("STARTTLS", "220 2.0.0 go ahead\r\n"),
                ("QUIT", "221 bye\r\n"),
                ("*", "250 2.0.0 anything you like\r\n"),
            ],
        )
        .await;
        let obs = probe(&target(addr), &options(Duration::from_secs(5)))
            .await
            .unwrap();
        let Starttls::Established { tls, .. } = &obs.starttls else {
            panic!("{obs}")
        };
        assert_eq!(tls.chain.problems, [crate::probe::CertProblem::SelfSigned]);
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "EHLO probe.tlsharness.test",
                "STARTTLS",
                "EHLO probe.tlsharness.test",
                "QUIT"
            ]
        );
        assert!(
            obs.transcript
                .iter()
                .any(|l| l.starts_with("-- TLS began: TLSv1.3")),
            "{obs:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_starttls_is_recorded_and_the_session_ended_with_quit() {
        let (addr, seen) = fake(
            "220 fake ESMTP\r\n",
            &[
                ("EHLO", "250-fake\r\n250 STARTTLS\r\n"),
                ("STARTTLS", "454 4.7.0 not now\r\n"),
                ("QUIT", "221 bye\r\n"),
            ],
        )
        .await;
        let obs = probe(&target(addr), &options(Duration::from_secs(2)))
            .await
            .unwrap();
        assert!(
            matches!(&obs.starttls, Starttls::Refused(r) if r.code() == 454),
            "{obs}"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            ["EHLO probe.tlsharness.test", "STARTTLS", "QUIT"]
        );
    }

    #[tokio::test]
    async fn an_unanswered_starttls_is_recorded_as_silence() {
        let (addr, seen) = fake(
            "220 fake ESMTP\r\n",
            &[("EHLO", "250-fake\r\n250 STARTTLS\r\n"), ("STARTTLS", "")],
        )
        .await;
        let obs = probe(&target(addr), &options(Duration::from_millis(300)))
            .await
            .unwrap();
        assert!(
            matches!(obs.starttls, Starttls::NoReply(Lost::Silent)),
            "{obs}"
        );
        // The session may still be alive: it is ended politely.
        assert_eq!(
            *seen.lock().unwrap(),
            ["EHLO probe.tlsharness.test", "STARTTLS", "QUIT"]
        );
    }

    #[tokio::test]
    async fn an_unanswered_ehlo_is_an_error_and_still_gets_quit() {
        let (addr, seen) = fake("220 fake ESMTP\r\n", &[("EHLO", "")]).await;
        let e = probe(&target(addr), &options(Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ProbeError::Timeout { step, .. } if step == "waiting for the EHLO reply"),
            "{e}"
        );
        assert_eq!(
            *seen.lock().unwrap(),
            ["EHLO probe.tlsharness.test", "QUIT"]
        );
    }

    /// A server that speaks TLS from the first byte, on every connection.
    async fn implicit_fake() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pki = crate::pki::Pki::new("fake").unwrap();
        let id = pki
            .identity(crate::pki::CertKind::SelfSigned, "smtp.relay.test")
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(&id, Default::default()).unwrap(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The plaintext probe gives up and closes: no handshake.
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut io = BufReader::new(tls);
                    io.get_mut().write_all(b"220 inside TLS\r\n").await.unwrap();
                    let mut line = String::new();
                    while io.read_line(&mut line).await.unwrap_or(0) > 0 {
                        let answer: &[u8] = if line.starts_with("QUIT") {
                            b"221 bye\r\n"
                        } else {
                            b"250-inside\r\n250 AUTH PLAIN\r\n"
                        };
                        io.get_mut().write_all(answer).await.unwrap();
                        line.clear();
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn implicit_tls_is_spoken_at_once_or_found_behind_a_silent_greeting() {
        let addr = implicit_fake().await;
        let step = Duration::from_millis(500);
        let started = std::time::Instant::now();
        let obs = probe_implicit_tls(&target(addr), &options(Duration::from_secs(10)))
            .await
            .unwrap();
        // Known implicit TLS: no wait for a plaintext greeting.
        assert!(started.elapsed() < Duration::from_secs(2), "{obs}");
        assert_eq!(obs.greeting.lines(), ["220 inside TLS"]);
        let tls = obs.implicit_tls.as_ref().expect("implicit TLS recorded");
        assert_eq!(tls.chain.problems, [crate::probe::CertProblem::SelfSigned]);
        assert!(matches!(obs.starttls, Starttls::NotOffered));

        // Probed as plaintext: silence for one step, then TLS completes.
        let obs = probe(&target(addr), &options(step)).await.unwrap();
        assert!(obs.implicit_tls.is_some(), "{obs}");
        assert!(
            obs.transcript[0].contains("a TLS handshake then completed"),
            "{:?}",
            obs.transcript
        );
    }

    #[test]
    fn clean_censors_what_is_not_printable_text() {
        let reply = Reply {
            lines: vec![ReplyLine {
                code: *b"220",
                last: true,
                text: b"a\x00b\xffc\td \xc3\xa9".to_vec(),
            }],
        };
        assert_eq!(clean(reply).lines[0].text, "a?b?c\td é".as_bytes());
    }
}

//! Property tests across the rewriting behaviours: whatever a relay (or a
//! hostile peer) sends, the middlebox never panics, never loses bytes it
//! does not mean to change, and every reply it rewrites is well formed.

use proptest::prelude::*;

use super::behaviour::ReplyContext;
use super::spec::{BehaviourSpec, BuildContext};
use crate::smtp::{Chunk, LineReader, ReplyAssembler, Unit};

fn rewriting() -> Vec<BehaviourSpec> {
    let parse = |s: &str| -> BehaviourSpec {
        #[derive(serde::Deserialize)]
        struct H {
            b: BehaviourSpec,
        }
        toml::from_str::<H>(&format!("b = {s}")).expect("valid").b
    };
    vec![
        parse(r#""strip-starttls""#),
        parse(r#""mask-starttls""#),
        parse(r#"{ mask-starttls = { allow = ["SIZE"] } }"#),
        parse(r#""mask-banner""#),
        parse(r#""inject""#),
    ]
}

/// Server output that is mostly SMTP-shaped, sometimes not at all.
fn server_output() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "(220|250|354|454|502)[ -][ -~]{0,30}\r\n".prop_map(String::into_bytes),
        "250[ -](STARTTLS|PIPELINING|SIZE 100|8BITMIME|AUTH PLAIN)\r\n"
            .prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    proptest::collection::vec(line, 0..30).prop_map(|v| v.concat())
}

fn verb() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("EHLO")),
        Just(Some("STARTTLS")),
        Just(Some("MAIL")),
        Just(Some("DATA")),
    ]
}

proptest! {
    #[test]
    fn rewritten_replies_are_well_formed_and_the_rest_is_untouched(
        bytes in server_output(),
        limit in 8usize..200,
        answering in verb(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let chunks = rt.block_on(async {
            let mut r = bytes.as_slice();
            let mut reader = LineReader::new(limit);
            let mut out = Vec::new();
            while let Some(c) = reader.next(&mut r).await.unwrap() {
                out.push(c);
            }
            out
        });
        let mut assembler = ReplyAssembler::new();
        let mut units = Vec::new();
        for c in &chunks {
            units.extend(assembler.push(c.bytes(), matches!(c, Chunk::Line(_))));
        }
        units.extend(assembler.finish());
        // Nothing is lost in the grouping.
        let regrouped: Vec<u8> = units.iter().flat_map(|u| match u {
            Unit::Raw(b) => b.clone(),
            Unit::Reply(r) => r.to_bytes(),
        }).collect();
        // Grouping may only normalise line endings (and the space of an
        // empty last line); every other byte comes out, in order.
        let strip = |b: &[u8]| -> Vec<u8> {
            b.iter().copied().filter(|c| !matches!(c, b'\r' | b'\n' | b' ')).collect()
        };
        prop_assert_eq!(strip(&regrouped), strip(&bytes));
        let ctx = BuildContext::default();
        for spec in rewriting() {
            let mut b = spec.build(&ctx);
            for u in &units {
                if let Unit::Reply(r) = u {
                    prop_assert!(r.is_well_formed());
                    let mut r = r.clone();
                    b.on_reply(ReplyContext { answering }, &mut r);
                    prop_assert!(r.is_well_formed(), "{} broke {:?}", spec.name(), r);
                    // What goes on the wire parses back to the same reply.
                    let wire = r.to_bytes();
                    let mut again = ReplyAssembler::new();
                    let mut back = Vec::new();
                    for line in wire.split_inclusive(|b| *b == b'\n') {
                        back.extend(again.push(line, true));
                    }
                    prop_assert_eq!(back, vec![Unit::Reply(r.clone())]);
                    if let Some(extra) = b.after_reply(ReplyContext { answering }, &r) {
                        prop_assert!(extra.ends_with(b"\r\n"));
                    }
                }
            }
        }
    }
}

/// A relay that says whatever it is given, then closes.
async fn hostile_relay(bytes: Vec<u8>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
            let mut sink = [0u8; 1024];
            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    });
    (addr, task)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Through real sockets: arbitrary relay output, every rewriting
    /// behaviour at once. The connection ends, its record is kept (a
    /// panicking task would never report), within a deadline.
    #[test]
    fn the_proxy_survives_any_relay_output(bytes in server_output()) {
        use std::time::Duration;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_util::sync::CancellationToken;
        use tokio_util::task::TaskTracker;
        use super::proxy::{Middlebox, MiddleboxConfig};

        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (relay, relay_task) = hostile_relay(bytes).await;
            let tasks = TaskTracker::new();
            let stop = CancellationToken::new();
            let mb = Middlebox::start(
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                MiddleboxConfig {
                    upstream: relay,
                    relay_name: "smtp.relay.test".into(),
                    behaviours: rewriting(),
                    context: BuildContext::default(),
                    connect_timeout: Duration::from_secs(5),
                    implicit_tls: false,
                },
                &tasks,
                stop.clone(),
            )
            .unwrap();
            let mut c = tokio::net::TcpStream::connect(mb.addr()).await.unwrap();
            let _ = c.write_all(b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\nDATA\r\n").await;
            let mut got = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got)).await;
            prop_assert!(read.is_ok(), "the client was never released");
            drop(c);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            prop_assert!(mb.idle(deadline).await, "the connection never ended");
            prop_assert_eq!(mb.records().len(), 1);
            stop.cancel();
            tasks.close();
            tasks.wait().await;
            relay_task.abort();
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Through real sockets, against the real fake relay: whatever Postfix's
    /// side sends (garbage, half lines, pipelined commands, STARTTLS), the
    /// connection ends and is recorded within a deadline.
    #[test]
    fn the_proxy_survives_any_client_input(
        input in proptest::collection::vec(
            prop_oneof![
                Just(b"EHLO x\r\n".to_vec()),
                Just(b"STARTTLS\r\n".to_vec()),
                Just(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n".to_vec()),
                Just(b".\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..200),
            ],
            0..12,
        )
    ) {
        use std::time::Duration;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_util::sync::CancellationToken;
        use tokio_util::task::TaskTracker;
        use super::proxy::{Middlebox, MiddleboxConfig};
        use crate::upstream::{Relay, RelayConfig};

        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let tasks = TaskTracker::new();
            let stop = CancellationToken::new();
            let relay = Relay::start(
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                RelayConfig::new("smtp.relay.test", None),
                &tasks,
                stop.clone(),
            )
            .unwrap();
            let mb = Middlebox::start(
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                MiddleboxConfig {
                    upstream: relay.addr(),
                    relay_name: "smtp.relay.test".into(),
                    behaviours: rewriting(),
                    context: BuildContext::default(),
                    connect_timeout: Duration::from_secs(5),
                    implicit_tls: false,
                },
                &tasks,
                stop.clone(),
            )
            .unwrap();
            let mut c = tokio::net::TcpStream::connect(mb.addr()).await.unwrap();
            let _ = c.write_all(&input.concat()).await;
            let _ = c.shutdown().await;
            let mut got = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got)).await;
            prop_assert!(read.is_ok(), "the client was never released");
            drop(c);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            prop_assert!(mb.idle(deadline).await, "the connection never ended");
            prop_assert_eq!(mb.records().len(), 1);
            stop.cancel();
            tasks.close();
            tasks.wait().await;
            Ok(())
        })?;
    }
}

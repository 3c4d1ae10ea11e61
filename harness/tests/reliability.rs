//! Reliability and containment: cleanup on every exit path, environment
//! faults that end in a clear error instead of a hang, and a Postfix that
//! can reach nothing but the run's fakes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Watched, containers_of_run, containers_of_run_async, run_dirs, run_id, tlsharness};
use tlsharness::exit;
use tlsharness::lab::{Lab, LabOptions};
use tlsharness::mta::StartOptions;
use tlsharness::mta::postfix::config::{PostfixConfig, SENDER};
use tlsharness::run::{RunEvent, RunOptions, run};
use tlsharness::scenario::load_paths;

/// Every test here starts harness processes, and each start sweeps away
/// containers whose owner is gone: the SIGKILL test must not share the
/// machine with another start while it looks at its leftovers. (Under
/// nextest, ci/nextest.toml runs it alone for the same reason.)
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn scenario(id: &str) -> Vec<Arc<tlsharness::scenario::Scenario>> {
    load_paths(&[common::root().join(format!("scenarios/{id}.toml"))])
        .expect("the scenario loads")
        .into_iter()
        .map(Arc::new)
        .collect()
}

/// Runs an async test body on its own runtime, one test at a time.
fn serially<F: std::future::Future<Output = ()>>(body: F) {
    let _serial = serial();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(body);
}

#[test]
fn a_panic_mid_run_still_removes_the_container_and_directory() {
    serially(panic_mid_run());
}

async fn panic_mid_run() {
    let seen_id = Arc::new(Mutex::new(String::new()));
    let id = seen_id.clone();
    common::in_process();
    let opts = RunOptions {
        observer: Some(Arc::new(move |e| match e {
            RunEvent::Starting { run_id, .. } => *id.lock().unwrap() = run_id.to_owned(),
            RunEvent::Ready { .. } => panic!("a harness bug, simulated"),
            _ => {}
        })),
        ..RunOptions::default()
    };
    let scenarios = scenario("starttls-relay");
    let outcome = tokio::spawn(async move { run(&scenarios, &opts).await }).await;
    assert!(outcome.expect_err("the run panicked").is_panic());
    let id = seen_id.lock().unwrap().clone();
    assert!(!id.is_empty());
    assert!(
        containers_of_run_async(&id).await.is_empty(),
        "container left behind"
    );
    assert!(run_dirs(&id).is_empty(), "run directory left behind");
}

#[test]
fn sigkill_leaves_what_the_next_sweep_removes() {
    let _serial = serial();
    let mut cmd = tlsharness();
    cmd.args(["run", "scenarios/fail-handshake-silence.toml"]);
    let mut w = Watched::spawn(cmd);
    let id = run_id(&w.wait_for("starting Postfix", Duration::from_secs(60)));
    w.wait_for("ready", Duration::from_secs(60));
    w.child.kill().expect("SIGKILL");
    w.wait(Duration::from_secs(30));
    // Nothing could clean up after SIGKILL: Postfix's container and the
    // agent's (nothing of a run is ever on the host's disk)...
    assert_eq!(containers_of_run(&id).len(), 2);
    assert!(run_dirs(&id).is_empty());
    // ...so the next harness process does.
    let out = tlsharness().arg("sweep").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(containers_of_run(&id).is_empty());
    assert!(run_dirs(&id).is_empty());
}

#[test]
fn postfix_stopping_mid_run_is_an_environment_error_not_a_hang() {
    let _serial = serial();
    let mut cmd = tlsharness();
    cmd.args(["run", "scenarios/fail-handshake-silence.toml"]);
    let mut w = Watched::spawn(cmd);
    let id = run_id(&w.wait_for("starting Postfix", Duration::from_secs(60)));
    w.wait_for("ready", Duration::from_secs(60));
    let killed = std::process::Command::new("docker")
        .args(["kill", &format!("tlsharness-{id}")])
        .output()
        .unwrap();
    assert!(
        killed.status.success(),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let start = std::time::Instant::now();
    let status = w.wait(Duration::from_secs(60));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        status.code(),
        Some(exit::ENVIRONMENT),
        "{}",
        w.seen.join("\n")
    );
    assert!(
        w.seen.iter().any(|l| l.contains("stopped during the run")),
        "{}",
        w.seen.join("\n")
    );
    assert!(containers_of_run(&id).is_empty());
    assert!(run_dirs(&id).is_empty());
}

#[test]
fn a_missing_image_is_an_environment_error_with_a_remedy() {
    let _serial = serial();
    let out = tlsharness()
        .args([
            "run",
            "scenarios/starttls-relay.toml",
            "--image",
            "tlsharness/postfix:no-such-suite",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::ENVIRONMENT), "{stderr}");
    assert!(
        stderr.contains("is not present and nothing can be pulled"),
        "{stderr}"
    );
    assert!(stderr.contains("build your own image"), "{stderr}");
}

/// Every TCP socket in Postfix's network namespace (Postfix's and the
/// agent's): (state, local, remote), from /proc/net/tcp and tcp6 read
/// inside the container.
async fn namespace_sockets(lab: &Lab) -> Vec<(String, String, String)> {
    let hex_addr = |h: &str| {
        let (ip, port) = h.split_once(':').unwrap();
        let n = u32::from_str_radix(ip, 16).unwrap();
        let ip = std::net::Ipv4Addr::from(n.swap_bytes());
        format!("{ip}:{}", u16::from_str_radix(port, 16).unwrap())
    };
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = lab.mta.exec(&["cat", table]).await.unwrap_or_default();
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() > 9 {
                if table.ends_with('6') {
                    // Postfix runs with inet_protocols = ipv4: any v6 socket is a failure.
                    out.push((f[3].to_owned(), format!("[v6] {}", f[1]), f[2].to_owned()));
                } else {
                    out.push((f[3].to_owned(), hex_addr(f[1]), hex_addr(f[2])));
                }
            }
        }
    }
    out
}

/// Starts a Postfix with no transports of the harness's: every
/// destination is refused.
async fn contained_lab(name: &str) -> Lab {
    start_lab(name, Default::default())
        .await
        .expect("Postfix starts")
}

async fn start_lab(
    name: &str,
    main_overrides: std::collections::BTreeMap<String, String>,
) -> Result<Lab, tlsharness::lab::LabError> {
    common::in_process();
    let pki = tlsharness::pki::Pki::new(name).unwrap();
    let config = PostfixConfig {
        inject: tlsharness::lab::INJECT,
        transports: Vec::new(),
        routes: Vec::new(),
        hosts: Default::default(),
        ca_pem: pki.ca_pem(),
        main_overrides,
        maps: Default::default(),
        zones: Vec::new(),
    };
    let image = tlsharness::mta::postfix::image::DEFAULT_IMAGE;
    let prepared = tlsharness::lab::prepare_run(&[image])
        .await
        .expect("Docker, the image and the agent are ready");
    Lab::start(LabOptions {
        mta: StartOptions {
            mta: tlsharness::policy::Mta::Postfix,
            image: image.into(),
            run_id: prepared.run_id,
            container_name: format!("tlsharness-{name}-{}", std::process::id()),
            startup_timeout: Duration::from_secs(60),
        },
        files: config.files(),
        agent: prepared.agent,
    })
    .await
}

#[test]
fn a_configuration_that_would_let_mail_out_is_refused_before_any_case() {
    serially(async {
        // As if the harness itself wrote a fallback relay: Postfix's own
        // account of the smtp transports must stop the run.
        let loose = [(
            "smtp_fallback_relay".to_owned(),
            "[192.0.2.1]:25".to_owned(),
        )]
        .into();
        let e = match start_lab("loose", loose).await {
            Ok(mut lab) => {
                lab.stop().await;
                panic!("a loose configuration started");
            }
            Err(e) => e.to_string(),
        };
        assert!(e.contains("smtp_fallback_relay = [192.0.2.1]:25"), "{e}");
        assert!(e.contains("not contained"), "{e}");
    });
}

#[test]
fn postfix_s_namespace_has_no_interface_but_loopback() {
    serially(async {
        let mut lab = contained_lab("interfaces").await;
        // Read from inside: the interfaces the kernel lists for the
        // namespace Postfix (and the agent) live in.
        let dev = lab.mta.exec(&["cat", "/proc/net/dev"]).await.unwrap();
        let interfaces: Vec<&str> = dev
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(interfaces, ["lo"], "{dev}");
        let routes = lab.mta.exec(&["cat", "/proc/net/route"]).await.unwrap();
        assert_eq!(
            routes.lines().count(),
            1,
            "no route but loopback's: {routes}"
        );
        lab.stop().await;
    });
}

#[test]
fn mail_for_anywhere_else_stays_inside_and_postfix_only_touches_loopback() {
    serially(containment());
}

async fn containment() {
    let mut lab = contained_lab("containment").await;
    let instance = &lab.mta;
    // A public domain, a host name, and an address literal: refused at the
    // door, and when queued anyway (sendmail, no smtpd), bounced locally
    // without a connection attempt.
    let targets = [
        "someone@example.com",
        "postmaster@mail.google.com",
        "root@[192.0.2.1]",
    ];
    for to in targets {
        // (lettre cannot write the address literal; sendmail below can.)
        if !to.contains('[') {
            let refused = lab
                .inject(to, "tlsharness containment", "<c@tlsharness.test>")
                .await
                .expect_err("smtpd refuses mail for anywhere else");
            assert!(
                refused
                    .to_string()
                    .contains("tlsharness delivers only to the run's fake relays"),
                "{refused}"
            );
        }
        let mut rx = instance.subscribe(to);
        let script =
            format!("printf 'Subject: containment\\n\\nx\\n' | sendmail -f {SENDER} '{to}'");
        instance
            .exec(&["sh", "-c", &script])
            .await
            .expect("sendmail queues it");
        let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a status within the deadline")
            .expect("a status line");
        let d = event.delivery;
        assert_eq!(
            d.status,
            tlsharness::mta::log::Status::Bounced,
            "{to}: {d:?}"
        );
        assert_eq!(d.relay, "none", "{to}: no connection was attempted: {d:?}");
        assert!(
            d.reason
                .contains("tlsharness delivers only to the run's fake relays"),
            "{d:?}"
        );
    }
    // Bounces to the harness's sender are discarded inside Postfix.
    let log = instance.lines();
    assert!(
        !log.iter()
            .any(|l| l.raw.contains(&format!("to=<{SENDER}>")) && l.raw.contains("relay=smtp"))
    );
    let sockets = namespace_sockets(&lab).await;
    // The scan sees Postfix's own listener, so it sees Postfix's sockets.
    let inject = tlsharness::lab::INJECT.to_string();
    assert!(
        sockets
            .iter()
            .any(|(state, local, _)| state == "0A" && *local == inject),
        "{sockets:?}"
    );
    for (state, local, remote) in sockets {
        assert!(
            local.starts_with("127."),
            "Postfix socket on {local} ({state})"
        );
        if state != "0A" {
            assert!(remote.starts_with("127."), "Postfix connected to {remote}");
        }
    }
    lab.stop().await;
}

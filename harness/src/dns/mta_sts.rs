//! MTA-STS (RFC 8461): a scenario's `[mta_sts]` section, the policy file
//! it publishes, and the HTTPS policy server the agent runs for every
//! case (`https://mta-sts.DOMAIN/.well-known/mta-sts.txt`). Postfix asks
//! Debian's postfix-mta-sts-resolver daemon, which looks the policy up as
//! the RFC says: a TXT record at `_mta-sts.DOMAIN` through the run's
//! resolver, then the file over HTTPS, the certificate checked against
//! the run's CA.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;

/// `[mta_sts]`: the domain's policy and how its policy server behaves.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MtaStsSpec {
    #[serde(default)]
    pub mode: StsMode,
    /// The policy's `mx` patterns (`mx1.hoge.example`, `*.hoge.example`);
    /// by default the domain's MX hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mx: Vec<String>,
    #[serde(default = "a_day")]
    pub max_age: u64,
    #[serde(default)]
    pub server: PolicyServer,
    /// The policy file as served, instead of `mode`, `mx` and `max_age`
    /// (its `mx` names get the case's label like every other name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

fn a_day() -> u64 {
    86_400
}

/// A policy's mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StsMode {
    #[default]
    Enforce,
    Testing,
    None,
}

impl StsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StsMode::Enforce => "enforce",
            StsMode::Testing => "testing",
            StsMode::None => "none",
        }
    }
}

/// How the policy server answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyServer {
    /// Serves the policy with a certificate for its name from the run's CA.
    #[default]
    Ok,
    /// Nothing listens where `mta-sts.DOMAIN` points (connection refused).
    Unreachable,
    /// Serves the policy, with a certificate for another name.
    WrongCertificate,
}

/// RFC 8461's limit on a policy file.
pub const MAX_POLICY: usize = 64 * 1024;

/// Where the policy server listens, and where `unreachable` points.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 3, 1);
pub const NOWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 3, 2);

impl MtaStsSpec {
    /// The policy file, as written (names without a case's label).
    pub fn text(&self, mx_hosts: &[&str]) -> String {
        if let Some(p) = &self.policy {
            return p.clone();
        }
        let mut text = format!("version: STSv1\nmode: {}\n", self.mode.as_str());
        let patterns: Vec<String> = if self.mx.is_empty() {
            mx_hosts.iter().map(|h| (*h).to_owned()).collect()
        } else {
            self.mx.clone()
        };
        for mx in patterns {
            text.push_str(&format!("mx: {mx}\n"));
        }
        text.push_str(&format!("max_age: {}\n", self.max_age));
        text
    }
}

/// Checks a policy file as RFC 8461 (section 3.2) reads one: at most
/// 64 KiB, `key: value` lines, `version: STSv1`, a known `mode`, a
/// `max_age` of at most a year, and at least one `mx` unless the mode is
/// `none`.
pub fn check_policy(text: &str) -> Result<(), String> {
    if text.len() > MAX_POLICY {
        return Err(format!(
            "the policy file has {} bytes; RFC 8461 allows at most {MAX_POLICY} (64 KiB)",
            text.len()
        ));
    }
    let mut fields: HashMap<String, Vec<String>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!(
                "policy line {}: `{line}` is not `key: value`",
                n + 1
            ));
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("policy line {}: `{k}` is not a field name", n + 1));
        }
        fields
            .entry(k.to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    let one = |k: &str| fields.get(k).and_then(|v| v.first()).map(String::as_str);
    if one("version") != Some("STSv1") {
        return Err("the policy needs `version: STSv1`".into());
    }
    let mode = one("mode").unwrap_or("");
    if !["enforce", "testing", "none"].contains(&mode) {
        return Err(format!(
            "`mode: {mode}` is not a policy mode (enforce, testing, none)"
        ));
    }
    match one("max_age").map(str::parse::<u64>) {
        Some(Ok(age)) if age <= 31_557_600 => {}
        _ => return Err("the policy needs `max_age:` seconds, at most 31557600".into()),
    }
    if mode != "none" && fields.get("mx").is_none_or(Vec::is_empty) {
        return Err(format!("a `{mode}` policy needs at least one `mx:`"));
    }
    Ok(())
}

/// The policy file with the case's label in every `mx` name under
/// `domain`.
pub fn case_policy(text: &str, domain: &str, label: &str) -> String {
    text.lines()
        .map(|line| match line.split_once(':') {
            Some((k, v)) if k.trim() == "mx" => {
                let v = v.trim();
                format!("mx: {}", super::case_name(v, domain, label))
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The policy id in the TXT record: changes with the text.
pub fn policy_id(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One case's policy on the server.
struct Served {
    config: Arc<rustls::ServerConfig>,
    policy: String,
}

/// The policy server's cases by host name, and what happened.
#[derive(Clone, Default)]
pub struct Table {
    hosts: Arc<Mutex<HashMap<String, Served>>>,
    events: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl Table {
    pub fn set(&self, host: &str, config: Arc<rustls::ServerConfig>, policy: String) {
        let host = host.to_ascii_lowercase();
        self.events
            .lock()
            .expect("poisoned")
            .insert(host.clone(), Vec::new());
        self.hosts
            .lock()
            .expect("poisoned")
            .insert(host, Served { config, policy });
    }

    pub fn remove(&self, host: &str) {
        let host = host.to_ascii_lowercase();
        self.hosts.lock().expect("poisoned").remove(&host);
        self.events.lock().expect("poisoned").remove(&host);
    }

    pub fn events(&self, host: &str) -> Vec<String> {
        self.events
            .lock()
            .expect("poisoned")
            .get(&host.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    fn note(&self, host: &str, event: String) {
        if let Some(e) = self.events.lock().expect("poisoned").get_mut(host) {
            e.push(event);
        }
    }
}

/// Binds the policy server's socket, so that connections are taken from
/// then on.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await
}

/// Serves every case's policy on `listener` until `stop`: TLS with the
/// certificate of the name the client asks for (SNI), then one HTTP/1.1
/// request.
pub async fn serve(
    listener: TcpListener,
    table: Table,
    stop: CancellationToken,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            got = listener.accept() => match got { Ok(s) => s, Err(_) => continue },
        };
        let table = table.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, table)).await;
        });
    }
}

async fn answer(stream: tokio::net::TcpStream, table: Table) -> std::io::Result<()> {
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
    let host = start
        .client_hello()
        .server_name()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let found = table
        .hosts
        .lock()
        .expect("poisoned")
        .get(&host)
        .map(|s| (s.config.clone(), s.policy.clone()));
    let Some((config, policy)) = found else {
        return Ok(());
    };
    let mut tls = match start.into_stream(config).await {
        Ok(t) => t,
        Err(e) => {
            table.note(&host, format!("TLS handshake for {host} failed: {e}"));
            return Ok(());
        }
    };
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&request);
    let line = head.lines().next().unwrap_or("").to_owned();
    let (status, body) = if line.starts_with("GET /.well-known/mta-sts.txt ") {
        ("200 OK", policy)
    } else {
        ("404 Not Found", String::new())
    };
    table.note(&host, format!("{line}: {status}, {} bytes", body.len()));
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(response.as_bytes()).await?;
    tls.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_checked_as_rfc_8461_reads_them() {
        let spec: MtaStsSpec = toml::from_str("mode = \"enforce\"\n").unwrap();
        let text = spec.text(&["mx1.hoge.example"]);
        assert_eq!(
            text,
            "version: STSv1\nmode: enforce\nmx: mx1.hoge.example\nmax_age: 86400\n"
        );
        assert_eq!(check_policy(&text), Ok(()));
        assert!(
            check_policy("version: STSv1\nmode: enforce\nmax_age: 1\n")
                .unwrap_err()
                .contains("at least one `mx:`")
        );
        assert!(
            check_policy("version: STSv1\nmode: sometimes\nmx: a\nmax_age: 1\n")
                .unwrap_err()
                .contains("not a policy mode")
        );
        assert!(
            check_policy("this is not a policy\n")
                .unwrap_err()
                .contains("is not `key: value`")
        );
        let big = format!("{text}{}", "x: y\n".repeat(MAX_POLICY / 5));
        assert!(check_policy(&big).unwrap_err().contains("64 KiB"));
        assert_eq!(
            case_policy("version: STSv1\nmx: *.hoge.example\n", "hoge.example", "c1"),
            "version: STSv1\nmx: *.c1.hoge.example\n"
        );
    }
}

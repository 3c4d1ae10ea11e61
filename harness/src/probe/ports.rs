//! `tlsharness probe HOST`: every port a hosted relay serves, probed at
//! once, each with its own deadlines, and what became of each.

use std::fmt;
use std::net::SocketAddr;

use super::client::{ProbeOptions, probe, probe_implicit_tls};
use super::error::ProbeError;
use super::observation::Observation;
use super::target::Target;
use crate::scenario::SUBMISSIONS_PORT;

/// One port to probe, and whether it speaks TLS from the first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortPlan {
    pub port: u16,
    pub implicit_tls: bool,
}

impl PortPlan {
    /// STARTTLS everywhere but 465 (RFC 8314's `submissions`).
    pub fn usual(port: u16) -> PortPlan {
        PortPlan {
            port,
            implicit_tls: port == SUBMISSIONS_PORT,
        }
    }
}

/// The ports hosted relays serve: submission (587), SMTP (25) and the
/// common alternative (2525) with STARTTLS; 465 with implicit TLS.
pub fn default_ports() -> Vec<PortPlan> {
    [587, 25, 2525, SUBMISSIONS_PORT]
        .into_iter()
        .map(PortPlan::usual)
        .collect()
}

/// A `--ports` or `--implicit-tls` value that cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    #[error("{option}: no ports: give at least one, e.g. {option} 587,465")]
    Empty { option: &'static str },
    #[error("{option}: `{word}` is not a port: give numbers from 1 to 65535, separated by commas")]
    NotAPort { option: &'static str, word: String },
    #[error("{option}: port {port} is listed twice: give each port once")]
    Twice { option: &'static str, port: u16 },
}

/// Parses `587,465` (the `--ports` value) into ports, in order.
pub fn parse_ports(option: &'static str, text: &str) -> Result<Vec<u16>, PortsError> {
    if text.trim().is_empty() {
        return Err(PortsError::Empty { option });
    }
    let mut ports: Vec<u16> = Vec::new();
    for word in text.split(',').map(str::trim) {
        let port = word
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| PortsError::NotAPort {
                option,
                word: word.to_owned(),
            })?;
        if ports.contains(&port) {
            return Err(PortsError::Twice { option, port });
        }
        ports.push(port);
    }
    Ok(ports)
}

/// The plan for `ports` (all the usual ones when `None`), with implicit
/// TLS on 465 and on every port of `implicit`.
pub fn plan(ports: Option<&[u16]>, implicit: &[u16]) -> Vec<PortPlan> {
    let mut plans = match ports {
        Some(ports) => ports.iter().copied().map(PortPlan::usual).collect(),
        None => default_ports(),
    };
    for p in &mut plans {
        p.implicit_tls |= implicit.contains(&p.port);
    }
    plans
}

/// What became of one port.
// `Answered(Observation)` unboxed is the API `triage` is written against;
// a handful of these per probe costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum PortSeen {
    /// An SMTP server answered; the full observation.
    Answered(Observation),
    /// The connection was refused (a TCP RST): nothing listens, or a
    /// firewall rejects it.
    Refused,
    /// The connection attempt timed out: the path drops it silently.
    Dropped,
    /// Something else went wrong.
    Failed(ProbeError),
}

impl PortSeen {
    fn from_result(r: Result<Observation, ProbeError>) -> PortSeen {
        match r {
            Ok(obs) => PortSeen::Answered(obs),
            Err(ProbeError::Refused { .. }) => PortSeen::Refused,
            Err(ProbeError::ConnectTimeout { .. }) => PortSeen::Dropped,
            Err(e) => PortSeen::Failed(e),
        }
    }
}

impl fmt::Display for PortSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSeen::Answered(obs) if obs.implicit_tls.is_some() => {
                write!(f, "answered with implicit TLS: {}", obs.greeting)
            }
            PortSeen::Answered(obs) => write!(f, "answered: {}", obs.greeting),
            PortSeen::Refused => f.write_str("refused: the connection was reset (TCP RST)"),
            PortSeen::Dropped => {
                f.write_str("dropped: the connection attempt got no answer (silently dropped)")
            }
            PortSeen::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// One probe of every planned port of one host.
#[derive(Debug)]
pub struct PathObservation {
    /// As given (a name or an address).
    pub host: String,
    /// Sent as SNI and checked against the certificates.
    pub server_name: String,
    /// The addresses the host resolved to.
    pub addrs: Vec<SocketAddr>,
    /// Every planned port, in the plan's order.
    pub ports: Vec<(PortPlan, PortSeen)>,
}

impl PathObservation {
    /// The ports an SMTP server answered on, in the order `run` is to
    /// deliver to them: 587 first when it answered, then probe order.
    pub fn answered(&self) -> Vec<&Observation> {
        let mut out: Vec<&Observation> = self
            .ports
            .iter()
            .filter_map(|(_, seen)| match seen {
                PortSeen::Answered(obs) => Some(obs),
                _ => None,
            })
            .collect();
        out.sort_by_key(|obs| obs.target.port != 587);
        out
    }
}

/// Probes every port of `host` at once; each port's steps have their own
/// deadlines, so the whole takes about one step's deadline at worst. Only
/// a host that does not resolve is an error: what each port did is in
/// the result (none may have answered).
pub async fn probe_ports(
    host: &str,
    ports: &[PortPlan],
    opts: &ProbeOptions,
) -> Result<PathObservation, ProbeError> {
    let step = opts.step_timeout;
    let resolve = tokio::net::lookup_host((host, 0));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(step, resolve).await {
        Err(_) => {
            return Err(ProbeError::Timeout {
                step: format!("resolving {host}"),
                after: step,
            });
        }
        Ok(Err(source)) => {
            return Err(ProbeError::Resolve {
                host: host.to_owned(),
                source,
            });
        }
        Ok(Ok(a)) => a.collect(),
    };
    if addrs.is_empty() {
        return Err(ProbeError::NoAddress {
            host: host.to_owned(),
        });
    }
    let probes: Vec<_> = ports
        .iter()
        .map(|plan| {
            let target = Target {
                host: host.to_owned(),
                port: plan.port,
            };
            let (plan, opts) = (*plan, opts.clone());
            tokio::spawn(async move {
                let r = if plan.implicit_tls {
                    probe_implicit_tls(&target, &opts).await
                } else {
                    probe(&target, &opts).await
                };
                (plan, PortSeen::from_result(r))
            })
        })
        .collect();
    let mut seen = Vec::new();
    for (probe, plan) in probes.into_iter().zip(ports) {
        seen.push(probe.await.unwrap_or_else(|e| {
            let detail = format!("the probe of port {} panicked: {e} (a bug)", plan.port);
            let e = ProbeError::Protocol {
                step: "probing".into(),
                detail,
            };
            (*plan, PortSeen::Failed(e))
        }));
    }
    Ok(PathObservation {
        host: host.to_owned(),
        server_name: opts.server_name.clone(),
        addrs,
        ports: seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_ports_are_587_25_2525_and_465_implicit() {
        let plans = default_ports();
        let ports: Vec<(u16, bool)> = plans.iter().map(|p| (p.port, p.implicit_tls)).collect();
        assert_eq!(
            ports,
            [(587, false), (25, false), (2525, false), (465, true)]
        );
    }

    #[test]
    fn a_ports_list_is_numbers_once_each() {
        assert_eq!(parse_ports("--ports", "587,465"), Ok(vec![587, 465]));
        assert_eq!(parse_ports("--ports", " 25 , 2525 "), Ok(vec![25, 2525]));
        for (text, error) in [
            (
                "",
                "--ports: no ports: give at least one, e.g. --ports 587,465",
            ),
            (
                "587,smtp",
                "--ports: `smtp` is not a port: give numbers from 1 to 65535, separated by commas",
            ),
            (
                "70000",
                "--ports: `70000` is not a port: give numbers from 1 to 65535, separated by commas",
            ),
            (
                "0",
                "--ports: `0` is not a port: give numbers from 1 to 65535, separated by commas",
            ),
            (
                "587,,465",
                "--ports: `` is not a port: give numbers from 1 to 65535, separated by commas",
            ),
            (
                "587,465,587",
                "--ports: port 587 is listed twice: give each port once",
            ),
        ] {
            let e = parse_ports("--ports", text).unwrap_err();
            assert_eq!(e.to_string(), error, "{text:?}");
        }
    }

    #[test]
    fn implicit_tls_is_465_and_what_the_option_names() {
        let plans = plan(Some(&[587, 4650, 465]), &[4650]);
        let implicit: Vec<bool> = plans.iter().map(|p| p.implicit_tls).collect();
        assert_eq!(implicit, [false, true, true]);
    }

    #[tokio::test]
    async fn refused_and_dropped_ports_are_told_apart() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut opts = ProbeOptions::new("smtp.relay.test", super::super::TrustAnchors::only(&[]));
        opts.step_timeout = std::time::Duration::from_millis(500);
        let path = probe_ports("127.0.0.1", &[PortPlan::usual(port)], &opts)
            .await
            .unwrap();
        assert!(matches!(path.ports[0].1, PortSeen::Refused), "{path:?}");
        assert!(path.answered().is_empty());
        let e = PortSeen::from_result(Err(ProbeError::ConnectTimeout {
            addr: "127.0.0.1:25".parse().unwrap(),
            after: opts.step_timeout,
        }));
        assert!(matches!(e, PortSeen::Dropped));
        let e = probe_ports("no-such-host.invalid", &default_ports(), &opts)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ProbeError::Resolve { .. } | ProbeError::Timeout { .. }),
            "{e}"
        );
    }
}

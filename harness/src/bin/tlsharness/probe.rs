//! `tlsharness probe HOST` (every port a hosted relay serves) or
//! `tlsharness probe HOST:PORT` (one port): record a real relay's path as
//! a replaying scenario.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tlsharness::probe::{self, PortPlan, PortSeen, ProbeOptions, Target, TrustAnchors};
use tlsharness::{exit, scenario};

#[derive(Args)]
#[command(after_help = "\
Exit status:
  0  the scenario was written (or printed)
  2  bad input (HOST, --ports, --implicit-tls, --name, ...); nothing was probed
  3  the host does not resolve, or no port answered SMTP; nothing was written")]
pub struct ProbeArgs {
    /// The relay: HOST probes 587, 25 and 2525 (STARTTLS) and 465 (implicit
    /// TLS) at once and writes one scenario for the path; HOST:PORT probes
    /// that port alone (e.g. smtp.example.com:587).
    #[arg(value_name = "HOST[:PORT]")]
    target: String,
    /// With HOST: the ports to probe, e.g. 587,465 (default 587,25,2525,465).
    #[arg(long, value_name = "PORTS")]
    ports: Option<String>,
    /// A port that speaks TLS from the first byte, as 465 does; may be repeated.
    #[arg(long, value_name = "PORT")]
    implicit_tls: Vec<String>,
    /// The name the probe gives in EHLO.
    #[arg(long, default_value = probe::DEFAULT_EHLO, value_name = "NAME")]
    ehlo: String,
    /// Write the scenario to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    force: bool,
    /// The relay's name: sent as SNI, checked against its certificate, and
    /// the relay's hostname in the scenario (default: HOST).
    #[arg(long, value_name = "HOSTNAME")]
    name: Option<String>,
    /// The deadline of each step (connect, each reply, the handshake), in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    timeout: f64,
    /// Also trust the CA certificates in FILE (PEM), e.g. the smtp_tls_CAfile
    /// of the Postfix that uses this relay; may be repeated.
    #[arg(long, value_name = "FILE")]
    ca_file: Vec<PathBuf>,
}

/// What the command line asks to probe.
enum What {
    /// One port, as `HOST:PORT`.
    One { target: Target, implicit_tls: bool },
    /// Every planned port of a host.
    Path { host: String, plans: Vec<PortPlan> },
}

pub async fn probe(args: ProbeArgs) -> i32 {
    let planned = what(&args).and_then(|w| Ok((probe_options(&args, host_of(&w))?, w)));
    let (opts, what) = match planned {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tlsharness: {e}");
            return exit::BAD_INPUT;
        }
    };
    if let Some(out) = &args.out
        && out.exists()
        && !args.force
    {
        eprintln!(
            "tlsharness: {} exists; pass --force to overwrite it",
            out.display()
        );
        return exit::BAD_INPUT;
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("probed.toml"));
    let text = match what {
        What::One {
            target,
            implicit_tls,
        } => match probe_one(&target, implicit_tls, &opts, &path, args.timeout).await {
            Ok(text) => text,
            Err(code) => return code,
        },
        What::Path { host, plans } => {
            match probe_path(&host, &plans, &opts, &path, args.timeout).await {
                Ok(text) => text,
                Err(code) => return code,
            }
        }
    };
    let Some(out) = &args.out else {
        print!("{text}");
        return exit::SUCCESS;
    };
    if let Err(e) = scenario::builtin::write_file(out, &text, args.force) {
        eprintln!("tlsharness: failed to write {}: {e}", out.display());
        eprintln!("tlsharness: the scenario it would have held:\n{text}");
        return exit::ENVIRONMENT;
    }
    eprintln!(
        "tlsharness: wrote {}; review its comments, then: tlsharness run {}",
        out.display(),
        out.display()
    );
    exit::SUCCESS
}

async fn probe_one(
    target: &Target,
    implicit_tls: bool,
    opts: &ProbeOptions,
    path: &Path,
    timeout: f64,
) -> Result<String, i32> {
    let how = if implicit_tls {
        " with implicit TLS"
    } else {
        ""
    };
    eprintln!(
        "tlsharness: probing {target}{how} as {} (up to {timeout}s per step; no mail is sent)",
        opts.ehlo_name
    );
    let observed = if implicit_tls {
        probe::probe_implicit_tls(target, opts).await
    } else {
        probe::probe(target, opts).await
    };
    let observation = observed.map_err(|e| super::fail(&e))?;
    for line in observation.to_string().lines() {
        eprintln!("  {line}");
    }
    probe::scenario_text(&observation, path)
        .map(|(text, _)| text)
        .map_err(|e| super::fail(&e))
}

async fn probe_path(
    host: &str,
    plans: &[PortPlan],
    opts: &ProbeOptions,
    path: &Path,
    timeout: f64,
) -> Result<String, i32> {
    let ports: Vec<String> = plans
        .iter()
        .map(|p| {
            let how = if p.implicit_tls {
                "implicit TLS"
            } else {
                "STARTTLS"
            };
            format!("{} ({how})", p.port)
        })
        .collect();
    eprintln!(
        "tlsharness: probing {host} on {} at once as {} (up to {timeout}s per step; no mail is sent)",
        ports.join(", "),
        opts.ehlo_name
    );
    let seen = probe::probe_ports(host, plans, opts)
        .await
        .map_err(|e| super::fail(&e))?;
    for (plan, port) in &seen.ports {
        eprintln!("  port {}: {port}", plan.port);
        if let PortSeen::Answered(obs) = port {
            for line in obs.to_string().lines() {
                eprintln!("    {line}");
            }
        }
    }
    probe::path_scenario_text(&seen, path)
        .map(|(text, _)| text)
        .map_err(|e| super::fail(&e))
}

fn host_of(what: &What) -> &str {
    match what {
        What::One { target, .. } => &target.host,
        What::Path { host, .. } => host,
    }
}

/// HOST or HOST:PORT, with --ports and --implicit-tls; the message says
/// what is wrong.
fn what(args: &ProbeArgs) -> Result<What, String> {
    let mut implicit = Vec::new();
    for word in &args.implicit_tls {
        let port = probe::parse_ports("--implicit-tls", word).map_err(|e| e.to_string())?;
        for p in port {
            if implicit.contains(&p) {
                return Err(format!(
                    "--implicit-tls: port {p} is given twice: give each port once"
                ));
            }
            implicit.push(p);
        }
    }
    let bare = {
        let t = args.target.as_str();
        let v6 = t
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(t);
        (!t.contains(':') || v6.parse::<std::net::Ipv6Addr>().is_ok()).then_some(v6)
    };
    let Some(host) = bare.filter(|h| !h.is_empty()) else {
        let target: Target = args.target.parse()?;
        if args.ports.is_some() {
            return Err(format!(
                "--ports: {target} names one port already: give HOST alone to probe several"
            ));
        }
        if let Some(p) = implicit.iter().find(|p| **p != target.port) {
            return Err(format!(
                "--implicit-tls: port {p} is not the port probed ({target})"
            ));
        }
        let implicit_tls = PortPlan::usual(target.port).implicit_tls || !implicit.is_empty();
        return Ok(What::One {
            target,
            implicit_tls,
        });
    };
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{host}` is not a host name or address"));
    }
    let ports = match &args.ports {
        Some(text) => Some(probe::parse_ports("--ports", text).map_err(|e| e.to_string())?),
        None => None,
    };
    let plans = probe::plan(ports.as_deref(), &implicit);
    if let Some(p) = implicit
        .iter()
        .find(|p| !plans.iter().any(|q| q.port == **p))
    {
        let listed: Vec<String> = plans.iter().map(|q| q.port.to_string()).collect();
        return Err(format!(
            "--implicit-tls: port {p} is not among the ports probed ({}): add it to --ports",
            listed.join(",")
        ));
    }
    Ok(What::Path {
        host: host.to_owned(),
        plans,
    })
}

/// The probe's options from the command line; the message says what is wrong.
fn probe_options(args: &ProbeArgs, host: &str) -> Result<ProbeOptions, String> {
    let name = match &args.name {
        Some(n) => n.to_ascii_lowercase(),
        None if host.parse::<std::net::IpAddr>().is_ok() => {
            return Err(format!(
                "{host} is an address: give the relay's name with --name (it is checked against the certificate and names the relay in the scenario)"
            ));
        }
        None => host.to_ascii_lowercase(),
    };
    let source = if args.name.is_some() {
        "--name"
    } else {
        "the relay's name (from HOST; give another with --name)"
    };
    scenario::Hostname::parse(&name).map_err(|e| format!("{source}: {e}"))?;
    let ehlo_ok = !args.ehlo.is_empty()
        && args.ehlo.len() <= 255
        && args.ehlo.bytes().all(|b| b.is_ascii_graphic());
    if !ehlo_ok {
        return Err(format!(
            "--ehlo: `{}` is not an EHLO name (a domain or an address literal, without spaces)",
            args.ehlo
        ));
    }
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(format!(
            "--timeout: {} is not a number of seconds above 0 and at most 3600",
            args.timeout
        ));
    }
    let anchors = trust_anchors(&args.ca_file)?;
    let mut opts = ProbeOptions::new(name, anchors);
    opts.ehlo_name = args.ehlo.clone();
    opts.step_timeout = Duration::from_secs_f64(args.timeout);
    Ok(opts)
}

/// The system's root certificates and those in `files` (PEM), as `--ca-file`
/// gives them; the message names the file that is wrong.
pub fn trust_anchors(files: &[PathBuf]) -> Result<TrustAnchors, String> {
    let mut roots = Vec::new();
    for file in files {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| format!("--ca-file {}: {e}", file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-file {}: no PEM certificate in it",
                file.display()
            ));
        }
        roots.extend(certs);
    }
    let (anchors, warnings) = TrustAnchors::system_and(&roots);
    for w in warnings {
        eprintln!("tlsharness: warning: system root certificates: {w}");
    }
    Ok(anchors)
}

//! `tlsharness probe HOST:PORT`: record a real relay's path as a
//! replaying scenario.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tlsharness::probe::{self, ProbeOptions, Target, TrustAnchors};
use tlsharness::{exit, scenario};

#[derive(Args)]
pub struct ProbeArgs {
    /// The relay, as HOST:PORT (e.g. smtp.example.com:587).
    #[arg(value_parser = clap::value_parser!(Target))]
    target: Target,
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
    /// the relay's hostname in the scenario (default: the host of TARGET).
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

pub async fn probe(args: ProbeArgs) -> i32 {
    let opts = match probe_options(&args) {
        Ok(o) => o,
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
    eprintln!(
        "tlsharness: probing {} as {} (up to {}s per step; no mail is sent)",
        args.target, opts.ehlo_name, args.timeout
    );
    let observation = match probe::probe(&args.target, &opts).await {
        Ok(o) => o,
        Err(e) => return super::fail(&e),
    };
    for line in observation.to_string().lines() {
        eprintln!("  {line}");
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("probed.toml"));
    let text = match probe::scenario_text(&observation, &path) {
        Ok((text, _)) => text,
        Err(e) => return super::fail(&e),
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

/// The probe's options from the command line; the message says what is wrong.
fn probe_options(args: &ProbeArgs) -> Result<ProbeOptions, String> {
    let name = match &args.name {
        Some(n) => n.to_ascii_lowercase(),
        None if args.target.is_address() => {
            return Err(format!(
                "{} is an address: give the relay's name with --name (it is checked against the certificate and names the relay in the scenario)",
                args.target.host
            ));
        }
        None => args.target.host.to_ascii_lowercase(),
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

//! `tlsharness triage`: on the affected host, from the symptom to a
//! predicted fix (no Docker needed); `--confirm` runs the predictions on
//! real Postfix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tlsharness::check::{self, CheckOptions, Verdict};
use tlsharness::exit;
use tlsharness::probe::{self, ProbeOptions};
use tlsharness::triage::{
    self, Candidate, HopOutlook, HostConfig, PathObservation, PortSeen, TriageError,
};
use tokio_util::sync::CancellationToken;

const AFTER_HELP: &str = "\
Exit status:
  0  a diagnosis, and on every next hop a candidate predicted to be an
     upgrade (or the current configuration predicted to deliver over TLS);
     with --confirm, real Postfix agreed with every prediction
  1  --confirm: real Postfix disagreed with a prediction
  2  bad arguments, or a file triage would write exists (--force)
  3  nothing answered on any port of any next hop, or --confirm without
     a usable Docker
  7  the configuration or the mail log could not be read
  8  diagnosed, but no standard candidate is predicted to be an upgrade
     (or the configuration sends mail to no relay triage can probe)";

#[derive(Args)]
#[command(after_help = AFTER_HELP)]
pub struct TriageArgs {
    /// A copy of /etc/postfix (or a main.cf). Default: the running
    /// Postfix's, through `postconf`.
    #[arg(long, value_name = "DIR_OR_MAIN_CF")]
    config: Option<PathBuf>,
    /// The mail log. Default: the first readable of /var/log/mail.log,
    /// /var/log/maillog, /var/log/mail/mail.log.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Connect here instead of resolving each relay's name (the name is
    /// still sent as SNI, checked against certificates and written in the
    /// scenario).
    #[arg(long, value_name = "HOST")]
    connect: Option<String>,
    /// The scenario of this network's path.
    #[arg(long, value_name = "FILE", default_value = "triage.toml")]
    out: PathBuf,
    /// Where each candidate is written as a configuration directory.
    #[arg(long, value_name = "DIR", default_value = "triage-candidates")]
    out_dir: PathBuf,
    /// Overwrite the scenario and the candidate directories.
    #[arg(long)]
    force: bool,
    /// Run each candidate's check on real Postfix (needs Docker) and say
    /// whether it agrees with the prediction.
    #[arg(long)]
    confirm: bool,
    /// The Postfix image for --confirm; repeat to compare versions.
    #[arg(long)]
    image: Vec<String>,
    /// The deadline of each probe step, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    timeout: f64,
    /// Also trust the CA certificates in FILE (PEM); may be repeated.
    #[arg(long, value_name = "FILE")]
    ca_file: Vec<PathBuf>,
}

pub async fn triage(args: TriageArgs, cancel: CancellationToken) -> i32 {
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        eprintln!(
            "tlsharness: --timeout: {} is not a number of seconds above 0 and at most 3600",
            args.timeout
        );
        return exit::BAD_INPUT;
    }
    let anchors = match super::probe::trust_anchors(&args.ca_file) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tlsharness: {e}");
            return exit::BAD_INPUT;
        }
    };
    match diagnose(&args, anchors, cancel).await {
        Ok(code) => code,
        Err(e) => super::fail(&e),
    }
}

fn host_config(args: &TriageArgs) -> Result<HostConfig, TriageError> {
    match &args.config {
        Some(dir) => triage::from_dir(dir),
        None if triage::postconf_available() => triage::from_postconf(),
        None => Err(TriageError::Postconf {
            command: "postconf -n".into(),
            why: "no postconf command on this host's PATH".into(),
        }),
    }
}

async fn diagnose(
    args: &TriageArgs,
    anchors: probe::TrustAnchors,
    cancel: CancellationToken,
) -> Result<i32, TriageError> {
    let config = host_config(args)?;
    let routing = triage::next_hops(&config);
    print!("{}", triage::render_configuration(&config, &routing));
    let log = triage::read_log(args.log.as_deref())?;
    print!(
        "{}",
        triage::render_mail_log(&log.path, &check::explain(&log.text))
    );
    if routing.hops.is_empty() {
        println!("\nno relay to probe: triage has no fix to predict");
        return Ok(exit::NO_SAFE_FIX);
    }
    let scenarios: Vec<PathBuf> = (0..routing.hops.len())
        .map(|i| scenario_path(&args.out, i))
        .collect();
    let mut planned = scenarios.clone();
    planned.extend(Candidate::ALL.map(|c| args.out_dir.join(c.slug())));
    triage::refuse_existing(&planned, args.force)?;

    let sasl = config
        .param("smtp_sasl_auth_enable")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let mut outlooks = Vec::new();
    let mut answered = false;
    for (hop, scenario) in routing.hops.iter().zip(&scenarios) {
        let mut opts = ProbeOptions::new(hop.relay.host.clone(), anchors.clone());
        opts.step_timeout = Duration::from_secs_f64(args.timeout);
        let ports = triage::ports_for(hop, triage::default_ports());
        let host = args.connect.as_deref().unwrap_or(&hop.relay.host);
        eprintln!(
            "tlsharness: probing {} on ports {} (no mail is sent)",
            hop.relay.host,
            ports
                .iter()
                .map(|p| p.port.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let path = match triage::probe_ports(host, &ports, &opts).await {
            Ok(p) => p,
            Err(e) => {
                println!("\n== path to {}: {e}", hop.relay.host);
                continue;
            }
        };
        print!("{}", triage::render_path(&path));
        answered |= path
            .ports
            .iter()
            .any(|(_, s)| matches!(s, PortSeen::Answered(_)));
        write_scenario(&path, scenario, args.force)?;
        outlooks.push((triage::outlook(hop, &path, sasl), scenario.clone()));
    }
    if !answered {
        println!("\nnothing answered on any port of any next hop: no prediction");
        return Ok(exit::ENVIRONMENT);
    }
    let relayhost = routing.hops.iter().find(|h| h.is_relayhost());
    let mut code = exit::SUCCESS;
    for (o, scenario) in &outlooks {
        let written = write_candidates(args, &config, relayhost, o, scenario)?;
        print!("{}", triage::render_outlook(o, &written));
        if o.recommended().is_none() && !o.current_is_fine() {
            code = exit::NO_SAFE_FIX;
        }
    }
    if args.confirm {
        let agreed = confirm_all(args, &config, &outlooks, cancel).await?;
        if !agreed {
            return Ok(exit::EXPECTATION_FAILED);
        }
    }
    Ok(code)
}

/// `triage.toml`, then `triage-2.toml`, ... for each further next hop.
fn scenario_path(out: &Path, index: usize) -> PathBuf {
    if index == 0 {
        return out.to_owned();
    }
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    let ext = out
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    out.with_file_name(format!("{stem}-{}{ext}", index + 1))
}

fn write_scenario(path: &PathObservation, to: &Path, force: bool) -> Result<(), TriageError> {
    match triage::path_scenario_text(path, to)? {
        Some((text, _)) => {
            triage::write_scenario(to, &text, force)?;
            println!("scenario of this path: wrote {}", to.display());
        }
        None => println!("scenario of this path: none (no port answered)"),
    }
    Ok(())
}

/// Writes each candidate offered on the hop; returns, per candidate, the
/// command that confirms it and notes about the files.
fn write_candidates(
    args: &TriageArgs,
    config: &HostConfig,
    relayhost: Option<&triage::NextHop>,
    o: &HopOutlook,
    scenario: &Path,
) -> Result<Vec<(Candidate, String, Vec<String>)>, TriageError> {
    let mut written = Vec::new();
    for c in &o.candidates {
        let Some(changes) = c.candidate.changes(relayhost) else {
            continue;
        };
        let dir = args.out_dir.join(c.candidate.slug());
        let moved = relayhost
            .filter(|_| c.candidate.moves_relayhost())
            .map(|h| (h.relay.raw.clone(), format!("[{}]:465", h.relay.host)));
        let notes = triage::write_candidate(
            &dir,
            config,
            &changes,
            moved.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        )?;
        let command = format!(
            "tlsharness check --config {} --candidate {} {}",
            config.path().display(),
            dir.display(),
            scenario.display()
        );
        written.push((c.candidate, command, notes));
    }
    Ok(written)
}

/// Runs every written candidate's check; whether all agreed.
async fn confirm_all(
    args: &TriageArgs,
    config: &HostConfig,
    outlooks: &[(HopOutlook, PathBuf)],
    cancel: CancellationToken,
) -> Result<bool, TriageError> {
    let opts = CheckOptions {
        images: super::images(tlsharness::policy::Mta::Postfix, &args.image, false),
        startup_timeout: Duration::from_secs(60),
        attempt_timeout: Duration::from_secs(120),
        cancel,
    };
    println!(
        "\n== confirmation on real Postfix ({})",
        opts.images.join(", ")
    );
    let mut agreed = true;
    for (o, scenario) in outlooks {
        for c in &o.candidates {
            let dir = args.out_dir.join(c.candidate.slug());
            let predicted: Verdict = c.verdict;
            let confirmation =
                triage::confirm(&config.user, c.candidate, &dir, scenario, predicted, &opts)
                    .await?;
            print!("{}", triage::render_confirmation(&confirmation));
            agreed &= confirmation.agrees();
        }
    }
    Ok(agreed)
}

//! OpenSMTPD behind the MTA boundary: Debian bookworm's smtpd 6.8 with
//! the harness's own smtpd.conf, one `relay host` action per case (the
//! case's relay name and port under its policy's URL scheme, from the
//! case's source address, trusting the run's CA) and a `match` sending
//! the case's recipient domain to it. smtpd runs in the foreground
//! (`smtpd -d`) and its log is its standard error.
//!
//! OpenSMTPD relays by name and port only: no MX lookup of the harness's
//! zones, no DANE, no MTA-STS, so scenarios with `[dns]` say nothing of it.

pub mod config;
pub mod containment;
pub mod log;
pub mod policy;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use policy::OpensmtpdPolicy;

use super::containment::NotContained;
use super::image::BuiltIn;
use super::{Driver, Rendered, Target};

/// The OpenSMTPD image: Debian bookworm's OpenSMTPD 6.8.0p2.
pub const IMAGE: &str = "tlsharness/opensmtpd:bookworm";
/// What the image holds besides the base system.
pub const PACKAGES: [&str; 2] = ["opensmtpd", "ca-certificates"];

/// OpenSMTPD's driver: its policies are [`OpensmtpdPolicy`]'s, its
/// scenario table `[opensmtpd]`.
pub struct Opensmtpd;

impl Driver for Opensmtpd {
    fn name(&self) -> &'static str {
        "opensmtpd"
    }

    fn title(&self) -> &'static str {
        "OpenSMTPD"
    }

    fn policies(&self) -> &'static [&'static str] {
        &policy::NAMES
    }

    /// `[opensmtpd]`; a relay action has no option a scenario may set.
    fn scenario_table(&self) -> Option<(&'static str, &'static [&'static str])> {
        Some(("opensmtpd", &[]))
    }

    /// Its cases relay by name only: its MX lookup (`relay` without
    /// `host`) is not modelled, and it has no DANE or MTA-STS.
    fn delivers_by_mx(&self) -> bool {
        false
    }

    fn default_image(&self) -> &'static str {
        IMAGE
    }

    fn images(&self) -> &'static [BuiltIn] {
        &[BuiltIn {
            image: IMAGE,
            suite: "bookworm",
            packages: &PACKAGES,
        }]
    }

    fn render(
        &self,
        targets: &[Target<'_>],
        hosts: &BTreeMap<String, Vec<IpAddr>>,
        ca_pem: &str,
    ) -> Rendered {
        config::render(targets, hosts, ca_pem)
    }

    fn parse_line(&self, raw: &str) -> super::log::LogLine {
        log::Parser::default().parse(raw)
    }

    fn log_parser(&'static self, files: &[(String, Vec<u8>)]) -> super::LineParser {
        let mut parser = log::Parser::new(files);
        Box::new(move |raw| parser.parse(raw))
    }

    /// smtpd listens with a backlog of 5 (`SMTPD_BACKLOG`): with more
    /// connections arriving at once than it has accepted (a loaded
    /// machine), the kernel dropped the handshake's last ACK of the extra
    /// ones, and each waited for a SYN-ACK retransmission, over a minute.
    fn concurrent_injections(&self) -> usize {
        4
    }

    fn queue_id_in_reply(&self, reply: &str) -> Option<String> {
        // `2.0.0 49d0c3de Message accepted for delivery`
        let (before, _) = reply.split_once(" Message accepted")?;
        before.rsplit(' ').next().map(str::to_owned)
    }

    fn retry_command(&self, queue_id: &str) -> Vec<String> {
        config::queue_command("retry", queue_id)
    }

    /// smtpd says `1 envelope scheduled` when it took the request, and
    /// `0 envelope scheduled` while the message is still in flight.
    fn retry_taken(&self, output: &str) -> bool {
        !output.contains("0 envelope scheduled")
    }

    fn remove_command(&self, queue_id: &str) -> Vec<String> {
        config::queue_command("remove", queue_id)
    }

    fn case_config(
        &self,
        version: &str,
        image: &str,
        configs: &(String, String),
        action: &str,
        route: &str,
    ) -> String {
        format!(
            "# OpenSMTPD {version} in {image}; the case's action and match, then the whole smtpd.conf.\n\n\
             # action {action}\n{route}\n\n# smtpd.conf\n{}",
            configs.0
        )
    }

    fn containment_commands(&self) -> Vec<Vec<String>> {
        containment::commands()
    }

    fn verify_containment(&self, outputs: &[&str]) -> Result<(), NotContained> {
        containment::verify(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_id_is_in_smtpd_s_reply() {
        let id = Opensmtpd.queue_id_in_reply("2.0.0 49d0c3de Message accepted for delivery");
        assert_eq!(id.as_deref(), Some("49d0c3de"));
        assert_eq!(Opensmtpd.queue_id_in_reply("2.0.0 Ok: queued as X"), None);
    }
}

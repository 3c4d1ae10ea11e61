//! What an MTA's folder gives the rest of the harness: one [`Driver`]
//! per MTA, reached through [`super::Mta::driver`], the one place that
//! names them all. Everything outside an MTA's folder asks its driver;
//! nothing outside it knows the MTA's configuration, log or commands.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::containment::NotContained;
use super::image::BuiltIn;
use super::log::LogLine;
use super::{Rendered, Target};
use crate::policy::Policy;
use crate::scenario::Scenario;

/// A parser of one instance's log, line after line.
pub type LineParser = Box<dyn FnMut(&str) -> LogLine + Send>;

/// One MTA, as its folder implements it.
pub trait Driver: Sync {
    /// The MTA's name in files and on the command line (`postfix`).
    fn name(&self) -> &'static str;

    /// The MTA's own name, for messages (`Postfix`).
    fn title(&self) -> &'static str;

    /// Its client TLS policies by its own names, weakest first: a
    /// policy is its index here.
    fn policies(&self) -> &'static [&'static str];

    /// The scenario's table of what this MTA does (`exim` for `[exim]`),
    /// and the settings that table may give (`[exim.settings]`), where
    /// the MTA's expectations are read the neutral way (a policy name
    /// per key); `None` where the loader reads the MTA's table itself
    /// (Postfix's `[expect]`, with its version tables).
    fn scenario_table(&self) -> Option<(&'static str, &'static [&'static str])> {
        None
    }

    /// Whether the harness runs this MTA's cases by MX (scenarios with
    /// `[dns]`): its driver renders a case's zone as the MTA's own lookup.
    fn delivers_by_mx(&self) -> bool {
        true
    }

    /// The image a run of this MTA uses unless told otherwise.
    fn default_image(&self) -> &'static str;

    /// The images the harness builds for this MTA
    /// ([`super::image::ensure`]).
    fn images(&self) -> &'static [BuiltIn];

    /// The image `scenario` pins for this MTA, if it pins one (its cases
    /// then run on that image only).
    fn pinned_image<'s>(&self, _scenario: &'s Scenario) -> Option<&'s str> {
        None
    }

    /// Renders one instance's configuration for `targets`, with `hosts`
    /// the names its client resolves and `ca_pem` the CA it trusts.
    fn render(
        &self,
        targets: &[Target<'_>],
        hosts: &BTreeMap<String, Vec<IpAddr>>,
        ca_pem: &str,
    ) -> Rendered;

    /// Parses one line of the MTA's log.
    fn parse_line(&self, raw: &str) -> LogLine;

    /// The parser of one instance's log, whose rendered files are
    /// `files` ([`Rendered::files`]): line by line unless the MTA's log
    /// needs what earlier lines said.
    fn log_parser(&'static self, _files: &[(String, Vec<u8>)]) -> LineParser {
        Box::new(move |raw| self.parse_line(raw))
    }

    /// How many messages the harness may hand the MTA at once (each on a
    /// connection of its own).
    fn concurrent_injections(&self) -> usize {
        16
    }

    /// The queue id in the MTA's reply to the message's end of data.
    fn queue_id_in_reply(&self, reply: &str) -> Option<String>;

    /// The command that makes the MTA try a queued message again now.
    fn retry_command(&self, queue_id: &str) -> Vec<String>;

    /// Whether a retry request took, by its output; one that did not (the
    /// message was still busy with its last attempt) is asked again.
    fn retry_taken(&self, _output: &str) -> bool {
        true
    }

    /// The command that removes a queued message (a case run again
    /// starts from a fresh one).
    fn remove_command(&self, queue_id: &str) -> Vec<String>;

    /// A case's configuration as its failure artifacts show it: its
    /// route, its transport, then the whole configuration (`configs` is
    /// the instance's [`Rendered::configs`]).
    fn case_config(
        &self,
        version: &str,
        image: &str,
        configs: &(String, String),
        transport: &str,
        route: &str,
    ) -> String;

    /// The message age from which the MTA at `policy` retries a failed
    /// TLS handshake in plaintext, where its age decides that; `None`
    /// where age decides nothing.
    fn plaintext_fallback_age(&self, _policy: Policy, _scenario: &Scenario) -> Option<Duration> {
        None
    }

    /// Whether the MTA logs when it takes a message up for an attempt
    /// ([`super::log::LogEvent::Active`]), so that a retry request, which
    /// does nothing while the message is busy, can be confirmed.
    fn logs_attempt_start(&self) -> bool {
        false
    }

    /// Whether the MTA only queues what it receives, and the first
    /// delivery is the harness's [`Driver::retry_command`].
    fn queues_on_receipt(&self) -> bool {
        false
    }

    /// The commands whose output shows, in the MTA's own words, where its
    /// configuration can send mail, joined by the lab into one script;
    /// [`Driver::verify_containment`] judges their outputs.
    fn containment_commands(&self) -> Vec<Vec<String>>;

    /// Refuses a configuration that would let mail out; `outputs` are the
    /// outputs of [`Driver::containment_commands`], then resolv.conf.
    fn verify_containment(&self, outputs: &[&str]) -> Result<(), NotContained>;
}

//! A scenario once loaded: every key checked, each against the others,
//! and the questions the rest of the harness asks of it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::model::{
    DeliverySpec, Expectation, MiddleboxSpec, PostfixSpec, RelaySpec, VersionPrefix,
};
use crate::level::Level;
use crate::policy::{Mta, Policy};

/// A validated scenario: one network path and what Postfix must do at each level.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file stem; unique within a run.
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    pub relay: RelaySpec,
    /// One network path per address of the relay's name (usually one),
    /// or, with `dns`, per MX host.
    pub paths: Vec<MiddleboxSpec>,
    /// The recipient domain, delivered by its MX hosts through DNS.
    pub dns: Option<crate::dns::DnsSpec>,
    /// The domain's MTA-STS policy and policy server.
    pub mta_sts: Option<crate::dns::mta_sts::MtaStsSpec>,
    pub postfix: PostfixSpec,
    pub delivery: DeliverySpec,
    pub expect: BTreeMap<Level, Expectation>,
    /// Where some Postfix versions do something else: per version, the
    /// levels whose expectation differs from `expect`.
    pub versions: Vec<VersionExpectations>,
    /// What each MTA with a table of its own (`[exim]`, ...) does; an MTA
    /// the scenario has no table for does not run it.
    pub tables: BTreeMap<Mta, MtaTable>,
}

/// What one MTA does, from its own table of the scenario (`[exim]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MtaTable {
    /// By the MTA's own policy names.
    pub expect: BTreeMap<Policy, Expectation>,
    /// `settings`: the case's own client options, by the MTA's names.
    pub settings: BTreeMap<String, String>,
}

/// `[expect.postfix."VERSION"]`: the levels where that version differs.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionExpectations {
    pub version: VersionPrefix,
    pub expect: BTreeMap<Level, Expectation>,
}

impl Scenario {
    /// What must happen at `level` on Postfix `version` (as Postfix reports
    /// it, e.g. `3.5.25`): the most specific version entry that states the
    /// level, else `[expect]`.
    pub fn expectation(&self, level: Level, version: &str) -> Option<&Expectation> {
        self.versions
            .iter()
            .filter(|v| v.version.matches(version))
            .filter_map(|v| v.expect.get(&level).map(|e| (v.version.parts(), e)))
            .max_by_key(|(parts, _)| *parts)
            .map(|(_, e)| e)
            .or_else(|| self.expect.get(&level))
    }

    /// What must happen at `policy` on that MTA's `version`.
    pub fn expectation_for(&self, policy: Policy, version: &str) -> Option<&Expectation> {
        match Level::of(policy) {
            Some(level) => self.expectation(level, version),
            None => self.tables.get(&policy.mta())?.expect.get(&policy),
        }
    }

    /// The policies of `mta` this scenario states an expectation for,
    /// weakest first, with that expectation (before version entries).
    pub fn policies(&self, mta: Mta) -> Vec<(Policy, &Expectation)> {
        if mta.driver().scenario_table().is_none() {
            return self
                .expect
                .iter()
                .map(|(l, e)| (Policy::from(*l), e))
                .collect();
        }
        self.tables.get(&mta).map_or_else(Vec::new, |t| {
            t.expect.iter().map(|(p, e)| (*p, e)).collect()
        })
    }

    /// Whether the MTA trusts the CA that signed the relay's certificate
    /// (the run's CA), whichever MTA it is. The file says so under
    /// `[postfix] trust_ca`, the first MTA's table; every driver asks here.
    pub fn mta_trusts_run_ca(&self) -> bool {
        self.postfix.trust_ca
    }

    /// The case's own client options on `mta`, from its table's
    /// `settings`.
    pub fn settings(&self, mta: Mta) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        self.tables.get(&mta).map_or(&NONE, |t| &t.settings)
    }

    /// The id as a mail local part, readable in Postfix's log: lower-case
    /// letters and digits, anything else `-`, at most `max` characters.
    pub fn local_part(&self, max: usize) -> String {
        self.id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(max)
            .collect()
    }
}

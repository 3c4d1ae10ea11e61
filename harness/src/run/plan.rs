//! Scenarios x levels -> cases.

use std::sync::Arc;

use crate::level::Level;
use crate::postfix::config::CASE_DOMAIN;
use crate::scenario::{Expectation, Scenario};

/// One scenario at one security level: one message, its own relay and
/// middlebox, its own Postfix transport.
#[derive(Clone, Debug)]
pub struct Case {
    pub index: usize,
    pub scenario: Arc<Scenario>,
    pub level: Level,
    pub expect: Expectation,
}

impl Case {
    /// `scenario-id/level`, the case's name in reports.
    pub fn name(&self) -> String {
        format!("{}/{}", self.scenario.id, self.level)
    }

    /// The case's own recipient domain: its key in Postfix's transport map.
    pub fn domain(&self) -> String {
        format!("c{}.{CASE_DOMAIN}", self.index)
    }

    /// The recipient address, readable in Postfix's log.
    pub fn recipient(&self) -> String {
        let mut local: String = self
            .scenario
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        local.truncate(40);
        format!("{local}.{}@{}", self.level, self.domain())
    }
}

/// Every level each scenario states an expectation for, optionally only
/// the given levels; in scenario order, then level order.
pub fn plan(scenarios: &[Arc<Scenario>], levels: Option<&[Level]>) -> Vec<Case> {
    let mut cases = Vec::new();
    for s in scenarios {
        for (level, expect) in &s.expect {
            if levels.is_some_and(|l| !l.contains(level)) {
                continue;
            }
            cases.push(Case {
                index: cases.len(),
                scenario: s.clone(),
                level: *level,
                expect: expect.clone(),
            });
        }
    }
    cases
}

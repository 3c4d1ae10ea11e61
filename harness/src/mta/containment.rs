//! What any MTA's containment check finds: the settings that would let
//! mail out, and the refusal that stops a run before any case. Each MTA's
//! module judges its own configuration (`postfix::containment`,
//! `exim::verify_containment`).

use std::fmt;

/// One setting that would let a service's mail leave, or leave from an
/// address other than loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loose {
    /// Where the setting is: a master.cf service (`smtp`; `master.cf`
    /// when no service could be judged at all), or `exim`.
    pub service: String,
    /// Its kind: a service type (`unix`), or an Exim `router`,
    /// `transport` or `resolver`; empty when nothing could be judged.
    pub kind: String,
    pub parameter: String,
    /// As the MTA prints it (Postfix: `$name` unexpanded, the service's
    /// `-o` override, else main.cf's value).
    pub value: String,
    /// What the service uses: `value` with `$name` references expanded.
    pub effective: String,
    /// What containment requires, in words.
    pub why: String,
}

impl fmt::Display for Loose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_empty() {
            return write!(f, "{}: {}", self.service, self.why);
        }
        let shown = |v: &str| {
            if v.trim().is_empty() {
                "(empty)".to_owned()
            } else {
                v.to_owned()
            }
        };
        write!(
            f,
            "{} ({}) {} = {}",
            self.service,
            self.kind,
            self.parameter,
            shown(&self.value)
        )?;
        if self.effective != self.value {
            write!(f, " (= {})", shown(&self.effective))?;
        }
        write!(f, ": {}", self.why)
    }
}

/// Postfix's configuration let mail out; nothing may run on it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the MTA's configuration is not contained, so nothing runs on it:{}",
    list(.0)
)]
pub struct NotContained(pub Vec<Loose>);

impl NotContained {
    /// The MTA's account of its configuration could not be read: nothing
    /// can be judged, so nothing runs.
    pub fn unreadable(what: &str) -> NotContained {
        NotContained(vec![Loose {
            service: what.to_owned(),
            kind: String::new(),
            parameter: String::new(),
            value: String::new(),
            effective: String::new(),
            why: format!("{what}'s account of the configuration is unreadable"),
        }])
    }
}

/// The name servers a resolv.conf names, in its order: the container's
/// DNS may only be the run's own resolver on 127.0.0.1, whatever the MTA.
pub fn nameservers(resolv_conf: &str) -> Vec<&str> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .collect()
}

/// Whether a resolv.conf sends DNS anywhere but to loopback's 127.0.0.1.
pub fn asks_off_loopback(resolv_conf: &str) -> bool {
    nameservers(resolv_conf).iter().any(|s| *s != "127.0.0.1")
}

fn list(loose: &[Loose]) -> String {
    loose.iter().map(|l| format!("\n  {l}")).collect()
}

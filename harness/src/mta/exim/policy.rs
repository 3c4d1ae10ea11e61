//! Exim 4's client TLS policies, named after the smtp transport options
//! that make them (Exim 4.96 has no `hosts_try_tls`: opportunistic TLS
//! is its default), weakest first.

use crate::policy::{Mta, Policy};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EximPolicy {
    /// `hosts_avoid_tls = *`: never STARTTLS.
    None,
    /// The defaults: STARTTLS when offered, and after a failed handshake
    /// a new connection in clear (`tls_tempfail_tryclear = true`).
    Try,
    /// STARTTLS when offered, no clear retry after a failed handshake
    /// (`tls_tempfail_tryclear = false`).
    TryNoclear,
    /// `hosts_require_tls = *`: TLS or nothing, any certificate.
    Require,
    /// `hosts_require_tls` and `tls_verify_hosts = *` with the CA and
    /// the host's name checked (`tls_verify_cert_hostnames = *`).
    RequireVerify,
    /// `hosts_require_dane = *`: DANE or nothing (needs DNSSEC-signed MX
    /// hosts with TLSA records: scenarios with `[dns]`).
    Dane,
}

/// The policies' names, in [`EximPolicy::ALL`]'s order.
pub const NAMES: [&str; 6] = [
    "none",
    "try",
    "try-noclear",
    "require",
    "require-verify",
    "dane",
];

impl EximPolicy {
    pub const ALL: [EximPolicy; 6] = [
        EximPolicy::None,
        EximPolicy::Try,
        EximPolicy::TryNoclear,
        EximPolicy::Require,
        EximPolicy::RequireVerify,
        EximPolicy::Dane,
    ];

    pub fn as_str(self) -> &'static str {
        NAMES[self as usize]
    }

    /// The Exim policy of an Exim case.
    pub fn of(policy: Policy) -> Option<EximPolicy> {
        (policy.mta() == Mta::Exim).then(|| EximPolicy::ALL[policy.index()])
    }
}

impl std::fmt::Display for EximPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<EximPolicy> for Policy {
    fn from(p: EximPolicy) -> Policy {
        Policy::new(Mta::Exim, p as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_is_its_place_in_the_list() {
        for (i, p) in EximPolicy::ALL.into_iter().enumerate() {
            assert_eq!(p as usize, i);
            assert_eq!(EximPolicy::of(p.into()), Some(p));
            assert_eq!(Policy::from(p).as_str(), p.as_str());
        }
    }
}

//! OpenSMTPD 6.8's client TLS policies: what a `relay host` action's URL
//! scheme and its `tls no-verify` option make (smtpd.conf(5)), weakest
//! first.

use crate::policy::{Mta, Policy};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpensmtpdPolicy {
    /// `smtp+notls://`: never STARTTLS.
    Notls,
    /// `smtp://`: STARTTLS when offered, any certificate; after a failed
    /// handshake smtpd reconnects in clear ("opportunistic TLS failed,
    /// downgrading to plain").
    Opportunistic,
    /// `smtp+tls://` with `tls no-verify`: STARTTLS or nothing, any
    /// certificate.
    TlsNoVerify,
    /// `smtp+tls://`: STARTTLS or nothing, the certificate verified
    /// against the action's `ca` and the relay's name.
    Tls,
    /// `smtps://` with `tls no-verify`: implicit TLS, any certificate.
    SmtpsNoVerify,
    /// `smtps://`: implicit TLS, the certificate verified.
    Smtps,
}

/// The policies' names, in [`OpensmtpdPolicy::ALL`]'s order.
pub const NAMES: [&str; 6] = [
    "notls",
    "opportunistic",
    "tls-no-verify",
    "tls",
    "smtps-no-verify",
    "smtps",
];

impl OpensmtpdPolicy {
    pub const ALL: [OpensmtpdPolicy; 6] = [
        OpensmtpdPolicy::Notls,
        OpensmtpdPolicy::Opportunistic,
        OpensmtpdPolicy::TlsNoVerify,
        OpensmtpdPolicy::Tls,
        OpensmtpdPolicy::SmtpsNoVerify,
        OpensmtpdPolicy::Smtps,
    ];

    pub fn as_str(self) -> &'static str {
        NAMES[self as usize]
    }

    /// The OpenSMTPD policy of an OpenSMTPD case.
    pub fn of(policy: Policy) -> Option<OpensmtpdPolicy> {
        (policy.mta() == Mta::Opensmtpd).then(|| OpensmtpdPolicy::ALL[policy.index()])
    }

    /// The relay URL's scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            OpensmtpdPolicy::Notls => "smtp+notls",
            OpensmtpdPolicy::Opportunistic => "smtp",
            OpensmtpdPolicy::TlsNoVerify | OpensmtpdPolicy::Tls => "smtp+tls",
            OpensmtpdPolicy::SmtpsNoVerify | OpensmtpdPolicy::Smtps => "smtps",
        }
    }

    /// Whether the action says `tls no-verify`.
    pub fn no_verify(self) -> bool {
        matches!(
            self,
            OpensmtpdPolicy::TlsNoVerify | OpensmtpdPolicy::SmtpsNoVerify
        )
    }
}

impl std::fmt::Display for OpensmtpdPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<OpensmtpdPolicy> for Policy {
    fn from(p: OpensmtpdPolicy) -> Policy {
        Policy::new(Mta::Opensmtpd, p as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_is_its_place_in_the_list() {
        for (i, p) in OpensmtpdPolicy::ALL.into_iter().enumerate() {
            assert_eq!(p as usize, i);
            assert_eq!(OpensmtpdPolicy::of(p.into()), Some(p));
            assert_eq!(Policy::from(p).as_str(), p.as_str());
        }
    }
}

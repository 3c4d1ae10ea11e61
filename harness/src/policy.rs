//! The one list of the MTAs the harness can test ([`Mta`]), each reached
//! through its folder's [`Driver`], and a client TLS policy of one of
//! them ([`Policy`]), named and ordered by that MTA's own driver. A case
//! runs one scenario at one policy.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::mta::Driver;

/// An MTA the harness runs in its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Mta {
    #[default]
    Postfix,
    Exim,
    Opensmtpd,
}

impl Mta {
    pub const ALL: [Mta; 3] = [Mta::Postfix, Mta::Exim, Mta::Opensmtpd];

    /// The MTA's folder: the only place that names every MTA's driver.
    pub fn driver(self) -> &'static dyn Driver {
        match self {
            Mta::Postfix => &crate::mta::postfix::Postfix,
            Mta::Exim => &crate::mta::exim::Exim,
            Mta::Opensmtpd => &crate::mta::opensmtpd::Opensmtpd,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.driver().name()
    }

    /// The MTA's own name, for messages.
    pub fn title(self) -> &'static str {
        self.driver().title()
    }

    /// Every policy of this MTA, weakest first.
    pub fn policies(self) -> impl Iterator<Item = Policy> {
        (0..self.driver().policies().len()).map(move |index| Policy::new(self, index))
    }
}

impl Serialize for Mta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Mta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown MTA `{0}` (expected one of: {names})", names = Mta::ALL.map(Mta::as_str).join(", "))]
pub struct UnknownMta(pub String);

impl FromStr for Mta {
    type Err = UnknownMta;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mta::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMta(s.to_owned()))
    }
}

/// One client TLS policy of one MTA: its place in the MTA's own list
/// ([`Driver::policies`]), so policies order weakest first within an MTA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Policy {
    mta: Mta,
    index: u8,
}

impl Policy {
    /// The `index`th policy of `mta` ([`Driver::policies`]).
    pub fn new(mta: Mta, index: usize) -> Policy {
        assert!(
            index < mta.driver().policies().len(),
            "{mta} has no policy {index}"
        );
        Policy {
            mta,
            index: index as u8,
        }
    }

    pub fn mta(self) -> Mta {
        self.mta
    }

    /// Its place in its MTA's list of policies.
    pub fn index(self) -> usize {
        usize::from(self.index)
    }

    /// The policy's name in its MTA's terms (`encrypt`, `try-noclear`).
    pub fn as_str(self) -> &'static str {
        self.mta.driver().policies()[self.index()]
    }

    /// Parses a policy name of `mta`.
    pub fn parse(mta: Mta, s: &str) -> Result<Policy, UnknownPolicy> {
        mta.policies()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPolicy {
                mta,
                name: s.to_owned(),
            })
    }
}

/// A name that is not one of an MTA's policies.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("unknown {} policy `{name}` (expected one of: {})", mta.title(), mta.driver().policies().join(", "))]
pub struct UnknownPolicy {
    pub mta: Mta,
    pub name: String,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_per_mta() {
        for mta in Mta::ALL {
            assert_eq!(mta.as_str().parse::<Mta>().unwrap(), mta);
            for p in mta.policies() {
                assert_eq!(Policy::parse(mta, p.as_str()), Ok(p));
                assert_eq!(p.mta(), mta);
            }
        }
        // Both MTAs have a `none`; each parses its own.
        let exim = Policy::parse(Mta::Exim, "none").unwrap();
        let postfix = Policy::parse(Mta::Postfix, "none").unwrap();
        assert_ne!(exim, postfix);
        let e = Policy::parse(Mta::Exim, "encrypt").unwrap_err();
        assert!(
            e.to_string().starts_with("unknown Exim policy `encrypt`"),
            "{e}"
        );
        assert!("sendmail".parse::<Mta>().is_err());
    }
}

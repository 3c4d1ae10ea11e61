//! The scenario file's data model. Every struct refuses unknown keys and
//! every value is checked while it is read, so an error carries the
//! position of the offending key.

mod delivery;
mod expect;
mod hostname;
mod mta_tables;
mod paths;
mod postfix;
mod relay;
mod settings;

use serde::Deserialize;
use toml::Spanned;

pub use delivery::{DeliverySpec, Seconds};
pub use expect::{AttemptExpectation, Dsn, Expectation, Hop, VersionPrefix};
pub(crate) use expect::{RawExpectations, RawMtaTable};
pub use hostname::Hostname;
pub(crate) use mta_tables::MtaTables;
pub use paths::{MiddleboxSpec, PortFate};
pub use postfix::{PostfixSpec, SaslSpec, TlsPolicy};
pub use relay::{
    AuthMechanism, Elsewhere, RelayAuthSpec, RelaySpec, SUBMISSIONS_PORT, ServiceMode, ServiceSpec,
};
pub use settings::{OWNED_SETTINGS, SettingName, SettingValue};

/// The scenario file as written, before cross-key checks, but for the
/// MTAs' own tables ([`MtaTables`], read from the same text). It ignores
/// keys it does not know: [`MtaTables`] refuses those that are neither its
/// nor an MTA's.
#[derive(Debug, Deserialize)]
pub(crate) struct RawScenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub relay: Spanned<RelaySpec>,
    #[serde(default)]
    pub middlebox: Option<Spanned<MiddleboxSpec>>,
    /// One path per address of the relay's name, in the order Postfix
    /// tries them; instead of `[middlebox]`.
    #[serde(default)]
    pub paths: Option<Spanned<Vec<MiddleboxSpec>>>,
    /// The recipient domain and its DNS: mail goes by MX instead of to
    /// the relay by name.
    #[serde(default)]
    pub dns: Option<Spanned<crate::dns::DnsSpec>>,
    /// The domain's MTA-STS policy (needs `[dns]`).
    #[serde(default)]
    pub mta_sts: Option<Spanned<crate::dns::mta_sts::MtaStsSpec>>,
    #[serde(default)]
    pub postfix: PostfixSpec,
    #[serde(default)]
    pub delivery: DeliverySpec,
    /// What Postfix does; a scenario without it (but with another MTA's
    /// table) is not run on Postfix.
    #[serde(default)]
    pub expect: Option<Spanned<RawExpectations>>,
}

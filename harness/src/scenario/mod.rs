//! Scenario files: one network path and what Postfix must do at each level.

pub mod builtin;
mod checks;
mod error;
mod load;
mod model;
mod ports;
mod validated;
mod versions;

pub use error::{LoadError, LoadErrors, line_column};
pub use load::{load_bytes, load_file, load_paths, scenario_id};
pub use model::{
    AttemptExpectation, AuthMechanism, DeliverySpec, Dsn, Elsewhere, Expectation, Hop, Hostname,
    MiddleboxSpec, OWNED_SETTINGS, PortFate, PostfixSpec, RelayAuthSpec, RelaySpec,
    SUBMISSIONS_PORT, SaslSpec, Seconds, ServiceMode, ServiceSpec, SettingName, SettingValue,
    TlsPolicy, VersionPrefix,
};
pub use ports::PortStatement;
pub use validated::{MtaTable, Scenario, VersionExpectations};
pub use versions::versions_table;

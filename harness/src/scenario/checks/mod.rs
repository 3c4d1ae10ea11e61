//! The checks across keys that serde cannot make, one file per part of
//! the scenario file; each reports the first problem it finds, located
//! by key and span.

mod domain;
mod expect;
mod paths;
mod relay;

pub(crate) use domain::{dns, mta_sts};
pub(crate) use expect::{expectations, mta_tables, versions};
pub(crate) use paths::paths;
pub(crate) use relay::relay;

//! A host's configuration as it is found (see `fit`): the files it names
//! outside its directory, the installation's own parameters and the
//! system trust store, fitted to the image before anything starts.

mod fit;
mod installation;
mod references;

pub use fit::{Fit, GivenFile, MissingFile, fit, fit_from, is_hosts_own};
pub use references::{Place, references};

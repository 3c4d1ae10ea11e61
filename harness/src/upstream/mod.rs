//! The fake upstream relay: mailin's SMTP session engine (the one inside
//! mailin-embedded) behind a tokio accept loop of ours, so that a relay can
//! be stopped, bounds its memory, and reports whether each message arrived
//! over TLS.

mod recorder;
mod relay;

pub use recorder::{Policy, Received, SessionRecord};
pub use relay::{Relay, RelayConfig};

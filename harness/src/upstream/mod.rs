//! The fake upstream relay: mailin's SMTP session engine (the one inside
//! mailin-embedded) behind a tokio accept loop of ours, so that a relay can
//! be stopped, bounds its memory, and reports whether each message arrived
//! over TLS. A relay can also replay what a probe recorded on a real path
//! (`replay`).

mod recorded;
mod recorder;
mod relay;
mod replay;

pub use recorded::{MAX_LINE_LEN, MAX_LINES, RecordedReply};
pub use recorder::{Policy, Received, SessionRecord};
pub use relay::{Relay, RelayConfig};
pub use replay::{DropKind, Handshake, ReplaySpec, StarttlsAnswer};

//! The middlebox: a tokio proxy that always sits between Postfix and the
//! relay. It keeps a transcript of the plaintext dialogue, marks where TLS
//! began, and applies the scenario's behaviours in order.
//!
//! | behaviour | what it does |
//! |---|---|
//! | `pass-through` | nothing; the wire tap only |
//! | `strip-starttls` | removes STARTTLS from the EHLO reply |

mod behaviour;
mod connection;
mod pass_through;
mod proxy;
mod spec;
mod strip_starttls;
mod transcript;

pub use behaviour::{Behaviour, CloseKind, CommandVerdict, ReplyContext, TlsVerdict};
pub use connection::ConnectionRecord;
pub use proxy::{Middlebox, MiddleboxConfig};
pub use spec::BehaviourSpec;
pub use strip_starttls::strip as strip_starttls;
pub use transcript::{Dir, Entry, Transcript};

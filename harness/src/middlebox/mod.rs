//! The middlebox: a tokio proxy that always sits between Postfix and the
//! relay. It keeps a transcript of the plaintext dialogue, marks where TLS
//! began, and applies the scenario's behaviours in order. One file per
//! behaviour; the table is in the README.

mod behaviour;
mod connection;
mod delay;
mod drop_on_starttls;
mod fail_handshake;
mod inject;
mod intercept_tls;
mod mask_banner;
mod mask_starttls;
mod pass_through;
#[cfg(test)]
mod properties;
mod proxy;
mod reject_starttls;
mod shaping;
mod spec;
mod stall;
mod strip_starttls;
mod transcript;

pub use behaviour::{
    Behaviour, CloseKind, CommandVerdict, Direction, Interception, ReplyContext, Shaping,
    TlsVerdict,
};
pub use connection::ConnectionRecord;
pub use mask_banner::mask as mask_banner;
pub use mask_starttls::mask as mask_starttls;
pub use proxy::{Middlebox, MiddleboxConfig};
pub use spec::{BehaviourSpec, BuildContext, NAMES};
pub use strip_starttls::strip as strip_starttls;
pub use transcript::{CLOSED, CONTENT, Dir, Entry, INTERCEPTED, TLS_BEGAN, TLS_ENDED, Transcript};

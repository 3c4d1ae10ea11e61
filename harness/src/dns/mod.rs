//! DNS on the path: a scenario's `[dns]` section (the recipient domain,
//! its MX hosts, their TLSA records and the zone's DNSSEC state) and the
//! zone files a case's domain is served from.
//!
//! Every case has a zone of its own, since one validating resolver serves
//! the whole run: its names are the scenario's with the case's label (the
//! scenario and the level) inserted before the domain: `mx1.hoge.example`
//! is `mx1.dane-strip-starttls-may.hoge.example` in that scenario's `may`
//! case, on every Postfix version alike. The zones are signed (or not, or
//! with signatures that have expired) and served inside Postfix's
//! container, where a real validating resolver judges every answer
//! (`mta::dns`, run by the MTA's entry point).

pub mod mta_sts;
pub mod proxy;
mod zone;

pub use proxy::DnsBehaviour;
pub use zone::*;

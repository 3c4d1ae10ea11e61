//! tlsharness: fake SMTP relays and STARTTLS-tampering middleboxes on
//! loopback, a real Postfix in a container, and scenario files that say,
//! level by level, whether mail is delivered over TLS, delivered in
//! plaintext, deferred or bounced.
//!
//! Data flows one way:
//!
//! - [`exit`]: the exit codes, and the trait each error type implements
//!   beside its own definition.
//! - [`docker`]: the ground floor: the Docker engine, the harness's
//!   container labels and clean-up, images built offline.
//! - [`outcome`]: what happened to one message at one attempt.
//! - [`level`], [`policy`]: the client TLS policies a case runs at, by
//!   each MTA's own names.
//! - [`tls`]: rustls configurations, and the ways a server breaks a
//!   handshake on purpose.
//! - [`scenario`]: file format and strict loading (file:line errors).
//! - [`pki`]: the run's CA and server certificates (rcgen).
//! - [`upstream`]: the fake relay (mailin's SMTP engine on tokio).
//! - [`middlebox`]: the proxy on the path, its behaviours and transcripts.
//! - [`dns`]: a scenario's domain, MX hosts and TLSA records, as zones.
//! - [`mta`]: the MTA under test behind one boundary: its container, its
//!   configuration for a case's TLS policy, its log as typed delivery
//!   events; Postfix, Exim and OpenSMTPD each in a folder of their own.
//! - [`lab`]: a run's private network: the MTA (started through
//!   [`mta`]) with only its own loopback, and the agent's container in
//!   that namespace, where the fakes listen and the injector speaks to
//!   the MTA.
//! - [`run`]: scenarios x levels -> cases, execution, classification.
//! - [`report`]: terminal matrix, JSON, JUnit, artifacts.
//! - [`check`]: the user's own configuration (current vs candidate) on
//!   scenarios' paths.
//! - [`explain`]: a Postfix mail log's failures, named as path conditions.
//! - [`smtp`]: line and reply primitives shared by relay and middlebox.
//! - [`probe`]: probes a real relay from inside a network and writes a
//!   scenario whose relay replays what it saw.
//! - [`bench`]: how fast the harness runs against real Postfix.
//! - [`triage`]: on the affected host, no Docker: configuration, mail log
//!   and probe to a predicted fix, written as `check` candidates.

pub mod bench;
pub mod check;
pub mod dns;
pub mod docker;
pub mod exit;
pub mod explain;
pub mod lab;
pub use mta::postfix::level;
pub mod middlebox;
pub mod mta;
pub mod outcome;
pub mod pki;
pub mod policy;
pub mod probe;
pub mod report;
pub mod run;
pub mod scenario;
pub mod smtp;
pub mod tls;
pub mod triage;
pub mod upstream;

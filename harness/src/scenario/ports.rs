//! What a scenario states about one port of its relay: served (through
//! each path), refused, dropped, or nothing at all. `check` relays to
//! whatever port the user's configuration names, and must tell a port the
//! scenario says is closed (an outage, if mail used to flow) from one it
//! never mentions (not modelled: no finding either way).

use super::Scenario;
use super::model::{Elsewhere, PortFate, ServiceSpec};

/// A scenario's statement about one port.
#[derive(Clone, Debug, PartialEq)]
pub enum PortStatement {
    /// The relay serves it; each path's fate on it, in path order.
    Served(ServiceSpec, Vec<PortFate>),
    /// Nothing answers: every path refuses it, or the relay says nothing
    /// else listens. The words say which.
    Refused(String),
    /// Every path drops it silently: the client's connect times out.
    Dropped(String),
    /// The scenario does not say what happens there.
    NotModelled(String),
}

impl Scenario {
    /// What this scenario says happens on `port`.
    pub fn port_statement(&self, port: u16) -> PortStatement {
        let fates: Vec<PortFate> = self.paths.iter().map(|p| p.fate(port)).collect();
        let all = |f: PortFate| !fates.is_empty() && fates.iter().all(|x| *x == f);
        if all(PortFate::Refused) {
            return PortStatement::Refused(format!(
                "the path's firewall blocks port {port}, so the connection is refused"
            ));
        }
        if all(PortFate::Dropped) {
            return PortStatement::Dropped(format!(
                "the path drops connections to port {port} silently, so the connection times out"
            ));
        }
        let relay = &self.relay;
        if let Some(service) = relay.service_for(port) {
            return PortStatement::Served(service, fates);
        }
        let served: Vec<String> = relay.services.iter().map(|s| s.port.to_string()).collect();
        match relay.elsewhere {
            Some(Elsewhere::Refused) => PortStatement::Refused(format!(
                "no service on port {port}: the scenario's relay serves {} and nothing else listens (relay.elsewhere = \"refused\"), so the connection is refused",
                served.join(", ")
            )),
            None => PortStatement::NotModelled(format!(
                "the scenario does not say what happens on port {port}: its relay serves {} (add a service for {port}, `elsewhere = \"refused\"` to [relay], or `block`/`drop` to the path)",
                served.join(", ")
            )),
        }
    }
}

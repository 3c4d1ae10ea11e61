//! The commands that look at the path to a relay from inside the affected
//! network.

/// `host` and `port` from Postfix's `host[addr]:port`.
pub(super) fn host_port(relay: &str) -> Option<(String, String)> {
    let (host, rest) = relay.split_once('[')?;
    let port = rest.rsplit_once("]:").map(|(_, p)| p.to_owned())?;
    Some((host.to_owned(), port))
}

/// How to look at the path to `relay` (`host[addr]:port`) from inside the
/// affected network; nothing for `none`.
pub fn confirm_commands(relay: &str) -> Vec<String> {
    match host_port(relay) {
        Some((host, port)) => commands_for(&host, &port),
        None => Vec::new(),
    }
}

pub(super) fn commands_for(host: &str, port: &str) -> Vec<String> {
    // 465 speaks TLS from the first byte (smtp_tls_wrappermode), not STARTTLS.
    let (finger, s_client) = if port == "465" {
        ("-w ", "")
    } else {
        ("", "-starttls smtp ")
    };
    vec![
        format!("posttls-finger {finger}-c -l secure -P /etc/ssl/certs \"[{host}]:{port}\""),
        format!(
            "openssl s_client {s_client}-connect {host}:{port} -servername {host} -verify_return_error </dev/null"
        ),
        format!("tlsharness probe {host}:{port} --out scenarios/this-network.toml"),
    ]
}

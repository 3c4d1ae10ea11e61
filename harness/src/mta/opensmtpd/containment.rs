//! OpenSMTPD's containment: smtpd.conf as smtpd read it and /etc/hosts,
//! judged line by line. smtpd prints no account of its parsed
//! configuration (`smtpd -n` says only `configuration OK`), so the file it
//! was started on is what is judged, with anything the harness does not
//! write refused.

use std::net::IpAddr;

use super::config::CONF;
use crate::mta::containment::{Loose, NotContained, asks_off_loopback, nameservers};

/// The run's smtpd.conf and /etc/hosts (the lab adds resolv.conf).
pub fn commands() -> Vec<Vec<String>> {
    vec![
        vec!["cat".into(), CONF.into()],
        vec!["cat".into(), "/etc/hosts".into()],
    ]
}

/// Refuses a configuration that could send mail anywhere but to a relay
/// name that /etc/hosts puts on loopback, from a loopback address: every
/// line must be one the harness writes.
pub fn verify(outputs: &[&str]) -> Result<(), NotContained> {
    let [conf, hosts, resolv_conf] = outputs else {
        return Err(NotContained::unreadable("smtpd.conf"));
    };
    let mut loose = Vec::new();
    let mut flag = |kind: &str, line: &str, why: &str| {
        loose.push(Loose {
            service: "smtpd.conf".into(),
            kind: kind.into(),
            parameter: line.split_whitespace().next().unwrap_or_default().into(),
            value: line.into(),
            effective: line.into(),
            why: why.into(),
        })
    };
    for line in conf.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ca", _, "cert", _] => {}
            ["listen", "on", "127.0.0.1", "port", "25"] => {}
            ["mta", "limit", ..] => {}
            ["listen", ..] => flag("listen", line, "smtpd may listen on 127.0.0.1 port 25 only"),
            [
                "action",
                "\"discard\"",
                "mda",
                "\"cat",
                ">",
                "/dev/null\"",
                "user",
                "nobody",
            ] => {}
            ["action", _, "relay", "host", url, rest @ ..] => {
                if let Some(why) = relay_problem(url, rest, hosts) {
                    flag("action", line, &why);
                }
            }
            ["action", ..] => flag(
                "action",
                line,
                "only the harness's relay and discard actions may take mail",
            ),
            ["match", "from", "local", "for", "domain", _, "action", _] => {}
            ["match", ..] => flag(
                "match",
                line,
                "only mail from the harness, for one domain at a time, may match",
            ),
            _ => flag(
                "directive",
                line,
                "not a line the harness writes (include, table, pki, ...)",
            ),
        }
    }
    if asks_off_loopback(resolv_conf) {
        let line = format!("nameserver {}", nameservers(resolv_conf).join(" "));
        flag(
            "resolver",
            &line,
            "only a resolver on loopback may be asked",
        );
    }
    if loose.is_empty() {
        Ok(())
    } else {
        Err(NotContained(loose))
    }
}

/// Why a relay action could let mail out: its host is not a name that
/// /etc/hosts puts on loopback only, or its source is not loopback.
fn relay_problem(url: &str, rest: &[&str], hosts: &str) -> Option<String> {
    let url = url.trim_matches('"');
    let Some((_, authority)) = url.split_once("://") else {
        return Some("the relay URL has no scheme".into());
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let addrs: Vec<IpAddr> = hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let addr: IpAddr = words.next()?.parse().ok()?;
            words.any(|w| w == host).then_some(addr)
        })
        .collect();
    if addrs.is_empty() {
        return Some(format!(
            "the relay {host} is not in /etc/hosts, so smtpd would look it up in DNS"
        ));
    }
    if let Some(a) = addrs.iter().find(|a| !a.is_loopback()) {
        return Some(format!(
            "/etc/hosts puts the relay {host} at {a}, off loopback"
        ));
    }
    let mut options = rest.iter();
    while let Some(option) = options.next() {
        match *option {
            "tls" => {
                if options.next() != Some(&"no-verify") {
                    return Some("`tls` takes `no-verify` only".into());
                }
            }
            "ca" => {
                options.next();
            }
            "src" => match options.next().and_then(|s| s.parse::<IpAddr>().ok()) {
                Some(a) if a.is_loopback() => {}
                _ => return Some("the source address must be a loopback address".into()),
            },
            other => return Some(format!("`{other}` is not an option the harness sets")),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str =
        "127.0.0.1 localhost\n# tlsharness: the run's fake relays\n127.0.1.1 smtp.relay.test\n";
    const CONF_OK: &str = r#"# Written by tlsharness
ca tlsharness cert "/etc/smtpd/tlsharness/ca.pem"
listen on 127.0.0.1 port 25
mta limit max-conn-per-host 10 session-keepalive 0
action "discard" mda "cat > /dev/null" user nobody
match from local for domain "tlsharness.test" action "discard"
action "c0" relay host "smtp+tls://smtp.relay.test:587" tls no-verify src 127.1.0.1 ca tlsharness
match from local for domain "c0.tlsharness.test" action "c0"
"#;

    #[test]
    fn the_harness_s_own_configuration_is_contained() {
        assert!(verify(&[CONF_OK, HOSTS, "nameserver 127.0.0.1\n"]).is_ok());
    }

    #[test]
    fn a_relay_off_loopback_or_by_dns_is_refused() {
        let conf = format!("{CONF_OK}action \"x\" relay host \"smtp://mail.example.com:25\"\n");
        let e = verify(&[&conf, HOSTS, ""]).unwrap_err();
        assert!(e.to_string().contains("not in /etc/hosts"), "{e}");
        let hosts = format!("{HOSTS}192.0.2.1 smtp.relay.test\n");
        let e = verify(&[CONF_OK, &hosts, ""]).unwrap_err();
        assert!(e.to_string().contains("off loopback"), "{e}");
        let conf = format!("{CONF_OK}action \"y\" relay\ninclude \"/etc/other.conf\"\n");
        let e = verify(&[&conf, HOSTS, ""]).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        let e = verify(&[CONF_OK, HOSTS, "nameserver 192.0.2.53\n"]).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }
}

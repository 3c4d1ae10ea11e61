//! `HOST:PORT` as given on the command line.

use std::fmt;
use std::str::FromStr;

/// What to probe: a host name or address, and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// A name, an IPv4 address, or an IPv6 address (without brackets).
    pub host: String,
    pub port: u16,
}

impl Target {
    /// Whether the host is written as an IP address rather than a name.
    pub fn is_address(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!(
                "`{s}` is not HOST:PORT ({why}), e.g. smtp.example.com:587 or [2001:db8::25]:25"
            )
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| bad("an IPv6 address goes in brackets, then the port"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address in the brackets"));
            }
            (host, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
            if host.contains(':') {
                return Err(bad("write an IPv6 address in brackets"));
            }
            (host, port)
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("no usable host"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port is a number from 1 to 65535"))?;
        Ok(Target {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_addresses() {
        let t: Target = "smtp.example.com:587".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("smtp.example.com", 587));
        assert!(!t.is_address());
        let t: Target = "[::1]:25".parse().unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.to_string(), "[::1]:25");
        assert!(t.is_address());
        assert!("127.0.0.1:2525".parse::<Target>().unwrap().is_address());
    }

    #[test]
    fn refuses_what_is_not_host_port() {
        for bad in [
            "smtp.example.com",
            ":25",
            "a:0",
            "a:99999",
            "::1:25",
            "[x]:25",
            "a b:25",
        ] {
            let e = bad.parse::<Target>().unwrap_err();
            assert!(e.contains("is not HOST:PORT"), "{bad}: {e}");
        }
    }
}

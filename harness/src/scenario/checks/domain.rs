//! `[dns]` and `[mta_sts]`: the recipient domain, its MX hosts and its
//! MTA-STS policy.

use toml::Spanned;

use crate::scenario::error::{LoadError, SourceFile};
use crate::scenario::model::RelaySpec;

/// `[dns]`, when given, against the relay and its paths.
pub(crate) fn dns(
    file: &SourceFile,
    raw: Option<Spanned<crate::dns::DnsSpec>>,
    relay: &RelaySpec,
    paths: usize,
) -> Result<Option<crate::dns::DnsSpec>, LoadError> {
    let Some(spanned) = raw else {
        return Ok(None);
    };
    let span = spanned.span();
    let spec = spanned.into_inner();
    check_dns(&spec, relay, paths).map_err(|(key, m)| file.error(span, &key, m))?;
    Ok(Some(spec))
}

/// `[dns]` against the rest: one MX host per path, each under the domain
/// and named once; the relay is on port 25 (MX delivery's) and is the
/// first MX host, whose name its certificate carries.
fn check_dns(
    dns: &crate::dns::DnsSpec,
    relay: &RelaySpec,
    paths: usize,
) -> Result<(), (String, String)> {
    let domain = dns.domain.as_str();
    if dns.mx.is_empty() {
        return Err(("dns.mx".into(), "no MX host: give at least one".into()));
    }
    if dns.behaviour.len() > 1 {
        return Err((
            "dns.behaviour".into(),
            "give one DNS behaviour: each acts on every TLSA query, so a second would never be reached".into(),
        ));
    }
    if dns.mx.len() != paths {
        return Err((
            "dns.mx".into(),
            format!(
                "{} MX hosts but {paths} path(s): each MX host is reached through its own path (give one [[paths]] entry per MX host, in the same order)",
                dns.mx.len()
            ),
        ));
    }
    for (i, mx) in dns.mx.iter().enumerate() {
        let key = format!("dns.mx[{i}].host");
        let host = mx.host.as_str();
        if !host.ends_with(&format!(".{domain}")) {
            return Err((
                key,
                format!(
                    "`{host}` is not under the domain {domain}; an MX host here is a name in the domain's own zone"
                ),
            ));
        }
        if dns.mx[..i].iter().any(|m| m.host == mx.host) {
            return Err((key, format!("`{host}` is listed twice")));
        }
    }
    if relay.port != 25 || relay.services.len() != 1 {
        return Err((
            "dns".into(),
            "mail to a domain's MX hosts goes to port 25: give the relay `port = 25` and no other service".into(),
        ));
    }
    if relay.hostname != dns.mx[0].host {
        return Err((
            "dns".into(),
            format!(
                "the relay's hostname ({}) must be the first MX host ({}): its certificate names the MX hosts",
                relay.hostname, dns.mx[0].host
            ),
        ));
    }
    Ok(())
}

/// `[mta_sts]`, when given: a policy of the domain `[dns]` gives, that
/// its policy server can serve.
pub(crate) fn mta_sts(
    file: &SourceFile,
    raw: Option<Spanned<crate::dns::mta_sts::MtaStsSpec>>,
    dns: Option<&crate::dns::DnsSpec>,
) -> Result<Option<crate::dns::mta_sts::MtaStsSpec>, LoadError> {
    let Some(spanned) = raw else {
        return Ok(None);
    };
    let span = spanned.span();
    let spec = spanned.into_inner();
    let Some(d) = dns else {
        return Err(file.error(
            span,
            "mta_sts",
            "MTA-STS is a policy of the recipient domain: give [dns] too".into(),
        ));
    };
    let hosts: Vec<&str> = d.mx.iter().map(|m| m.host.as_str()).collect();
    let key = if spec.policy.is_some() {
        "mta_sts.policy"
    } else {
        "mta_sts"
    };
    crate::dns::mta_sts::check_policy(&spec.text(&hosts)).map_err(|m| file.error(span, key, m))?;
    Ok(Some(spec))
}

//! `[middlebox]` or `[[paths]]`: the network paths to the relay, and the
//! ports each acts on.

use std::ops::Range;

use toml::Spanned;

use crate::scenario::error::{LoadError, SourceFile};
use crate::scenario::model::{MiddleboxSpec, RelaySpec};

/// `[middlebox]` (one path) or `[[paths]]` (one per address of the
/// relay's name), each checked against the relay it leads to.
pub(crate) fn paths(
    file: &SourceFile,
    middlebox: Option<Spanned<MiddleboxSpec>>,
    listed: Option<Spanned<Vec<MiddleboxSpec>>>,
    relay: &RelaySpec,
    relay_span: Range<usize>,
) -> Result<Vec<MiddleboxSpec>, LoadError> {
    let middlebox_span = middlebox.as_ref().map(|m| m.span());
    let listed_span = listed.as_ref().map(|p| p.span());
    let paths = match (middlebox, listed) {
        (Some(_), Some(p)) => {
            return Err(file.error(
                p.span(),
                "paths",
                "give either [middlebox] (one path) or [[paths]] (one per address), not both"
                    .into(),
            ));
        }
        (None, Some(p)) if p.get_ref().is_empty() => {
            return Err(file.error(p.span(), "paths", "no paths: give at least one".into()));
        }
        (None, Some(p)) => {
            if p.get_ref().len() > 8 {
                return Err(file.error(
                    p.span(),
                    "paths",
                    "at most 8 paths (addresses) per relay".into(),
                ));
            }
            p.into_inner()
        }
        (Some(m), None) => vec![m.into_inner()],
        (None, None) => vec![MiddleboxSpec::default()],
    };
    let (paths_key, paths_span) = match &listed_span {
        Some(span) => ("paths", span.clone()),
        None => (
            "middlebox",
            middlebox_span.clone().unwrap_or(relay_span.clone()),
        ),
    };
    let relay_error = |m: &str| file.error(relay_span.clone(), "relay", m.to_owned());
    for (i, p) in paths.iter().enumerate() {
        let key = |k: &str| {
            if paths_key == "paths" {
                format!("paths[{i}].{k}")
            } else {
                format!("middlebox.{k}")
            }
        };
        let path_error = |k: &str, m: String| file.error(paths_span.clone(), &key(k), m);
        check_path(i, p, relay, path_error, relay_error)?;
    }
    Ok(paths)
}

/// Path `i` (0-based): the ports it names are real and each has one
/// fate, and its behaviours suit the services they act on. `path_error`
/// locates a problem with one of its keys, `relay_error` one that needs
/// the relay changed.
fn check_path(
    i: usize,
    p: &MiddleboxSpec,
    relay: &RelaySpec,
    path_error: impl Fn(&str, String) -> LoadError,
    relay_error: impl Fn(&str) -> LoadError,
) -> Result<(), LoadError> {
    for (k, ports) in [
        ("ports", p.ports.as_deref().unwrap_or(&[])),
        ("block", &p.block),
        ("drop", &p.drop),
    ] {
        for (j, port) in ports.iter().enumerate() {
            // A path may refuse or drop any port (that is what a
            // probe saw there); it inspects only ports the relay serves.
            if *port == 0 {
                return Err(path_error(k, "port 0 is not a port".into()));
            }
            if k == "ports" && relay.service(*port).is_none() {
                return Err(path_error(
                    k,
                    format!(
                        "the relay does not serve port {port} (its ports: {})",
                        relay
                            .services
                            .iter()
                            .map(|s| s.port.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if ports[..j].contains(port) {
                return Err(path_error(k, format!("port {port} is listed twice")));
            }
        }
    }
    if p.ports.as_ref().is_some_and(|v| v.is_empty()) {
        return Err(path_error(
            "ports",
            "no ports: leave `ports` out for every port, or name the ports the behaviours act on"
                .into(),
        ));
    }
    for (k, closed, what) in [("block", &p.block, "refused"), ("drop", &p.drop, "dropped")] {
        if let Some(port) = closed
            .iter()
            .find(|b| p.ports.as_ref().is_some_and(|v| v.contains(b)))
        {
            return Err(path_error(
                k,
                format!(
                    "port {port} is both {what} and inspected: a {what} connection has nothing to inspect"
                ),
            ));
        }
    }
    if let Some(port) = p.drop.iter().find(|d| p.block.contains(d)) {
        return Err(path_error(
            "drop",
            format!("port {port} is both refused (block) and dropped: say which the path does"),
        ));
    }
    if p.drop.contains(&relay.port) {
        return Err(path_error(
            "drop",
            format!(
                "port {} is the relay's first service, where `run` delivers: a path that drops it leaves nothing to run (list first a service this path lets through)",
                relay.port
            ),
        ));
    }
    for s in relay.services.iter().filter(|s| s.mode.implicit_tls()) {
        let on = p.on_port(s.port).unwrap_or_default();
        if let Some(b) = on.iter().find(|b| !b.works_with_implicit_tls()) {
            let which = if relay.services.len() > 1 {
                format!(" on port {} (give `ports` to leave it out)", s.port)
            } else {
                String::new()
            };
            return Err(relay_error(&format!(
                "path {}: `{}` acts on the plaintext SMTP dialogue, which a relay with implicit TLS does not have{which}",
                i + 1,
                b.name()
            )));
        }
    }
    Ok(())
}

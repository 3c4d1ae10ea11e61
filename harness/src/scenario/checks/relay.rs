//! `[relay]`: where the fake relay listens, in either form, and what it
//! offers there.

use std::ops::Range;

use crate::scenario::error::{LoadError, SourceFile};
use crate::scenario::model::{RelaySpec, ServiceMode, ServiceSpec};
use crate::upstream::ReplaySpec;

/// `[relay]`: where it listens, in either form, and what it offers there.
/// `span` is the table's, where every error about it is located.
pub(crate) fn relay(
    file: &SourceFile,
    span: Range<usize>,
    mut relay: RelaySpec,
) -> Result<RelaySpec, LoadError> {
    // Which of port, starttls and implicit_tls the file itself gives: with
    // `services` none may, without it starttls must (serde's defaults
    // cannot tell an absent key from its default).
    let written: Vec<String> = toml::from_str::<toml::Table>(file.text)
        .ok()
        .and_then(|t| t.get("relay").and_then(|r| r.as_table()).cloned())
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    let wrote = |k: &str| written.iter().any(|w| w == k);
    if relay.services.is_empty() {
        single_port(file, &span, &mut relay, wrote("starttls"))?;
    } else {
        services(file, &span, &mut relay, wrote)?;
    }
    relay_offers(file, &span, &relay)?;
    Ok(relay)
}

/// The single-port form (`port`, `starttls`, `implicit_tls`), filled in
/// as the one service it describes.
fn single_port(
    file: &SourceFile,
    span: &Range<usize>,
    relay: &mut RelaySpec,
    wrote_starttls: bool,
) -> Result<(), LoadError> {
    let relay_error = |m: &str| file.error(span.clone(), "relay", m.to_owned());
    if !wrote_starttls {
        return Err(relay_error(
            "missing field `starttls` (or give the relay's listeners in `services`)",
        ));
    }
    if relay.implicit_tls && relay.starttls {
        return Err(relay_error(
            "a relay with implicit TLS does not offer STARTTLS: set starttls = false",
        ));
    }
    let mode = if relay.implicit_tls {
        ServiceMode::ImplicitTls
    } else if relay.starttls {
        ServiceMode::Starttls
    } else {
        ServiceMode::None
    };
    relay.services = vec![ServiceSpec::new(relay.port, mode)];
    relay.single_port = true;
    Ok(())
}

/// `services`: the relay's listeners, each port once; `wrote` says
/// whether the file gives a key of the single-port form too.
fn services(
    file: &SourceFile,
    span: &Range<usize>,
    relay: &mut RelaySpec,
    wrote: impl Fn(&str) -> bool,
) -> Result<(), LoadError> {
    let relay_error = |m: &str| file.error(span.clone(), "relay", m.to_owned());
    if let Some(k) = ["port", "starttls", "implicit_tls"]
        .into_iter()
        .find(|k| wrote(k))
    {
        return Err(relay_error(&format!(
            "`{k}` and `services` both say where the relay listens: give each listener's port and mode in `services` only"
        )));
    }
    if relay.services.len() > 8 {
        return Err(relay_error("at most 8 services per relay"));
    }
    for (i, s) in relay.services.iter().enumerate() {
        if s.port == 0 {
            return Err(file.error(
                span.clone(),
                &format!("relay.services[{i}].port"),
                "port 0 is not a port".into(),
            ));
        }
        if relay.services[..i].iter().any(|o| o.port == s.port) {
            return Err(file.error(
                span.clone(),
                &format!("relay.services[{i}].port"),
                format!("port {} is listed twice: give each port once", s.port),
            ));
        }
    }
    // The first service is the one `run` delivers to.
    let first = relay.services[0].clone();
    relay.port = first.port;
    relay.starttls = first.mode.starttls();
    relay.implicit_tls = first.mode.implicit_tls();
    Ok(())
}

/// What the relay's listeners offer agrees with how they start TLS:
/// required TLS, AUTH, recorded replies and certificates.
fn relay_offers(
    file: &SourceFile,
    span: &Range<usize>,
    relay: &RelaySpec,
) -> Result<(), LoadError> {
    let relay_error = |m: &str| file.error(span.clone(), "relay", m.to_owned());
    let tls_somewhere = relay.services.iter().all(|s| s.mode != ServiceMode::None);
    if relay.require_tls && !tls_somewhere {
        return Err(relay_error(
            "require_tls needs a way to start TLS: set starttls = true (or implicit_tls = true) on every service",
        ));
    }
    if let Some(auth) = &relay.auth
        && !auth.before_tls
        && !tls_somewhere
    {
        return Err(relay_error(
            "AUTH is offered only inside TLS, which this relay never starts: set starttls = true, or auth.before_tls = true",
        ));
    }
    if relay.replay.is_some() && !relay.single_port {
        return Err(relay_error(
            "with `services`, give each listener's recording in its own entry (`services = [{ port = 587, mode = \"starttls\", replay = {...} }]`), not in [relay.replay]",
        ));
    }
    if let Some(replay) = &relay.replay {
        check_replay(relay, &relay.services[0], replay)
            .map_err(|m| file.error(span.clone(), "relay.replay", m))?;
    }
    for (i, s) in relay.services.iter().enumerate() {
        if let Some(replay) = &s.replay {
            check_replay(relay, s, replay).map_err(|m| {
                let key = format!("relay.services[{i}].replay");
                file.error(span.clone(), &key, m)
            })?;
        }
        if s.certificate.is_some() && s.mode == ServiceMode::None {
            let key = format!("relay.services[{i}].certificate");
            let m = "this listener never starts TLS, so it presents no certificate: remove it";
            return Err(file.error(span.clone(), &key, m.into()));
        }
    }
    Ok(())
}

/// A replayed listener says what was recorded; the rest of `[relay]` and
/// the service's mode must agree with it.
fn check_replay(
    relay: &RelaySpec,
    service: &ServiceSpec,
    replay: &ReplaySpec,
) -> Result<(), String> {
    if relay.auth.is_some() {
        return Err(
            "a replayed relay offers what its recorded EHLO replies list: remove auth, or the replay"
                .into(),
        );
    }
    let listed = replay.ehlo.lists_starttls();
    if service.mode.implicit_tls() {
        // Inside implicit TLS there is no STARTTLS to answer, and the EHLO
        // reply recorded is already the one inside TLS.
        if replay.starttls.is_some() {
            return Err(
                "replay.starttls: this listener speaks TLS from the first byte, so there is no STARTTLS to answer; remove it"
                    .into(),
            );
        }
        if replay.tls_ehlo.is_some() {
            return Err(
                "replay.tls_ehlo: on an implicit-TLS listener `ehlo` is already the reply inside TLS; remove tls_ehlo"
                    .into(),
            );
        }
        return Ok(());
    }
    if listed != service.mode.starttls() {
        let what = if listed { "lists" } else { "does not list" };
        let fix = if relay.single_port {
            format!("set starttls = {listed}")
        } else if listed {
            "set mode = \"starttls\"".to_owned()
        } else {
            "set mode = \"none\"".to_owned()
        };
        return Err(format!("the recorded EHLO reply {what} STARTTLS: {fix}"));
    }
    match (listed, &replay.starttls) {
        (true, None) => Err(
            "the recorded EHLO reply lists STARTTLS: say how it was answered in replay.starttls"
                .into(),
        ),
        (false, Some(_)) => Err(
            "replay.starttls: the recorded EHLO reply does not list STARTTLS, so Postfix never sends it; remove it"
                .into(),
        ),
        _ => Ok(()),
    }
}

//! `[expect]`, its version entries and the MTAs' own tables: what must
//! happen, level by level or policy by policy.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;

use crate::level::Level;
use crate::policy::{Mta, Policy};
use crate::scenario::error::{LoadError, SourceFile};
use crate::scenario::model::{Expectation, RawExpectations, RawMtaTable, VersionPrefix};
use crate::scenario::validated::{MtaTable, VersionExpectations};

/// The version entries of `[expect]` as written, by version.
pub(crate) type RawVersions = BTreeMap<VersionPrefix, Spanned<RawExpectations>>;

/// `[expect]`: every required level, each a possible sequence of
/// attempts. Its version entries are returned as written, for
/// [`versions`], which checks them against it.
pub(crate) fn expectations(
    file: &SourceFile,
    raw: Option<Spanned<RawExpectations>>,
    other_tables: bool,
) -> Result<(BTreeMap<Level, Expectation>, RawVersions), LoadError> {
    let Some(raw) = raw else {
        if other_tables {
            return Ok((BTreeMap::new(), RawVersions::default()));
        }
        let tables: Vec<&str> = Mta::ALL
            .iter()
            .filter_map(|m| m.driver().scenario_table().map(|(n, _)| n))
            .collect();
        return Err(file.error(
            0..0,
            "",
            format!(
                "missing field `expect`: say what Postfix does in [expect], or what another MTA does in its own table ([{}])",
                tables.join("], [")
            ),
        ));
    };
    let expect_span = raw.span();
    let mut raw = raw.into_inner();
    let raw_versions = std::mem::take(&mut raw.postfix);
    let expect = raw.into_map();
    for level in Level::REQUIRED {
        if !expect.contains_key(&level) {
            return Err(file.error(
                expect_span.clone(),
                "expect",
                format!(
                    "missing expectation for level `{level}` (every scenario states none, may, encrypt, verify and secure)"
                ),
            ));
        }
    }
    let mut checked = BTreeMap::new();
    for (level, spanned) in expect {
        let span = spanned.span();
        let key = format!("expect.{level}");
        let e = spanned.into_inner();
        check_expectation(&e).map_err(|m| file.error(span, &key, m))?;
        checked.insert(level, e);
    }
    Ok((checked, raw_versions))
}

/// `[expect.postfix."VERSION"]`: each entry states levels `[expect]`
/// states too, and says something different from what would apply
/// without it.
pub(crate) fn versions(
    file: &SourceFile,
    raw_versions: RawVersions,
    expect: &BTreeMap<Level, Expectation>,
) -> Result<Vec<VersionExpectations>, LoadError> {
    let mut versions = Vec::new();
    let mut spans = HashMap::new();
    for (version, spanned) in raw_versions {
        let span = spanned.span();
        let table = format!("expect.postfix.\"{version}\"");
        let raw = spanned.into_inner();
        if !raw.postfix.is_empty() {
            return Err(file.error(
                span,
                &format!("{table}.postfix"),
                "version entries do not nest: give each version its own [expect.postfix.\"VERSION\"]"
                    .into(),
            ));
        }
        let levels = raw.into_map();
        if levels.is_empty() {
            return Err(file.error(
                span,
                &table,
                "states no level: give the levels where this version differs, or remove the table"
                    .into(),
            ));
        }
        let mut differs = BTreeMap::new();
        for (level, spanned) in levels {
            let span = spanned.span();
            let key = format!("{table}.{level}");
            let e = spanned.into_inner();
            check_expectation(&e).map_err(|m| file.error(span.clone(), &key, m))?;
            if !expect.contains_key(&level) {
                return Err(file.error(
                    span,
                    &key,
                    format!(
                        "[expect] states nothing for `{level}`: a version entry says how a version differs from [expect]"
                    ),
                ));
            }
            spans.insert((version.clone(), level), span);
            differs.insert(level, e);
        }
        versions.push(VersionExpectations {
            version,
            expect: differs,
        });
    }
    each_entry_differs(file, &versions, &spans, expect)?;
    Ok(versions)
}

/// An entry must say something different from what would apply to that
/// version without it: the next less specific entry, else [expect].
fn each_entry_differs(
    file: &SourceFile,
    versions: &[VersionExpectations],
    spans: &HashMap<(VersionPrefix, Level), Range<usize>>,
    expect: &BTreeMap<Level, Expectation>,
) -> Result<(), LoadError> {
    for v in versions {
        for (level, e) in &v.expect {
            let (parent, said_by) = versions
                .iter()
                .filter(|p| {
                    p.version.parts() < v.version.parts() && p.version.matches(v.version.as_str())
                })
                .filter_map(|p| p.expect.get(level).map(|pe| (p, pe)))
                .max_by_key(|(p, _)| p.version.parts())
                .map(|(p, pe)| (pe, format!("[expect.postfix.\"{}\"]", p.version)))
                .unwrap_or_else(|| (&expect[level], "[expect]".to_owned()));
            if parent == e {
                return Err(file.error(
                    spans[&(v.version.clone(), *level)].clone(),
                    &format!("expect.postfix.\"{}\".{level}", v.version),
                    format!("the same as {said_by} says: remove it, or say what differs"),
                ));
            }
        }
    }
    Ok(())
}

/// The MTAs' own tables (`[exim]`, ...), each checked against its MTA's
/// driver: its policy names, and the settings it lets a scenario give.
pub(crate) fn mta_tables(
    file: &SourceFile,
    raw: Vec<(&'static str, Spanned<RawMtaTable>)>,
    by_mx: bool,
) -> Result<BTreeMap<Mta, MtaTable>, LoadError> {
    let mut tables = BTreeMap::new();
    for (name, table) in raw {
        let mta = Mta::ALL
            .into_iter()
            .find(|m| m.driver().scenario_table().is_some_and(|(n, _)| n == name))
            .expect("every MTA table of the format is an MTA's");
        let (_, allowed) = mta.driver().scenario_table().expect("found by it");
        let span = table.span();
        if by_mx && !mta.driver().delivers_by_mx() {
            let m = format!(
                "[{name}] in a scenario with [dns]: the harness runs {} by relay name only (its MX lookup is not modelled); remove the table or the [dns] section",
                mta.title()
            );
            return Err(file.error(span, name, m));
        }
        let table = table.into_inner();
        let mut read = MtaTable::default();
        for (setting, value) in table.settings {
            let key = format!("{name}.settings.{}", setting.get_ref());
            if !allowed.contains(&setting.get_ref().as_str()) {
                let m = if allowed.is_empty() {
                    format!("{} takes no client options from a scenario", mta.title())
                } else {
                    format!(
                        "not one of the {} client options a scenario may set: {}",
                        mta.title(),
                        allowed.join(", ")
                    )
                };
                return Err(file.error(setting.span(), &key, m));
            }
            if value.contains('\n') || value.trim().is_empty() {
                let m = "give a one-line value".to_owned();
                return Err(file.error(setting.span(), &key, m));
            }
            read.settings.insert(setting.into_inner(), value);
        }
        if table.policies.is_empty() {
            let m = format!(
                "[{name}] states no policy: give what {} does at {}, ... or remove the table",
                mta.title(),
                mta.driver().policies()[..2].join(", ")
            );
            return Err(file.error(span, name, m));
        }
        for (policy, e) in table.policies {
            let key = format!("{name}.{}", policy.get_ref());
            let p = Policy::parse(mta, policy.get_ref())
                .map_err(|m| file.error(policy.span(), &key, m.to_string()))?;
            let span = e.span();
            let e = e.into_inner();
            check_expectation(&e).map_err(|m| file.error(span, &key, m))?;
            if read.expect.insert(p, e).is_some() {
                let m = "stated twice".to_owned();
                return Err(file.error(policy.span(), &key, m));
            }
        }
        tables.insert(mta, read);
    }
    Ok(tables)
}

fn check_expectation(e: &Expectation) -> Result<(), String> {
    let last = e.attempts.len() - 1;
    for (i, a) in e.attempts.iter().enumerate() {
        if i < last && a.outcome.is_final() {
            return Err(format!(
                "attempt {} is `{}`: the message leaves the queue, so no attempt can follow it",
                i + 1,
                a.outcome
            ));
        }
        // A deferral or bounce can follow a TLS session (a certificate
        // Postfix refused after the handshake); plaintext delivery cannot.
        if (a.trust.is_some() || a.protocol.is_some())
            && a.outcome == crate::outcome::Outcome::DeliveredPlaintext
        {
            return Err(format!(
                "attempt {}: `trust` and `protocol` describe a TLS session, which `delivered-plaintext` has none of",
                i + 1
            ));
        }
        let delivered = matches!(
            a.outcome,
            crate::outcome::Outcome::DeliveredTls | crate::outcome::Outcome::DeliveredPlaintext
        );
        if a.relay.is_some() && !delivered {
            return Err(format!(
                "attempt {}: `relay` applies only to delivered outcomes",
                i + 1
            ));
        }
        if a.reason.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(format!(
                "attempt {}: `reason` is empty; leave it out or give text Postfix's reason must contain",
                i + 1
            ));
        }
    }
    Ok(())
}

//! `[postfix.settings]`: Postfix parameters a scenario may set, and the
//! ones the harness keeps to itself.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Settings the harness sets itself, per case.
pub const OWNED_SETTINGS: &[(&str, &str)] = &[
    ("smtp_tls_security_level", "the level comes from [expect]"),
    ("smtp_use_tls", "use the legacy-use-tls level in [expect]"),
    (
        "smtp_enforce_tls",
        "use the legacy-enforce-tls level in [expect]",
    ),
    ("smtp_tls_CAfile", "use [postfix] trust_ca"),
    ("minimal_backoff_time", "use [delivery] retry_after"),
    ("smtp_tls_policy_maps", "use [postfix] tls_policy"),
    ("smtp_sasl_auth_enable", "use [postfix.sasl]"),
    ("smtp_sasl_password_maps", "use [postfix.sasl]"),
    (
        "smtp_tls_fingerprint_cert_match",
        "the harness pins the relay's certificate for the fingerprint level",
    ),
    (
        "smtp_tls_fingerprint_digest",
        "the harness pins the relay's certificate for the fingerprint level",
    ),
    (
        "smtp_randomize_addresses",
        "the harness turns it off for scenarios with several paths",
    ),
    // Containment: with any of these a transport could reach beyond the
    // run's own next hops, or send from an address other than loopback.
    // A scenario's settings become `-o` options on its smtp(8) transport,
    // which beat main.cf; the routing parameters below do nothing there
    // today, but are refused too so that no scenario can ever route mail
    // past the transport map, whatever a setting is applied to.
    (
        "smtp_bind_address",
        "the harness binds the smtp client to 127.0.0.1 (containment)",
    ),
    (
        "smtp_bind_address6",
        "the harness binds the smtp client to loopback (containment)",
    ),
    (
        "smtp_fallback_relay",
        "a fallback relay would send mail beyond the run's own next hops (containment)",
    ),
    (
        "smtp_dns_support_level",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    (
        "smtp_host_lookup",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    (
        "smtp_bind_address_enforce",
        "the harness decides where the smtp client sends from (containment)",
    ),
    // Which addresses Postfix has: with a single non-loopback address in
    // inet_interfaces the smtp client sends from it, and inet_protocols
    // decides whether it may use IPv6 (sent from smtp_bind_address6).
    (
        "inet_interfaces",
        "the harness keeps Postfix on loopback (containment)",
    ),
    (
        "inet_protocols",
        "the harness keeps Postfix on loopback IPv4 (containment)",
    ),
    // Name resolution: DNS is disabled; these would turn it back on or
    // change the names looked up.
    (
        "disable_dns_lookups",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    (
        "smtp_dns_resolver_options",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    (
        "use_srv_lookup",
        "the harness resolves relay names itself, without DNS (containment)",
    ),
    // Routing: the transport map sends each case to its own fake relay and
    // everything else is refused locally; each of these could send mail to
    // another next hop or transport. relay_domains is not among them: it
    // decides which recipients are relayed, not where (relay_transport and
    // the transport map do). The address_verify_* variants route only
    // address-verification probes, which nothing in a run makes.
    (
        "fallback_relay",
        "the old name of smtp_fallback_relay: a fallback relay would send mail beyond the run's own next hops (containment)",
    ),
    (
        "relayhost",
        "the transport map sends each case to its own relay (containment)",
    ),
    (
        "sender_dependent_relayhost_maps",
        "the transport map sends each case to its own relay (containment)",
    ),
    (
        "transport_maps",
        "the harness routes each case through its own transport map (containment)",
    ),
    (
        "default_transport",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "sender_dependent_default_transport_maps",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "relay_transport",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "local_transport",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "virtual_transport",
        "the harness refuses mail for any destination not in its transport map (containment)",
    ),
    (
        "content_filter",
        "a content filter would send every message to another transport (containment)",
    ),
    (
        "best_mx_transport",
        "it would hand mail to another transport (containment)",
    ),
];

/// A Postfix parameter name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SettingName(String);

impl SettingName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SettingName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let valid = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(de::Error::custom(format!(
                "`{s}` is not a Postfix parameter name"
            )));
        }
        if let Some((_, why)) = OWNED_SETTINGS.iter().find(|(n, _)| *n == s) {
            return Err(de::Error::custom(format!(
                "`{s}` is set by the harness: {why}"
            )));
        }
        if !is_postfix_parameter(&s) {
            let hint = match closest_parameter(&s) {
                Some(near) => match OWNED_SETTINGS.iter().find(|(n, _)| *n == near) {
                    Some((_, why)) => {
                        format!("; did you mean `{near}`? (it is set by the harness: {why})")
                    }
                    None => format!("; did you mean `{near}`?"),
                },
                None => String::new(),
            };
            return Err(de::Error::custom(format!(
                "`{s}` is not a Postfix parameter (no built-in image's Postfix knows it){hint}"
            )));
        }
        Ok(SettingName(s))
    }
}

/// Every parameter name `postconf -d` lists on the three built-in images,
/// one a line, sorted, after `#` comments: Postfix ignores a setting it
/// does not know (a warning in its log), so a misspelled one would
/// silently change nothing. Postfix's own list, not a hand-kept one; the
/// Docker-backed test in tests/blame.rs keeps it equal to the images'.
const POSTFIX_PARAMETERS: &str = include_str!("../../../../fixtures/postfix/parameters.txt");

fn postfix_parameters() -> impl Iterator<Item = &'static str> {
    POSTFIX_PARAMETERS
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Whether some built-in image's Postfix knows the parameter `name`.
pub fn is_postfix_parameter(name: &str) -> bool {
    postfix_parameters().any(|p| p == name)
}

/// The known parameter nearest to `name`, if one is near enough to be a
/// slip of the keyboard: at most a third of its length in edits, and at
/// most three. Ties go to the first in sorted order, so the hint is stable.
pub fn closest_parameter(name: &str) -> Option<&'static str> {
    let most = (name.chars().count() / 3).clamp(1, 3);
    postfix_parameters()
        .map(|p| (edit_distance(name, p), p))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| p)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A Postfix parameter value: text, a number or a boolean (`yes`/`no`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SettingValue(String);

impl SettingValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SettingValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SettingValue, E> {
                if v.contains(['\n', '\r', '{', '}']) {
                    return Err(E::custom("a value may not contain line breaks or braces"));
                }
                Ok(SettingValue(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SettingValue, E> {
                Ok(SettingValue(if v { "yes" } else { "no" }.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            edit_distance(
                "smtp_tls_mandatry_protocols",
                "smtp_tls_mandatory_protocols"
            ),
            1
        );
    }

    #[test]
    fn the_parameter_list_is_postfix_s() {
        assert!(is_postfix_parameter("smtp_tls_mandatory_protocols"));
        assert!(is_postfix_parameter("smtp_helo_timeout"));
        // A name one version knows counts: only 3.5 has
        // smtp_per_record_deadline, only 3.10 smtp_tls_enable_rpk.
        assert!(is_postfix_parameter("smtp_per_record_deadline"));
        assert!(is_postfix_parameter("smtp_tls_enable_rpk"));
        assert!(!is_postfix_parameter("smtp_tls_mandatry_protocols"));
        assert!(!is_postfix_parameter(""));
        let names: Vec<&str> = postfix_parameters().collect();
        assert!(names.len() > 900, "{}", names.len());
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    }

    #[test]
    fn the_closest_parameter_is_a_hint_only_when_close() {
        assert_eq!(
            closest_parameter("smtp_tls_mandatry_protocols"),
            Some("smtp_tls_mandatory_protocols")
        );
        assert_eq!(
            closest_parameter("smtp_helo_timout"),
            Some("smtp_helo_timeout")
        );
        assert_eq!(closest_parameter("tlsharness_speed"), None);
        assert_eq!(closest_parameter("x"), None);
    }

    fn setting(name: &str) -> Result<SettingName, String> {
        SettingName::deserialize(de::value::StrDeserializer::<de::value::Error>::new(name))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_setting_postfix_does_not_know_is_refused_with_a_hint() {
        assert_eq!(
            setting("smtp_tls_mandatry_protocols").unwrap_err(),
            "`smtp_tls_mandatry_protocols` is not a Postfix parameter (no built-in image's Postfix knows it); did you mean `smtp_tls_mandatory_protocols`?"
        );
        assert_eq!(
            setting("tlsharness_speed").unwrap_err(),
            "`tlsharness_speed` is not a Postfix parameter (no built-in image's Postfix knows it)"
        );
        // A near name the harness owns says so at once.
        assert_eq!(
            setting("smtp_tls_security_levl").unwrap_err(),
            "`smtp_tls_security_levl` is not a Postfix parameter (no built-in image's Postfix knows it); did you mean `smtp_tls_security_level`? (it is set by the harness: the level comes from [expect])"
        );
        assert_eq!(
            setting("smtp_tls_security_level").unwrap_err(),
            "`smtp_tls_security_level` is set by the harness: the level comes from [expect]"
        );
        assert_eq!(
            setting("smtp_helo_timeout").unwrap().as_str(),
            "smtp_helo_timeout"
        );
    }

    #[test]
    fn containment_settings_are_refused() {
        // A -o on a case's transport beats main.cf: any of these could let
        // a case reach beyond the run's own next hops.
        for name in [
            "smtp_bind_address",
            "smtp_bind_address6",
            "smtp_bind_address_enforce",
            "smtp_fallback_relay",
            "fallback_relay",
            "smtp_dns_support_level",
            "smtp_host_lookup",
            "disable_dns_lookups",
            "smtp_dns_resolver_options",
            "use_srv_lookup",
            "inet_interfaces",
            "inet_protocols",
            "relayhost",
            "sender_dependent_relayhost_maps",
            "sender_dependent_default_transport_maps",
            "transport_maps",
            "default_transport",
            "relay_transport",
            "local_transport",
            "virtual_transport",
            "content_filter",
            "best_mx_transport",
        ] {
            let e = setting(name).unwrap_err();
            assert!(e.contains("(containment)"), "{name}: {e}");
            assert!(e.contains("is set by the harness"), "{name}: {e}");
        }
        // Deciding which recipients are relayed is not deciding where.
        assert!(setting("relay_domains").is_ok());
    }

    #[test]
    fn every_refused_setting_but_an_old_name_is_a_postfix_parameter() {
        // A misspelled name here would leave the real parameter allowed.
        // fallback_relay is only the default of smtp_fallback_relay
        // (`$fallback_relay`), so no image lists it.
        for (name, _) in OWNED_SETTINGS {
            assert!(
                is_postfix_parameter(name) || *name == "fallback_relay",
                "{name}"
            );
        }
    }
}

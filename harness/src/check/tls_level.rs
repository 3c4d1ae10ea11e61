//! Which TLS level smtp(8) applies on one service, from what `postconf`
//! says is set there (see `setup::POLICY_SCRIPT`), in Postfix's terms.
//!
//! Postfix 3.5, 3.7 and 3.10 all compute it the same way
//! (`global_tls_level()` in src/smtp/smtp_tls_policy.c; `pre_init()` in
//! src/smtp/smtp.c): a non-empty `smtp_tls_security_level` decides, and
//! the obsolete `smtp_use_tls`, `smtp_enforce_tls` and
//! `smtp_tls_enforce_peername` are then ignored; an empty one leaves the
//! decision to those: `smtp_enforce_tls = yes` gives `verify`, or
//! `encrypt` with `smtp_tls_enforce_peername = no` (its default is yes);
//! else `smtp_use_tls = yes` gives `may`; else `none`. Each parameter is
//! the service's `-o` if it sets one (even empty), else main.cf's. An
//! entry for the next hop in `smtp_tls_policy_maps` overrides them all.

use std::collections::BTreeMap;
use std::fmt;

use super::setup::TlsPolicy;

const LEVEL: &str = "smtp_tls_security_level";
const ENFORCE: &str = "smtp_enforce_tls";
const USE: &str = "smtp_use_tls";
const PEERNAME: &str = "smtp_tls_enforce_peername";

/// The parameters `POLICY_SCRIPT` asks about, and their defaults on
/// every built-in image (mail_params.h: `DEF_SMTP_TLS_LEVEL ""`,
/// `DEF_SMTP_ENFORCE_TLS 0`, `DEF_SMTP_USE_TLS 0`,
/// `DEF_SMTP_TLS_ENFORCE_PN 1`).
pub const PARAMETERS: [(&str, &str); 4] =
    [(LEVEL, ""), (ENFORCE, "no"), (USE, "no"), (PEERNAME, "yes")];

/// What Postfix says is set on one service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Said {
    /// The service's own `-o name=value` (master.cf).
    pub service: BTreeMap<String, String>,
    /// main.cf's `name = value` (`postconf -n`).
    pub main: BTreeMap<String, String>,
    /// The first policy map that has an entry for the next hop, and its
    /// answer.
    pub policy_map: Option<(String, String)>,
}

/// Where a parameter's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Service,
    MainCf,
    Default,
}

/// One parameter as smtp(8) reads it on the service.
struct Setting<'a> {
    name: &'static str,
    value: &'a str,
    place: Place,
}

impl Setting<'_> {
    fn is_yes(&self) -> bool {
        // Postfix's booleans are `yes` or `no`, either case
        // (mail_conf_bool.c); anything else is fatal in smtp(8), which
        // the preflight reports as a refusal.
        self.value.eq_ignore_ascii_case("yes")
    }

    fn is_set(&self) -> bool {
        self.place != Place::Default
    }
}

impl fmt::Display for Setting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place {
            Place::Service => write!(f, "-o {}={} in master.cf", self.name, self.value),
            Place::MainCf => write!(f, "{} = {} in main.cf", self.name, self.value),
            Place::Default => write!(f, "{} = {} (its default)", self.name, self.value),
        }
    }
}

impl Said {
    fn setting(&self, name: &'static str) -> Setting<'_> {
        let default = PARAMETERS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, d)| *d);
        let (value, place) = match (self.service.get(name), self.main.get(name)) {
            (Some(v), _) => (v.as_str(), Place::Service),
            (None, Some(v)) => (v.as_str(), Place::MainCf),
            (None, None) => (default, Place::Default),
        };
        Setting { name, value, place }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The level smtp(8) applies to `nexthop` on a service of which Postfix
/// said `said`, and where it came from.
pub fn policy(said: &Said, nexthop: &str) -> TlsPolicy {
    let (level, source) = match &said.policy_map {
        Some((map, answer)) => (
            answer.split_whitespace().next().unwrap_or("").to_owned(),
            format!("set by smtp_tls_policy_maps: postmap -q '{nexthop}' {map} answers '{answer}'"),
        ),
        None => security_level(said),
    };
    TlsPolicy {
        nexthop: nexthop.to_owned(),
        level,
        source,
    }
}

/// The level without the policy maps: `smtp_tls_security_level`, else
/// the obsolete parameters.
fn security_level(said: &Said) -> (String, String) {
    let level = said.setting(LEVEL);
    let enforce = said.setting(ENFORCE);
    let use_tls = said.setting(USE);
    let peername = said.setting(PEERNAME);
    if !level.value.is_empty() {
        let mut source = match level.place {
            Place::Service => {
                format!("set by -o {LEVEL} in master.cf on the service Postfix routes this mail to")
            }
            _ => format!("set by {LEVEL} in main.cf"),
        };
        let ignored: Vec<String> = [&enforce, &use_tls, &peername]
            .into_iter()
            .filter(|s| s.is_set())
            .map(ToString::to_string)
            .collect();
        if !ignored.is_empty() {
            let (verb, pronoun) = if ignored.len() == 1 {
                ("is", "it")
            } else {
                ("are", "them")
            };
            source.push_str(&format!(
                "; the obsolete {} {verb} ignored: {LEVEL} overrides {pronoun}",
                listed(&ignored)
            ));
        }
        return (level.value.to_owned(), source);
    }
    let not_set = match (level.place, said.main.get(LEVEL)) {
        (Place::Service, Some(theirs)) if !theirs.is_empty() => format!(
            "{LEVEL} is set empty by -o in master.cf on the service Postfix routes this mail to, which overrides main.cf's {LEVEL} = {theirs}"
        ),
        (Place::Service, _) => format!(
            "{LEVEL} is set empty by -o in master.cf on the service Postfix routes this mail to"
        ),
        (Place::MainCf, _) => format!("{LEVEL} is set empty in main.cf"),
        (Place::Default, _) => format!("{LEVEL} is not set"),
    };
    if enforce.is_yes() {
        let derived = if peername.is_yes() {
            "verify"
        } else {
            "encrypt"
        };
        return (
            derived.to_owned(),
            format!("set by the obsolete {enforce}, with {peername}: {derived}; {not_set}"),
        );
    }
    if use_tls.is_yes() {
        return (
            "may".to_owned(),
            format!("set by the obsolete {use_tls}; {not_set}"),
        );
    }
    let off: Vec<String> = [&enforce, &use_tls]
        .into_iter()
        .filter(|s| s.is_set())
        .map(ToString::to_string)
        .collect();
    let source = match off.len() {
        0 => not_set,
        1 => format!("{not_set}; the obsolete {} leaves TLS off", listed(&off)),
        _ => format!("{not_set}; the obsolete {} leave TLS off", listed(&off)),
    };
    ("none".to_owned(), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(service: &[(&str, &str)], main: &[(&str, &str)]) -> Said {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Said {
            service: map(service),
            main: map(main),
            policy_map: None,
        }
    }

    fn level(s: &Said) -> (String, String) {
        let p = policy(s, "[smtp.sendgrid.net]:587");
        (p.level, p.source)
    }

    #[test]
    fn smtp_tls_security_level_decides_in_the_words_it_always_had() {
        assert_eq!(
            level(&said(&[], &[(LEVEL, "encrypt")])),
            (
                "encrypt".into(),
                "set by smtp_tls_security_level in main.cf".into()
            )
        );
        assert_eq!(
            level(&said(&[(LEVEL, "may")], &[(LEVEL, "encrypt")])),
            (
                "may".into(),
                "set by -o smtp_tls_security_level in master.cf on the service Postfix routes this mail to".into()
            )
        );
        assert_eq!(
            level(&said(&[], &[])),
            ("none".into(), "smtp_tls_security_level is not set".into())
        );
    }

    #[test]
    fn beside_smtp_tls_security_level_the_obsolete_settings_are_named_as_ignored() {
        // smtp.c pre_init(): a non-empty level sets var_smtp_use_tls and
        // var_smtp_enforce_tls from itself, whatever main.cf said.
        assert_eq!(
            level(&said(&[], &[(LEVEL, "encrypt"), (ENFORCE, "no")])),
            (
                "encrypt".into(),
                "set by smtp_tls_security_level in main.cf; the obsolete smtp_enforce_tls = no in main.cf is ignored: smtp_tls_security_level overrides it".into()
            )
        );
        assert_eq!(
            level(&said(
                &[(USE, "yes")],
                &[(LEVEL, "may"), (ENFORCE, "yes"), (PEERNAME, "no")]
            ))
            .1,
            "set by smtp_tls_security_level in main.cf; the obsolete smtp_enforce_tls = yes in main.cf, -o smtp_use_tls=yes in master.cf and smtp_tls_enforce_peername = no in main.cf are ignored: smtp_tls_security_level overrides them"
        );
    }

    #[test]
    fn without_smtp_tls_security_level_the_obsolete_settings_decide_as_smtp_8_does() {
        assert_eq!(
            level(&said(&[], &[(ENFORCE, "yes")])),
            (
                "verify".into(),
                "set by the obsolete smtp_enforce_tls = yes in main.cf, with smtp_tls_enforce_peername = yes (its default): verify; smtp_tls_security_level is not set".into()
            )
        );
        assert_eq!(
            level(&said(&[], &[(ENFORCE, "YES"), (PEERNAME, "no"), (USE, "no")])),
            (
                "encrypt".into(),
                "set by the obsolete smtp_enforce_tls = YES in main.cf, with smtp_tls_enforce_peername = no in main.cf: encrypt; smtp_tls_security_level is not set".into()
            )
        );
        assert_eq!(
            level(&said(&[], &[(USE, "yes")])),
            (
                "may".into(),
                "set by the obsolete smtp_use_tls = yes in main.cf; smtp_tls_security_level is not set".into()
            )
        );
        // enforce wins over use_tls.
        assert_eq!(
            level(&said(&[], &[(USE, "yes"), (ENFORCE, "yes")])).0,
            "verify"
        );
        assert_eq!(
            level(&said(&[], &[(USE, "no"), (ENFORCE, "no")])),
            (
                "none".into(),
                "smtp_tls_security_level is not set; the obsolete smtp_enforce_tls = no in main.cf and smtp_use_tls = no in main.cf leave TLS off".into()
            )
        );
        assert_eq!(
            level(&said(&[], &[(LEVEL, ""), (USE, "yes")])).1,
            "set by the obsolete smtp_use_tls = yes in main.cf; smtp_tls_security_level is set empty in main.cf"
        );
        assert_eq!(
            level(&said(&[], &[(USE, "no")])).1,
            "smtp_tls_security_level is not set; the obsolete smtp_use_tls = no in main.cf leaves TLS off"
        );
    }

    #[test]
    fn the_service_s_own_o_comes_first_parameter_by_parameter() {
        // -o smtp_enforce_tls=no on the service beats main.cf's yes.
        assert_eq!(
            level(&said(&[(ENFORCE, "no")], &[(ENFORCE, "yes"), (USE, "yes")])),
            (
                "may".into(),
                "set by the obsolete smtp_use_tls = yes in main.cf; smtp_tls_security_level is not set".into()
            )
        );
        assert_eq!(
            level(&said(&[(PEERNAME, "no")], &[(ENFORCE, "yes")])).1,
            "set by the obsolete smtp_enforce_tls = yes in main.cf, with -o smtp_tls_enforce_peername=no in master.cf: encrypt; smtp_tls_security_level is not set"
        );
        // An empty -o level is a level set empty: main.cf's does not
        // apply, and the obsolete settings decide.
        assert_eq!(
            level(&said(&[(LEVEL, "")], &[(LEVEL, "encrypt"), (USE, "yes")])),
            (
                "may".into(),
                "set by the obsolete smtp_use_tls = yes in main.cf; smtp_tls_security_level is set empty by -o in master.cf on the service Postfix routes this mail to, which overrides main.cf's smtp_tls_security_level = encrypt".into()
            )
        );
    }

    #[test]
    fn the_policy_script_s_lines_are_read_per_service() {
        // Lines as POLICY_SCRIPT printed them on Postfix 3.5.25, 3.7.11
        // and 3.10.13 for main.cf `smtp_enforce_tls = yes` and
        // `smtp_tls_security_level =`, with s1 carrying
        // `-o smtp_use_tls=yes -o { smtp_tls_security_level = }
        // -o smtp_tls_enforce_peername=no` (there a policy map answered
        // for every service; here only for s3).
        let out = "s1\tasked\n\
                   s1\tservice\tsmtp_tls_security_level\t\n\
                   s1\tservice\tsmtp_use_tls\tyes\n\
                   s1\tservice\tsmtp_tls_enforce_peername\tno\n\
                   s1\tmain.cf\tsmtp_tls_security_level\t\n\
                   s1\tmain.cf\tsmtp_enforce_tls\tyes\n\
                   s2\tasked\n\
                   s2\tmain.cf\tsmtp_tls_security_level\t\n\
                   s2\tmain.cf\tsmtp_enforce_tls\tyes\n\
                   s3\tasked\n\
                   s3\tpolicy-map\ttexthash:/etc/postfix/tp\tencrypt  match=x\n";
        let found = super::super::setup::parse_policies(out, "[a]:587");
        let levels: Vec<(&str, &str)> = found
            .iter()
            .map(|(svc, p)| (svc.as_str(), p.level.as_str()))
            .collect();
        assert_eq!(
            levels,
            [("s1", "encrypt"), ("s2", "verify"), ("s3", "encrypt")]
        );
        assert_eq!(
            found["s1"].source,
            "set by the obsolete smtp_enforce_tls = yes in main.cf, with -o smtp_tls_enforce_peername=no in master.cf: encrypt; smtp_tls_security_level is set empty by -o in master.cf on the service Postfix routes this mail to"
        );
        assert_eq!(found["s1"].nexthop, "[a]:587");
        assert_eq!(
            found["s3"].source,
            "set by smtp_tls_policy_maps: postmap -q '[a]:587' texthash:/etc/postfix/tp answers 'encrypt  match=x'"
        );
        // A service the script never reached is not guessed at.
        assert!(super::super::setup::parse_policies("", "[a]:587").is_empty());
    }

    #[test]
    fn a_policy_map_entry_overrides_every_setting() {
        let mut s = said(&[], &[(ENFORCE, "yes")]);
        s.policy_map = Some((
            "hash:/etc/postfix/tls_policy".into(),
            "encrypt protocols=>=TLSv1.2".into(),
        ));
        assert_eq!(
            level(&s),
            (
                "encrypt".into(),
                "set by smtp_tls_policy_maps: postmap -q '[smtp.sendgrid.net]:587' hash:/etc/postfix/tls_policy answers 'encrypt protocols=>=TLSv1.2'".into()
            )
        );
    }
}

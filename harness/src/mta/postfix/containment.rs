//! Containment by rule, judged on Postfix's own view of its configuration.
//!
//! The container has no network but loopback, so mail cannot leave the
//! machine whatever Postfix is told. This is the second wall: after
//! Postfix has started, `postconf` says what every smtp(8) and lmtp(8)
//! client service will actually use, and any setting that could send
//! mail elsewhere, or from an address other than loopback, is loose. The
//! harness writes the configuration, so a loose setting is a fault of the
//! harness (or of a user's option it failed to override), never a
//! property of the path under test.
//!
//! Pure: the caller runs [`commands`] in the container and hands their
//! output to [`loose`].

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The `postconf` invocations whose output [`loose`] reads, in its
/// argument order: every main.cf parameter with its value as written
/// (`name = value`, `$name` unexpanded), every master.cf service (`name
/// type private unpriv chroot wakeup maxproc command args...`), and every
/// service's `-o` overrides (`service/type/parameter = value`).
pub fn commands() -> [Vec<String>; 3] {
    [
        vec!["postconf".to_owned()],
        vec!["postconf".to_owned(), "-M".to_owned()],
        vec!["postconf".to_owned(), "-P".to_owned()],
    ]
}

pub use crate::mta::containment::{Loose, NotContained};

/// [`loose`], as a refusal when anything is.
pub fn verify(
    main: &str,
    services: &str,
    overrides: &str,
    resolv_conf: &str,
) -> Result<(), NotContained> {
    let found = loose_in(main, services, overrides, resolv_conf);
    if found.is_empty() {
        Ok(())
    } else {
        Err(NotContained(found))
    }
}

/// Every loose setting, given the output of the three [`commands`] (in
/// that order), in master.cf's order of services.
///
/// For each smtp(8) client service (command `smtp`; lmtp(8), command
/// `lmtp`, reads the same settings under `lmtp_` names):
///
/// - `smtp_bind_address` is an address in 127.0.0.0/8 (empty lets the
///   system choose);
/// - `smtp_bind_address6` is empty or `::1`;
/// - `smtp_fallback_relay` is empty (its default, `$fallback_relay`, is
///   expanded, so the old name is judged through it);
/// - `smtp_dns_support_level` is `disabled` (or empty with
///   `disable_dns_lookups = yes`, which Postfix reads the same);
/// - `smtp_host_lookup` is `native`;
///
/// the last two unless the container's resolver is the run's own (see
/// [`the_run_s_resolver`]).
///
/// For each trivial-rewrite service, `sender_dependent_relayhost_maps` is
/// empty. relayhost is not judged: `check` keeps the user's (their relay's
/// name, pointed at the fakes through /etc/hosts), and with DNS disabled
/// and no network but loopback its mail cannot leave.
pub fn loose(main: &str, services: &str, overrides: &str) -> Vec<Loose> {
    loose_in(main, services, overrides, "")
}

/// Whether `resolv_conf` (the container's /etc/resolv.conf) sends every
/// query to the run's own validating resolver on 127.0.0.1, whose only
/// upstream is the run's own name server in the same namespace: then
/// DNS lookups stay inside the run, and the smtp clients may use them.
pub fn the_run_s_resolver(resolv_conf: &str) -> bool {
    let servers = crate::mta::containment::nameservers(resolv_conf);
    !servers.is_empty() && servers.iter().all(|s| *s == "127.0.0.1")
}

/// [`loose`], with the container's /etc/resolv.conf: DNS lookups are
/// allowed when it names the run's own resolver only.
pub fn loose_in(main: &str, services: &str, overrides: &str, resolv_conf: &str) -> Vec<Loose> {
    let dns = the_run_s_resolver(resolv_conf);
    let main = parameters(main);
    let overrides = service_overrides(overrides);
    let services = master_services(services);
    if services.is_empty() {
        return vec![Loose {
            service: "master.cf".to_owned(),
            kind: String::new(),
            parameter: String::new(),
            value: String::new(),
            effective: String::new(),
            why: "postconf -M listed no service, so containment cannot be judged".to_owned(),
        }];
    }
    let mut found = Vec::new();
    for s in &services {
        let view = View {
            service: s,
            main: &main,
            overrides: overrides
                .get(&(s.name.clone(), s.kind.clone()))
                .unwrap_or(&BTreeMap::new())
                .clone(),
        };
        match s.command.as_str() {
            "smtp" | "lmtp" => client(&view, &s.command, dns, &mut found),
            "trivial-rewrite" => {
                let p = "sender_dependent_relayhost_maps";
                let (value, effective) = view.get(p);
                if !effective.trim().is_empty() {
                    found.push(view.loose(
                        p,
                        value,
                        effective,
                        "relays chosen by sender would replace the run's next hops; it must be empty",
                    ));
                }
            }
            _ => {}
        }
    }
    found
}

/// The rules for one smtp(8) or lmtp(8) client service; `prefix` is the
/// command, which is how the client knows which names it reads; `dns`,
/// whether the container's resolver is the run's own.
fn client(view: &View, prefix: &str, dns: bool, found: &mut Vec<Loose>) {
    let name = |base: &str| format!("{prefix}_{base}");

    let p = name("bind_address");
    let (value, effective) = view.get(&p);
    let unbracketed = effective
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if !unbracketed
        .parse::<Ipv4Addr>()
        .is_ok_and(|a| a.is_loopback())
    {
        found.push(view.loose(
            &p,
            value,
            effective,
            &format!("the {prefix} client must send from 127.0.0.0/8"),
        ));
    }

    let p = name("bind_address6");
    let (value, effective) = view.get(&p);
    let unbracketed = effective
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if !(unbracketed.is_empty() || unbracketed.parse::<Ipv6Addr>() == Ok(Ipv6Addr::LOCALHOST)) {
        found.push(view.loose(
            &p,
            value,
            effective,
            &format!("the {prefix} client must send IPv6 from ::1, if at all"),
        ));
    }

    let p = name("fallback_relay");
    let (value, effective) = view.get(&p);
    if words(&effective).next().is_some() {
        found.push(view.loose(
            &p,
            value,
            effective,
            "a fallback relay would receive mail the run's own next hops do not take; it must be empty",
        ));
    }

    let p = name("dns_support_level");
    let (value, effective) = view.get(&p);
    let disabled = match effective.trim() {
        "disabled" => true,
        // Postfix's rule: the legacy switch decides when the level is unset.
        "" => view
            .get("disable_dns_lookups")
            .1
            .trim()
            .eq_ignore_ascii_case("yes"),
        _ => false,
    };
    if !disabled && !dns {
        found.push(view.loose(
            &p,
            value,
            effective,
            "it must be disabled: relay names resolve from /etc/hosts only, never through DNS",
        ));
    }

    let p = name("host_lookup");
    let (value, effective) = view.get(&p);
    let native = words(&effective).next().is_some() && words(&effective).all(|w| w == "native");
    let known = words(&effective).next().is_some()
        && words(&effective).all(|w| w == "native" || w == "dns");
    if !(native || dns && known) {
        found.push(view.loose(
            &p,
            value,
            effective,
            "it must be native: relay names resolve from /etc/hosts only, never through DNS",
        ));
    }
}

/// The items of a Postfix list value (commas or whitespace between).
fn words(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
}

/// One master.cf service, as `postconf -M` prints it.
struct Service {
    name: String,
    kind: String,
    /// The command's name without its directory (`smtp`, `lmtp`,
    /// `trivial-rewrite`): smtp(8) decides by it whether it speaks LMTP.
    command: String,
}

/// The service types master.cf knows; anything else is not a service
/// line (a warning that slipped into the output, say).
const SERVICE_TYPES: &[&str] = &["inet", "unix", "unix-dgram", "fifo", "pass"];

fn master_services(text: &str) -> Vec<Service> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, kind, _, _, _, _, _, command, ..] = fields.as_slice() else {
                return None;
            };
            if !SERVICE_TYPES.contains(kind) {
                return None;
            }
            Some(Service {
                name: (*name).to_owned(),
                kind: (*kind).to_owned(),
                command: command.rsplit('/').next().unwrap_or(command).to_owned(),
            })
        })
        .collect()
}

/// `name = value` lines; anything else (a `postconf: warning:`) is
/// skipped. The last assignment of a name wins, as in Postfix.
fn parameters(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with("postconf:"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| is_name(k))
        .collect()
}

/// `service/type/parameter = value` lines, by (service, type). A service
/// with the same `-o` twice is printed with the last, which is the one
/// the service uses.
fn service_overrides(text: &str) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut out: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with("postconf:")) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        // Service names may hold `/` (never types or parameters).
        let mut parts = key.trim().rsplitn(3, '/');
        let (Some(parameter), Some(kind), Some(service)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        out.entry((service.to_owned(), kind.to_owned()))
            .or_default()
            .insert(parameter.to_owned(), value.trim().to_owned());
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What one service sees: its `-o` overrides over main.cf.
struct View<'a> {
    service: &'a Service,
    main: &'a BTreeMap<String, String>,
    overrides: BTreeMap<String, String>,
}

impl View<'_> {
    /// A parameter as written, and expanded.
    fn get(&self, name: &str) -> (String, String) {
        let value = self.raw(name).unwrap_or_default();
        let effective = self.expand(&value, 0);
        (value, effective)
    }

    fn raw(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v.clone());
        }
        // Set by master(8) for each process, not in main.cf.
        match name {
            "service_name" => return Some(self.service.name.clone()),
            "process_name" => return Some(self.service.command.clone()),
            _ => {}
        }
        self.main.get(name).cloned()
    }

    /// `$name`, `${name}`, `$(name)`, `${name?text}`, `${name:text}` and
    /// `$$`, as Postfix expands them; an undefined name is empty. Past
    /// [`DEPTH`] levels the text is left as it is, `$` and all, and so
    /// judged loose: Postfix itself refuses nesting that deep.
    fn expand(&self, text: &str, depth: usize) -> String {
        if depth > DEPTH || !text.contains('$') {
            return text.to_owned();
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
                continue;
            }
            let (inner, r) = match after.chars().next() {
                Some(open @ ('{' | '(')) => {
                    let close = if open == '{' { '}' } else { ')' };
                    match closing(&after[1..], open, close) {
                        Some(end) => (&after[1..1 + end], &after[2 + end..]),
                        // Unbalanced: Postfix refuses it; keep it visible.
                        None => {
                            out.push_str(&rest[at..]);
                            return out;
                        }
                    }
                }
                _ => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    if end == 0 {
                        out.push('$');
                        rest = after;
                        continue;
                    }
                    (&after[..end], &after[end..])
                }
            };
            out.push_str(&self.macro_value(inner, depth));
            rest = r;
        }
        out.push_str(rest);
        out
    }

    /// The inside of `${...}`: a name, optionally `?text` (when the name
    /// is non-empty) or `:text` (when it is empty).
    fn macro_value(&self, inner: &str, depth: usize) -> String {
        let split = inner.find(['?', ':']);
        let name = split.map_or(inner, |i| &inner[..i]).trim();
        let value = self.expand(&self.raw(name).unwrap_or_default(), depth + 1);
        let Some(i) = split else {
            return value;
        };
        let text = inner[i + 1..].trim();
        let text = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text);
        let wanted = match &inner[i..=i] {
            "?" => !value.is_empty(),
            _ => value.is_empty(),
        };
        if wanted {
            self.expand(text, depth + 1)
        } else {
            String::new()
        }
    }

    fn loose(&self, parameter: &str, value: String, effective: String, why: &str) -> Loose {
        Loose {
            service: self.service.name.clone(),
            kind: self.service.kind.clone(),
            parameter: parameter.to_owned(),
            value,
            effective,
            why: why.to_owned(),
        }
    }
}

/// How deep `$name` references are followed. postconf prints values
/// unexpanded; the defaults reach one or two levels (`$fallback_relay`).
const DEPTH: usize = 8;

/// Where the bracket closing an opened one is in `text`, nested pairs
/// skipped.
fn closing(text: &str, open: char, close: char) -> Option<usize> {
    let mut level = 0usize;
    for (i, c) in text.char_indices() {
        if c == open {
            level += 1;
        } else if c == close {
            if level == 0 {
                return Some(i);
            }
            level -= 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of the three commands on tlsharness/postfix:bookworm
    /// (`docker run --network none --entrypoint sh IMAGE -c '...; postconf;
    /// postconf -M; postconf -P'` after installing the configuration), with
    /// `postconf` cut to the parameters that matter here and a few others.
    struct Fixture {
        main: &'static str,
        services: &'static str,
        overrides: &'static str,
    }

    impl Fixture {
        fn loose(&self) -> Vec<String> {
            loose(self.main, self.services, self.overrides)
                .iter()
                .map(ToString::to_string)
                .collect()
        }
    }

    /// The run's own configuration (postfix::config), one transport with
    /// scenario settings.
    const RUN: Fixture = Fixture {
        main: include_str!("../../../tests/data/containment/run/postconf.txt"),
        services: include_str!("../../../tests/data/containment/run/postconf-M.txt"),
        overrides: include_str!("../../../tests/data/containment/run/postconf-P.txt"),
    };

    /// Debian's master.cf with a user's `-o` options on smtp, relay and
    /// rewrite, and main.cf setting the old fallback_relay and a bind
    /// address through a `${name}`.
    const USER: Fixture = Fixture {
        main: include_str!("../../../tests/data/containment/loose/postconf.txt"),
        services: include_str!("../../../tests/data/containment/loose/postconf-M.txt"),
        overrides: include_str!("../../../tests/data/containment/loose/postconf-P.txt"),
    };

    #[test]
    fn the_commands_are_postconf_s_three_views() {
        assert_eq!(
            commands(),
            [
                vec!["postconf".to_owned()],
                vec!["postconf".to_owned(), "-M".to_owned()],
                vec!["postconf".to_owned(), "-P".to_owned()],
            ]
        );
    }

    #[test]
    fn the_run_s_configuration_is_contained() {
        assert_eq!(RUN.loose(), Vec::<String>::new());
        assert!(verify(RUN.main, RUN.services, RUN.overrides, "").is_ok());
    }

    #[test]
    fn every_way_out_of_a_user_s_configuration_is_named() {
        assert_eq!(
            USER.loose(),
            [
                "rewrite (unix) sender_dependent_relayhost_maps = hash:/etc/postfix/sender_relay: relays chosen by sender would replace the run's next hops; it must be empty",
                "smtp (unix) smtp_bind_address = 192.0.2.7: the smtp client must send from 127.0.0.0/8",
                "smtp (unix) smtp_fallback_relay = [192.0.2.1]:25: a fallback relay would receive mail the run's own next hops do not take; it must be empty",
                "smtp (unix) smtp_dns_support_level = (empty): it must be disabled: relay names resolve from /etc/hosts only, never through DNS",
                "relay (unix) smtp_bind_address = ${outbound} (= 198.51.100.4): the smtp client must send from 127.0.0.0/8",
                "relay (unix) smtp_bind_address6 = 2001:db8::7: the smtp client must send IPv6 from ::1, if at all",
                "relay (unix) smtp_fallback_relay = $fallback_relay (= [192.0.2.9]:25): a fallback relay would receive mail the run's own next hops do not take; it must be empty",
                "relay (unix) smtp_dns_support_level = (empty): it must be disabled: relay names resolve from /etc/hosts only, never through DNS",
                "relay (unix) smtp_host_lookup = dns,native: it must be native: relay names resolve from /etc/hosts only, never through DNS",
                "lmtp (unix) lmtp_bind_address = (empty): the lmtp client must send from 127.0.0.0/8",
                "lmtp (unix) lmtp_dns_support_level = (empty): it must be disabled: relay names resolve from /etc/hosts only, never through DNS",
                "lmtp (unix) lmtp_host_lookup = dns: it must be native: relay names resolve from /etc/hosts only, never through DNS",
            ]
        );
        let e = verify(USER.main, USER.services, USER.overrides, "").unwrap_err();
        assert_eq!(e.0.len(), 12);
        assert!(
            e.to_string().starts_with(
                "the MTA's configuration is not contained, so nothing runs on it:\n  rewrite (unix) sender_dependent_relayhost_maps = "
            ),
            "{e}"
        );
    }

    #[test]
    fn a_finding_names_the_service_the_parameter_and_both_values() {
        let found = loose(USER.main, USER.services, USER.overrides);
        let relay = found
            .iter()
            .find(|l| l.service == "relay" && l.parameter == "smtp_fallback_relay")
            .unwrap();
        assert_eq!(relay.kind, "unix");
        assert_eq!(relay.value, "$fallback_relay");
        assert_eq!(relay.effective, "[192.0.2.9]:25");
    }

    /// A configuration from `main.cf`-style lines and one smtp service
    /// with `options` (`param = value` lines).
    fn one_service(main: &str, options: &[(&str, &str)]) -> Vec<String> {
        let base = "smtp_bind_address = 127.0.0.1\nsmtp_bind_address6 =\nsmtp_fallback_relay = $fallback_relay\nsmtp_dns_support_level = disabled\nsmtp_host_lookup = native\ndisable_dns_lookups = no\n";
        let services = "smtp       unix  -       -       n       -       -       smtp\n";
        let overrides: String = options
            .iter()
            .map(|(k, v)| format!("smtp/unix/{k} = {v}\n"))
            .collect();
        loose(&format!("{base}{main}"), services, &overrides)
            .iter()
            .map(|l| format!("{} = {}", l.parameter, l.effective))
            .collect()
    }

    #[test]
    fn loopback_is_any_address_in_127_0_0_0_8() {
        assert!(one_service("", &[("smtp_bind_address", "127.1.2.3")]).is_empty());
        assert!(one_service("", &[("smtp_bind_address", "[127.0.0.1]")]).is_empty());
        assert!(one_service("", &[("smtp_bind_address6", "::1")]).is_empty());
        assert!(one_service("", &[("smtp_bind_address6", "[::1]")]).is_empty());
        assert_eq!(
            one_service("", &[("smtp_bind_address", "")]),
            ["smtp_bind_address = "]
        );
        assert_eq!(
            one_service("", &[("smtp_bind_address", "128.0.0.1")]),
            ["smtp_bind_address = 128.0.0.1"]
        );
        assert_eq!(
            one_service("", &[("smtp_bind_address6", "::2")]),
            ["smtp_bind_address6 = ::2"]
        );
    }

    #[test]
    fn an_override_beats_main_cf_both_ways() {
        assert_eq!(
            one_service("", &[("smtp_host_lookup", "dns")]),
            ["smtp_host_lookup = dns"]
        );
        assert!(
            one_service(
                "smtp_host_lookup = dns\n",
                &[("smtp_host_lookup", "native")]
            )
            .is_empty()
        );
    }

    #[test]
    fn dns_is_allowed_only_through_the_run_s_own_resolver() {
        let base = "smtp_bind_address = 127.0.0.1\nsmtp_bind_address6 =\nsmtp_fallback_relay =\nsmtp_dns_support_level = disabled\nsmtp_host_lookup = native\n";
        let services = "smtp       unix  -       -       n       -       -       smtp\n";
        let overrides =
            "smtp/unix/smtp_dns_support_level = dnssec\nsmtp/unix/smtp_host_lookup = dns\n";
        let run_s = "nameserver 127.0.0.1\noptions trust-ad\n";
        assert!(loose_in(base, services, overrides, run_s).is_empty());
        for other in [
            "",
            "nameserver 192.0.2.53\n",
            "nameserver 127.0.0.1\nnameserver 10.0.0.2\n",
        ] {
            assert_eq!(
                loose_in(base, services, overrides, other).len(),
                2,
                "{other}"
            );
        }
        // Even then, only DNS and native lookups.
        let odd = "smtp/unix/smtp_host_lookup = dns, nis\n";
        assert_eq!(loose_in(base, services, odd, run_s).len(), 1);
    }

    #[test]
    fn an_empty_dns_level_defers_to_the_legacy_switch_as_postfix_does() {
        let legacy = "smtp_dns_support_level =\ndisable_dns_lookups = yes\n";
        assert!(one_service(legacy, &[]).is_empty());
        assert_eq!(
            one_service("", &[("smtp_dns_support_level", "enabled")]),
            ["smtp_dns_support_level = enabled"]
        );
    }

    #[test]
    fn references_are_followed_through_overrides_and_main_cf() {
        // The service's own -o fallback_relay feeds main.cf's default.
        assert_eq!(
            one_service("", &[("fallback_relay", "[192.0.2.1]")]),
            ["smtp_fallback_relay = [192.0.2.1]"]
        );
        assert_eq!(
            one_service(
                "a = $b\nb = ${c}\nc = $(d)\nd = 192.0.2.1\n",
                &[("smtp_bind_address", "$a")]
            ),
            ["smtp_bind_address = 192.0.2.1"]
        );
        assert!(one_service("lo = 127.0.0.1\n", &[("smtp_bind_address", "${lo}")]).is_empty());
        assert!(
            one_service(
                "here = yes\n",
                &[("smtp_bind_address", "${here?127.0.0.1}${nothere:}")]
            )
            .is_empty()
        );
        assert_eq!(
            one_service("", &[("smtp_fallback_relay", "${unset:{[192.0.2.1]}}")]),
            ["smtp_fallback_relay = [192.0.2.1]"]
        );
        // A loop is never expanded to something harmless.
        assert_eq!(
            one_service("a = $b\nb = $a\n", &[("smtp_bind_address", "$a")]).len(),
            1
        );
    }

    #[test]
    fn nothing_to_judge_is_not_contained() {
        let found = loose("", "", "");
        assert_eq!(
            found.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["master.cf: postconf -M listed no service, so containment cannot be judged"]
        );
        // main.cf's lines missing: every rule fails rather than passes.
        assert_eq!(
            loose("", RUN.services, "").len(),
            3 * 3,
            "three smtp services, each loose in bind address, DNS and host lookup"
        );
    }

    #[test]
    fn warnings_and_other_commands_are_not_services() {
        let services = "postconf: warning: /etc/postfix/master.cf: line 3: bad field count x y z w\n\
                        local      unix  -       n       n       -       -       local\n\
                        out        unix  -       -       n       -       -       /usr/lib/postfix/sbin/smtp\n";
        let found = loose(RUN.main, services, "");
        assert!(found.is_empty(), "{found:?}");
        let found = loose(
            RUN.main,
            services,
            "out/unix/smtp_bind_address = 10.0.0.1\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].service, "out");
    }
}

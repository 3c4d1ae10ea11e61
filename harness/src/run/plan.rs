//! Scenarios x levels -> cases, with selection and deterministic sharding.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::mta::CASE_DOMAIN;
use crate::policy::{Mta, Policy};
use crate::scenario::{Expectation, Scenario};

/// One scenario at one TLS policy of the MTA under test: one message, its
/// own relay and middlebox, its own route in the MTA.
#[derive(Clone, Debug)]
pub struct Case {
    pub index: usize,
    pub scenario: Arc<Scenario>,
    /// The MTA's TLS policy, by its own name (Postfix's level).
    pub level: Policy,
    pub expect: Expectation,
    /// The MTA image the case runs on.
    pub image: String,
}

impl Case {
    /// `scenario-id/level`, the case's name in reports.
    pub fn name(&self) -> String {
        format!("{}/{}", self.scenario.id, self.level)
    }

    /// The case's own recipient domain: its key in the MTA's routes.
    pub fn domain(&self) -> String {
        format!("c{}.{CASE_DOMAIN}", self.index)
    }

    /// The recipient address, readable in the MTA's log.
    pub fn recipient(&self) -> String {
        format!(
            "{}.{}@{}",
            self.scenario.local_part(40),
            self.level,
            self.domain()
        )
    }
}

/// Shard `index` of `count` (1-based), as in `--partition 2/3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a partition: write K/N with 1 <= K <= N, e.g. 2/3");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Partition { index, count })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which cases of the loaded scenarios to run.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Globs (`*`, `?`) matched against scenario ids; all when empty.
    pub scenarios: Vec<String>,
    /// The MTA the cases run on; a scenario that states nothing for it
    /// has no case.
    pub mta: Mta,
    /// Only these levels (policies); all stated ones when `None`.
    pub levels: Option<Vec<Policy>>,
    pub partition: Option<Partition>,
}

impl Selection {
    fn wants(&self, scenario: &Scenario, level: Policy) -> bool {
        (self.scenarios.is_empty() || self.scenarios.iter().any(|p| glob(p, &scenario.id)))
            && self.levels.as_ref().is_none_or(|l| l.contains(&level))
    }
}

/// Refuses `--scenario` patterns that select no scenario: a typo there
/// would otherwise quietly shrink the run. The message names each such
/// pattern, with a hint.
pub fn check_patterns(patterns: &[String], scenarios: &[Arc<Scenario>]) -> Result<(), String> {
    let mut problems = Vec::new();
    for p in patterns {
        if scenarios.iter().any(|s| glob(p, &s.id)) {
            continue;
        }
        let hint = match p.strip_suffix(".toml") {
            Some(stem) if scenarios.iter().any(|s| glob(stem, &s.id)) => {
                format!("patterns match scenario ids, the file name without .toml: try `{stem}`")
            }
            _ => "`tlsharness run --list` lists the scenario ids".to_owned(),
        };
        problems.push(format!("--scenario {p}: selects no scenario ({hint})"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Whether `text` matches the glob `pattern` (`*` any run, `?` any one).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The selected cases: scenario order, then level order; a partition takes
/// every N-th case from its offset, so shards are balanced and together
/// cover every case exactly once.
pub fn plan(scenarios: &[Arc<Scenario>], selection: &Selection) -> Vec<Case> {
    let mut cases = Vec::new();
    for s in scenarios {
        for (level, expect) in s.policies(selection.mta) {
            if selection.wants(s, level) {
                cases.push(Case {
                    index: 0,
                    scenario: s.clone(),
                    level,
                    expect: expect.clone(),
                    image: String::new(),
                });
            }
        }
    }
    if let Some(p) = selection.partition {
        cases = cases
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % p.count == p.index - 1)
            .map(|(_, c)| c)
            .collect();
    }
    for (i, c) in cases.iter_mut().enumerate() {
        c.index = i;
    }
    cases
}

/// Every case on each of `images`, except that a scenario naming its own
/// Postfix image (`[postfix] image`) runs once, on that image.
pub fn on_images(cases: Vec<Case>, images: &[String]) -> Vec<Case> {
    let mut out = Vec::new();
    for (k, image) in images.iter().enumerate() {
        for c in &cases {
            let pinned = c.level.mta().driver().pinned_image(&c.scenario);
            let image = match pinned {
                Some(pinned) if k == 0 => pinned.to_owned(),
                Some(_) => continue,
                None => image.clone(),
            };
            out.push(Case { image, ..c.clone() });
        }
    }
    for (i, c) in out.iter_mut().enumerate() {
        c.index = i;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_select_nothing_are_refused_with_a_hint() {
        let text = "name = \"x\"\n[relay]\nhostname = \"smtp.relay.test\"\nstarttls = true\n[expect]\nnone = \"deferred\"\nmay = \"deferred\"\nencrypt = \"deferred\"\nverify = \"deferred\"\nsecure = \"deferred\"\n";
        let s = crate::scenario::load_bytes(
            std::path::Path::new("incident-587-strip.toml"),
            text.as_bytes(),
        )
        .unwrap();
        let all = vec![Arc::new(s)];
        assert!(check_patterns(&["incident-*".into(), "incident-587-strip".into()], &all).is_ok());
        let e = check_patterns(&["incident-587-strip.toml".into()], &all).unwrap_err();
        assert!(e.contains("try `incident-587-strip`"), "{e}");
        let e = check_patterns(&["incident-*".into(), "nothing".into()], &all).unwrap_err();
        assert!(
            e.starts_with("--scenario nothing: selects no scenario"),
            "{e}"
        );
        assert!(!e.contains("incident-*"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob("fail-*", "fail-handshake-alert"));
        assert!(glob("*alert", "fail-handshake-alert"));
        assert!(glob("f?il*", "fail"));
        assert!(!glob("fail-*", "drop-on-starttls"));
        assert!(glob("*", ""));
        assert!(!glob("a", "ab"));
    }

    #[test]
    fn partitions_parse() {
        assert_eq!(
            "2/3".parse::<Partition>().unwrap(),
            Partition { index: 2, count: 3 }
        );
        assert!("0/3".parse::<Partition>().is_err());
        assert!("4/3".parse::<Partition>().is_err());
        assert!("x".parse::<Partition>().is_err());
    }

    #[test]
    fn shards_cover_every_case_once() {
        let scenarios = crate::scenario::load_paths(&[std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios"
        ))])
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect::<Vec<_>>();
        let all: Vec<String> = plan(&scenarios, &Selection::default())
            .iter()
            .map(Case::name)
            .collect();
        for n in 1..=5 {
            let mut union = Vec::new();
            let mut sizes = Vec::new();
            for k in 1..=n {
                let sel = Selection {
                    partition: Some(Partition { index: k, count: n }),
                    ..Default::default()
                };
                let shard: Vec<String> = plan(&scenarios, &sel).iter().map(Case::name).collect();
                sizes.push(shard.len());
                union.extend(shard);
            }
            union.sort();
            let mut expected = all.clone();
            expected.sort();
            assert_eq!(union, expected, "{n} shards");
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }
}

//! What the scenarios say differs between Postfix versions, as the table
//! the README shows (and a test keeps in step with the scenario files).

use std::fmt::Write as _;

use super::Scenario;

/// One Markdown row per version, scenario and identical expectation: the
/// levels where that version does something else, and what it does.
pub fn versions_table(scenarios: &[Scenario]) -> String {
    let mut rows: Vec<(String, String, Vec<String>, String)> = Vec::new();
    for s in scenarios {
        for v in &s.versions {
            for (level, e) in &v.expect {
                let what = e
                    .attempts
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" -> ");
                match rows.iter_mut().find(|(version, id, _, w)| {
                    version == v.version.as_str() && *id == s.id && *w == what
                }) {
                    Some(row) => row.2.push(level.to_string()),
                    None => rows.push((
                        v.version.to_string(),
                        s.id.clone(),
                        vec![level.to_string()],
                        what,
                    )),
                }
            }
        }
    }
    rows.sort_by(|a, b| {
        version_key(&a.0)
            .cmp(&version_key(&b.0))
            .then(a.1.cmp(&b.1))
    });
    let mut out =
        String::from("| Postfix | scenario | levels | what that version does instead |\n");
    out.push_str("|---|---|---|---|\n");
    for (version, id, levels, what) in rows {
        let _ = writeln!(
            out,
            "| {version} | `{id}` | {} | {} |",
            levels.join(", "),
            what.replace('|', "\\|")
        );
    }
    out
}

fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn rows_group_levels_and_sort_by_version() {
        let base = r#"
name = "x"
[relay]
hostname = "smtp.relay.test"
starttls = true
[expect]
none = "delivered-plaintext"
may = "delivered-tls"
encrypt = "delivered-tls"
verify = "deferred"
secure = "deferred"
[expect.postfix."3.10"]
may = "delivered-plaintext"
[expect.postfix."3.5"]
verify = "bounced"
secure = "bounced"
encrypt = "deferred"
"#;
        let s = crate::scenario::load_bytes(Path::new("a.toml"), base.as_bytes()).unwrap();
        let table = versions_table(&[s]);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| 3.5 | `a` | encrypt | deferred |",
                "| 3.5 | `a` | verify, secure | bounced |",
                "| 3.10 | `a` | may | delivered-plaintext |",
            ]
        );
    }
}

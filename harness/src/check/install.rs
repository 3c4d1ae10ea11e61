//! Installing a configuration in a container, the same way for the
//! routing probe (`check::routes`) and the check's entry point
//! (`check::setup`): the user's directory over /etc/postfix, the files
//! its fit placed (`check::host`), the fit's edits, then every lookup
//! table the configuration uses built by the image's own postmap and
//! postalias.

use super::config::UserConfig;

/// The script, run as `sh install.sh DIR` with DIR where [`files`] were
/// unpacked. Edits are `postconf` arguments, one per line.
const SCRIPT: &str = r#"set -eu
src=$1
cp -R "$src"/etc/. /etc/postfix/
if [ -d "$src/root" ]; then cp -R "$src"/root/. /; fi
# Every Postfix tool checks the listening addresses first, and the
# container has IPv4 loopback only: RHEL's `inet_interfaces = localhost`
# with `inet_protocols = all`, or a host's own address, would stop each
# with "no local interface found for ::1". Containment listens on
# 127.0.0.1 over IPv4 anyway (check::setup, listed in the report).
postconf -e inet_interfaces=127.0.0.1 inet_protocols=ipv4
while IFS= read -r d; do
  if [ -n "$d" ]; then mkdir -p "$d"; fi
done < "$src/dirs"
while IFS= read -r edit; do
  case "$edit" in
    "-e "*) postconf -e "${edit#-e }" ;;
    "-X "*) postconf -X "${edit#-X }" ;;
    "-P "*) postconf -P "${edit#-P }" ;;
    "-PX "*) postconf -PX "${edit#-PX }" ;;
  esac
done < "$src/edits"
tables='\(hash\|btree\|lmdb\|cdb\|dbm\|sdbm\):/[^ ,}]*'
aliases=$(postconf -xh alias_maps alias_database | grep -o "$tables" | sort -u || true)
for m in $aliases; do
  if [ -f "${m#*:}" ]; then postalias "$m"; fi
done
for m in $( { postconf -xn; postconf -xP; } | grep -o "$tables" | sort -u || true); do
  case " $(echo $aliases) " in *" $m "*) continue ;; esac
  if [ -f "${m#*:}" ]; then postmap "$m"; fi
done
"#;

/// The name [`SCRIPT`] has among the files.
pub const SCRIPT_NAME: &str = "install.sh";

/// The files that install `config`, by path under the directory they are
/// unpacked in: `etc/` the user's directory, `root/` the fit's files by
/// absolute path, the lists of directories and edits, and the script.
pub fn files(config: &UserConfig) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = config
        .files
        .iter()
        .map(|(rel, bytes)| (format!("etc/{rel}"), bytes.clone()))
        .collect();
    for (path, bytes) in &config.fit.files {
        out.push((format!("root{path}"), bytes.clone()));
    }
    let lines = |items: Vec<String>| {
        items
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes()
    };
    out.push(("dirs".to_owned(), lines(config.fit.dirs.clone())));
    out.push((
        "edits".to_owned(),
        lines(config.fit.edits.iter().map(|e| e.postconf_line()).collect()),
    ));
    out.push((SCRIPT_NAME.to_owned(), SCRIPT.as_bytes().to_vec()));
    out
}

//! The host's mail log: the file named, or the first of the usual places
//! that can be read.

use std::path::{Path, PathBuf};

use super::error::TriageError;

/// Where distributions write Postfix's log (Debian, RHEL, some others).
pub const USUAL_PLACES: [&str; 3] = [
    "/var/log/mail.log",
    "/var/log/maillog",
    "/var/log/mail/mail.log",
];

/// A mail log, read.
#[derive(Clone, Debug)]
pub struct MailLog {
    pub path: PathBuf,
    pub text: String,
}

/// Reads `named`, or else the first readable of [`USUAL_PLACES`].
pub fn read(named: Option<&Path>) -> Result<MailLog, TriageError> {
    let places: Vec<PathBuf> = match named {
        Some(p) => vec![p.to_owned()],
        None => USUAL_PLACES.iter().map(PathBuf::from).collect(),
    };
    let mut tried = Vec::new();
    for path in places {
        match std::fs::read(&path) {
            Ok(bytes) if std::str::from_utf8(&bytes).is_err() && !looks_like_text(&bytes) => {
                tried.push((path, "not a text log (binary data)".to_owned()));
            }
            Ok(bytes) => {
                return Ok(MailLog {
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    path,
                });
            }
            Err(e) => tried.push((path, format!("cannot read: {e}"))),
        }
    }
    Err(TriageError::Log { tried })
}

/// Whether bytes that are not UTF-8 are still a log (a stray Latin-1
/// subject) rather than a compressed or binary file.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    !head.contains(&0) && !head.starts_with(&[0x1f, 0x8b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_place_it_tried() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("mail.log.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 0x08, 0x00, 0xff]).unwrap();
        let e = read(Some(&gz)).unwrap_err().to_string();
        assert!(e.contains("mail.log.gz: not a text log"), "{e}");
        let missing = dir.path().join("nope.log");
        let e = read(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains("nope.log: cannot read:"), "{e}");
        assert!(e.contains("--log FILE"), "{e}");
        let ok = dir.path().join("mail.log");
        std::fs::write(&ok, "Jun  8 postfix/smtp[1]: x\n").unwrap();
        assert_eq!(read(Some(&ok)).unwrap().path, ok);
    }
}

//! Why a scenario file cannot be used, and where in it: file, line,
//! column and the path of the key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    NoScenarios { path: PathBuf, message: String },
    #[error("{}:{line}:{column}: {}{message}", path.display(), key_prefix(key))]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        /// Dotted path of the offending key (empty for the file's top level).
        key: String,
        message: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// All the problems found in the given files, in file order.
#[derive(Debug)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

impl crate::exit::Code for LoadErrors {
    fn exit_code(&self) -> i32 {
        crate::exit::BAD_INPUT
    }
}

/// serde_path_to_error shows the top level as "." and descends into
/// `Spanned` wrappers; neither means anything to the user.
pub(crate) fn clean_path(p: &str) -> String {
    if p == "." {
        return String::new();
    }
    p.split('.')
        .filter(|seg| !seg.starts_with("$__serde_spanned"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The file being validated, to locate its errors in.
pub(crate) struct SourceFile<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl SourceFile<'_> {
    pub fn error(&self, span: Range<usize>, key: &str, message: String) -> LoadError {
        invalid(self.path, self.text.as_bytes(), span, key, message)
    }
}

pub(crate) fn invalid(
    path: &Path,
    text: &[u8],
    span: Range<usize>,
    key: &str,
    message: String,
) -> LoadError {
    let (line, column) = line_column(text, span.start);
    LoadError::Invalid {
        path: path.to_owned(),
        line,
        column,
        key: key.to_owned(),
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é=\nx".as_bytes(), 2), (1, 2));
    }
}

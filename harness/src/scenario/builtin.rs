//! The built-in scenario library, compiled into the binary: the tool is
//! used from infrastructure repositories that hold a main.cf, not this
//! source tree.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{LoadErrors, Scenario, load_bytes, load_paths};
use crate::exit;

/// One file of the built-in library.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinFile {
    /// The file name, e.g. `incident-587-strip.toml`; its stem is the id.
    pub name: &'static str,
    pub text: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/builtin_scenarios.rs"));

/// Stands for the directory of built-in files in paths and messages.
pub const PREFIX: &str = "<built-in>";

/// The directory used when no scenario path is given, if it exists.
pub const DEFAULT_DIR: &str = "scenarios";

impl BuiltinFile {
    /// The path the file goes by in scenarios and errors: `<built-in>/NAME`.
    pub fn path(&self) -> PathBuf {
        Path::new(PREFIX).join(self.name)
    }
}

/// The built-in files, sorted by name (the order a directory loads in).
pub fn files() -> &'static [BuiltinFile] {
    FILES
}

/// Loads the built-in library through the same strict loader as files.
pub fn load() -> Result<Vec<Scenario>, LoadErrors> {
    load_files(FILES)
}

fn load_files(files: &[BuiltinFile]) -> Result<Vec<Scenario>, LoadErrors> {
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_bytes(&f.path(), f.text.as_bytes()) {
            Ok(s) => scenarios.push(s),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(scenarios)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Where a command's scenarios come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Files and directories, as [`load_paths`] takes them.
    Paths(Vec<PathBuf>),
    /// The library compiled into the binary.
    BuiltIn,
}

impl Source {
    pub fn load(&self) -> Result<Vec<Scenario>, LoadErrors> {
        match self {
            Source::Paths(paths) => load_paths(paths),
            Source::BuiltIn => load(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Paths(paths) => {
                for (i, p) in paths.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", p.display())?;
                }
                Ok(())
            }
            Source::BuiltIn => write!(f, "the built-in library ({} files)", FILES.len()),
        }
    }
}

/// The scenarios of `run`, `validate` and `check`: the paths given on the
/// command line; without any, `./scenarios` when it exists, otherwise the
/// built-in library.
pub fn resolve(paths_given: &[PathBuf]) -> Source {
    resolve_in(Path::new(""), paths_given)
}

/// [`resolve`] as if run in `dir`.
pub fn resolve_in(dir: &Path, paths_given: &[PathBuf]) -> Source {
    if !paths_given.is_empty() {
        return Source::Paths(paths_given.to_vec());
    }
    let default = dir.join(DEFAULT_DIR);
    // A `scenarios` that cannot be looked at (permissions) is still the
    // user's: loading it reports why, instead of quietly using the library.
    match default.try_exists() {
        Ok(false) => Source::BuiltIn,
        Ok(true) | Err(_) => Source::Paths(vec![default]),
    }
}

/// The built-in files cannot be written out.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{}: {} already exist; pass --force to overwrite them", dir.display(), list(names))]
    Exists { dir: PathBuf, names: Vec<String> },
    #[error("{}: cannot write: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl exit::Code for ExportError {
    fn exit_code(&self) -> i32 {
        match self {
            ExportError::Exists { .. } => exit::BAD_INPUT,
            ExportError::Io { .. } => exit::ENVIRONMENT,
        }
    }
}

fn list(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// Writes the built-in files into `dir` (made if missing) and returns the
/// paths written, in order. Unless `force`, nothing is written when any of
/// them exists already.
pub fn export(dir: &Path, force: bool) -> Result<Vec<PathBuf>, ExportError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    if !force {
        let names: Vec<String> = FILES
            .iter()
            .filter(|f| dir.join(f.name).symlink_metadata().is_ok())
            .map(|f| f.name.to_owned())
            .collect();
        if !names.is_empty() {
            return Err(ExportError::Exists {
                dir: dir.to_owned(),
                names,
            });
        }
    }
    let mut written = Vec::with_capacity(FILES.len());
    for f in FILES {
        let path = dir.join(f.name);
        write_file(&path, f.text, force).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes a scenario file in one step: a reader never sees half a file,
/// and without `replace` an existing file (even one that appeared since the
/// caller looked) is not overwritten.
pub fn write_file(path: &Path, text: &str, replace: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    // Scenario files are no secret; the temporary file starts private.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    if replace {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::LoadError;

    fn source_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("harness/ has a parent")
            .join(DEFAULT_DIR)
    }

    /// The files of `dir` as the loader takes them: `*.toml`, by name.
    fn on_disk(dir: &Path) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    }

    fn embedded() -> Vec<(String, String)> {
        FILES
            .iter()
            .map(|f| (f.name.to_owned(), f.text.to_owned()))
            .collect()
    }

    #[test]
    fn the_embedded_files_are_the_source_trees() {
        let disk = on_disk(&source_dir());
        let names = |v: &[(String, String)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&embedded()), names(&disk));
        for ((name, text), (_, disk_text)) in embedded().iter().zip(&disk) {
            assert!(text == disk_text, "{name}: differs from scenarios/{name}");
        }
    }

    #[test]
    fn each_loads_with_the_id_it_has_as_a_file() {
        let builtin = load().unwrap_or_else(|e| panic!("{e}"));
        let files = load_paths(&[source_dir()]).unwrap_or_else(|e| panic!("{e}"));
        let ids = |v: &[Scenario]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&builtin), ids(&files));
        assert_eq!(builtin.len(), FILES.len());
        let first = &builtin[0];
        assert_eq!(first.path, Path::new("<built-in>").join(FILES[0].name));
        for (b, f) in builtin.iter().zip(&files) {
            assert_eq!(b.name, f.name, "{}", b.id);
            assert_eq!(b.expect, f.expect, "{}", b.id);
        }
    }

    #[test]
    fn an_error_names_the_built_in_file() {
        let broken = [
            FILES[0],
            BuiltinFile {
                name: "broken.toml",
                text: "name = \"x\"\n[relai]\n",
            },
        ];
        let errors = load_files(&broken).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert!(
            matches!(&errors.0[0], LoadError::Invalid { path, .. } if path == Path::new("<built-in>/broken.toml")),
            "{errors}"
        );
        assert!(
            errors.to_string().starts_with("<built-in>/broken.toml:"),
            "{errors}"
        );
    }

    #[test]
    fn given_paths_win_then_the_directory_then_the_library() {
        let dir = tempfile::tempdir().unwrap();
        let given = vec![PathBuf::from("mine.toml")];
        assert_eq!(resolve_in(dir.path(), &given), Source::Paths(given.clone()));
        assert_eq!(resolve_in(dir.path(), &[]), Source::BuiltIn);
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        assert_eq!(
            resolve_in(dir.path(), &[]),
            Source::Paths(vec![dir.path().join("scenarios")])
        );
        assert_eq!(resolve_in(dir.path(), &given), Source::Paths(given));
        assert_eq!(
            resolve(&[]),
            Source::BuiltIn,
            "cargo runs unit tests in harness/, which has no scenarios directory"
        );
    }

    #[test]
    fn export_writes_every_file_and_refuses_to_overwrite() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("new/scenarios");
        let written = export(&dir, false).unwrap();
        assert_eq!(written.len(), FILES.len());
        assert_eq!(on_disk(&dir), embedded());
        let loaded = load_paths(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.len(), FILES.len());

        let edited = dir.join(FILES[1].name);
        std::fs::write(&edited, "mine\n").unwrap();
        let e = export(&dir, false).unwrap_err();
        assert_eq!(exit::Code::exit_code(&e), exit::BAD_INPUT);
        let message = e.to_string();
        assert!(message.contains(FILES[0].name), "{message}");
        assert!(
            message.contains(&format!("and {} more", FILES.len() - 3)),
            "{message}"
        );
        assert!(message.contains("--force"), "{message}");
        assert_eq!(std::fs::read_to_string(&edited).unwrap(), "mine\n");

        export(&dir, true).unwrap();
        assert_eq!(on_disk(&dir), embedded());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !n.to_string_lossy().ends_with(".toml"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn export_refuses_even_one_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let last = FILES[FILES.len() - 1].name;
        std::fs::write(dir.path().join(last), "mine\n").unwrap();
        match export(dir.path(), false) {
            Err(ExportError::Exists { names, .. }) => assert_eq!(names, [last]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            on_disk(dir.path()),
            [(last.to_owned(), "mine\n".to_owned())]
        );
    }

    #[test]
    fn export_into_a_file_is_an_environment_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        let e = export(&file, false).unwrap_err();
        assert!(matches!(e, ExportError::Io { .. }), "{e}");
        assert_eq!(exit::Code::exit_code(&e), exit::ENVIRONMENT);
        assert!(e.to_string().contains("cannot write"), "{e}");
    }
}

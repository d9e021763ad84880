//! The files a program needs to start: the program, its ELF interpreter (the dynamic
//! loader) and the shared libraries it needs, transitively — found the way glibc's
//! loader finds them, so that `sandbox run` can bind exactly those, read-only, at the
//! paths the loader inside will open.
//!
//! Resolution, per needed library name (as `ld.so(8)` describes): a name with a `/` is
//! a path; otherwise the requesting object's `DT_RPATH` (when it has no `DT_RUNPATH`),
//! its `DT_RUNPATH` (`$ORIGIN` is the requester's directory; entries with other
//! tokens are skipped), `/etc/ld.so.cache` (every entry of the name for this
//! architecture, so that whichever hardware-capability variant the loader picks is
//! there), then the default directories. `LD_LIBRARY_PATH` is not consulted: the
//! sandbox's environment is empty unless `--env` sets it. The cache itself is among
//! the files, so the loader inside looks libraries up the same way.
//!
//! A `#!` script yields itself and its interpreter's files (one level). What a
//! program opens once running (Python's standard library, data files, `dlopen`ed
//! plugins) is not found here: those still need `--ro`.
//!
//! Everything here reads host files in the supervisor, named by a program that may be
//! hostile (see [`checked`]): a dependency's type is known before it is opened, it
//! must be a regular ELF file (a crafted `DT_NEEDED` of `/etc/passwd` would otherwise
//! be bound and read by the loader), it must come from a system library directory or
//! be readable by anyone on the host, and its identity is checked again after the
//! bind. ELF parsing is goblin's, and the amount read is bounded
//! (`elf::MAX_PART`, [`MAX_FILES`]).

mod cache;
pub mod checked;
pub mod elf;

use checked::{open_checked, Checked};
use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The most files one program may need.
pub const MAX_FILES: usize = 1024;

/// A file found for the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Where the loader opens it (perhaps through a symlink).
    pub path: PathBuf,
    /// The file itself, every symlink resolved: what is bound at `path`.
    pub real: PathBuf,
    /// Its `(st_dev, st_ino)`, checked again after the bind.
    pub id: (u64, u64),
}

/// Where the loader looks last (glibc's built-in system directories on Debian-style
/// multiarch systems, then the classic ones).
#[cfg(target_arch = "x86_64")]
const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
#[cfg(not(target_arch = "x86_64"))]
const DEFAULT_DIRS: &[&str] = &[
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// The directories a `DT_RPATH`/`DT_RUNPATH` value names, `$ORIGIN` expanded.
fn search_dirs(entries: &[String], origin: &Path) -> Vec<PathBuf> {
    entries
        .iter()
        .flat_map(|e| e.split(':'))
        .filter(|d| !d.is_empty())
        .filter_map(|d| {
            let d = d
                .replace("${ORIGIN}", &origin.to_string_lossy())
                .replace("$ORIGIN", &origin.to_string_lossy());
            // $LIB, $PLATFORM: not expanded; such entries are skipped.
            (!d.contains('$')).then(|| PathBuf::from(d))
        })
        .collect()
}

/// The folders a dependency may come from whatever its permissions: what the caller
/// grants, and the system library directories (symlinks resolved) — the loader's
/// defaults and the folders of the cache's entries for this architecture — each set
/// resolved only when a file is not beneath the ones before it (most libraries are in
/// a default directory).
struct Trusted<'a> {
    granted: &'a [PathBuf],
    cache: &'a cache::Cache,
    defaults: OnceCell<Vec<PathBuf>>,
    cached: OnceCell<Vec<PathBuf>>,
}

impl Trusted<'_> {
    fn holds(&self, real: &Path) -> bool {
        let beneath = |dirs: &[PathBuf]| dirs.iter().any(|d| real.starts_with(d));
        let canonical = |dirs: Vec<PathBuf>| -> Vec<PathBuf> {
            dirs.iter()
                .filter_map(|d| std::fs::canonicalize(d).ok())
                .collect()
        };
        beneath(self.granted)
            || beneath(
                self.defaults
                    .get_or_init(|| canonical(DEFAULT_DIRS.iter().map(PathBuf::from).collect())),
            )
            || beneath(self.cached.get_or_init(|| canonical(self.cache.folders())))
    }
}

/// The files `program` needs to start, itself first. A dependency beneath one of
/// `granted` (folders the caller grants anyway) is accepted like one in a system
/// directory. An error names the file and what went wrong, or the library that cannot
/// be found.
pub fn needed_files(program: &Path, granted: &[PathBuf]) -> Result<Vec<Found>, String> {
    let cache = cache::Cache::read();
    let own = open_checked(program, None)?;
    let mut walk = Walk {
        program,
        trusted: Trusted {
            granted,
            cache: &cache,
            defaults: OnceCell::new(),
            cached: OnceCell::new(),
        },
        cache: &cache,
        found: vec![found(program, &own)],
        seen: BTreeSet::from([program.to_path_buf()]),
        todo: Vec::new(),
        used_cache: false,
    };
    let first = elf::read_at(&own.file, program, (0, 256), 256, true)?;
    match script_interpreter(program, &first)? {
        Some(interpreter) => walk.add(interpreter)?,
        None => walk.todo.push((program.to_path_buf(), own)),
    }
    while let Some((object, file)) = walk.todo.pop() {
        walk.visit(&object, &file)?;
    }
    if walk.used_cache {
        let path = PathBuf::from(cache::LD_SO_CACHE);
        let file = open_checked(&path, None)?;
        walk.found.push(found(&path, &file));
    }
    Ok(walk.found)
}

fn found(path: &Path, file: &Checked) -> Found {
    Found {
        path: path.to_path_buf(),
        real: file.real.clone(),
        id: file.id,
    }
}

/// The interpreter a `#!` line names (absolute, or an error), if `first` (the file's
/// first bytes) starts with one.
fn script_interpreter(program: &Path, first: &[u8]) -> Result<Option<PathBuf>, String> {
    if !first.starts_with(b"#!") {
        return Ok(None);
    }
    let line = first
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l.get(2..)?).ok())
        .unwrap_or("");
    let interpreter = line.split_whitespace().next().unwrap_or("");
    if !interpreter.starts_with('/') {
        return Err(format!(
            "{}: the #! line names no absolute interpreter",
            program.display()
        ));
    }
    Ok(Some(PathBuf::from(interpreter)))
}

/// The walk over the program's dependencies, transitively.
struct Walk<'a> {
    program: &'a Path,
    /// Folders a dependency may come from whatever its permissions.
    trusted: Trusted<'a>,
    cache: &'a cache::Cache,
    found: Vec<Found>,
    seen: BTreeSet<PathBuf>,
    /// (where the loader opens it, the file opened and checked)
    todo: Vec<(PathBuf, Checked)>,
    used_cache: bool,
}

impl Walk<'_> {
    /// A dependency at `path`: checked, opened, recorded, to be visited in turn.
    fn add(&mut self, path: PathBuf) -> Result<(), String> {
        if self.seen.contains(&path) {
            return Ok(());
        }
        if self.found.len() >= MAX_FILES {
            return Err(format!(
                "{}: more than {MAX_FILES} files",
                self.program.display()
            ));
        }
        let checked = open_checked(&path, Some(&|real: &Path| self.trusted.holds(real)))
            .map_err(|e| format!("{} needs {e}", self.program.display()))?;
        self.seen.insert(path.clone());
        self.found.push(found(&path, &checked));
        self.todo.push((path, checked));
        Ok(())
    }

    /// What `object` asks of the loader: its interpreter and its libraries.
    fn visit(&mut self, object: &Path, file: &Checked) -> Result<(), String> {
        let Some(dynamic) = elf::dynamic(&file.file, object)? else {
            if object == self.program {
                return Ok(()); // not ELF: execve decides
            }
            // The program names its interpreter and libraries, and it may be hostile:
            // a dependency that is not ELF (`DT_NEEDED` "/etc/passwd") is refused, so
            // only code can be bound this way.
            return Err(format!(
                "{} needs {}, which is not an ELF file: refused",
                self.program.display(),
                object.display()
            ));
        };
        if let Some(interp) = &dynamic.interpreter {
            self.add(PathBuf::from(interp))?;
        }
        let origin = file.real.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut dirs = Vec::new();
        if dynamic.runpath.is_empty() {
            dirs.extend(search_dirs(&dynamic.rpath, &origin));
        }
        dirs.extend(search_dirs(&dynamic.runpath, &origin));
        for name in &dynamic.needed {
            for path in self.resolve(object, name, &dirs)? {
                self.add(path)?;
            }
        }
        Ok(())
    }

    /// Where the loader finds library `name` needed by `object`: a path as written,
    /// the object's RPATH/RUNPATH `dirs`, every cache entry of the name, or the
    /// default directories.
    fn resolve(
        &mut self,
        object: &Path,
        name: &str,
        dirs: &[PathBuf],
    ) -> Result<Vec<PathBuf>, String> {
        if name.contains('/') {
            return Ok(vec![PathBuf::from(name)]);
        }
        if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(vec![p]);
        }
        let cached: Vec<PathBuf> = self.cache.lookup(name).filter(|p| p.is_file()).collect();
        if !cached.is_empty() {
            self.used_cache = true;
            return Ok(cached);
        }
        DEFAULT_DIRS
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
            .map(|p| vec![p])
            .ok_or_else(|| format!("{} needs {name}, which is not found", object.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_expanded_and_other_tokens_skipped() {
        let dirs = search_dirs(
            &["$ORIGIN/../lib:/opt/x".into(), "${ORIGIN}/y:$LIB/z".into()],
            Path::new("/app/bin"),
        );
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/app/bin/../lib"),
                PathBuf::from("/opt/x"),
                PathBuf::from("/app/bin/y"),
            ]
        );
    }

    /// `/bin/true` from the host: itself, the loader its PT_INTERP names, libc, and
    /// the cache (found through it).
    #[test]
    fn bin_true_needs_its_loader_and_libc() {
        let files: Vec<PathBuf> = needed_files(Path::new("/bin/true"), &[])
            .expect("resolved")
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(files[0], PathBuf::from("/bin/true"));
        assert!(files.iter().any(|f| f.ends_with("libc.so.6")), "{files:?}");
        assert!(
            files
                .iter()
                .any(|f| f.to_string_lossy().contains("ld-linux")),
            "{files:?}"
        );
        assert!(
            files.contains(&PathBuf::from(cache::LD_SO_CACHE)),
            "{files:?}"
        );
    }

    #[test]
    fn a_script_brings_its_interpreter() {
        let dir = std::env::temp_dir().join(format!("deps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let script = dir.join("s");
        std::fs::write(&script, "#!/bin/sh -e\necho hi\n").expect("write");
        let files: Vec<PathBuf> = needed_files(&script, &[])
            .expect("resolved")
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(files[0], script);
        assert_eq!(files[1], PathBuf::from("/bin/sh"));
        assert!(files.iter().any(|f| f.ends_with("libc.so.6")), "{files:?}");
        std::fs::write(&script, "#!sh\n").expect("write");
        assert!(needed_files(&script, &[]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

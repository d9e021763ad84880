//! Opening a host file that a program — possibly hostile — names as its interpreter or
//! library, for a supervisor that may be root.
//!
//! * Its type is learnt before anything opens it for real: an `O_PATH` descriptor
//!   (which runs no driver code and touches no data), `fstat`, and only a regular file
//!   is then reopened for reading through that descriptor (`/proc/self/fd/N`: the same
//!   file, whatever the path says meanwhile), without blocking or taking a terminal.
//!   A device (`/dev/watchdog` would arm a watchdog on open), a FIFO or a socket is
//!   refused unopened.
//! * Where it may come from: a file the program's own user could not read must not
//!   become readable in the sandbox because root bound it. A dependency is accepted
//!   when its real path (symlinks resolved, as the loader follows them) lies beneath a
//!   system library directory — the loader's default directories and those that
//!   `/etc/ld.so.cache` names — or when anyone on the host may read it: every folder
//!   on its real path searchable by others, the file readable by others (checked from
//!   `/` down, one component at a time, without following symlinks). A library in a
//!   folder only its owner may enter (a `mktemp -d` folder, a home directory) needs an
//!   explicit `--ro`.
//! * Its identity (`st_dev`, `st_ino`) goes with it: the stage checks that what it
//!   bound is this file, so a path swapped between this check and the bind is refused.

use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// A regular file opened for reading, with where it really is and what it is.
#[derive(Debug)]
pub struct Checked {
    /// The file, open for reading.
    pub file: std::fs::File,
    /// Its path with every symlink resolved.
    pub real: PathBuf,
    /// `(st_dev, st_ino)`.
    pub id: (u64, u64),
}

fn err(path: &Path) -> impl Fn(nix::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn id_of(st: &FileStat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
}

/// Open `path` (following symlinks, as the loader does) if it is a regular file. With
/// `trusted`, whether its real path is in a folder it may come from regardless of
/// permissions; without, any place (the caller named it).
pub fn open_checked(
    path: &Path,
    trusted: Option<&dyn Fn(&Path) -> bool>,
) -> Result<Checked, String> {
    let opath = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(err(path))?;
    let st = fstat(&opath).map_err(err(path))?;
    if !is(&st, SFlag::S_IFREG) {
        return Err(format!("{}: not a regular file: refused", path.display()));
    }
    let link = format!("/proc/self/fd/{}", opath.as_raw_fd());
    let real = std::fs::read_link(&link).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(trusted) = trusted {
        if !trusted(&real) && !readable_by_anyone(&real, id_of(&st)) {
            return Err(format!(
                "{} (really {}) is outside the system library directories and not \
                 readable by others: refused (bind it with --ro if the program may read it)",
                path.display(),
                real.display()
            ));
        }
    }
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd = open(Path::new(&link), flags, Mode::empty()).map_err(err(path))?;
    if id_of(&fstat(&fd).map_err(err(path))?) != id_of(&st) {
        return Err(format!("{}: changed while it was opened", path.display()));
    }
    Ok(Checked {
        file: std::fs::File::from(fd),
        real,
        id: id_of(&st),
    })
}

/// Whether every folder on `real` (an absolute path without symlinks) may be searched
/// by others and the file at its end — which must be the one with `id` — read by them.
/// Walked from `/` with `O_PATH | O_NOFOLLOW`: a component that became a symlink
/// meanwhile fails the walk.
fn readable_by_anyone(real: &Path, id: (u64, u64)) -> bool {
    let Some(name) = real.file_name() else {
        return false;
    };
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(mut dir) = open(Path::new("/"), flags | OFlag::O_DIRECTORY, Mode::empty()) else {
        return false;
    };
    let searchable = |fd: &OwnedFd| fstat(fd.as_fd()).is_ok_and(|s| s.st_mode & 0o001 != 0);
    if !searchable(&dir) {
        return false;
    }
    for c in real.parent().unwrap_or(Path::new("/")).components() {
        let Component::Normal(c) = c else { continue };
        match openat(&dir, c, flags | OFlag::O_DIRECTORY, Mode::empty()) {
            Ok(next) if searchable(&next) => dir = next,
            _ => return false,
        }
    }
    match openat(&dir, name, flags, Mode::empty()).and_then(|f| fstat(f.as_fd())) {
        Ok(st) => is(&st, SFlag::S_IFREG) && st.st_mode & 0o004 != 0 && id_of(&st) == id,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_files_are_readable_by_anyone_and_devices_refused_unopened() {
        let c =
            open_checked(Path::new("/bin/true"), Some(&|_: &Path| false)).expect("world-readable");
        assert!(c.real.ends_with("true"), "{:?}", c.real);
        let e = open_checked(Path::new("/dev/null"), None).expect_err("a device");
        assert!(e.contains("not a regular file: refused"), "{e}");
        let e =
            open_checked(Path::new("/etc/shadow"), Some(&|_: &Path| false)).expect_err("root only");
        assert!(e.contains("not readable by others"), "{e}");
        // Named by the caller (no `trusted`): any regular file it can open.
        open_checked(Path::new("/etc/shadow"), None).expect("the caller's choice");
    }
}

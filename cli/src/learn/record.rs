//! What `sandbox learn` records: every syscall the program made (for syscalls with a
//! key parameter — socket domains, ioctl and prctl commands, clone flags, mmap
//! protections... — every value seen) and every path it opened, stat'ed, read as a
//! link or executed.
//!
//! Each call is answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel runs it as
//! if no filter had stopped it. That is only acceptable here, where nothing is being
//! enforced: a path read from the caller's memory may be changed by another thread
//! before the kernel reads it again, so a recorded path is what the program *asked
//! for*, and never the basis of a decision.

use crate::notify::{read_c_string, Outcome};
use sandbox::policy::arch::Arch;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

/// Calls that name a path, and the index of the path (and of the directory fd it is
/// relative to, for the `*at` calls).
const PATH_CALLS: &[(&str, u8, Option<u8>)] = &[
    ("open", 0, None),
    ("creat", 0, None),
    ("openat", 1, Some(0)),
    ("stat", 0, None),
    ("lstat", 0, None),
    ("newfstatat", 1, Some(0)),
    ("fstatat", 1, Some(0)),
    ("statx", 1, Some(0)),
    ("access", 0, None),
    ("faccessat", 1, Some(0)),
    ("faccessat2", 1, Some(0)),
    ("execve", 0, None),
    ("execveat", 1, Some(0)),
    ("readlink", 0, None),
    ("readlinkat", 1, Some(0)),
    ("chdir", 0, None),
];

/// The most paths and distinct key values kept (a program cannot make the supervisor
/// grow without bound).
const MAX_PATHS: usize = 100_000;
const MAX_VALUES: usize = 256;

/// Everything recorded.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Syscall name → the key parameter's values seen (empty: no key parameter).
    pub calls: BTreeMap<&'static str, BTreeSet<u64>>,
    /// Syscalls whose key parameter took more than `MAX_VALUES` values.
    pub too_many: BTreeSet<&'static str>,
    /// Absolute paths asked for.
    pub paths: BTreeSet<PathBuf>,
    /// How many calls were seen.
    pub count: u64,
}

impl Recorder {
    /// Read one notification, record it, let the call run.
    pub fn handle(&mut self, listener: BorrowedFd<'_>, arch: Arch) -> Outcome {
        let n = match sandbox::seccomp::receive(listener) {
            Ok(n) => n,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => {
                return Outcome::Retry
            }
            Err(e) => return Outcome::Lost(e),
        };
        if let Some(name) = u32::try_from(n.nr)
            .ok()
            .and_then(|nr| arch.syscall_name(nr))
        {
            self.record(name, n.pid, &n.args);
        }
        match sandbox::seccomp::answer_continue(listener, n.id) {
            // ENOENT: the caller went away meanwhile.
            Ok(()) => Outcome::Answered,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Outcome::Answered,
            Err(e) => Outcome::Lost(e),
        }
    }

    fn record(&mut self, name: &'static str, pid: u32, args: &[u64; 6]) {
        self.count += 1;
        let values = self.calls.entry(name).or_default();
        if let Some((_, v)) = crate::explain::key_value(name, args) {
            if values.len() < MAX_VALUES {
                values.insert(v);
            } else if !values.contains(&v) {
                self.too_many.insert(name);
            }
        }
        if self.paths.len() >= MAX_PATHS {
            return;
        }
        if let Some((_, at, dirfd)) = PATH_CALLS.iter().find(|(n, _, _)| *n == name) {
            let arg = |i: u8| args.get(usize::from(i)).copied().unwrap_or(0);
            if let Some(p) = path_of(pid, arg(*at), dirfd.map(arg)) {
                self.paths.insert(p);
            }
        }
    }
}

/// The absolute path a call names: its string, joined to the directory it is relative
/// to (the cwd, or the directory descriptor) when relative.
fn path_of(pid: u32, at: u64, dirfd: Option<u64>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = read_c_string(pid, at, libc::PATH_MAX as usize)?;
    if bytes.is_empty() {
        return None;
    }
    let path = PathBuf::from(std::ffi::OsString::from_vec(bytes));
    if path.is_absolute() {
        return Some(path);
    }
    let fd = dirfd.map(|d| d as u32 as i32).unwrap_or(libc::AT_FDCWD);
    let base = if fd == libc::AT_FDCWD {
        std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?
    } else {
        std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?
    };
    base.is_absolute().then(|| base.join(path))
}

/// `path` with `.` and `..` taken out lexically (`/usr/lib/../bin` → `/usr/bin`).
pub fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

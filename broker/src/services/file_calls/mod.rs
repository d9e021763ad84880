//! File calls a renderer's own code makes — `open`, `stat`, `access`, `readlink` and
//! their `*at` forms — handed to the broker by the renderer's seccomp filter (user
//! notification) and answered here, beneath the renderer's grants.
//!
//! The kernel never runs these calls in the renderer: the filter hands their refusals
//! over ([`sandbox::policy::Policy::hand_over_refusals`]) and the broker answers each
//! one itself. It reads the path from the caller's memory as *data*, resolves it
//! beneath a grant's directory descriptor with `openat2(RESOLVE_BENEATH | ...)` (the
//! same resolution as [`FileService::open`]), and answers with a descriptor installed
//! in the caller (`SECCOMP_IOCTL_NOTIF_ADDFD` with `SEND`), with bytes written into
//! the caller's buffer (a `struct stat`, a link's target), or with an errno. No answer
//! is ever `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the kernel would read the path again,
//! after the check, from memory the renderer controls.
//!
//! # Semantics (what a caller sees)
//!
//! * An absolute path beneath a grant behaves as on an ordinary system, within the
//!   grant's access: a read-only grant answers every write (`O_WRONLY`, `O_RDWR`,
//!   `O_CREAT`, `O_TRUNC`, `O_APPEND`, `access(W_OK)`) with `EROFS`, as a read-only
//!   mount does; a read-write grant answers a creation with `EACCES` (an existing
//!   file opened with `O_CREAT` but not `O_EXCL` is opened, as the kernel does).
//! * Any other path — not beneath a grant, leaving it through `..` or a symlink,
//!   relative, or naming a directory descriptor — fails with `ENOENT`, the errno of a
//!   missing file. (A renderer holds no directory descriptors: none is ever handed
//!   out, so a relative lookup has nothing to be relative to.)
//! * Only regular files are opened: a directory or any other type answers `EACCES`
//!   (`ENOTDIR` for a regular file opened with `O_DIRECTORY`). `stat`, `access` and
//!   `readlink` work on everything beneath a grant, the grant's directory included.
//! * `O_PATH` and `O_TMPFILE` opens answer `EACCES`; execute access (`X_OK`) `EACCES`.
//! * Created files get the caller's mode without execute, set-id or group/other write
//!   bits (`mode & 0o644`), minus the broker's umask, owned by the broker's user.
//! * `fstat` (`newfstatat`/`statx` with `AT_EMPTY_PATH`) never comes here: the filter
//!   leaves it to the kernel. An empty path that does come is `ENOENT`: the broker
//!   never acts on a caller's descriptor.
//! * A path with `..` is resolved by the kernel beneath its grant, and refused
//!   (`ENOENT`) where that grant holds another grant, which `..` could otherwise
//!   reach with the outer grant's access.

mod locate;
mod notified;
pub use locate::beneath_a_grant;
use locate::{caller_errno, located, lookup, target};
pub use notified::{respond, Notified};

use super::files::{open_retrying, FileService};
use crate::services::files::Access;
use crate::sys;
use sandbox::policy::arch::Arch;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// The syscalls whose refusals a renderer with grants hands to its broker.
pub const HANDED_OVER: &[&str] = &[
    "open",
    "openat",
    "creat",
    "stat",
    "lstat",
    "newfstatat",
    "fstatat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
];

/// The longest path read from a caller (`PATH_MAX` less its NUL).
pub const MAX_CALL_PATH: usize = 4095;
/// The longest component (`NAME_MAX`).
const MAX_COMPONENT: usize = 255;
/// The most a created file's mode keeps of the caller's (then the broker's umask).
const CREATED_MODE_MAX: u32 = 0o644;
/// `AT_FDCWD` as the kernel reads a 32-bit `int`.
const AT_FDCWD: i32 = libc::AT_FDCWD;
/// `AT_STATX_SYNC_TYPE`: statx's synchronisation bits.
const STATX_SYNC: i32 = 0x6000;

/// A file call, decoded from a notification's raw arguments (32-bit arguments read as
/// the kernel reads them: their low half). Pointers are addresses in the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCall {
    /// `open`, `openat`, `creat`.
    Open {
        /// The directory argument.
        dirfd: i32,
        /// The path's address.
        path: u64,
        /// `O_*` flags.
        flags: i32,
        /// Creation mode.
        mode: u32,
    },
    /// `stat`, `lstat`, `newfstatat`/`fstatat`: a `struct stat` to `buf`.
    Stat {
        /// The directory argument.
        dirfd: i32,
        /// The path's address.
        path: u64,
        /// Where the result goes.
        buf: u64,
        /// `AT_*` flags.
        flags: i32,
    },
    /// `statx`: a `struct statx` to `buf`.
    Statx {
        /// The directory argument.
        dirfd: i32,
        /// The path's address.
        path: u64,
        /// `AT_*` flags.
        flags: i32,
        /// `STATX_*` mask.
        mask: u32,
        /// Where the result goes.
        buf: u64,
    },
    /// `access`, `faccessat`, `faccessat2`.
    Access {
        /// The directory argument.
        dirfd: i32,
        /// The path's address.
        path: u64,
        /// `F_OK` or `R_OK|W_OK|X_OK`.
        mode: i32,
        /// `AT_*` flags.
        flags: i32,
    },
    /// `readlink`, `readlinkat`.
    Readlink {
        /// The directory argument.
        dirfd: i32,
        /// The path's address.
        path: u64,
        /// Where the target goes.
        buf: u64,
        /// The buffer's size (an `int` for the kernel).
        size: i32,
    },
}

impl FileCall {
    /// The address of the call's path argument.
    pub fn path(&self) -> u64 {
        match *self {
            FileCall::Open { path, .. }
            | FileCall::Stat { path, .. }
            | FileCall::Statx { path, .. }
            | FileCall::Access { path, .. }
            | FileCall::Readlink { path, .. } => path,
        }
    }

    /// The call `nr` of `arch` with `args`, if it is one of [`HANDED_OVER`].
    pub fn decode(arch: Arch, nr: i32, args: [u64; 6]) -> Option<FileCall> {
        let name = arch.syscall_name(u32::try_from(nr).ok()?)?;
        let int = |i: usize| args[i] as u32 as i32;
        Some(match name {
            "open" => FileCall::Open {
                dirfd: AT_FDCWD,
                path: args[0],
                flags: int(1),
                mode: args[2] as u32,
            },
            "openat" => FileCall::Open {
                dirfd: int(0),
                path: args[1],
                flags: int(2),
                mode: args[3] as u32,
            },
            "creat" => FileCall::Open {
                dirfd: AT_FDCWD,
                path: args[0],
                flags: libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                mode: args[1] as u32,
            },
            "stat" | "lstat" => FileCall::Stat {
                dirfd: AT_FDCWD,
                path: args[0],
                buf: args[1],
                flags: if name == "lstat" {
                    libc::AT_SYMLINK_NOFOLLOW
                } else {
                    0
                },
            },
            "newfstatat" | "fstatat" => FileCall::Stat {
                dirfd: int(0),
                path: args[1],
                buf: args[2],
                flags: int(3),
            },
            "statx" => FileCall::Statx {
                dirfd: int(0),
                path: args[1],
                flags: int(2),
                mask: args[3] as u32,
                buf: args[4],
            },
            "access" => FileCall::Access {
                dirfd: AT_FDCWD,
                path: args[0],
                mode: int(1),
                flags: 0,
            },
            "faccessat" | "faccessat2" => FileCall::Access {
                dirfd: int(0),
                path: args[1],
                mode: int(2),
                flags: if name == "faccessat2" { int(3) } else { 0 },
            },
            "readlink" => FileCall::Readlink {
                dirfd: AT_FDCWD,
                path: args[0],
                buf: args[1],
                size: int(2),
            },
            "readlinkat" => FileCall::Readlink {
                dirfd: int(0),
                path: args[1],
                buf: args[2],
                size: int(3),
            },
            _ => return None,
        })
    }
}

/// The caller of a call being answered: its memory and its descriptors. Every method
/// fails rather than act for a call that no longer waits.
pub trait Caller {
    /// The NUL-terminated string at `at`, without the NUL (`ENAMETOOLONG` past
    /// [`MAX_CALL_PATH`], `EFAULT` where unreadable).
    fn path(&self, at: u64) -> Result<Vec<u8>, i32>;
    /// Write `bytes` at `at` (`EFAULT` unless all of them were written).
    fn write(&self, at: u64, bytes: &[u8]) -> Result<(), i32>;
}

/// How a call is answered.
#[derive(Debug)]
pub enum Answer {
    /// This descriptor, installed in the caller, is the result (close-on-exec there
    /// if asked).
    Fd {
        /// The open file.
        fd: OwnedFd,
        /// `O_CLOEXEC` in the caller.
        cloexec: bool,
    },
    /// The call returns this value (what was to be written is written).
    Value(i64),
    /// The call fails with this errno.
    Error(i32),
}

/// Answer `call` from `caller` beneath `files`' grants.
pub fn answer(files: &FileService, call: FileCall, caller: &impl Caller) -> Answer {
    let result = match call {
        FileCall::Open {
            dirfd: _,
            path,
            flags,
            mode,
        } => open(files, caller, path, flags, mode),
        FileCall::Stat {
            dirfd: _,
            path,
            buf,
            flags,
        } => stat(files, caller, path, buf, flags),
        FileCall::Statx {
            dirfd: _,
            path,
            flags,
            mask,
            buf,
        } => statx(files, caller, path, flags, mask, buf),
        FileCall::Access {
            dirfd: _,
            path,
            mode,
            flags,
        } => access(files, caller, path, mode, flags),
        FileCall::Readlink {
            dirfd: _,
            path,
            buf,
            size,
        } => readlink(files, caller, path, buf, size),
    };
    result.unwrap_or_else(Answer::Error)
}

/// The kernel's `O_LARGEFILE` (the libc crate says 0 for 64-bit glibc, where the C
/// library leaves it out; musl passes the kernel's bit).
#[cfg(target_arch = "x86_64")]
const O_LARGEFILE: i32 = 0o100000;
/// The kernel's `O_LARGEFILE` (see the x86_64 one).
#[cfg(target_arch = "aarch64")]
const O_LARGEFILE: i32 = 0o400000;

/// The `O_*` flags an open may carry, besides the access mode.
const OPEN_KNOWN: i32 = libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_ASYNC
    | libc::O_DIRECT
    | O_LARGEFILE
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_TMPFILE;

fn open(
    files: &FileService,
    caller: &impl Caller,
    at: u64,
    flags: i32,
    mode: u32,
) -> Result<Answer, i32> {
    if flags & !(OPEN_KNOWN | libc::O_ACCMODE) != 0 || flags & libc::O_ACCMODE == libc::O_ACCMODE {
        return Err(libc::EINVAL);
    }
    // O_TMPFILE holds O_DIRECTORY's bit: all of its bits, or it is not asked for.
    if flags & libc::O_PATH != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return Err(libc::EACCES);
    }
    let l = located(files, caller, at)?;
    if flags & libc::O_DIRECTORY != 0 {
        // Nothing is opened: a directory is not handed out, anything else is not one.
        // (Checked first, so O_TRUNC or O_CREAT has no effect, as in the kernel.)
        if flags & libc::O_CREAT != 0 {
            return Err(libc::EINVAL);
        }
        let fd = lookup(&l, flags & libc::O_NOFOLLOW != 0)?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| e as i32)?;
        return Err(if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            libc::EACCES
        } else {
            libc::ENOTDIR
        });
    }
    let writes = flags & libc::O_ACCMODE != libc::O_RDONLY
        || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0;
    // A grant that may not create still opens an existing file asked for with
    // O_CREAT (without O_EXCL), as the kernel does: `std::fs::write` over an output.
    let mut flags = flags;
    let mut no_create = false;
    match l.grant.grant.access {
        Access::ReadOnly if writes => return Err(libc::EROFS),
        Access::ReadWrite if flags & libc::O_CREAT != 0 => {
            if flags & libc::O_EXCL != 0 {
                return Err(libc::EACCES);
            }
            flags &= !libc::O_CREAT;
            no_create = true;
        }
        _ => {}
    }
    // Never a directory (nothing to walk from), never a controlling terminal, and
    // non-blocking while the broker opens it (a FIFO cannot hang it).
    let kept = libc::O_ACCMODE
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_TRUNC
        | libc::O_APPEND
        | libc::O_DSYNC
        | libc::O_SYNC
        | libc::O_DIRECT
        | O_LARGEFILE
        | libc::O_NOFOLLOW
        | libc::O_NOATIME;
    let open_flags = (flags & kept) | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // Never executable, set-id, or writable by others than the broker's user.
    let create_mode = if flags & libc::O_CREAT != 0 {
        mode & CREATED_MODE_MAX
    } else {
        0
    };
    let nofollow = flags & libc::O_NOFOLLOW != 0;
    let fd =
        open_retrying(l.grant, &l.rest, open_flags, create_mode).map_err(
            |e| match caller_errno(e, l.grant, nofollow) {
                libc::ENOENT if no_create => libc::EACCES,
                errno => errno,
            },
        )?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| e as i32)?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG {
        return Err(libc::EACCES);
    }
    // The status flags the caller asked for (O_NONBLOCK only if it did).
    let status = flags & (libc::O_APPEND | libc::O_NONBLOCK | libc::O_DIRECT | libc::O_NOATIME);
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::from_bits_truncate(status)),
    )
    .map_err(|e| e as i32)?;
    Ok(Answer::Fd {
        fd,
        cloexec: flags & libc::O_CLOEXEC != 0,
    })
}

fn stat(
    files: &FileService,
    caller: &impl Caller,
    at: u64,
    buf: u64,
    flags: i32,
) -> Result<Answer, i32> {
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH | libc::AT_NO_AUTOMOUNT) != 0 {
        return Err(libc::EINVAL);
    }
    let (fd, _) = target(files, &caller.path(at)?, flags)?;
    let bytes = sys::stat_bytes(fd.as_fd()).map_err(|e| errno_of(&e))?;
    caller.write(buf, &bytes)?;
    Ok(Answer::Value(0))
}

fn statx(
    files: &FileService,
    caller: &impl Caller,
    at: u64,
    flags: i32,
    mask: u32,
    buf: u64,
) -> Result<Answer, i32> {
    let known = libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH | libc::AT_NO_AUTOMOUNT;
    if flags & !(known | STATX_SYNC) != 0 || flags & STATX_SYNC == STATX_SYNC {
        return Err(libc::EINVAL);
    }
    let (fd, _) = target(files, &caller.path(at)?, flags)?;
    let bytes = sys::statx_bytes(fd.as_fd(), flags & STATX_SYNC, mask).map_err(|e| errno_of(&e))?;
    caller.write(buf, &bytes)?;
    Ok(Answer::Value(0))
}

fn access(
    files: &FileService,
    caller: &impl Caller,
    at: u64,
    mode: i32,
    flags: i32,
) -> Result<Answer, i32> {
    let known = libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH;
    if mode & !(libc::R_OK | libc::W_OK | libc::X_OK) != 0 || flags & !known != 0 {
        return Err(libc::EINVAL);
    }
    let (fd, grant) = target(files, &caller.path(at)?, flags)?;
    if mode & libc::X_OK != 0 {
        return Err(libc::EACCES);
    }
    if mode & libc::W_OK != 0 && grant.grant.access == Access::ReadOnly {
        return Err(libc::EROFS);
    }
    sys::access_fd(fd.as_fd(), mode).map_err(|e| errno_of(&e))?;
    Ok(Answer::Value(0))
}

fn readlink(
    files: &FileService,
    caller: &impl Caller,
    at: u64,
    buf: u64,
    size: i32,
) -> Result<Answer, i32> {
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .ok_or(libc::EINVAL)?;
    let l = located(files, caller, at)?;
    let fd = lookup(&l, true)?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| e as i32)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Err(libc::EINVAL);
    }
    let target = nix::fcntl::readlinkat(&fd, "").map_err(|e| e as i32)?;
    let bytes = target.as_bytes();
    let n = bytes.len().min(size);
    caller.write(buf, bytes.get(..n).unwrap_or_default())?;
    Ok(Answer::Value(n as i64))
}

/// An `io::Error`'s errno (`EIO` if it has none).
fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests;

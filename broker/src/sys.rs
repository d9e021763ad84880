//! The broker's raw syscall wrappers: the only `unsafe` in this crate. Each block says
//! which invariant makes it sound; everything else in the crate calls these safe
//! functions.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct open_how` (include/uapi/linux/openat2.h), the first version (24 bytes,
/// `OPEN_HOW_SIZE_VER0`): every field the kernel reads is set.
#[repr(C)]
struct OpenHow {
    /// `O_*` flags.
    flags: u64,
    /// File mode for `O_CREAT`/`O_TMPFILE`; must be 0 otherwise.
    mode: u64,
    /// `RESOLVE_*` flags.
    resolve: u64,
}

/// `openat2(dir, path, &how, sizeof how)`: opens `path` relative to `dir` with the
/// given `O_*` `flags`, creation `mode` and `RESOLVE_*` restrictions, and returns the
/// new descriptor. Errors are the kernel's errno (`ENOSYS` before Linux 5.6).
///
/// `flags` is passed as its 32-bit pattern zero-extended (the kernel refuses unknown
/// upper bits with `EINVAL`); `mode` must be 0 unless `flags` holds `O_CREAT` or
/// `O_TMPFILE` (the kernel says `EINVAL` otherwise).
pub(crate) fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: u64::from(flags as u32),
        mode: u64::from(mode),
        resolve,
    };
    // SAFETY: `path` is NUL-terminated and borrowed for the call; `&how` points at the
    // live, initialised local `OpenHow` of the size passed (24 = OPEN_HOW_SIZE_VER0);
    // the kernel only reads both; `dir` is borrowed, so it stays open across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: a non-negative openat2 result is a descriptor the kernel just installed
    // in our table for this call; nothing else has seen its number, so the `OwnedFd`
    // is its only owner and closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `struct stat` of `fd` (`fstat`), as the bytes the kernel's `newfstatat`/`stat`
/// would copy to a caller of this architecture (glibc's `struct stat` is the kernel's
/// on x86_64 and aarch64).
pub(crate) fn stat_bytes(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    // SAFETY: `libc::stat` is plain integers; all-zero is a valid value of it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `&mut st` is a live, writable `struct stat` for the call; `fd` is
    // borrowed, so it stays open across it.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `st` is a live, fully initialised (zeroed, then filled) repr(C) struct
    // of only integer fields; its bytes are read for exactly its size while it is
    // borrowed.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&st as *const libc::stat).cast::<u8>(),
            std::mem::size_of::<libc::stat>(),
        )
    };
    Ok(bytes.to_vec())
}

/// `struct statx` of `fd` (`statx(fd, "", AT_EMPTY_PATH | sync, mask)`), as bytes.
pub(crate) fn statx_bytes(fd: BorrowedFd<'_>, sync: i32, mask: u32) -> io::Result<Vec<u8>> {
    // SAFETY: `libc::statx` is plain integers; all-zero is a valid value of it.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is a NUL-terminated empty string literal; `&mut st` is a live,
    // writable `struct statx` for the call; `fd` is borrowed, so it stays open.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | sync,
            mask,
            &mut st,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as in `stat_bytes`: a live, fully initialised repr(C) integer struct,
    // read for exactly its size while borrowed.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&st as *const libc::statx).cast::<u8>(),
            std::mem::size_of::<libc::statx>(),
        )
    };
    Ok(bytes.to_vec())
}

/// `faccessat2(fd, "", mode, AT_EMPTY_PATH | AT_EACCESS)`: whether the broker may
/// access the file `fd` refers to with `mode` (its effective ids, as a broker that
/// opens files for a renderer uses them).
pub(crate) fn access_fd(fd: BorrowedFd<'_>, mode: i32) -> io::Result<()> {
    // SAFETY: the path is a NUL-terminated empty string literal; the other arguments
    // are integers; `fd` is borrowed, so it stays open across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH | libc::AT_EACCESS,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn open_how_has_the_kernel_size() {
        assert_eq!(std::mem::size_of::<OpenHow>(), 24);
    }

    #[test]
    fn opens_beneath_and_refuses_dotdot() -> io::Result<()> {
        let root = std::fs::File::open("/")?;
        let fd = openat2(
            root.as_fd(),
            c"etc",
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            libc::RESOLVE_BENEATH,
        )?;
        let r = openat2(
            fd.as_fd(),
            c"../etc",
            libc::O_PATH | libc::O_CLOEXEC,
            0,
            libc::RESOLVE_BENEATH,
        );
        assert_eq!(r.err().and_then(|e| e.raw_os_error()), Some(libc::EXDEV));
        Ok(())
    }
}

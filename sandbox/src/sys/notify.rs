//! seccomp user notification: receive a notification, answer it with an error, or
//! with a descriptor installed in the waiting process (`SECCOMP_IOCTL_NOTIF_*`, see
//! seccomp_unotify(2)). Structures and ioctl numbers are those of
//! include/uapi/linux/seccomp.h; each ioctl passes one live, fully initialised local.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct seccomp_notif` (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif_resp` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `struct seccomp_notif_addfd` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SeccompNotifAddfd {
    id: u64,
    flags: u32,
    srcfd: u32,
    newfd: u32,
    newfd_flags: u32,
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: _IOWR('!', 0, struct seccomp_notif).
const IOCTL_RECV: libc::c_ulong = 0xc050_2100;
/// `SECCOMP_IOCTL_NOTIF_SEND`: _IOWR('!', 1, struct seccomp_notif_resp).
const IOCTL_SEND: libc::c_ulong = 0xc018_2101;
/// `SECCOMP_IOCTL_NOTIF_ADDFD`: _IOW('!', 3, struct seccomp_notif_addfd).
const IOCTL_ADDFD: libc::c_ulong = 0x4018_2103;
/// `SECCOMP_ADDFD_FLAG_SEND`: install the descriptor and answer the call with its
/// number, atomically (Linux 5.14).
const ADDFD_FLAG_SEND: u32 = 1 << 1;

/// `SECCOMP_ADDFD_FLAG_SETFD`: install at the number `newfd` (replacing what is
/// there, as dup2 does).
const ADDFD_FLAG_SETFD: u32 = 1;
/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: _IOW('!', 2, __u64).
const IOCTL_ID_VALID: libc::c_ulong = 0x4008_2102;

/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS`: _IOW('!', 4, __u64).
const IOCTL_SET_FLAGS: libc::c_ulong = 0x4008_2104;
/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6).
const FD_SYNC_WAKE_UP: u64 = 1;

/// One notification, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notif {
    /// Its id (for the answer).
    pub id: u64,
    /// The calling thread, as the listener's reader sees it.
    pub pid: u32,
    /// Syscall number.
    pub nr: i32,
    /// AUDIT_ARCH.
    pub arch: u32,
    /// The six argument registers.
    pub args: [u64; 6],
}

/// `ioctl(listener, request, arg)` returning the kernel's non-negative result.
fn ioctl<T>(listener: BorrowedFd<'_>, request: libc::c_ulong, arg: &mut T) -> io::Result<i32> {
    // The request's encoded size is `size_of::<T>()` for every caller (the structs
    // above match the kernel's, checked by the tests).
    // SAFETY: `arg` is a live, initialised `T` of the size the request encodes, which
    // the kernel reads/writes within; the borrowed listener stays open across the call.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), request as _, arg as *mut T) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Wait for one notification (`ENOENT`: the caller went away or was interrupted
/// between poll and read; try again).
pub fn recv(listener: BorrowedFd<'_>) -> io::Result<Notif> {
    let mut n = SeccompNotif::default();
    ioctl(listener, IOCTL_RECV, &mut n)?;
    Ok(Notif {
        id: n.id,
        pid: n.pid,
        nr: n.nr,
        arch: n.arch,
        args: n.args,
    })
}

/// Answer notification `id`: the call fails with `errno`.
pub fn send_error(listener: BorrowedFd<'_>, id: u64, errno: i32) -> io::Result<()> {
    respond(listener, id, 0, -errno, 0)
}

/// `SECCOMP_IOCTL_NOTIF_SEND` with this answer.
fn respond(listener: BorrowedFd<'_>, id: u64, val: i64, error: i32, flags: u32) -> io::Result<()> {
    let mut resp = SeccompNotifResp {
        id,
        val,
        error,
        flags,
    };
    ioctl(listener, IOCTL_SEND, &mut resp).map(|_| ())
}

/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`.
const FLAG_CONTINUE: u32 = 1;

/// Answer notification `id`: the kernel runs the call as if no filter had stopped it
/// (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). Only for observing: the call's pointer
/// arguments may have changed since the supervisor read them.
pub fn send_continue(listener: BorrowedFd<'_>, id: u64) -> io::Result<()> {
    respond(listener, id, 0, 0, FLAG_CONTINUE)
}

/// Answer notification `id` with a copy of `fd` installed in the waiting process (with
/// `O_CLOEXEC` if `cloexec`): the call returns the new descriptor's number, which is
/// also returned here.
pub fn send_fd(
    listener: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    cloexec: bool,
) -> io::Result<i32> {
    add_fd(listener, id, fd, ADDFD_FLAG_SEND, 0, cloexec)
}

/// `SECCOMP_IOCTL_NOTIF_ADDFD` of `fd` with `flags` (at `newfd` with SETFD).
fn add_fd(
    listener: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    flags: u32,
    newfd: u32,
    cloexec: bool,
) -> io::Result<i32> {
    let srcfd =
        u32::try_from(fd.as_raw_fd()).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    let mut add = SeccompNotifAddfd {
        id,
        flags,
        srcfd,
        newfd,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    ioctl(listener, IOCTL_ADDFD, &mut add)
}

/// Answer notification `id`: the call returns `val`.
pub fn send_value(listener: BorrowedFd<'_>, id: u64, val: i64) -> io::Result<()> {
    respond(listener, id, val, 0, 0)
}

/// Install a copy of `fd` in the process waiting on notification `id` at descriptor
/// number `at` (replacing what is there, as dup2 does; with `O_CLOEXEC` if `cloexec`),
/// without answering the call.
pub fn add_fd_at(
    listener: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    at: u32,
    cloexec: bool,
) -> io::Result<()> {
    add_fd(listener, id, fd, ADDFD_FLAG_SETFD, at, cloexec).map(|_| ())
}

/// Whether notification `id` is still waiting (its caller alive and not interrupted):
/// checked after reading the caller's memory, so that what was read is known to be
/// the caller's and not a process's that reused its pid.
pub fn id_valid(listener: BorrowedFd<'_>, id: u64) -> io::Result<bool> {
    let mut id = id;
    match ioctl(listener, IOCTL_ID_VALID, &mut id) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Ask the kernel to wake the listener's reader on the notifying thread's CPU and to
/// switch to it at once (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`): a supervisor that
/// answers calls one by one then costs far less per call.
pub fn set_sync_wake_up(listener: BorrowedFd<'_>) -> io::Result<()> {
    let mut flags = FD_SYNC_WAKE_UP;
    ioctl(listener, IOCTL_SET_FLAGS, &mut flags).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_structs_have_the_kernels_sizes() {
        assert_eq!(std::mem::size_of::<SeccompNotif>(), 80);
        assert_eq!(std::mem::size_of::<SeccompNotifResp>(), 24);
        assert_eq!(std::mem::size_of::<SeccompNotifAddfd>(), 24);
        // The ioctl numbers encode the sizes: _IOC(dir, '!', nr, size).
        let size = |ioc: libc::c_ulong| (ioc >> 16) & 0x3fff;
        assert_eq!(size(IOCTL_RECV), 80);
        assert_eq!(size(IOCTL_SEND), 24);
        assert_eq!(size(IOCTL_ADDFD), 24);
        assert_eq!(size(IOCTL_SET_FLAGS), 8);
        assert_eq!(size(IOCTL_ID_VALID), 8);
    }
}

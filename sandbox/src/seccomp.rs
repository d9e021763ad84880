//! Installing a compiled filter in the calling process.
//!
//! A filter is installed with `seccomp(SECCOMP_SET_MODE_FILTER)`; by default with
//! `SECCOMP_FILTER_FLAG_TSYNC`, so every thread of the process gets it, threads started
//! before the call included. The kernel requires no_new_privs (or CAP_SYS_ADMIN);
//! [`install`] does not set it behind the caller's back: lockdown sets it as its own
//! step, and [`set_no_new_privs`] is here for callers that install a filter alone.
//!
//! Filters stack: a second install adds a filter, and for every syscall the most
//! restrictive answer of all installed filters wins. A filter can never be removed.

use crate::bpf::{self, Program};
use crate::policy::arch::Arch;
use crate::policy::Action;
use crate::sys;
use std::io;

/// `SECCOMP_FILTER_FLAG_TSYNC`
pub const FLAG_TSYNC: u32 = 1;
/// `SECCOMP_FILTER_FLAG_LOG`
pub const FLAG_LOG: u32 = 2;

/// How to install a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstallOptions {
    /// Apply to every thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`). On by default.
    pub all_threads: bool,
    /// Log every action but allow (`SECCOMP_FILTER_FLAG_LOG`).
    pub log: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            all_threads: true,
            log: false,
        }
    }
}

/// Why a filter could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The program was compiled for another architecture than this process's.
    #[error("the program was compiled for {program}, but this process runs on {native}")]
    WrongArch {
        /// The program's architecture.
        program: Arch,
        /// This process's.
        native: Arch,
    },
    /// The kernel would refuse the program.
    #[error("invalid program: {0}")]
    Invalid(#[from] bpf::InterpError),
    /// Neither no_new_privs nor CAP_SYS_ADMIN.
    #[error("seccomp: no_new_privs is not set and the process lacks CAP_SYS_ADMIN (EACCES)")]
    NeedNoNewPrivs,
    /// TSYNC failed: a thread of the process could not be synchronised.
    #[error("seccomp TSYNC: thread {0} has a diverging filter and could not be synchronised")]
    Tsync(i64),
    /// Another error from seccomp(2).
    #[error("seccomp(SECCOMP_SET_MODE_FILTER): {0}")]
    Kernel(io::Error),
}

/// Install `program` in the calling process.
pub fn install(program: &Program, options: InstallOptions) -> Result<(), InstallError> {
    if program.arch != Arch::native() {
        return Err(InstallError::WrongArch {
            program: program.arch,
            native: Arch::native(),
        });
    }
    install_raw(&program.instructions, options)
}

/// Install raw instructions (validated first as the kernel would).
pub fn install_raw(
    instructions: &[bpf::SockFilter],
    options: InstallOptions,
) -> Result<(), InstallError> {
    bpf::validate(instructions)?;
    let mut flags = 0;
    if options.all_threads {
        flags |= FLAG_TSYNC;
    }
    if options.log {
        flags |= FLAG_LOG;
    }
    match sys::seccomp_set_mode_filter(instructions, flags) {
        Ok(0) => Ok(()),
        Ok(tid) => Err(InstallError::Tsync(tid)),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => Err(InstallError::NeedNoNewPrivs),
        Err(e) => Err(InstallError::Kernel(e)),
    }
}

/// Install `program` (compiled for this architecture) on every thread, with a
/// user-notification listener: syscalls the filter answers `user-notify` wait until
/// the listener's holder decides. Returns the listener. (TSYNC with NEW_LISTENER needs
/// SECCOMP_FILTER_FLAG_TSYNC_ESRCH, Linux 5.7.)
pub fn install_with_listener(program: &Program) -> Result<std::os::fd::OwnedFd, InstallError> {
    if program.arch != Arch::native() {
        return Err(InstallError::WrongArch {
            program: program.arch,
            native: Arch::native(),
        });
    }
    bpf::validate(&program.instructions)?;
    sys::seccomp_install_with_listener(&program.instructions).map_err(|e| {
        if e.raw_os_error() == Some(libc::EACCES) {
            InstallError::NeedNoNewPrivs
        } else {
            InstallError::Kernel(e)
        }
    })
}

/// One pending notification on `listener` (blocks until one comes): the pid (as seen
/// from the pid namespace of the process reading the listener), the syscall number,
/// the AUDIT_ARCH and the six arguments.
pub fn receive_notification(
    listener: std::os::fd::BorrowedFd<'_>,
) -> io::Result<(u32, i32, u32, [u64; 6])> {
    receive(listener).map(|n| (n.pid, n.nr, n.arch, n.args))
}

/// A call waiting for the listener's holder (see [`receive`]).
pub use crate::sys::notify::Notif as Notification;

/// One pending notification on `listener` (blocks until one comes). `ENOENT` means the
/// waiting call went away between a wake-up and this read — it was interrupted by a
/// signal (it may come again, as a new notification) or its process died: read again.
pub fn receive(listener: std::os::fd::BorrowedFd<'_>) -> io::Result<Notification> {
    sys::notify::recv(listener)
}

/// Answer a notification: the call fails with `errno`.
pub fn answer_error(listener: std::os::fd::BorrowedFd<'_>, id: u64, errno: i32) -> io::Result<()> {
    sys::notify::send_error(listener, id, errno)
}

/// Answer a notification: the kernel runs the call (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
/// Never a security decision: the kernel reads the call's memory again after this
/// answer, so whatever the supervisor read there (a path) may have been replaced
/// meanwhile — for recording what a program does (`sandbox learn`), or for a call the
/// filter would let run whatever its memory says (`sandbox run --connect`'s connect
/// to an address that is not IPv4 or IPv6), never for allowing on the strength of
/// what was read.
pub fn answer_continue(listener: std::os::fd::BorrowedFd<'_>, id: u64) -> io::Result<()> {
    sys::notify::send_continue(listener, id)
}

/// Answer a notification with a copy of `fd` installed in the waiting process
/// (close-on-exec if asked), atomically: the call returns the new descriptor's number.
pub fn answer_with_fd(
    listener: std::os::fd::BorrowedFd<'_>,
    id: u64,
    fd: std::os::fd::BorrowedFd<'_>,
    cloexec: bool,
) -> io::Result<i32> {
    sys::notify::send_fd(listener, id, fd, cloexec)
}

/// Answer a notification: the call returns `val` (e.g. 0 from a `connect` the
/// supervisor made itself).
pub fn answer_value(listener: std::os::fd::BorrowedFd<'_>, id: u64, val: i64) -> io::Result<()> {
    sys::notify::send_value(listener, id, val)
}

/// Put a copy of `fd` in the waiting process at descriptor number `at`, replacing what
/// is there (`SECCOMP_ADDFD_FLAG_SETFD`, Linux 5.14), without answering the call: e.g.
/// a socket connected outside in place of the one the call named.
pub fn install_fd_at(
    listener: std::os::fd::BorrowedFd<'_>,
    id: u64,
    fd: std::os::fd::BorrowedFd<'_>,
    at: u32,
    cloexec: bool,
) -> io::Result<()> {
    sys::notify::add_fd_at(listener, id, fd, at, cloexec)
}

/// A duplicate of descriptor `fd` of the process whose thread `tid` made a call (the
/// same open file: its type, options and status flags can be read). Needs ptrace
/// access to it, as reading its memory does. Check [`notification_valid`] after it.
pub fn callers_fd(tid: u32, fd: i32) -> io::Result<std::os::fd::OwnedFd> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    let tgid = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse::<libc::pid_t>().ok())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = sys::process::pidfd_open(tgid)?;
    sys::process::pidfd_getfd(std::os::fd::AsFd::as_fd(&pidfd), fd)
}

/// Whether a notification still waits. Checked after reading the caller's memory: if
/// it does, the caller was alive throughout, so the memory read was its own (not a
/// process's that reused its pid).
pub fn notification_valid(listener: std::os::fd::BorrowedFd<'_>, id: u64) -> io::Result<bool> {
    sys::notify::id_valid(listener, id)
}

/// The page size the caller-memory helpers split ranges at.
const PAGE: u64 = 4096;

/// The remote ranges for `len` bytes at `at`, split at page boundaries: the kernel
/// does not split one range, so a range running into an unmapped page would read
/// nothing; split, it reads up to that page.
fn page_ranges(at: u64, len: usize) -> Vec<nix::sys::uio::RemoteIoVec> {
    let mut out = Vec::new();
    let (mut at, mut left) = (at, len as u64);
    while left > 0 {
        let in_page = (PAGE - at % PAGE).min(left);
        let Ok(base) = usize::try_from(at) else { break };
        out.push(nix::sys::uio::RemoteIoVec {
            base,
            len: in_page as usize,
        });
        left -= in_page;
        let Some(next) = at.checked_add(in_page) else {
            break;
        };
        at = next;
    }
    out
}

/// Up to `len` bytes at `at` in the memory of the process whose thread `tid` made a
/// call (`process_vm_readv`, which honours the caller's page protections): fewer where
/// the range runs into an unmapped page, `EFAULT` if not one byte can be read. Check
/// [`notification_valid`] after it: only then was the memory the caller's.
pub fn read_callers_memory(tid: u32, at: u64, len: usize) -> io::Result<Vec<u8>> {
    use nix::sys::uio::process_vm_readv;
    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(tid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?,
    );
    let mut buf = vec![0u8; len];
    let ranges = page_ranges(at, len);
    let got = process_vm_readv(pid, &mut [io::IoSliceMut::new(&mut buf)], &ranges)?;
    if got == 0 && len > 0 {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    buf.truncate(got);
    Ok(buf)
}

/// The NUL-terminated string at `at` in a caller's memory (see
/// [`read_callers_memory`]), without its NUL: `ENAMETOOLONG` if no NUL comes within
/// `max` bytes, `EFAULT` if the memory ends first. Only ever data: the caller may
/// change it once read, so nothing the kernel does may depend on it.
pub fn read_callers_string(tid: u32, at: u64, max: usize) -> io::Result<Vec<u8>> {
    let mut bytes = read_callers_memory(tid, at, max.saturating_add(1))?;
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => {
            bytes.truncate(end);
            Ok(bytes)
        }
        None if bytes.len() > max => Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG)),
        None => Err(io::Error::from_raw_os_error(libc::EFAULT)),
    }
}

/// Write `bytes` at `at` in the memory of the process whose thread `tid` made a call
/// (`process_vm_writev`: a read-only or unmapped page refuses it, as the kernel's own
/// copy to user space would — unlike `/proc/PID/mem`, which writes through
/// protections). All or nothing as far as the answer goes: `EFAULT` unless every byte
/// was written. Check [`notification_valid`] *before* it.
pub fn write_callers_memory(tid: u32, at: u64, bytes: &[u8]) -> io::Result<()> {
    use nix::sys::uio::process_vm_writev;
    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(tid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?,
    );
    let ranges = page_ranges(at, bytes.len());
    let put = process_vm_writev(pid, &[io::IoSlice::new(bytes)], &ranges)?;
    if put != bytes.len() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(())
}

/// Have the kernel wake `listener`'s reader synchronously, on the notifying thread's
/// CPU (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, Linux 6.6): cheaper answers for a
/// supervisor that answers calls. An error on older kernels (nothing else changes).
pub fn wake_synchronously(listener: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    sys::notify::set_sync_wake_up(listener)
}

/// Set no_new_privs for the calling thread (inherited by children, irreversible).
pub fn set_no_new_privs() -> io::Result<()> {
    sys::set_no_new_privs()
}

/// Whether no_new_privs is set.
pub fn no_new_privs() -> io::Result<bool> {
    sys::no_new_privs()
}

/// The seccomp mode of the calling thread: 0 none, 1 strict, 2 filter.
pub fn mode() -> io::Result<i32> {
    sys::seccomp_mode()
}

/// Whether the running kernel knows `action` (`SECCOMP_GET_ACTION_AVAIL`).
pub fn action_available(action: Action) -> bool {
    sys::seccomp_action_available(action.to_ret() & crate::policy::RET_ACTION_FULL).is_ok()
}

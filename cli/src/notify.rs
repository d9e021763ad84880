//! What `sandbox run`'s supervisor does with a call the filter hands it (seccomp user
//! notification).
//!
//! * `memfd_create` without `MFD_NOEXEC_SEAL` (the `exec` preset hands only those
//!   over): the supervisor makes the memfd itself with `MFD_NOEXEC_SEAL` — as the
//!   kernel does under `vm.memfd_noexec=2`, which only global root may set — and
//!   installs it in the caller as the call's result (`SECCOMP_IOCTL_NOTIF_ADDFD` with
//!   `SECCOMP_ADDFD_FLAG_SEND`). `MFD_EXEC` is refused with EACCES. So no code runs from
//!   a memfd: it is not executable, and sealed so (`F_SEAL_EXEC`). The caller's flags
//!   are registers, not memory; the name is read from the caller's memory only to be
//!   used as a name (at most 249 bytes; "memfd" when it cannot be read).
//! * `connect`, under `sandbox run --connect`: see `run::egress`.
//! * File calls, under `sandbox run --broker-ro/--broker-rw`: see
//!   `answer_file_call`.
//! * Anything else is a violation: the supervisor names the call and ends the sandbox.
//!
//! A failed read of the listener is not the end of supervision: `ENOENT` (the call
//! went away between the wake-up and the read — a signal interrupted it, and it will
//! come again as a new notification — or its process died) and `EINTR` are retried.
//! Any other failure means the listener is lost, and the caller must end the sandbox:
//! without a reader, the kernel would answer every later violation with ENOSYS and let
//! the program go on.

use broker::services::file_calls::{self, Caller, FileCall, Notified};
use broker::services::files::FileService;
use sandbox::policy::arch::Arch;
use sandbox::policy::params;
use sandbox::seccomp::{self, Notification};
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

/// `MFD_EXEC`.
const MFD_EXEC: u64 = 0x10;
/// `MFD_NOEXEC_SEAL`.
const MFD_NOEXEC_SEAL: u64 = 0x8;
/// `MFD_CLOEXEC`.
const MFD_CLOEXEC: u64 = 0x1;
/// The longest memfd name the kernel takes (`MFD_NAME_MAX_LEN`).
const NAME_MAX: usize = 249;

/// What became of one wake-up of the listener.
#[derive(Debug)]
pub enum Outcome {
    /// A call was answered; the program goes on.
    Answered,
    /// A call outside the policy: `call` names it with its arguments.
    Violation {
        /// The caller, as the supervisor sees it.
        pid: u32,
        /// `name(arg, ...)`.
        call: String,
        /// The call as the filter saw it.
        data: sandbox::policy::arch::SeccompData,
    },
    /// Nothing to do (the call went away, or the read was interrupted): poll again.
    Retry,
    /// The listener failed for good.
    Lost(std::io::Error),
}

/// Read one notification from `listener` and deal with it.
pub fn handle(listener: BorrowedFd<'_>, arch: Arch) -> Outcome {
    handle_with(listener, arch, None, None)
}

/// [`handle`], with `sandbox run --connect`'s answer to `connect` where given.
pub(crate) fn handle_with(
    listener: BorrowedFd<'_>,
    arch: Arch,
    egress: Option<&crate::run::egress::Egress>,
    files: Option<&FileService>,
) -> Outcome {
    let n = match seccomp::receive(listener) {
        Ok(n) => n,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => {
            return Outcome::Retry
        }
        Err(e) => return Outcome::Lost(e),
    };
    let native = n.arch == arch.audit_arch();
    if native && u32::try_from(n.nr).ok() == arch.syscall_number("memfd_create") {
        answer_memfd(listener, &n);
        return Outcome::Answered;
    }
    if let Some(files) = files.filter(|_| native) {
        if let Some(call) = FileCall::decode(arch, n.nr, n.args) {
            answer_file_call(listener, &n, call, files);
            return Outcome::Answered;
        }
    }
    if let Some(egress) = egress.filter(|_| native) {
        if u32::try_from(n.nr).ok() == arch.syscall_number("connect") {
            return egress.answer(listener, &n, arch);
        }
    }
    Outcome::Violation {
        pid: n.pid,
        call: describe_call(arch, n.nr, &n.args),
        data: sandbox::policy::arch::SeccompData {
            nr: n.nr as u32,
            arch: n.arch,
            instruction_pointer: 0,
            args: n.args,
        },
    }
}

/// `--broker-ro/--broker-rw`: a file call beneath one of the folders is answered
/// there (`broker::services::file_calls`: resolved beneath the folder, never a
/// CONTINUE); any other lets the kernel run it in the sandbox's own view, where the
/// folders are not mounted — whatever path the kernel reads then, it reaches only what
/// the sandbox could reach without the folders, so the path read here decides nothing
/// the kernel would not.
fn answer_file_call(
    listener: BorrowedFd<'_>,
    n: &Notification,
    call: FileCall,
    files: &FileService,
) {
    let caller = Notified::new(listener, n);
    let ours = caller
        .path(call.path())
        .is_ok_and(|p| file_calls::beneath_a_grant(files, &p));
    if ours {
        file_calls::respond(listener, n.id, file_calls::answer(files, call, &caller));
    } else {
        let _ = seccomp::answer_continue(listener, n.id);
    }
}

/// Make the memfd the caller asked for, non-executable, and install it in the caller;
/// or answer with the error. (An answer to a caller that has gone fails with ENOENT,
/// which is fine: nobody waits for it.)
fn answer_memfd(listener: BorrowedFd<'_>, n: &Notification) {
    let flags = n.args[1] & 0xffff_ffff;
    if flags & MFD_EXEC != 0 {
        let _ = seccomp::answer_error(listener, n.id, libc::EACCES);
        return;
    }
    let name = read_name(n.pid, n.args[0]);
    let made = nix::sys::memfd::memfd_create(
        name.as_c_str(),
        nix::sys::memfd::MFdFlags::from_bits_retain(
            ((flags | MFD_NOEXEC_SEAL | MFD_CLOEXEC) as u32) as libc::c_uint,
        ),
    );
    match made {
        Ok(fd) => {
            let cloexec = flags & MFD_CLOEXEC != 0;
            if let Err(e) = seccomp::answer_with_fd(listener, n.id, fd.as_fd(), cloexec) {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                let _ = seccomp::answer_error(listener, n.id, errno);
            }
        }
        Err(e) => {
            let _ = seccomp::answer_error(listener, n.id, e as i32);
        }
    }
}

/// The memfd's name from the caller's memory, as a name only ("memfd" if unreadable).
fn read_name(pid: u32, at: u64) -> CString {
    read_c_string(pid, at, NAME_MAX)
        .and_then(|b| CString::new(b).ok())
        .unwrap_or_else(|| CString::from(c"memfd"))
}

/// A NUL-terminated string of at most `max` bytes at `at` in process `pid`'s memory
/// (a string that ends just before an unmapped page is still read); `None` if
/// unreadable or longer. Only ever data: it may change once read.
pub(crate) fn read_c_string(pid: u32, at: u64, max: usize) -> Option<Vec<u8>> {
    sandbox::seccomp::read_callers_string(pid, at, max).ok()
}

/// Up to `len` bytes at `at` in process `pid`'s memory (fewer where the range runs
/// into an unmapped page); `None` if none can be read.
pub(crate) fn read_memory(pid: u32, at: u64, len: usize) -> Option<Vec<u8>> {
    sandbox::seccomp::read_callers_memory(pid, at, len).ok()
}

/// `name(arg, ...)` with as many arguments as the syscall has (six if unknown).
pub fn describe_call(arch: Arch, nr: i32, args: &[u64; 6]) -> String {
    let name = u32::try_from(nr).ok().and_then(|n| arch.syscall_name(n));
    let declared = name.and_then(params::params);
    let count = declared.map_or(6, |p| p.len());
    let shown: Vec<String> = args
        .iter()
        .take(count)
        .enumerate()
        .map(|(i, a)| {
            let w32 = declared
                .and_then(|p| p.get(i))
                .is_some_and(|(_, w)| *w == params::Width::W32);
            if w32 {
                // What the kernel reads: the low half, as a C int (fd -1, not 0xffffffff).
                (*a as u32 as i32).to_string()
            } else if *a > 0xffff {
                format!("{a:#x}")
            } else {
                a.to_string()
            }
        })
        .collect();
    format!(
        "{}({})",
        name.map_or_else(|| format!("syscall_{nr}"), str::to_string),
        shown.join(", ")
    )
}

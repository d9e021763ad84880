//! Thin wrappers over the syscalls the safe code needs. This is the only module with
//! `unsafe`; each block says which invariant makes it sound.
#![allow(unsafe_code)]

pub mod cpus;
pub mod memfd;
pub mod mount;
pub mod notify;
#[cfg(feature = "test-support")]
pub mod probe;
pub mod process;
pub mod socket;
pub mod spawn;

use crate::bpf::SockFilter;
use std::io;

/// `SECCOMP_SET_MODE_FILTER`
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
/// `SECCOMP_GET_ACTION_AVAIL`
const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`. Returns the syscall's non-negative
/// result (with TSYNC, a thread id that could not be synchronised is a positive value).
pub fn seccomp_set_mode_filter(program: &[SockFilter], flags: u32) -> io::Result<i64> {
    let len = libc::c_ushort::try_from(program.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call and holds exactly
    // `len` initialised `sock_filter` structs (`SockFilter` is `repr(C)` with the
    // kernel's layout); the kernel copies the program and keeps no pointer to it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            &prog as *const SockFprog,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `seccomp(SECCOMP_GET_ACTION_AVAIL, 0, &action)`: whether the kernel knows `action`.
pub fn seccomp_action_available(action: u32) -> io::Result<()> {
    // SAFETY: the kernel reads one u32 through the pointer, which points at a local
    // that lives across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0 as libc::c_uint,
            &action as *const u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)`.
pub fn set_no_new_privs() -> io::Result<()> {
    process::prctl_int(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map(|_| ())
}

/// `prctl(PR_GET_NO_NEW_PRIVS)`.
pub fn no_new_privs() -> io::Result<bool> {
    process::prctl_int(libc::PR_GET_NO_NEW_PRIVS, 0, 0).map(|r| r == 1)
}

/// `prctl(PR_GET_SECCOMP)`: 0 none, 2 filter mode. (Under a filter that does not allow
/// prctl, this call is itself filtered.)
pub fn seccomp_mode() -> io::Result<i32> {
    process::prctl_int(libc::PR_GET_SECCOMP, 0, 0)
}

// ---------------------------------------------------------------------------------
// SIGSYS: recording what a seccomp trap reports.

use std::sync::atomic::Ordering;

/// The kernel's `siginfo_t` as filled for SIGSYS (`_sigsys` member of the union), on
/// 64-bit Linux: three ints, padding to 16, then call address, syscall, arch.
#[repr(C)]
pub(crate) struct SigsysRaw {
    pub(crate) signo: libc::c_int,
    pub(crate) errno: libc::c_int,
    pub(crate) code: libc::c_int,
    _pad: libc::c_int,
    pub(crate) call_addr: *mut libc::c_void,
    pub(crate) syscall: libc::c_int,
    pub(crate) arch: libc::c_uint,
}

// ---------------------------------------------------------------------------------
// The renderer's inherited channel and its SIGSYS violation reporter.

static CHANNEL_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Take ownership of descriptor `fd`, which the spawner placed in this process for
/// it. Succeeds once per process (a second call fails), and only if `fd` is open.
pub fn take_inherited_channel(fd: std::os::fd::RawFd) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if CHANNEL_TAKEN.swap(true, Ordering::SeqCst) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the channel was already taken",
        ));
    }
    // SAFETY: F_GETFD takes integers only and touches no memory.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above) and was placed here by the spawner
    // for this purpose; the swap above guarantees this is the only OwnedFd made for it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The frame the SIGSYS handler sends: a template with the violation's 56 payload bytes
/// at the end, written in place by the handler on its own stack.
struct ReportTemplate {
    bytes: [u8; 128],
    len: usize,
    sock: std::os::fd::RawFd,
}

impl ReportTemplate {
    fn new(sock: std::os::fd::RawFd, template: &[u8]) -> std::io::Result<ReportTemplate> {
        let mut bytes = [0u8; 128];
        let slot = bytes.get_mut(..template.len()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "template too long")
        })?;
        slot.copy_from_slice(template);
        Ok(ReportTemplate {
            bytes,
            len: template.len(),
            sock,
        })
    }
}

/// Send the first `t.len` bytes of `frame` (a patched copy of `t`'s template) on `t`'s
/// socket, without blocking or allocating: callable from a signal handler or an
/// allocator. A full channel loses the report.
fn send_report(t: &ReportTemplate, frame: &[u8]) {
    let Some(bytes) = frame.get(..t.len) else {
        return;
    };
    // SAFETY: `bytes` is a live slice of `bytes.len()` bytes that send only reads;
    // send is async-signal-safe and does not allocate.
    unsafe {
        libc::send(
            t.sock,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

static REPORT: std::sync::OnceLock<ReportTemplate> = std::sync::OnceLock::new();

extern "C" fn report_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Only reads of initialised statics, stack copies, and send(): async-signal-safe.
    let Some(t) = REPORT.get() else { return };
    if info.is_null() || t.len < 56 || t.len > t.bytes.len() {
        return;
    }
    // SAFETY: SA_SIGINFO handler: the kernel passes a readable siginfo_t laid out as
    // `SigsysRaw` for SIGSYS (see `record_sigsys`).
    let raw = unsafe { &*(info as *const SigsysRaw) };
    let mut frame = t.bytes;
    let at = t.len - 56;
    frame[at..at + 4].copy_from_slice(&raw.syscall.to_le_bytes());
    frame[at + 4..at + 8].copy_from_slice(&raw.arch.to_le_bytes());
    let args = syscall_args(ctx);
    for (i, a) in args.iter().enumerate() {
        let o = at + 8 + 8 * i;
        frame[o..o + 8].copy_from_slice(&a.to_le_bytes());
    }
    // MSG_DONTWAIT: a full channel loses the report (the death by SIGSYS remains).
    send_report(t, &frame);
    // SA_RESETHAND made SIGSYS's action the default again and SA_NODEFER leaves it
    // unblocked: raising it ends the process by SIGSYS, as the broker expects...
    // SAFETY: raise takes an integer; tgkill to ourselves is allowed by the presets.
    unsafe { libc::raise(libc::SIGSYS) };
    // ...except in the init of a pid namespace (a renderer is pid 1 of its own), where
    // the kernel ignores default-action signals sent from inside: never return into
    // the code that made the call — exit with the shell's code for "killed by SIGSYS".
    // SAFETY: _exit is async-signal-safe and takes an integer.
    unsafe { libc::_exit(128 + libc::SIGSYS) };
}

/// The six syscall argument registers from the signal context.
fn syscall_args(ctx: *mut libc::c_void) -> [u64; 6] {
    if ctx.is_null() {
        return [0; 6];
    }
    // SAFETY: for an SA_SIGINFO handler the third argument points at the interrupted
    // context (a ucontext_t), readable for the duration of the handler.
    let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
    #[cfg(target_arch = "x86_64")]
    {
        let g = &uc.uc_mcontext.gregs;
        let r = |i: libc::c_int| g.get(i as usize).map_or(0, |v| *v as u64);
        [
            r(libc::REG_RDI),
            r(libc::REG_RSI),
            r(libc::REG_RDX),
            r(libc::REG_R10),
            r(libc::REG_R8),
            r(libc::REG_R9),
        ]
    }
    #[cfg(target_arch = "aarch64")]
    {
        let r = &uc.uc_mcontext.regs;
        [r[0], r[1], r[2], r[3], r[4], r[5]]
    }
}

/// Install the SIGSYS handler that sends `template` (with the violation patched into
/// its last 56 bytes) on `sock`, then dies by SIGSYS. Once per process.
pub fn install_violation_reporter(
    sock: std::os::fd::RawFd,
    template: &[u8],
) -> std::io::Result<()> {
    REPORT
        .set(ReportTemplate::new(sock, template)?)
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "reporter already installed",
            )
        })?;
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); set below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = report_sigsys as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND | libc::SA_NODEFER;
    // SAFETY: `sa` is a valid sigaction whose handler has the SA_SIGINFO signature and
    // is async-signal-safe (see `report_sigsys`); the old action is not requested.
    if unsafe { libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Out-of-memory reports from the allocator.

static OOM_REPORT: std::sync::OnceLock<ReportTemplate> = std::sync::OnceLock::new();

/// Register the frame sent when an allocation fails: `template`'s last 8 bytes are
/// replaced by the failed size. Once per process.
pub fn install_oom_reporter(sock: std::os::fd::RawFd, template: &[u8]) -> std::io::Result<()> {
    OOM_REPORT
        .set(ReportTemplate::new(sock, template)?)
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "reporter already installed",
            )
        })
}

/// Send the out-of-memory frame for a failed allocation of `size` bytes. Allocates
/// nothing and takes no lock (it runs inside the allocator).
fn report_oom(size: usize) {
    let Some(t) = OOM_REPORT.get() else { return };
    if t.len < 8 || t.len > t.bytes.len() {
        return;
    }
    let mut frame = t.bytes;
    frame[t.len - 8..t.len].copy_from_slice(&(size as u64).to_le_bytes());
    send_report(t, &frame);
}

/// The system allocator, reporting failed allocations to the broker (see
/// `sandbox::renderer::ReportingAllocator`).
pub struct ReportingAllocator;

// SAFETY: every method forwards to `std::alloc::System` with the caller's arguments
// unchanged and returns its result unchanged, so System's guarantees hold; the only
// addition, `report_oom`, allocates nothing and does not touch the returned memory.
unsafe impl std::alloc::GlobalAlloc for ReportingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout, which the caller guarantees.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if p.is_null() {
            report_oom(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout, which the caller guarantees.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if p.is_null() {
            report_oom(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded unchanged; the caller guarantees `ptr` came from this
        // allocator (i.e. System) with `layout`.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged under the caller's guarantees for realloc.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            report_oom(new_size);
        }
        p
    }
}

// ---------------------------------------------------------------------------------
// seccomp user notification.

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`
const FLAG_NEW_LISTENER: u32 = 1 << 3;

/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH` (Linux 5.7): TSYNC together with NEW_LISTENER,
/// failing with ESRCH rather than a thread id.
const FLAG_TSYNC_ESRCH: u32 = 1 << 4;

/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux 5.19): once the supervisor has
/// received a notification, the waiting call is interrupted only by a fatal signal —
/// so a signal cannot make the kernel restart a call the supervisor is answering (and
/// have it done twice: a file created, then `EEXIST`).
const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Install `program` on every thread with SECCOMP_FILTER_FLAG_NEW_LISTENER (and TSYNC,
/// TSYNC_ESRCH, and WAIT_KILLABLE_RECV where the kernel has it); returns the listener.
pub fn seccomp_install_with_listener(program: &[SockFilter]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let flags = FLAG_NEW_LISTENER | crate::seccomp::FLAG_TSYNC | FLAG_TSYNC_ESRCH;
    let fd = match seccomp_set_mode_filter(program, flags | FLAG_WAIT_KILLABLE_RECV) {
        // An older kernel refuses the unknown flag: install without it.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            seccomp_set_mode_filter(program, flags)?
        }
        other => other?,
    };
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: with NEW_LISTENER the kernel returns a new descriptor for the listener,
    // owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Whether the calling process has exactly one thread (from /proc/self/stat).
pub fn single_threaded() -> io::Result<bool> {
    // /proc/self/stat (field 20, num_threads) is cheaper to make than .../status. The
    // command name, field 2, is in parentheses and may hold anything: count after
    // the last ')'.
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    Ok(after_name
        .split_whitespace()
        .nth(17)
        .and_then(|v| v.parse::<u32>().ok())
        == Some(1))
}

/// Fork the calling process. The caller guarantees (see
/// `sandbox::lockdown::SingleThreaded`) that it has one thread.
pub fn fork_checked_single_threaded() -> io::Result<libc::pid_t> {
    // The caller checked that the process had one thread and started none since (the
    // contract of `SingleThreaded`), so the child is a complete copy: locks free.
    // SAFETY: fork has no memory preconditions; the above makes the child usable.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid)
    }
}

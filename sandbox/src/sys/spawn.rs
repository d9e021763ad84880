//! Starting a process in new namespaces: a fork-like `clone(2)` whose child runs only
//! async-signal-safe code (raw syscalls on memory prepared before the clone) until it
//! calls `execve`.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

/// Everything the child needs, allocated before the clone so the child allocates
/// nothing.
pub struct PreparedExec {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// (source fd in the parent, number it gets in the child)
    remaps: Vec<(RawFd, RawFd)>,
    /// Where the child parks copies of the sources before moving them into place: just
    /// above every destination, so no move clobbers a parked copy. (Kept low: the
    /// descriptor table never shrinks, and a big one slows every later close_range.)
    park_base: RawFd,
}

/// The highest destination descriptor accepted.
const MAX_DESTINATION: RawFd = 1 << 12;

impl PreparedExec {
    /// Prepare `path` with `argv` (argv[0] included) and `envp` ("K=V"), and fds to
    /// place at given numbers in the child.
    pub fn new(
        path: &str,
        argv: &[String],
        envp: &[String],
        remaps: &[(RawFd, RawFd)],
    ) -> io::Result<PreparedExec> {
        let c = |s: &str| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
        let path = c(path)?;
        let argv: Vec<CString> = argv.iter().map(|s| c(s)).collect::<io::Result<_>>()?;
        let envp: Vec<CString> = envp.iter().map(|s| c(s)).collect::<io::Result<_>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        if remaps.len() > 64
            || remaps
                .iter()
                .any(|(s, d)| *s < 0 || *d < 0 || *d > MAX_DESTINATION)
        {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let park_base = remaps.iter().map(|(_, d)| *d + 1).max().unwrap_or(3).max(3);
        Ok(PreparedExec {
            path,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            remaps: remaps.to_vec(),
            park_base,
        })
    }
}

/// Clone a child with `flags` (CLONE_NEW* bits; SIGCHLD is added). The child:
/// sets PR_SET_PDEATHSIG to SIGKILL; makes itself dumpable until exec; waits for one byte on `go` (EOF — the parent died
/// or gave up — ends it: this closes the race between clone and PDEATHSIG); moves the
/// remapped fds into place; execs. It writes `R` to `report` once the parent may
/// write its id maps, and on any failure `E` and its errno (4 bytes), then exits 127. Both `go` and `report` must be close-on-exec.
///
/// Returns the child's pid (in the caller's pid namespace).
pub fn clone_and_exec(
    flags: libc::c_int,
    exec: &PreparedExec,
    go: RawFd,
    report: RawFd,
) -> io::Result<libc::pid_t> {
    let clone_flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: a clone without CLONE_VM and with a NULL stack is a fork: the child gets a
    // copy of this address space and continues here with only the calling thread. The
    // child branch below calls only async-signal-safe libc wrappers of raw syscalls,
    // reads only memory prepared before the clone (`exec`, `go`, `report`), allocates
    // nothing, takes no lock, and leaves only by execve or _exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            clone_flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        child(exec, go, report);
    }
    Ok(pid as libc::pid_t)
}

/// The child side of [`clone_and_exec`]. Never returns.
fn child(exec: &PreparedExec, go: RawFd, report: RawFd) -> ! {
    // SAFETY (whole function): we are the only thread of a fresh fork-like child; every
    // call is an async-signal-safe syscall wrapper on fds and on memory prepared
    // before the clone and still mapped (the child has a copy of it).
    unsafe {
        let fail = |errno: libc::c_int| -> ! {
            let e = errno.to_ne_bytes();
            let bytes = [b'E', e[0], e[1], e[2], e[3]];
            libc::write(report, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127)
        };
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(*libc::__errno_location());
        }
        // A caller that changed its uids (e.g. root dropping to a service user) is not
        // dumpable, and neither would this copy of it be: its /proc files would then
        // belong to root and the caller could not write its id maps. exec resets it.
        if libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong, 0, 0, 0) != 0 {
            fail(*libc::__errno_location());
        }
        // Tell the parent it may write the id maps now.
        if libc::write(report, b"R".as_ptr().cast(), 1) != 1 {
            libc::_exit(126);
        }
        // The parent writes one byte once the id maps are written. EOF means it died
        // before that (possibly before PDEATHSIG was armed): end here.
        let mut byte = 0u8;
        loop {
            let n = libc::read(go, (&mut byte as *mut u8).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            libc::_exit(126);
        }
        // Park every source above every destination (close-on-exec), then move into
        // place, so a source that is also another entry's destination is not clobbered.
        let mut parked = [0 as RawFd; 64];
        for (i, (src, _)) in exec.remaps.iter().enumerate() {
            let fd = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, exec.park_base);
            if fd < 0 {
                fail(*libc::__errno_location());
            }
            parked[i] = fd;
        }
        for (i, (_, dst)) in exec.remaps.iter().enumerate() {
            // dup2 leaves the new descriptor without FD_CLOEXEC: it survives exec.
            if libc::dup2(parked[i], *dst) < 0 {
                fail(*libc::__errno_location());
            }
        }
        libc::execve(
            exec.path.as_ptr(),
            exec.argv_ptrs.as_ptr(),
            exec.envp_ptrs.as_ptr(),
        );
        fail(*libc::__errno_location())
    }
}

/// Whether a child can be created with `flags` (CLONE_NEW* bits): a fork-like clone
/// whose child exits at once.
pub fn clone_probe(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: a fork-like clone (no CLONE_VM, NULL stack); the child only calls _exit,
    // which is async-signal-safe and touches no memory.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above; the child ends here.
        unsafe { libc::_exit(0) }
    }
    let mut status = 0;
    // SAFETY: waits for the child just created; `status` is a live local.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    Ok(())
}

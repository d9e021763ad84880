//! Process attributes the lockdown sets and reads back: descriptors, capabilities,
//! securebits, the Landlock ABI.

use std::io;

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `close_range(first, u32::MAX, 0)`: close every descriptor from `first` up.
pub fn close_from(first: u32) -> io::Result<()> {
    close_range_or_each(first, u32::MAX)
}

/// `close_range(first, last, 0)`.
pub fn close_between(first: u32, last: u32) -> io::Result<()> {
    close_range_or_each(first, last)
}

/// `close_range(first, last, 0)`, or — on a kernel without it (before 5.9: `ENOSYS`) —
/// every open descriptor in the range found and closed one by one ([`close_each`]).
fn close_range_or_each(first: u32, last: u32) -> io::Result<()> {
    // Closing descriptors cannot break memory safety; descriptors owned by Rust objects
    // (OwnedFd, File) in the range would be closed under them, which is why callers run
    // this only on ranges they name as not kept.
    // SAFETY: close_range takes integers only; the range is the caller's (above).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    match check(r) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => close_each(first, last),
        r => r.map(|_| ()),
    }
}

/// Without `close_range`: the open descriptors of `first..=last` found with `poll` in
/// chunks (no larger than RLIMIT_NOFILE, which `poll` requires), each closed. No
/// descriptor can lie at or above the larger of the two RLIMIT_NOFILE limits (capped
/// at 2^20, the kernel's default `nr_open`).
fn close_each(first: u32, last: u32) -> io::Result<()> {
    use nix::sys::resource::{getrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    let top = u32::try_from(soft.max(hard).min(1 << 20)).unwrap_or(1 << 20);
    let last = last.min(top.saturating_sub(1));
    let chunk = u32::try_from(soft.clamp(1, 4096)).unwrap_or(4096);
    let mut base = first;
    while base <= last {
        let n = chunk.min(last - base + 1);
        for fd in open_fds_in(base, n as usize)? {
            // SAFETY: as in `close_range_or_each`: an integer, in the caller's range.
            let _ = unsafe { libc::close(fd) };
        }
        match base.checked_add(n) {
            Some(next) => base = next,
            None => break,
        }
    }
    Ok(())
}

/// Which of the descriptors `0..n` are open, in one `poll` call (an unopened
/// descriptor reports POLLNVAL).
pub fn open_fds(n: usize) -> io::Result<Vec<i32>> {
    open_fds_in(0, n)
}

/// Which of the descriptors `base..base + n` are open, in one `poll` call.
fn open_fds_in(base: u32, n: usize) -> io::Result<Vec<i32>> {
    let base = i32::try_from(base).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    let mut fds: Vec<libc::pollfd> = (0..n as i32)
        .map(|i| libc::pollfd {
            fd: base.saturating_add(i),
            events: 0,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a live, initialised array of `n` pollfd structs that the kernel
    // may write (revents) during the call; timeout 0 returns at once.
    check(unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, 0) }.into())?;
    Ok(fds
        .iter()
        .filter(|p| p.revents & libc::POLLNVAL == 0)
        .map(|p| p.fd)
        .collect())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The calling thread's (effective, permitted, inheritable) capability sets, 64 bits each.
pub fn capget() -> io::Result<(u64, u64, u64)> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 makes the kernel write exactly two CapData structs into
    // `data`, which has room for two; both pointers are to live locals.
    check(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    let join = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | (u64::from(f(&data[1])) << 32);
    Ok((
        join(|d| d.effective),
        join(|d| d.permitted),
        join(|d| d.inheritable),
    ))
}

/// Empty the calling thread's effective, permitted and inheritable sets.
pub fn capset_none() -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: version 3 makes the kernel read two CapData structs from `data`, which
    // holds two; both pointers are to live locals.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) })
        .map(|_| ())
}

/// A prctl whose arguments are all integers. Only the options listed are accepted, so
/// no option that reads or writes memory through an argument can be passed.
pub fn prctl_int(
    option: libc::c_int,
    arg2: libc::c_ulong,
    arg3: libc::c_ulong,
) -> io::Result<libc::c_int> {
    const INTEGER_ONLY: [libc::c_int; 10] = [
        libc::PR_SET_NO_NEW_PRIVS,
        libc::PR_GET_NO_NEW_PRIVS,
        libc::PR_GET_SECCOMP,
        libc::PR_CAPBSET_DROP,
        libc::PR_CAPBSET_READ,
        libc::PR_CAP_AMBIENT,
        libc::PR_SET_SECUREBITS,
        libc::PR_GET_SECUREBITS,
        libc::PR_SET_DUMPABLE,
        libc::PR_GET_DUMPABLE,
    ];
    if !INTEGER_ONLY.contains(&option) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let zero: libc::c_ulong = 0;
    // SAFETY: `option` is one of the integer-only options above; none touches memory.
    let r = unsafe { libc::prctl(option, arg2, arg3, zero, zero) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The Landlock ABI version of the running kernel (0 if Landlock is unavailable, with
/// the errno: ENOSYS not built in, EOPNOTSUPP disabled at boot).
pub fn landlock_abi() -> (u32, Option<i32>) {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with the VERSION flag the kernel reads no memory (attr is NULL, size 0)
    // and returns the ABI version.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if r < 0 {
        (0, io::Error::last_os_error().raw_os_error())
    } else {
        (r as u32, None)
    }
}

/// Whether seccomp(SECCOMP_SET_MODE_FILTER) knows filter flag `flag`: called with a
/// NULL program, a known flag fails later with EFAULT, an unknown one with EINVAL.
pub fn seccomp_flag_known(flag: u32) -> bool {
    // SAFETY: the program pointer is NULL, so the kernel fails with EFAULT (or EINVAL
    // before that) without installing anything or touching our memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1u32,
            flag,
            std::ptr::null::<libc::c_void>(),
        )
    };
    r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// pidfd_open(own pid): whether pidfds work.
pub fn pidfd_works() -> bool {
    // SAFETY: integer arguments only; the returned fd is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0u32) };
    if fd < 0 {
        return false;
    }
    // SAFETY: closes the descriptor just returned to us and owned by nothing else.
    unsafe { libc::close(fd as libc::c_int) };
    true
}

/// Whether close_range exists: an empty range at the top closes nothing.
pub fn close_range_works() -> bool {
    // SAFETY: the range u32::MAX..=u32::MAX holds no open descriptor.
    unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0u32) == 0 }
}

/// Whether openat2 exists: with a zero-sized `how` it fails with EINVAL, not ENOSYS.
pub fn openat2_exists() -> bool {
    // SAFETY: size 0 makes the kernel refuse before reading `how` or the path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0usize,
        )
    };
    r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

/// pidfd_getfd(pidfd, fd, 0): a duplicate of descriptor `fd` of the process `pidfd`
/// names (the same open file; needs ptrace access to it).
pub fn pidfd_getfd(
    pidfd: std::os::fd::BorrowedFd<'_>,
    fd: i32,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: integer arguments only; the borrowed pidfd stays open across the call.
    let got = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0u32) })?;
    // SAFETY: a new descriptor the kernel just returned to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(got as i32) })
}

/// pidfd_open(pid, 0): a descriptor that becomes readable when `pid` exits.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: integer arguments only.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) })?;
    // SAFETY: a new descriptor the kernel just returned to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

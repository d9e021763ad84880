//! Thin wrappers over the syscalls the safe code needs. This is the only module with
//! `unsafe`; each block says which invariant makes it sound.
#![allow(unsafe_code)]

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
    // SAFETY: PR_SET_NO_NEW_PRIVS takes only integer arguments; no memory is touched.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `prctl(PR_GET_NO_NEW_PRIVS)`.
pub fn no_new_privs() -> io::Result<bool> {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes only integer arguments; no memory is touched.
    let r = unsafe {
        libc::prctl(
            libc::PR_GET_NO_NEW_PRIVS,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r == 1)
    }
}

/// `prctl(PR_GET_SECCOMP)`: 0 none, 2 filter mode.
pub fn seccomp_mode() -> io::Result<i32> {
    // SAFETY: PR_GET_SECCOMP takes only integer arguments; no memory is touched. (With
    // a filter installed that does not allow prctl, this call is itself filtered.)
    let r = unsafe {
        libc::prctl(
            libc::PR_GET_SECCOMP,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

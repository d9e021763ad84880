//! Test support (feature `test-support`): a SIGSYS recorder and single syscalls made
//! through unusual doors, for tests and probes that show what a filter does.

use super::SigsysRaw;
use std::io;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

static SIGSYS_SEEN: AtomicU32 = AtomicU32::new(0);
static SIGSYS_NR: AtomicI32 = AtomicI32::new(-1);
static SIGSYS_ARCH: AtomicU32 = AtomicU32::new(0);
static SIGSYS_DATA: AtomicI32 = AtomicI32::new(0);
static SIGSYS_CODE: AtomicI32 = AtomicI32::new(0);

extern "C" fn record_sigsys(
    _sig: libc::c_int,
    info: *mut libc::siginfo_t,
    _ctx: *mut libc::c_void,
) {
    if info.is_null() {
        return;
    }
    // SAFETY: the handler is installed with SA_SIGINFO, so the kernel passes a pointer
    // to a complete, readable siginfo_t for the duration of the call; for SIGSYS its
    // layout is `SigsysRaw` (include/uapi/asm-generic/siginfo.h, 64-bit).
    let raw = unsafe { &*(info as *const SigsysRaw) };
    // Only atomics below: async-signal-safe, no allocation, no locks.
    SIGSYS_NR.store(raw.syscall, Ordering::SeqCst);
    SIGSYS_ARCH.store(raw.arch, Ordering::SeqCst);
    SIGSYS_DATA.store(raw.errno, Ordering::SeqCst);
    SIGSYS_CODE.store(raw.code, Ordering::SeqCst);
    SIGSYS_SEEN.fetch_add(1, Ordering::SeqCst);
}

/// Install a SIGSYS handler that records the last trap and returns.
pub fn install_sigsys_recorder() -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags); we then set
    // the handler and flags before passing it to the kernel.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = record_sigsys as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `sa` is a valid sigaction whose handler is an `extern "C"` function with
    // the SA_SIGINFO signature that only touches atomics (async-signal-safe); the old
    // action is not requested.
    let r = unsafe { libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The last recorded trap: (count so far, syscall nr, audit arch, data, si_code).
pub fn last_sigsys() -> (u32, i32, u32, i32, i32) {
    (
        SIGSYS_SEEN.load(Ordering::SeqCst),
        SIGSYS_NR.load(Ordering::SeqCst),
        SIGSYS_ARCH.load(Ordering::SeqCst),
        SIGSYS_DATA.load(Ordering::SeqCst),
        SIGSYS_CODE.load(Ordering::SeqCst),
    )
}

// ---------------------------------------------------------------------------------
// Probes: one harmless syscall each, through an unusual door.

/// getpid through the x32 ABI (number | bit 30).
#[cfg(target_arch = "x86_64")]
pub fn x32_getpid() -> std::io::Result<i64> {
    // SAFETY: getpid takes no arguments and touches no memory; the x32 alias of it
    // (or ENOSYS where x32 is off) is just as harmless.
    let r = unsafe { libc::syscall(libc::SYS_getpid | 0x4000_0000) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// getpid through the i386 entry point (`int 0x80`, eax = 20) from 64-bit code.
/// Returns the raw result (a pid, or -errno).
#[cfg(target_arch = "x86_64")]
pub fn i386_getpid() -> i64 {
    let ret: i64;
    // SAFETY: i386 syscall 20 is getpid: no arguments, no memory access. The compat
    // entry may clobber r8-r11, which are declared; the stack is not used.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("rax") 20i64 => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack)
        );
    }
    ret
}

/// `ioctl(fd, FIONREAD | (high << 32), &n)`: the command with junk in its high half.
pub fn fionread_with_high_bits(fd: i32, high: u32) -> std::io::Result<i32> {
    let mut n: libc::c_int = 0;
    let cmd = (u64::from(high) << 32) | u64::from(libc::FIONREAD as u32);
    // SAFETY: FIONREAD (the kernel uses the low 32 bits of the command) writes one int
    // through the pointer, which points at the local `n`, live across the call.
    let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, cmd, &mut n as *mut libc::c_int) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n)
    }
}

/// Map one anonymous private page with `prot` and unmap it again.
pub fn mmap_anonymous_page(prot: libc::c_int) -> io::Result<()> {
    // SAFETY: an anonymous private mapping at a kernel-chosen address touches no
    // existing memory; it is unmapped below and never accessed.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `p` is the page mapped just above, not referenced anywhere.
    unsafe { libc::munmap(p, 4096) };
    Ok(())
}

//! Parameter names and widths of the syscalls that policies inspect.
//!
//! The kernel passes six 64-bit registers, but many parameters are declared `int`,
//! `unsigned int` or `pid_t`: the kernel reads only their low 32 bits. A filter that
//! compared all 64 bits of such a parameter could be fooled by junk in the high half
//! (`ioctl(fd, TIOCSTI | 1 << 32, ..)` passes `cmd != TIOCSTI` yet the kernel runs
//! TIOCSTI: CVE-2019-7303). So a parameter listed here as [`Width::W32`] is checked in
//! two steps: its high half must be 0 or the sign extension of its low half, otherwise
//! the call gets the policy's junk action; then only the low half is compared.
//!
//! Widths follow the `SYSCALL_DEFINE` declarations in the kernel. Syscalls not listed
//! have six 64-bit parameters named `arg0`..`arg5` only, which is the safe reading.

/// How many bits of a parameter the kernel reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// `int`, `unsigned int`, `pid_t`, `clockid_t`...: only the low half counts.
    W32,
    /// `long`, `unsigned long`, `size_t`, pointers, `loff_t`: all 64 bits count.
    W64,
}

use Width::{W32, W64};

type Params = &'static [(&'static str, Width)];

/// (syscall, parameters in order). Parameters past the list are 64-bit, unnamed.
#[rustfmt::skip]
static TABLE: &[(&str, Params)] = &[
    ("read", &[("fd", W32), ("buf", W64), ("count", W64)]),
    ("write", &[("fd", W32), ("buf", W64), ("count", W64)]),
    ("pread64", &[("fd", W32), ("buf", W64), ("count", W64), ("pos", W64)]),
    ("pwrite64", &[("fd", W32), ("buf", W64), ("count", W64), ("pos", W64)]),
    // readv/writev declare `unsigned long fd` but fdget() truncates it to unsigned int.
    ("readv", &[("fd", W32), ("vec", W64), ("vlen", W64)]),
    ("writev", &[("fd", W32), ("vec", W64), ("vlen", W64)]),
    ("open", &[("filename", W64), ("flags", W32), ("mode", W32)]),
    ("openat", &[("dfd", W32), ("filename", W64), ("flags", W32), ("mode", W32)]),
    ("close", &[("fd", W32)]),
    ("dup", &[("fd", W32)]),
    ("dup2", &[("oldfd", W32), ("newfd", W32)]),
    ("dup3", &[("oldfd", W32), ("newfd", W32), ("flags", W32)]),
    ("ioctl", &[("fd", W32), ("cmd", W32), ("arg", W64)]),
    ("fcntl", &[("fd", W32), ("cmd", W32), ("arg", W64)]),
    ("flock", &[("fd", W32), ("cmd", W32)]),
    ("lseek", &[("fd", W32), ("offset", W64), ("whence", W32)]),
    ("fstat", &[("fd", W32), ("statbuf", W64)]),
    ("newfstatat", &[("dfd", W32), ("filename", W64), ("statbuf", W64), ("flag", W32)]),
    // aarch64's name for newfstatat.
    ("fstatat", &[("dfd", W32), ("filename", W64), ("statbuf", W64), ("flag", W32)]),
    ("statx", &[("dfd", W32), ("filename", W64), ("flags", W32), ("mask", W32), ("buffer", W64)]),
    ("faccessat", &[("dfd", W32), ("filename", W64), ("mode", W32)]),
    ("faccessat2", &[("dfd", W32), ("filename", W64), ("mode", W32), ("flags", W32)]),
    ("getdents64", &[("fd", W32), ("dirent", W64), ("count", W32)]),
    ("ftruncate", &[("fd", W32), ("length", W64)]),
    ("fallocate", &[("fd", W32), ("mode", W32), ("offset", W64), ("len", W64)]),
    ("fsync", &[("fd", W32)]),
    ("fdatasync", &[("fd", W32)]),
    // mmap and mprotect take `unsigned long prot` and flags: all 64 bits count. mmap's
    // `unsigned long fd` is truncated to unsigned int by fget().
    ("mmap", &[("addr", W64), ("len", W64), ("prot", W64), ("flags", W64), ("fd", W32), ("offset", W64)]),
    ("mprotect", &[("start", W64), ("len", W64), ("prot", W64)]),
    ("pkey_mprotect", &[("start", W64), ("len", W64), ("prot", W64), ("pkey", W32)]),
    ("mremap", &[("addr", W64), ("old_len", W64), ("new_len", W64), ("flags", W64), ("new_addr", W64)]),
    ("madvise", &[("start", W64), ("len", W64), ("behavior", W32)]),
    ("memfd_create", &[("uname", W64), ("flags", W32)]),
    // prctl's later arguments are unsigned longs, reached as arg1..arg4.
    ("prctl", &[("option", W32)]),
    // clone's `unsigned long clone_flags` is cut to its lower 32 bits (kernel/fork.c).
    ("clone", &[("flags", W32), ("newsp", W64), ("parent_tid", W64)]),
    ("unshare", &[("flags", W64)]),
    ("setns", &[("fd", W32), ("nstype", W32)]),
    ("personality", &[("personality", W32)]),
    ("seccomp", &[("op", W32), ("flags", W32), ("uargs", W64)]),
    ("socket", &[("domain", W32), ("type", W32), ("protocol", W32)]),
    ("socketpair", &[("domain", W32), ("type", W32), ("protocol", W32), ("usockvec", W64)]),
    ("connect", &[("fd", W32), ("uservaddr", W64), ("addrlen", W32)]),
    ("bind", &[("fd", W32), ("umyaddr", W64), ("addrlen", W32)]),
    ("listen", &[("fd", W32), ("backlog", W32)]),
    ("accept", &[("fd", W32), ("upeer_sockaddr", W64), ("upeer_addrlen", W64)]),
    ("accept4", &[("fd", W32), ("upeer_sockaddr", W64), ("upeer_addrlen", W64), ("flags", W32)]),
    ("shutdown", &[("fd", W32), ("how", W32)]),
    ("sendmsg", &[("fd", W32), ("msg", W64), ("flags", W32)]),
    ("recvmsg", &[("fd", W32), ("msg", W64), ("flags", W32)]),
    ("sendto", &[("fd", W32), ("buff", W64), ("len", W64), ("flags", W32), ("addr", W64), ("addr_len", W32)]),
    ("recvfrom", &[("fd", W32), ("ubuf", W64), ("size", W64), ("flags", W32), ("addr", W64), ("addr_len", W64)]),
    ("sendmmsg", &[("fd", W32), ("mmsg", W64), ("vlen", W32), ("flags", W32)]),
    ("recvmmsg", &[("fd", W32), ("mmsg", W64), ("vlen", W32), ("flags", W32), ("timeout", W64)]),
    ("getsockopt", &[("fd", W32), ("level", W32), ("optname", W32), ("optval", W64), ("optlen", W64)]),
    ("setsockopt", &[("fd", W32), ("level", W32), ("optname", W32), ("optval", W64), ("optlen", W32)]),
    ("kill", &[("pid", W32), ("sig", W32)]),
    ("tkill", &[("pid", W32), ("sig", W32)]),
    ("tgkill", &[("tgid", W32), ("pid", W32), ("sig", W32)]),
    ("rt_sigqueueinfo", &[("pid", W32), ("sig", W32), ("uinfo", W64)]),
    ("rt_tgsigqueueinfo", &[("tgid", W32), ("pid", W32), ("sig", W32), ("uinfo", W64)]),
    ("futex", &[("uaddr", W64), ("op", W32), ("val", W32), ("utime", W64), ("uaddr2", W64), ("val3", W32)]),
    ("getrandom", &[("buf", W64), ("count", W64), ("flags", W32)]),
    ("clock_gettime", &[("which_clock", W32), ("tp", W64)]),
    ("clock_getres", &[("which_clock", W32), ("tp", W64)]),
    ("clock_nanosleep", &[("which_clock", W32), ("flags", W32), ("rqtp", W64), ("rmtp", W64)]),
    ("prlimit64", &[("pid", W32), ("resource", W32), ("new_rlim", W64), ("old_rlim", W64)]),
    ("getrlimit", &[("resource", W32), ("rlim", W64)]),
    ("sched_getaffinity", &[("pid", W32), ("len", W32), ("user_mask_ptr", W64)]),
    ("sched_setaffinity", &[("pid", W32), ("len", W32), ("user_mask_ptr", W64)]),
    ("sched_setscheduler", &[("pid", W32), ("policy", W32), ("param", W64)]),
    ("sched_getparam", &[("pid", W32), ("param", W64)]),
    ("sched_getscheduler", &[("pid", W32)]),
    ("setpriority", &[("which", W32), ("who", W32), ("niceval", W32)]),
    ("getpriority", &[("which", W32), ("who", W32)]),
    ("setpgid", &[("pid", W32), ("pgid", W32)]),
    ("wait4", &[("upid", W32), ("stat_addr", W64), ("options", W32), ("ru", W64)]),
    ("waitid", &[("which", W32), ("upid", W32), ("infop", W64), ("options", W32), ("ru", W64)]),
    ("exit", &[("error_code", W32)]),
    ("exit_group", &[("error_code", W32)]),
    ("pipe2", &[("fildes", W64), ("flags", W32)]),
    ("eventfd2", &[("count", W32), ("flags", W32)]),
    ("epoll_create1", &[("flags", W32)]),
    ("epoll_ctl", &[("epfd", W32), ("op", W32), ("fd", W32), ("event", W64)]),
    ("timerfd_create", &[("clockid", W32), ("flags", W32)]),
    ("membarrier", &[("cmd", W32), ("flags", W32), ("cpu_id", W32)]),
    ("kcmp", &[("pid1", W32), ("pid2", W32), ("type", W32), ("idx1", W64), ("idx2", W64)]),
    ("pidfd_open", &[("pid", W32), ("flags", W32)]),
    ("pidfd_send_signal", &[("pidfd", W32), ("sig", W32), ("info", W64), ("flags", W32)]),
    ("rseq", &[("rseq", W64), ("rseq_len", W32), ("flags", W32), ("sig", W32)]),
    ("setuid", &[("uid", W32)]),
    // ptrace's request and pid are `long`.
    ("ptrace", &[("request", W64), ("pid", W64), ("addr", W64), ("data", W64)]),
    ("setgid", &[("gid", W32)]),
    ("umask", &[("mask", W32)]),
    // Kernel keys (key_serial_t is a 32-bit int) and modules.
    ("add_key", &[("type", W64), ("description", W64), ("payload", W64), ("plen", W64), ("ringid", W32)]),
    ("request_key", &[("type", W64), ("description", W64), ("callout_info", W64), ("destringid", W32)]),
    ("keyctl", &[("option", W32), ("arg2", W64), ("arg3", W64), ("arg4", W64), ("arg5", W64)]),
    ("init_module", &[("umod", W64), ("len", W64), ("uargs", W64)]),
    ("finit_module", &[("fd", W32), ("uargs", W64), ("flags", W32)]),
];

/// The declared parameters of `syscall`, if the table knows it.
pub fn params(syscall: &str) -> Option<Params> {
    TABLE
        .iter()
        .find(|(name, _)| *name == syscall)
        .map(|(_, p)| *p)
}

/// How many bits of argument `index` of `syscall` the kernel reads.
pub fn width(syscall: &str, index: u8) -> Width {
    params(syscall)
        .and_then(|p| p.get(usize::from(index)))
        .map_or(W64, |(_, w)| *w)
}

/// The argument index of parameter `name` of `syscall`: a declared name, or `argN`.
pub fn index_of(syscall: &str, name: &str) -> Option<u8> {
    if let Some(n) = name.strip_prefix("arg") {
        if let Ok(i) = n.parse::<u8>() {
            return (i < 6 && n.len() == 1).then_some(i);
        }
    }
    let p = params(syscall)?;
    p.iter()
        .position(|(n, _)| *n == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// The parameter name of argument `index` of `syscall` (for listings).
pub fn name_of(syscall: &str, index: u8) -> Option<&'static str> {
    params(syscall)
        .and_then(|p| p.get(usize::from(index)))
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::arch::Arch;

    #[test]
    fn every_listed_syscall_exists_somewhere() {
        for (name, params) in TABLE {
            assert!(
                Arch::ALL.iter().any(|a| a.syscall_number(name).is_some()),
                "{name} is in no syscall table"
            );
            assert!(params.len() <= 6, "{name} has more than six parameters");
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(width("ioctl", 1), Width::W32);
        assert_eq!(width("ioctl", 2), Width::W64);
        assert_eq!(width("no_such", 0), Width::W64);
        assert_eq!(index_of("socketpair", "domain"), Some(0));
        assert_eq!(index_of("anything", "arg5"), Some(5));
        assert_eq!(index_of("anything", "arg6"), None);
        assert_eq!(index_of("anything", "arg01"), None);
        assert_eq!(index_of("read", "domain"), None);
    }
}

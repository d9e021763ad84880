//! Probes (feature `test-support`, off by default): single harmless syscalls made
//! through unusual doors, and a SIGSYS recorder. Tests use them to show what a filter
//! does to a real process; a renderer has no use for them.

use crate::sys;
use std::io;

/// What the last seccomp trap reported (see [`install_sigsys_recorder`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trap {
    /// How many SIGSYS were recorded so far.
    pub count: u32,
    /// `si_syscall`: the trapped syscall's number.
    pub syscall: i32,
    /// `si_arch`: its AUDIT_ARCH.
    pub arch: u32,
    /// `si_errno`: the trap's data (`SECCOMP_RET_DATA`).
    pub data: i32,
    /// `si_code` (1 = SYS_SECCOMP).
    pub code: i32,
}

/// Install a SIGSYS handler that records each trap and returns. After it returns, the
/// trapped call appears to return garbage (the kernel rolled back its registers): this
/// is for tests and probes, not for a renderer, whose handler must not return.
pub fn install_sigsys_recorder() -> io::Result<()> {
    sys::probe::install_sigsys_recorder()
}

/// The last trap recorded, if any.
pub fn last_trap() -> Option<Trap> {
    let (count, syscall, arch, data, code) = sys::probe::last_sigsys();
    (count > 0).then_some(Trap {
        count,
        syscall,
        arch,
        data,
        code,
    })
}

/// getpid through the x32 ABI (number with bit 30 set).
#[cfg(target_arch = "x86_64")]
pub fn x32_getpid() -> io::Result<i64> {
    sys::probe::x32_getpid()
}

/// getpid through `int 0x80` (the i386 entry) from 64-bit code; raw result.
#[cfg(target_arch = "x86_64")]
pub fn i386_getpid() -> i64 {
    sys::probe::i386_getpid()
}

/// `ioctl(fd, FIONREAD | high << 32, &n)`, returning n.
pub fn fionread_with_high_bits(fd: i32, high: u32) -> io::Result<i32> {
    sys::probe::fionread_with_high_bits(fd, high)
}

/// mmap one anonymous page with `prot` (PROT_* bits) and unmap it.
pub fn mmap_anonymous_page(prot: i32) -> io::Result<()> {
    sys::probe::mmap_anonymous_page(prot)
}

/// Compile the policy `text` (named `name` in errors; no includes) for this machine and
/// install it on the calling process, no_new_privs set first: what a test does to play
/// a kernel, a container or a security module that refuses or answers some calls.
/// With `listener`, installed with a notification listener, which is returned.
pub fn install_policy_text(
    name: &str,
    text: &str,
    listener: bool,
) -> Result<Option<std::os::fd::OwnedFd>, String> {
    use crate::policy::arch::Arch;
    use crate::policy::text::{parse_str, EmbeddedSources, Options};
    let policy = parse_str(
        name,
        text,
        &Options::new(Arch::native()),
        &EmbeddedSources(&[]),
    )
    .map_err(|e| e.to_string())?;
    let program = crate::bpf::compile(&policy, Arch::native()).map_err(|e| e.to_string())?;
    crate::seccomp::set_no_new_privs().map_err(|e| e.to_string())?;
    if listener {
        crate::seccomp::install_with_listener(&program)
            .map(Some)
            .map_err(|e| e.to_string())
    } else {
        crate::seccomp::install(&program, Default::default())
            .map(|()| None)
            .map_err(|e| e.to_string())
    }
}

/// How a test's supervisor answers one notification ([`supervise`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The call returns this value.
    Value(i64),
    /// The call fails with this errno.
    Error(i32),
    /// The kernel runs the call (fine for a test playing a kernel or a security module;
    /// never a security decision: see `seccomp::answer_continue`).
    Continue,
}

/// Answer every notification of `listener` on a thread of its own with `decide`,
/// until the listener fails (its filter's users are gone): a test's supervisor, playing
/// a kernel or a security module that answers some calls its own way.
pub fn supervise(
    listener: std::os::fd::OwnedFd,
    decide: impl Fn(&crate::seccomp::Notification) -> Reply + Send + 'static,
) {
    use std::os::fd::AsFd;
    std::thread::spawn(move || loop {
        let fd = listener.as_fd();
        match crate::seccomp::receive(fd) {
            Ok(n) => {
                let _ = match decide(&n) {
                    Reply::Value(v) => crate::seccomp::answer_value(fd, n.id, v),
                    Reply::Error(e) => crate::seccomp::answer_error(fd, n.id, e),
                    Reply::Continue => crate::seccomp::answer_continue(fd, n.id),
                };
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => {}
            Err(_) => return,
        }
    });
}

/// How many descriptors this process has open (`/proc/self/fd`; its own listing's
/// descriptor included).
pub fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// How many children of this process are zombies (exited, not reaped), from the
/// state and parent fields of every `/proc/PID/stat`.
pub fn zombie_children() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
                .filter(|s| {
                    // After the command name (in parentheses, anything inside): state, ppid.
                    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
                    let mut f = after.split_whitespace();
                    f.next() == Some("Z") && f.next() == Some(me.as_str())
                })
                .count()
        })
        .unwrap_or(0)
}

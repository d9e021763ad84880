//! Actions: what the kernel does with a syscall (`SECCOMP_RET_*`).

use super::*;

/// What the kernel does with a syscall (`SECCOMP_RET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Kill the whole process as by an uncatchable SIGSYS (core dump).
    KillProcess,
    /// Kill the calling thread only.
    KillThread,
    /// Deliver SIGSYS with `si_syscall` and `si_errno` = the data (0..=65535).
    Trap(u16),
    /// Fail the call with this errno (0..=4095) without running it.
    Errno(u16),
    /// Ask a user-space supervisor listening on the notification fd.
    UserNotify,
    /// Notify a ptrace tracer with this data; fails with ENOSYS if there is none.
    Trace(u16),
    /// Run the call and log it.
    Log,
    /// Run the call.
    Allow,
}

/// `SECCOMP_RET_KILL_PROCESS`.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_KILL_THREAD`.
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
/// `SECCOMP_RET_TRAP`.
pub const RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO`.
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE`.
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_LOG`.
pub const RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ACTION_FULL`.
pub const RET_ACTION_FULL: u32 = 0xffff_0000;
/// `SECCOMP_RET_DATA`.
pub const RET_DATA: u32 = 0x0000_ffff;

impl Action {
    /// The filter return value for this action.
    pub const fn to_ret(self) -> u32 {
        match self {
            Action::KillProcess => RET_KILL_PROCESS,
            Action::KillThread => RET_KILL_THREAD,
            Action::Trap(d) => RET_TRAP | d as u32,
            Action::Errno(e) => RET_ERRNO | e as u32,
            Action::UserNotify => RET_USER_NOTIF,
            Action::Trace(d) => RET_TRACE | d as u32,
            Action::Log => RET_LOG,
            Action::Allow => RET_ALLOW,
        }
    }

    /// What the kernel does with filter return value `ret`. Unknown actions are
    /// treated as kill-process, as `__seccomp_filter` does; an errno above
    /// [`MAX_ERRNO`] is capped, as the kernel caps it.
    pub const fn from_ret(ret: u32) -> Action {
        let data = (ret & RET_DATA) as u16;
        match ret & RET_ACTION_FULL {
            RET_KILL_PROCESS => Action::KillProcess,
            RET_KILL_THREAD => Action::KillThread,
            RET_TRAP => Action::Trap(data),
            RET_ERRNO => Action::Errno(if data > MAX_ERRNO { MAX_ERRNO } else { data }),
            RET_USER_NOTIF => Action::UserNotify,
            RET_TRACE => Action::Trace(data),
            RET_LOG => Action::Log,
            RET_ALLOW => Action::Allow,
            _ => Action::KillProcess,
        }
    }

    /// The kernel's precedence key: when several stacked filters answer, the smallest
    /// key wins (`ACTION_ONLY(ret)` compared as a signed int in `seccomp_run_filters`).
    pub const fn precedence(self) -> i32 {
        (self.to_ret() & RET_ACTION_FULL) as i32
    }

    /// Whether the call runs (allow or log).
    pub const fn runs_the_call(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }

    pub(crate) fn validate(self) -> Result<Action, PolicyError> {
        match self {
            Action::Errno(e) if e > MAX_ERRNO => Err(PolicyError::ErrnoRange(e)),
            a => Ok(a),
        }
    }
}

impl fmt::Display for Action {
    /// Spelled as in the policy language.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::KillProcess => f.write_str("kill-process"),
            Action::KillThread => f.write_str("kill-thread"),
            Action::Trap(0) => f.write_str("trap"),
            Action::Trap(d) => write!(f, "trap {d}"),
            Action::Errno(e) => write!(f, "errno {e}"),
            Action::UserNotify => f.write_str("user-notify"),
            Action::Trace(0) => f.write_str("trace"),
            Action::Trace(d) => write!(f, "trace {d}"),
            Action::Log => f.write_str("log"),
            Action::Allow => f.write_str("allow"),
        }
    }
}

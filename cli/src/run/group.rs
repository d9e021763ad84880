//! Without namespaces (`--no-namespaces`), the stage is not a pid namespace's pid 1:
//! the payload's process group stands in for the namespace, and the stage for its
//! init.
//!
//! - The payload makes a session of its own (`setsid`: its pid is the group's id) and
//!   the filter refuses `setsid` and `setpgid` (`policy::guards::without_namespaces`):
//!   nothing the program starts can leave the group.
//! - The stage is a child subreaper: whatever loses its parent is reparented to the
//!   stage, not to the host's init, and is reaped here.
//! - When the payload ends, the stage kills the group *before* reaping the payload —
//!   a zombie leader keeps its pid, the group's id, from being reused, so the kill
//!   reaches this group and no other — then reaps everything until none is left.
//! - SIGTERM, SIGINT and SIGHUP (the supervisor ending the run, a terminal) and the
//!   supervisor's death (the parent-death signal is SIGTERM) end the group the same
//!   way. They are blocked and waited for with SIGCHLD (no handler, no race between a
//!   check and a wait); the payload unblocks them before it execs.
//! - The payload's processes are the OOM killer's first choice (oom_score_adj 1000,
//!   which Landlock keeps them from writing back): the stage outlives them.
//! - Should the stage still die first (killed by the caller), the supervisor is a
//!   subreaper too: the group comes to it, and [`end_orphans`] ends it.

use super::protocol::FromStage;
use super::RunError;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The signals the stage waits for.
fn waited() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

/// Before the payload is forked: the stage blocks the signals it waits for, becomes a
/// subreaper, and takes SIGTERM at its parent's death. Whether the parent (the
/// supervisor, `parent`) is already gone.
pub(super) fn prepare(parent: i32) -> Result<bool, RunError> {
    let setup = |what: &str, e: nix::Error| RunError::Setup(format!("{what}: {e}"));
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&waited()), None)
        .map_err(|e| setup("sigprocmask", e))?;
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| setup("PR_SET_CHILD_SUBREAPER", e))?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(|e| setup("PR_SET_PDEATHSIG", e))?;
    Ok(nix::unistd::getppid().as_raw() != parent)
}

/// In the payload, first thing: the signals back as they were for the program.
pub(super) fn unblock_in_payload() -> nix::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&waited()), None)
}

/// Reap until the payload (`payload`, the group's leader) ends — or until asked to
/// end, `ending` from the start if the supervisor is gone — then kill the group and
/// reap everything left. How the payload ended.
pub(super) fn reap(payload: i32, mut ending: bool) -> Result<FromStage, RunError> {
    let setup = |e: nix::Error| RunError::Setup(format!("waitid: {e}"));
    let waited = waited();
    let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
    let ended = loop {
        if ending {
            end_group(payload);
        }
        match waitid(Id::All, peek) {
            Ok(WaitStatus::StillAlive) => match waited.wait() {
                Ok(Signal::SIGCHLD) => {}
                Ok(_) => ending = true,
                Err(e) => return Err(RunError::Setup(format!("sigwait: {e}"))),
            },
            Ok(status) if status.pid().map(Pid::as_raw) == Some(payload) => break status,
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    let _ = waitpid(pid, None);
                }
            }
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(setup(e)),
        }
    };
    // The leader is a zombie until reaped below: its pid names this group only.
    end_group(payload);
    // Until ECHILD: none left.
    while let Ok(_) | Err(nix::Error::EINTR) = waitpid(None, None) {}
    Ok(match ended {
        WaitStatus::Exited(_, code) => FromStage::Exited {
            code: Some(code),
            signal: None,
        },
        WaitStatus::Signaled(_, sig, _) => FromStage::Exited {
            code: None,
            signal: Some(sig as i32),
        },
        _ => FromStage::Exited {
            code: None,
            signal: Some(libc::SIGKILL),
        },
    })
}

/// SIGKILL to the payload and to its group (before its `setsid` the group is not yet
/// its own, and it has no children). The kernel aborts a fork whose parent has a
/// fatal signal pending: nothing born during the kill escapes it.
fn end_group(payload: i32) {
    let _ = kill(Pid::from_raw(payload), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(-payload), Signal::SIGKILL);
}

/// In the supervisor (a child subreaper without namespaces), once the stage is gone
/// without having ended the group (it was killed, or missed its grace): the group's
/// processes, reparented here, killed and reaped. The kill is sent only while a
/// process of the group is an unreaped child of this one — then the group's id
/// cannot have been taken by anyone else.
pub(super) fn end_orphans(group: i32) {
    let id = || Id::PGid(Pid::from_raw(group));
    let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    // ECHILD: no child of this process is in the group.
    while waitid(id(), peek).is_ok() {
        let _ = kill(Pid::from_raw(-group), Signal::SIGKILL);
        let _ = waitid(id(), WaitPidFlag::WEXITED);
    }
}

//! The loop that watches a run: the stage's end, its report of the program's end,
//! the seccomp listener (violations, memfd_create, or learn mode's recording), the pids
//! cgroup's refusals and the wall clock.

use super::cgroups::{BombWatch, Cgroups};
use super::options::RunArgs;
use super::protocol::{FromStage, ToStage};
use super::report::{count_below, program_status};
use super::*;
use crate::learn::record::Recorder;
use crate::notify::Outcome;
use sandbox::ipc::Channel;
use sandbox::launch::Spawned;
use sandbox::policy::arch::Arch;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

/// The channel to the stage.
type Ctl = Channel<ToStage, FromStage>;

/// The run, watched: the stage's end, its report of the program's end, the listener,
/// the pids cgroup's refusals and the wall clock.
pub(super) struct Watch<'a> {
    /// The program, for messages.
    pub(super) name: String,
    pub(super) args: &'a RunArgs,
    /// `None` once handed over without reaping (the run is over).
    pub(super) stage: Option<Spawned>,
    pub(super) pidfd: OwnedFd,
    pub(super) ctl: Ctl,
    /// Cleared when the stage's end of the control channel is gone (then only the
    /// pidfd tells the rest; polling a hung-up socket would spin).
    pub(super) ctl_open: bool,
    /// Watched until it hangs up (every filter user is gone).
    pub(super) listener: Option<OwnedFd>,
    pub(super) groups: &'a Cgroups,
    /// `--no-namespaces`: the program's process group (the payload's pid). The stage
    /// ends it when told (SIGTERM); if the stage is gone first, this process (a
    /// subreaper) ends what is left of it.
    pub(super) grouped: Option<i32>,
    /// `--connect`: how `connect` is answered.
    pub(super) egress: Option<&'a super::egress::Egress>,
    /// `--broker-ro/--broker-rw`: the folders file calls are answered beneath.
    pub(super) files: Option<&'a broker::services::files::FileService>,
    pub(super) bombs: BombWatch,
    pub(super) deadline: Instant,
    /// `sandbox learn`: every call is recorded here and runs.
    pub(super) recorder: Option<&'a mut Recorder>,
}

/// How long a stage without namespaces gets to end the program's group.
const GROUP_END_GRACE: Duration = Duration::from_secs(5);

/// What one poll found ready.
struct Ready {
    stage: bool,
    ctl: bool,
    listener: nix::poll::PollFlags,
}

impl Watch<'_> {
    /// Until the run ends; the exit status.
    pub(super) fn run(mut self) -> Result<i32, RunError> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(self.wall_clock_reached());
            }
            let ready = self.poll(left);
            if self.bombs.still_refused(self.groups.pids.as_ref()) {
                return Ok(self.fork_bomb());
            }
            if let Some(code) = self.on_listener(ready.listener) {
                return Ok(code);
            }
            if ready.ctl {
                if let Some(code) = self.on_control() {
                    return Ok(code);
                }
            }
            if ready.stage {
                return Ok(self.on_stage_end());
            }
        }
    }

    /// Wait up to `left` (a pids cgroup's tick at most) for the stage's end, the
    /// control channel or the listener.
    fn poll(&self, left: Duration) -> Ready {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = vec![PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        if self.ctl_open {
            fds.push(PollFd::new(self.ctl.as_fd(), PollFlags::POLLIN));
        }
        if let Some(l) = &self.listener {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
        }
        let wait = if self.groups.pids.is_some() {
            left.min(BOMB_TICK)
        } else {
            left
        };
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let got = |f: Option<&PollFd>| f.and_then(|f| f.revents()).unwrap_or(PollFlags::empty());
        let mut at = fds.iter();
        let mut ready = Ready {
            stage: !got(at.next()).is_empty(),
            ctl: false,
            listener: PollFlags::empty(),
        };
        if self.ctl_open {
            ready.ctl = !got(at.next()).is_empty();
        }
        if self.listener.is_some() {
            ready.listener = got(at.next());
        }
        ready
    }

    /// Kill the sandbox (its pid 1) and reap it. Without namespaces, the stage is
    /// asked to end the program's group (and reap it) first, and killed only if it has
    /// not ended within [`GROUP_END_GRACE`].
    fn end_sandbox(&mut self) {
        let Some(stage) = self.stage.as_mut() else {
            return;
        };
        if self.grouped.is_some() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(stage.pid()),
                nix::sys::signal::Signal::SIGTERM,
            );
            let mut fds = [nix::poll::PollFd::new(
                self.pidfd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let grace = u16::try_from(GROUP_END_GRACE.as_millis()).unwrap_or(u16::MAX);
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(grace));
        }
        stage.signal_kill();
        let _ = stage.wait();
        if let Some(group) = self.grouped {
            super::group::end_orphans(group);
        }
    }

    fn wall_clock_reached(&mut self) -> i32 {
        // Counted before the kill: a fork bomb shows itself here.
        let (processes, threads) = self.stage.as_ref().map_or((0, 0), |s| count_below(s.pid()));
        self.end_sandbox();
        eprintln!(
            "sandbox: killed {}: wall-clock limit of {} s ({processes} processes, \
             {threads} threads running; --pids {})",
            self.name,
            self.args.wall(),
            self.args.pids()
        );
        EXIT_WALL
    }

    fn fork_bomb(&mut self) -> i32 {
        let (processes, threads) = self.stage.as_ref().map_or((0, 0), |s| count_below(s.pid()));
        self.end_sandbox();
        eprintln!(
            "sandbox: killed {}: process limit: forks still refused {} s after \
             --pids {} was reached ({processes} processes, {threads} threads running)",
            self.name,
            BOMB_GRACE.as_secs(),
            self.args.pids()
        );
        EXIT_PIDS
    }

    /// A call handed over by the filter: answered, or a violation that ends the run.
    fn on_listener(&mut self, revents: nix::poll::PollFlags) -> Option<i32> {
        use nix::poll::PollFlags;
        if revents.contains(PollFlags::POLLHUP) && !revents.contains(PollFlags::POLLIN) {
            // No process uses the filter any more: nothing can be notified.
            self.listener = None;
            return None;
        }
        if revents.is_empty() {
            return None;
        }
        let listener = self.listener.as_ref()?.as_fd();
        let outcome = match self.recorder.as_deref_mut() {
            Some(r) => r.handle(listener, Arch::native()),
            None => crate::notify::handle_with(listener, Arch::native(), self.egress, self.files),
        };
        match outcome {
            Outcome::Answered | Outcome::Retry => None,
            Outcome::Violation { pid, call, data } => {
                self.end_sandbox();
                eprintln!(
                    "sandbox: killed {} (pid {pid}): seccomp violation: {call}",
                    self.name
                );
                eprint!("{}", explain_violation(self.args, &data));
                Some(EXIT_VIOLATION)
            }
            Outcome::Lost(e) => {
                // Without a reader the kernel would answer every later violation with
                // ENOSYS: the sandbox cannot go on.
                self.end_sandbox();
                eprintln!(
                    "sandbox: killed {}: the seccomp notification listener failed ({e})",
                    self.name
                );
                Some(EXIT_SETUP)
            }
        }
    }

    /// The stage's report of the program's end.
    fn on_control(&mut self) -> Option<i32> {
        match self.ctl.try_recv() {
            Ok(Some((FromStage::Exited { code, signal }, _))) => {
                // The stage reports only once nothing else of the sandbox is left; its
                // own exit (the kernel tearing down the namespaces and mounts, 1 to 9
                // ms here) need not be waited for.
                if let Some(stage) = self.stage.take() {
                    stage.kill_without_reaping();
                }
                Some(program_status(&self.name, code, signal, self.groups))
            }
            Ok(_) => None,
            Err(_) => {
                self.ctl_open = false;
                None
            }
        }
    }

    /// The stage ended: the program's status, if it sent it first.
    fn on_stage_end(&mut self) -> i32 {
        if let Some(stage) = self.stage.as_mut() {
            let _ = stage.wait();
        }
        if let Some(group) = self.grouped {
            super::group::end_orphans(group);
        }
        while let Ok(Some((m, _))) = self.ctl.try_recv() {
            if let FromStage::Exited { code, signal } = m {
                return program_status(&self.name, code, signal, self.groups);
            }
        }
        fail("the sandbox ended without the program's status")
    }
}

/// What decided a violation, and the line that would allow the call (two lines, each
/// `sandbox:   ...`), from the policy the program runs under.
fn explain_violation(args: &RunArgs, data: &sandbox::policy::arch::SeccompData) -> String {
    let arch = Arch::native();
    let Ok(policy) = super::filter::effective_policy(args) else {
        return String::new();
    };
    let (_, by) = policy.explain(arch, data);
    let mut out = format!("sandbox:   decided by {by}\n");
    if let Some(name) = arch.syscall_name(data.nr) {
        out.push_str(&format!(
            "sandbox:   to allow it, a policy or profile line: `{}`\n",
            crate::explain::allowing_line(arch, name, &data.args)
        ));
    }
    out
}

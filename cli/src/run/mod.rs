//! `sandbox run`: any program under the sandbox layers.
//!
//! One file per concern: [`options`] (the command line and a profile merged into it),
//! `plan` (binds, program, ids, namespaces), `grants` (idmapped grants), `supervise`
//! (the run, step by step), `watch` (the loop that watches it), `cgroups`, `report`
//! (the status JSON and the exit status), `protocol` (supervisor ↔ stage), `filter`
//! (the policy compiled, the set-ID guard), `stage` (the stage and the payload,
//! inside).
//!
//! ```text
//! sandbox run (this process, the supervisor; outside). While the stage starts: finds
//! │ the program's files when no grant holds it (`super::deps`), sends the plan; while
//! │ the stage builds the root: makes the pids and memory cgroups (`Cgroups`) and the
//! │ cleanup child, sends the program's limits and filter with the cgroups' join
//! │ descriptors.
//! ├─ stage: a copy of the supervisor cloned in place, pid 1 of new
//! │  user/pid/net/mount/ipc/uts/cgroup namespaces (the network one made by the copy
//! │  itself right after the clone), on a CPU other than the supervisor's until it
//! │  forks. Builds the root (empty read-only tmpfs, the --ro/--rw/--dev binds,
//! │  --proc), joins the cgroups, then forks (and says so: the supervisor checks the
//! │  new process's namespaces and cgroups meanwhile):
//! │    └─ payload: locks down (fds, rlimits, capabilities, no_new_privs, Landlock;
//! │       dumpable until its exec) and installs the filter with a user-notification
//! │       listener *last*, sends its status and the listener to the supervisor, waits
//! │       for "go", execve()s.
//! └─ cleanup child: waits for the supervisor's end, removes the cgroups.
//! ```
//!
//! The filter is the policy (default: the `exec` preset) with its default action
//! replaced by `user-notify`: a call outside the policy blocks in the kernel and the
//! supervisor, holding the listener, prints one line naming the syscall and its
//! arguments, kills the sandbox (its pid 1, which takes the whole pid namespace) and
//! exits 159. The program never gets past the violation. execve is allowed by the
//! filter (the `exec` preset allows it for the programs' own use too); Landlock
//! limits what can be executed to the granted paths.

mod cgroups;
pub(crate) mod egress;
mod filter;
mod grants;
mod group;
pub mod options;
mod plan;
mod protocol;
mod report;
mod scratch;
mod stage;
mod supervise;
mod watch;

pub use options::RunArgs;
use stage::stage;

use sandbox::launch::LaunchError;
use std::time::Duration;

/// Exit status after a seccomp violation (128 + SIGSYS, as a shell reports it).
pub const EXIT_VIOLATION: i32 = 159;
/// Exit status when the wall-clock limit ended the program (as timeout(1)).
pub const EXIT_WALL: i32 = 124;
/// Exit status when a fork bomb was ended: forks were still refused [`BOMB_GRACE`] after
/// the pids cgroup's limit was reached (128 + SIGKILL, which ends it).
pub const EXIT_PIDS: i32 = 137;
/// How long forks may go on being refused at the pids limit before the sandbox is
/// ended as a fork bomb.
pub const BOMB_GRACE: Duration = Duration::from_secs(1);
/// How often the supervisor reads the pids cgroup's refusals.
const BOMB_TICK: Duration = Duration::from_millis(100);
/// Name prefix of the pids cgroups (`sandbox-run-<supervisor pid>`).
const CGROUP_PREFIX: &str = "sandbox-run-";
/// Exit status when the sandbox itself could not be set up.
pub const EXIT_SETUP: i32 = 125;
/// When the caller is root, the program runs as [`SANDBOX_UID`] inside, mapped to this
/// plus the supervisor's pid modulo 65536 outside: a user id of the sandbox's own.
pub const SANDBOX_ID_BASE: u32 = 0x7ff0_0000;
/// The program's uid and gid inside when the caller is root (else 0).
pub const SANDBOX_UID: u32 = 1000;

/// Why `sandbox run` could not run the program (printed as `sandbox: …`, exit 125).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command line asks for what cannot be (a bind that is not there, `--uid`
    /// for an unprivileged caller, `--tty` with a policy file...).
    #[error("{0}")]
    Options(String),
    /// The policy does not load or compile.
    #[error("{0}")]
    Policy(String),
    /// The program, or a file it needs, cannot be bound.
    #[error("{0}")]
    ProgramFiles(String),
    /// The stage could not be started in its namespaces.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// A cgroup could not be made, joined or checked.
    #[error("{0}")]
    Cgroup(String),
    /// The sandbox did not come up as asked: the stage's or payload's own failure, or
    /// a mismatch seen from outside.
    #[error("{0}")]
    Setup(String),
    /// The stage's failure, sent to the supervisor (which prints it).
    #[error("{0}")]
    Told(String),
    /// The control channel or the status file failed.
    #[error("{0}")]
    Io(String),
}

pub(crate) fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("sandbox: {msg}");
    EXIT_SETUP
}

/// `sandbox run`; returns the exit status.
pub fn run(args: RunArgs) -> i32 {
    match args
        .with_profile()
        .and_then(|args| supervise::supervise(args, None))
    {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

/// `sandbox run` with a filter that records every call into `recorder` and lets it run
/// (`sandbox learn`; `args` already through [`RunArgs::with_profile`]).
pub fn run_recording(args: RunArgs, recorder: &mut crate::learn::record::Recorder) -> i32 {
    match supervise::supervise(args, Some(recorder)) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

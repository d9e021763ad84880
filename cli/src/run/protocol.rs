//! What the supervisor and the stage say to each other over their channel.

use sandbox::ipc::{Limits, Message};
use sandbox::lockdown::{Bind, Rlimits, Status};
use serde::{Deserialize, Serialize};

/// Supervisor → stage.
// The plan is built and sent once per run: its size next to `Go` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize)]
pub(super) enum ToStage {
    Plan {
        program: String,
        argv: Vec<String>,
        env: Vec<String>,
        binds: Vec<Bind>,
        mount_proc: bool,
        /// A writable tmpfs of this many bytes at /tmp.
        scratch_tmp: Option<u64>,
        /// `--no-namespaces`: the scratch folder, which the stage removes once it has
        /// ended the program's group (also when the supervisor was killed).
        scratch_dir: Option<std::path::PathBuf>,
        /// The opt-outs asked (`--no-userns`: [`OptOut::NoUserNamespace`]).
        opt_outs: Vec<sandbox::lockdown::OptOut>,
        switch_to: Option<(u32, u32)>,
        /// The payload stays dumpable until its exec: the supervisor could not read
        /// its `/proc/PID/ns/*` otherwise (see `supervise::start_stage`).
        dumpable_until_exec: bool,
    },
    /// After the plan, made while the stage builds the root: what the program's process
    /// gets besides, and the cgroups the stage joins before it forks that process.
    Payload {
        rlimits: Rlimits,
        filter: Vec<u8>,
        /// The message comes with this many descriptors of cgroups' join files
        /// ([`Cgroup::open_self_join`]).
        join_cgroups: usize,
    },
    /// Before the plan, in as many messages as needed: detached, idmapped mount trees
    /// (one descriptor each) for the binds at these indices of the plan's `binds`.
    Trees(Vec<usize>),
    Go,
}

impl Message for ToStage {
    fn fd_count(&self) -> usize {
        match self {
            ToStage::Payload { join_cgroups, .. } => *join_cgroups,
            ToStage::Plan { .. } => 0,
            ToStage::Trees(at) => at.len(),
            ToStage::Go => 0,
        }
    }
    const MAX_FDS: usize = TREES_PER_MESSAGE;
}

/// How many trees one [`ToStage::Trees`] carries at most (the channel's ceiling).
pub(super) const TREES_PER_MESSAGE: usize = sandbox::ipc::MAX_FDS_CEILING;

/// Stage → supervisor.
#[derive(Serialize, Deserialize)]
pub(super) enum FromStage {
    /// The stage has forked the payload (which now locks down).
    Forked,
    /// Locked down; the listener comes with it.
    Ready(Box<Status>),
    Failed(String),
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
}

impl Message for FromStage {
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, FromStage::Ready(_)))
    }
    const MAX_FDS: usize = 1;
}

pub(super) fn limits() -> Limits {
    Limits {
        max_message: 1 << 20,
    }
}

//! Launching a sandboxed process — the trusted side's half of the sandbox, as
//! [`crate::lockdown`] is the renderer's: the spawn spec and the clone into new
//! namespaces ([`spawn`]), network modes ([`NetMode`], [`EmptyNetwork`]), user and
//! group id maps ([`own_id`]), idmapped bind mounts ([`Idmap`]), the check from outside that a renderer is locked down
//! as asked ([`verify_from_outside`]), the kernel feature report ([`check`]) and the
//! cgroups that hold a sandbox ([`cgroup`]).
//!
//! ```text
//! spawn (this module)   user, pid, net, mount, ipc, uts, cgroup namespaces; id maps
//! ── exec ──
//! lock_down (crate::lockdown, in the new process)
//! verify_from_outside (this module, back in the spawner)
//! ```

pub mod cgroup;
pub mod check;
mod holder;
mod idmap;
mod ids;
mod namespaces;
mod network;
mod spawn;
pub mod userns;
mod verify;

pub use idmap::Idmap;
pub use ids::{map_ids, own_id, OWN_ID_BASE, OWN_ID_RANGE};
pub use namespaces::{Namespaces, NetMode};
pub use network::EmptyNetwork;
pub use spawn::{
    can_inspect_in_place_children, spawn, spawn_in_place, InPlace, SpawnSpec, Spawned,
};
pub use verify::{verify_from_outside, verify_with_namespaces, Asked, NamespaceLinks, OutsideView};

use std::io;

/// Why a process could not be launched into its namespaces: the call that failed and
/// its cause (an OS error carries its errno: EPERM when a filter or policy forbids user
/// namespaces, ENOSPC when their limit is reached).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the sandbox ({call}): {source}")]
pub struct LaunchError {
    /// The call or step that failed.
    pub call: &'static str,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl LaunchError {
    pub(crate) fn new(call: &'static str, source: io::Error) -> LaunchError {
        LaunchError { call, source }
    }

    pub(crate) fn msg(call: &'static str, msg: String) -> LaunchError {
        LaunchError::new(call, io::Error::other(msg))
    }

    /// The errno, if the cause was an OS error.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

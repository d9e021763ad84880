//! Resource limits. Defaults (all configurable):
//!
//! | limit | default | why |
//! |---|---|---|
//! | RLIMIT_AS | 4 GiB | bounds a memory bomb; leaves room for allocators' reservations |
//! | RLIMIT_NOFILE | 256 | a renderer holds a channel and a few brokered fds |
//! | RLIMIT_FSIZE | 0 | a renderer grows no file. Note: this covers memfds too — a renderer that must fill a memfd for a large payload needs a non-zero limit |
//! | RLIMIT_CORE | 0 | no core dumps of untrusted memory |
//! | RLIMIT_CPU | 300 s | a spinning renderer is killed (SIGXCPU, then SIGKILL at the hard limit) |
//! | RLIMIT_MEMLOCK | 0 | no locked memory |
//! | RLIMIT_NPROC | 256 | processes and threads of the sandbox's own user (counted per user namespace) |

use super::{Layer, LockdownError};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use serde::{Deserialize, Serialize};

/// The limits a renderer gets (soft = hard, so the renderer cannot raise them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimits {
    /// RLIMIT_AS in bytes.
    pub address_space: u64,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
    /// RLIMIT_FSIZE in bytes.
    pub file_size: u64,
    /// RLIMIT_CORE in bytes.
    pub core: u64,
    /// RLIMIT_CPU in seconds (the hard limit is one second more, so SIGXCPU comes first).
    pub cpu_seconds: u64,
    /// RLIMIT_MEMLOCK in bytes.
    pub memlock: u64,
    /// RLIMIT_NPROC: processes plus threads of the sandbox's uid. The kernel counts
    /// them per user namespace, so only the sandbox's own count.
    pub processes: u64,
}

impl Default for Rlimits {
    fn default() -> Self {
        Rlimits {
            address_space: 4 << 30,
            open_files: 256,
            file_size: 0,
            core: 0,
            cpu_seconds: 300,
            memlock: 0,
            processes: 256,
        }
    }
}

impl Rlimits {
    fn table(&self) -> [(Resource, &'static str, u64, u64); 7] {
        [
            (
                Resource::RLIMIT_AS,
                "setrlimit(RLIMIT_AS)",
                self.address_space,
                self.address_space,
            ),
            (
                Resource::RLIMIT_NOFILE,
                "setrlimit(RLIMIT_NOFILE)",
                self.open_files,
                self.open_files,
            ),
            (
                Resource::RLIMIT_FSIZE,
                "setrlimit(RLIMIT_FSIZE)",
                self.file_size,
                self.file_size,
            ),
            (
                Resource::RLIMIT_CORE,
                "setrlimit(RLIMIT_CORE)",
                self.core,
                self.core,
            ),
            (
                Resource::RLIMIT_CPU,
                "setrlimit(RLIMIT_CPU)",
                self.cpu_seconds,
                self.cpu_seconds.saturating_add(1),
            ),
            (
                Resource::RLIMIT_MEMLOCK,
                "setrlimit(RLIMIT_MEMLOCK)",
                self.memlock,
                self.memlock,
            ),
            (
                Resource::RLIMIT_NPROC,
                "setrlimit(RLIMIT_NPROC)",
                self.processes,
                self.processes,
            ),
        ]
    }
}

pub(super) fn apply(limits: &Rlimits) -> Result<(), LockdownError> {
    for (resource, call, soft, hard) in limits.table() {
        setrlimit(resource, soft, hard)
            .map_err(|e| LockdownError::new(Layer::Rlimits, call, e.into()))?;
    }
    Ok(())
}

pub(super) fn verify(limits: &Rlimits) -> Result<bool, LockdownError> {
    for (resource, _, soft, hard) in limits.table() {
        let got = getrlimit(resource)
            .map_err(|e| LockdownError::new(Layer::Rlimits, "getrlimit", e.into()))?;
        if got != (soft, hard) {
            return Err(LockdownError::msg(
                Layer::Rlimits,
                "getrlimit",
                format!("{resource:?} reads back as {got:?}, not ({soft}, {hard})"),
            ));
        }
    }
    Ok(true)
}

//! An empty network namespace made once and shared ([`NetMode::Reuse`]).

use super::holder::Holder;
use super::ids::{write_id_maps, OWN_ID_BASE, OWN_ID_RANGE};
use super::spawn::ns_err;
use super::LaunchError;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// An empty network namespace (only a down loopback) made once, for
/// [`NetMode::Reuse`](super::NetMode::Reuse). It is owned by a user namespace of its own, made with it; each
/// renderer joins that user namespace, then the network namespace, then creates its
/// own user namespace and the rest below it — so the renderer has no capability over
/// the shared network namespace, and an unprivileged caller can do all of this.
#[derive(Debug)]
pub struct EmptyNetwork {
    pub(super) user: OwnedFd,
    pub(super) net: OwnedFd,
    /// Made by root: its user namespace maps [`OWN_ID_RANGE`] ids from
    /// [`OWN_ID_BASE`], so that each renderer can take an outside id of its own.
    pub(super) own_ids: bool,
}

impl EmptyNetwork {
    /// Make the namespaces (a short-lived child creates them; we keep fds to them).
    pub fn create() -> Result<Arc<EmptyNetwork>, LaunchError> {
        let holder = Holder::start(
            libc::CLONE_NEWUSER | libc::CLONE_NEWNET,
            "clone(CLONE_NEWUSER|CLONE_NEWNET)",
        )?;
        let raw = holder.pid;
        // Made by root, the namespace maps a range of ids, each renderer taking one.
        let own_ids = nix::unistd::geteuid().is_root();
        if own_ids {
            let range = format!("0 {OWN_ID_BASE} {OWN_ID_RANGE}\n");
            let write = |file: &str| std::fs::write(format!("/proc/{raw}/{file}"), &range);
            write("uid_map").map_err(ns_err("write /proc/PID/uid_map"))?;
            write("gid_map").map_err(ns_err("write /proc/PID/gid_map"))?;
        } else {
            write_id_maps(raw, None, None)?;
        }
        let made = EmptyNetwork {
            user: holder.open("user")?,
            net: holder.open("net")?,
            own_ids,
        };
        holder.release();
        Ok(Arc::new(made))
    }
}

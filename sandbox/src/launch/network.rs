//! An empty network namespace made once and shared ([`NetMode::Reuse`]).

use super::ids::{write_id_maps, OWN_ID_BASE, OWN_ID_RANGE};
use super::spawn::{ns_err, Spawned};
use super::LaunchError;
use crate::sys::spawn::hold_namespaces;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
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
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err("pipe2")(e.into()))
        };
        let (hold_r, hold_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let raw = hold_namespaces(
            libc::CLONE_NEWUSER | libc::CLONE_NEWNET,
            hold_r.as_raw_fd(),
            hold_w.as_raw_fd(),
            ready_w.as_raw_fd(),
        )
        .map_err(ns_err("clone(CLONE_NEWUSER|CLONE_NEWNET)"))?;
        drop(hold_r);
        drop(ready_w);
        let mut holder = Spawned::adopt(raw);
        let mut byte = [0u8; 1];
        if std::fs::File::from(ready_r)
            .read(&mut byte)
            .map_err(ns_err("read holder"))?
            != 1
        {
            return Err(LaunchError::new(
                "holder",
                std::io::Error::from_raw_os_error(libc::ECHILD),
            ));
        }
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
        let open = |ns: &str| {
            std::fs::File::open(format!("/proc/{raw}/ns/{ns}"))
                .map(OwnedFd::from)
                .map_err(ns_err("open /proc/PID/ns"))
        };
        let made = EmptyNetwork {
            user: open("user")?,
            net: open("net")?,
            own_ids,
        };
        drop(hold_w);
        let _ = holder.wait();
        Ok(Arc::new(made))
    }
}

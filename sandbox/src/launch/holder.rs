//! A short-lived child that makes namespaces and holds them while the caller writes
//! their id maps and opens them (`/proc/PID/ns/*`), then ends when released.

use super::spawn::{ns_err, Spawned};
use super::LaunchError;
use crate::sys::spawn::hold_namespaces;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

/// The holding child, until [`Holder::release`].
pub(super) struct Holder {
    /// Its pid (for `/proc/PID/...`).
    pub(super) pid: i32,
    child: Spawned,
    /// Closing it lets the child exit.
    hold_w: OwnedFd,
}

impl Holder {
    /// A child in new namespaces `flags`, ready (it has made them); `what` names the
    /// clone in errors.
    pub(super) fn start(flags: libc::c_int, what: &'static str) -> Result<Holder, LaunchError> {
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err("pipe2")(e.into()))
        };
        let (hold_r, hold_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let pid = hold_namespaces(
            flags,
            hold_r.as_raw_fd(),
            hold_w.as_raw_fd(),
            ready_w.as_raw_fd(),
        )
        .map_err(ns_err(what))?;
        drop(hold_r);
        drop(ready_w);
        let child = Spawned::adopt(pid);
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
        Ok(Holder { pid, child, hold_w })
    }

    /// Open its namespace `ns` (`user`, `net`...).
    pub(super) fn open(&self, ns: &str) -> Result<OwnedFd, LaunchError> {
        std::fs::File::open(format!("/proc/{}/ns/{ns}", self.pid))
            .map(OwnedFd::from)
            .map_err(ns_err("open /proc/PID/ns"))
    }

    /// Let it exit, and leave the reaping to the caller (when the child has had time
    /// to exit: waiting at once is a third of making one here).
    pub(super) fn let_go(self) -> Spawned {
        let Holder { child, hold_w, .. } = self;
        drop(hold_w);
        child
    }

    /// Let it exit, and reap it.
    pub(super) fn release(self) {
        let Holder {
            mut child, hold_w, ..
        } = self;
        drop(hold_w);
        let _ = child.wait();
    }
}

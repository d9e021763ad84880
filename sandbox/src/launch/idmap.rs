//! Idmapped bind mounts: a granted folder shown to a program that runs as a user id of
//! its own as if that program were the folder's owner, and written as that owner.
//!
//! A root caller's `sandbox run` program runs as an outside id of its own (not root,
//! counted alone by RLIMIT_NPROC). Bound plainly, a folder only root may enter (a
//! `mktemp -d`) stays closed to it, and what it writes belongs to that id. Bound through
//! an idmap (`mount_setattr` with `MOUNT_ATTR_IDMAP`) whose user namespace maps the
//! caller's uid and gid to the program's, files the caller owns appear as the
//! program's, and files the program creates are the caller's on disk; files of anyone
//! else appear as the overflow id and keep their permissions for "others".
//!
//! Only a privileged caller can make one (it needs CAP_SYS_ADMIN over the file system's
//! superblock), and only on file systems that support it (ext4, xfs, btrfs, tmpfs since
//! Linux 6.3, overlayfs...); elsewhere `tree` fails (EINVAL) and the caller binds the
//! folder plainly.

use super::spawn::{ns_err, Spawned};
use super::LaunchError;
use crate::sys::spawn::hold_namespaces;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// A user namespace that maps one owner (uid, gid) to one program id.
#[derive(Debug)]
pub struct Idmap {
    userns: OwnedFd,
}

impl Idmap {
    /// Files owned by `owner` (uid, gid) shown as owned by `program` (uid and gid).
    pub fn new(owner: (u32, u32), program: u32) -> Result<Idmap, LaunchError> {
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err("pipe2")(e.into()))
        };
        let (hold_r, hold_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let raw = hold_namespaces(
            libc::CLONE_NEWUSER,
            hold_r.as_raw_fd(),
            hold_w.as_raw_fd(),
            ready_w.as_raw_fd(),
        )
        .map_err(ns_err("clone(CLONE_NEWUSER)"))?;
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
                "idmap holder",
                std::io::Error::from_raw_os_error(libc::ECHILD),
            ));
        }
        let write = |file: &str, text: String| std::fs::write(format!("/proc/{raw}/{file}"), text);
        write("uid_map", format!("{} {program} 1\n", owner.0))
            .map_err(ns_err("write /proc/PID/uid_map"))?;
        write("gid_map", format!("{} {program} 1\n", owner.1))
            .map_err(ns_err("write /proc/PID/gid_map"))?;
        let userns = std::fs::File::open(format!("/proc/{raw}/ns/user"))
            .map(OwnedFd::from)
            .map_err(ns_err("open /proc/PID/ns/user"))?;
        drop(hold_w);
        let _ = holder.wait();
        Ok(Idmap { userns })
    }

    /// A detached, idmapped copy of the mount tree at `path` (with the mounts beneath
    /// it), to attach with `move_mount` (see `Bind::tree`). EINVAL: the file system
    /// does not support idmapped mounts.
    pub fn tree(&self, path: &Path) -> std::io::Result<OwnedFd> {
        let tree = crate::sys::mount::open_tree_clone(path)?;
        crate::sys::mount::set_idmap(tree.as_fd(), self.userns.as_fd())?;
        Ok(tree)
    }
}

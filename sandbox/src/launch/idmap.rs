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

use super::holder::Holder;
use super::spawn::ns_err;
use super::LaunchError;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// A user namespace that maps one owner (uid, gid) to one program id.
#[derive(Debug)]
pub struct Idmap {
    userns: OwnedFd,
    /// The child that made it, let go but reaped only on drop (keep the `Idmap` while
    /// other work goes on, and the wait then costs nothing).
    _holder: super::spawn::Spawned,
}

impl Idmap {
    /// Files owned by `owner` (uid, gid) shown as owned by `program` (uid and gid).
    pub fn new(owner: (u32, u32), program: u32) -> Result<Idmap, LaunchError> {
        let holder = Holder::start(libc::CLONE_NEWUSER, "clone(CLONE_NEWUSER)")?;
        let raw = holder.pid;
        let write = |file: &str, text: String| std::fs::write(format!("/proc/{raw}/{file}"), text);
        write("uid_map", format!("{} {program} 1\n", owner.0))
            .map_err(ns_err("write /proc/PID/uid_map"))?;
        write("gid_map", format!("{} {program} 1\n", owner.1))
            .map_err(ns_err("write /proc/PID/gid_map"))?;
        let userns = holder.open("user")?;
        Ok(Idmap {
            userns,
            _holder: holder.let_go(),
        })
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

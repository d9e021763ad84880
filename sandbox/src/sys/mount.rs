//! The new mount API, for idmapped bind mounts: a detached copy of a tree
//! (`open_tree(OPEN_TREE_CLONE)`), an idmap set on it (`mount_setattr` with
//! `MOUNT_ATTR_IDMAP`), and the tree attached somewhere (`move_mount`). Structures and
//! numbers are include/uapi/linux/mount.h's.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0, 32 bytes).
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// A detached copy of the mount tree at `path`, with the mounts beneath it.
pub fn open_tree_clone(path: &Path) -> io::Result<OwnedFd> {
    let p = c_path(path)?;
    let flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: `p` is NUL-terminated and lives across the call; the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: a non-negative open_tree result is a new descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Give the detached tree `tree` (and the mounts beneath it) the idmap of the user
/// namespace `userns`.
pub fn set_idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: userns.as_raw_fd() as u64,
        ..MountAttr::default()
    };
    // SAFETY: "" is a static NUL-terminated string; `attr` is a live, initialised
    // local of the size passed, which the kernel only reads; both fds are borrowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attach the detached tree whose descriptor is `tree` at `target` (a bad number
/// fails with EBADF).
pub fn move_mount_to(tree: std::os::fd::RawFd, target: &Path) -> io::Result<()> {
    let t = c_path(target)?;
    // SAFETY: "" and `t` are NUL-terminated and live across the call; the kernel only
    // reads them; `tree` is a plain number the kernel looks up (and refuses if it is
    // not an open detached mount).
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_attr_has_the_kernel_size() {
        assert_eq!(std::mem::size_of::<super::MountAttr>(), 32);
    }
}

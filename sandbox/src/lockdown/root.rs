//! The empty root: a private mount namespace, a new empty tmpfs as `/` (pivot_root,
//! or chroot where pivot_root cannot work), the old root detached, the new root
//! remounted read-only, cwd `/`, no /proc. Granted paths are bind-mounted in first, at
//! the same place, read-only unless writable.
//!
//! Grants are mounted parents before children, whatever their order in the list, so
//! that a grant nested in another (`--rw proj --ro proj/.git`) is mounted over it and
//! its own mode holds there. A nested grant's place must already exist in the grant
//! above it: nothing is created, truncated or followed through a symlink in a granted
//! (host) folder.

use super::{Bind, Config, Layer, LockdownError};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// How the root was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootMethod {
    /// pivot_root(2) into the new root; the old root is detached.
    PivotRoot,
    /// chroot(2): pivot_root failed with EINVAL (e.g. the root is an initramfs). The old
    /// root stays mounted, unreachable by path.
    Chroot,
}

fn err(call: &'static str) -> impl Fn(nix::Error) -> LockdownError {
    move |e| LockdownError::new(Layer::EmptyRoot, call, e.into())
}

/// Where the new root is built: a directory every system has, shadowed only in this
/// private mount namespace (bubblewrap uses /tmp the same way).
const STAGING: [&str; 3] = ["/tmp", "/run", "/mnt"];

/// Where [`Config::scratch_tmp`] is mounted.
pub(super) const SCRATCH_TMP: &str = "/tmp";

pub(super) fn enter_empty_root(config: &Config) -> Result<RootMethod, LockdownError> {
    let (grants, mount_proc) = (&config.binds[..], config.mount_proc);
    check_paths(grants)?;
    if config.scratch_tmp.is_some() && grants.iter().any(|g| g.inside() == Path::new(SCRATCH_TMP)) {
        return Err(LockdownError::msg(
            Layer::EmptyRoot,
            "grant",
            format!("a grant at {SCRATCH_TMP} and a scratch {SCRATCH_TMP}: ask for one"),
        ));
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(err("mount(/, MS_REC|MS_PRIVATE)"))?;
    let base = STAGING
        .iter()
        .find(|d| Path::new(d).is_dir())
        .ok_or_else(|| {
            LockdownError::msg(
                Layer::EmptyRoot,
                "staging",
                "none of /tmp, /run, /mnt exists".into(),
            )
        })?;
    mount(
        Some("tmpfs"),
        *base,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755,size=1m,nr_inodes=1024"),
    )
    .map_err(err("mount(tmpfs)"))?;
    nix::unistd::chdir(*base).map_err(err("chdir(new root)"))?;
    std::fs::create_dir(OLD_ROOT).map_err(io("mkdir(old root)"))?;
    let grants = parents_first(grants);
    let method = match nix::unistd::pivot_root(".", OLD_ROOT) {
        Ok(()) => {
            nix::unistd::chdir("/").map_err(err("chdir(/)"))?;
            scratch_tmp(Path::new("/"), config.scratch_tmp)?;
            bind_from_old_root(&grants, mount_proc, config.scratch_tmp.is_some())?;
            RootMethod::PivotRoot
        }
        Err(nix::Error::EINVAL) => {
            std::fs::remove_dir(OLD_ROOT).map_err(io("rmdir(old root)"))?;
            scratch_tmp(Path::new(base), config.scratch_tmp)?;
            bind_and_chroot(&grants, base, config.scratch_tmp.is_some())?;
            RootMethod::Chroot
        }
        Err(e) => return Err(err("pivot_root")(e)),
    };
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(err("mount(/, MS_REMOUNT|MS_RDONLY)"))?;
    Ok(method)
}

fn io(call: &'static str) -> impl Fn(std::io::Error) -> LockdownError {
    move |e| LockdownError::new(Layer::EmptyRoot, call, e)
}

/// Every grant names absolute paths without `..`, outside and inside.
fn check_paths(grants: &[Bind]) -> Result<(), LockdownError> {
    let bad =
        |p: &Path| !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir));
    match grants.iter().find(|g| bad(&g.path) || bad(g.inside())) {
        Some(g) => Err(LockdownError::msg(
            Layer::EmptyRoot,
            "grant",
            format!(
                "{}: grants must be absolute paths without `..`",
                g.path.display()
            ),
        )),
        None => Ok(()),
    }
}

/// After pivot_root: bind the grants from the old root (now at /.old-root, so a grant
/// under the staging directory is not hidden by the tmpfs mounted there), mount /proc
/// if asked, and detach the old root.
fn bind_from_old_root(
    grants: &[&Bind],
    mount_proc: bool,
    scratch: bool,
) -> Result<(), LockdownError> {
    for g in grants {
        let source = Path::new("/").join(OLD_ROOT).join(relative(&g.path));
        bind(&source, g.inside(), NewRoot::at("/", scratch), g)?;
        check_identity(g, g.inside())?;
    }
    if mount_proc {
        // Before the old root goes: the kernel mounts a new proc only while a fully
        // visible one exists in this mount namespace.
        std::fs::create_dir_all("/proc").map_err(io("mkdir(/proc)"))?;
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(err("mount(proc)"))?;
    }
    umount2(OLD_ROOT_ABS, MntFlags::MNT_DETACH).map_err(err("umount2(old root, MNT_DETACH)"))?;
    std::fs::remove_dir(OLD_ROOT_ABS).map_err(io("rmdir(old root)"))
}

/// Where pivot_root cannot work (e.g. the root is an initramfs): bind the grants from
/// their real paths, which must then not be under the staging directory `base` (the
/// tmpfs hides it), and chroot.
fn bind_and_chroot(grants: &[&Bind], base: &str, scratch: bool) -> Result<(), LockdownError> {
    for g in grants {
        if g.path.starts_with(base) {
            return Err(LockdownError::msg(
                Layer::EmptyRoot,
                "grant",
                format!(
                    "{}: under {base}, which the chroot fallback hides",
                    g.path.display()
                ),
            ));
        }
        let target = Path::new(base).join(relative(g.inside()));
        bind(&g.path, &target, NewRoot::at(base, scratch), g)?;
        check_identity(g, &target)?;
    }
    nix::unistd::chroot(".").map_err(err("chroot"))?;
    nix::unistd::chdir("/").map_err(err("chdir(/)"))
}

/// The scratch tmpfs of `size` bytes at `root`/tmp, if asked, before the grants (those
/// beneath /tmp are mounted on it).
fn scratch_tmp(root: &Path, size: Option<u64>) -> Result<(), LockdownError> {
    let Some(size) = size else {
        return Ok(());
    };
    let at = root.join(relative(Path::new(SCRATCH_TMP)));
    std::fs::create_dir(&at).map_err(io("mkdir(scratch /tmp)"))?;
    mount(
        Some("tmpfs"),
        &at,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("mode=1777,size={size}").as_str()),
    )
    .map_err(err("mount(scratch /tmp tmpfs)"))
}

/// Where the old root sits between pivot_root and its detach (relative to the new root).
const OLD_ROOT: &str = ".old-root";
const OLD_ROOT_ABS: &str = "/.old-root";

/// What is bound at `target` must be the file the spawner checked (`g.identity`).
fn check_identity(g: &Bind, target: &Path) -> Result<(), LockdownError> {
    use std::os::unix::fs::MetadataExt;
    let Some(want) = g.identity else {
        return Ok(());
    };
    let m = std::fs::metadata(target)
        .map_err(|e| LockdownError::new(Layer::EmptyRoot, "stat (bound grant)", e))?;
    if (m.dev(), m.ino()) != want {
        return Err(LockdownError::msg(
            Layer::EmptyRoot,
            "grant",
            format!(
                "{}: not the file that was checked (it changed before it was bound)",
                g.path.display()
            ),
        ));
    }
    Ok(())
}

/// The grants ordered so that a grant comes after every grant whose place holds it
/// (by the number of components of where it appears; the order given otherwise).
fn parents_first(grants: &[Bind]) -> Vec<&Bind> {
    let mut sorted: Vec<&Bind> = grants.iter().collect();
    sorted.sort_by_key(|g| g.inside().components().count());
    sorted
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// Make the place where `source` is bound: a directory, or an empty file, created in
/// the new root's own tmpfs. A place that already exists (inside a grant mounted
/// before) is used as it is, if it has the source's type; it is never created,
/// truncated or followed through a symlink there — that would change the host's
/// folder, or bind somewhere else than asked.
fn make_target(source: &Path, target: &Path, root: NewRoot<'_>) -> Result<(), LockdownError> {
    let is_dir = source.is_dir();
    let mut at = PathBuf::from("/");
    for c in relative(target).components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(LockdownError::msg(
                    Layer::EmptyRoot,
                    "grant",
                    format!(
                        "{}: {} is a symbolic link in a granted folder; refused",
                        target.display(),
                        at.display()
                    ),
                ))
            }
            Ok(m) if at.as_path() == target => {
                if m.is_dir() != is_dir {
                    return Err(LockdownError::msg(
                        Layer::EmptyRoot,
                        "grant",
                        format!(
                            "{}: {} is already there, and is not a {}",
                            source.display(),
                            target.display(),
                            if is_dir { "directory" } else { "file" }
                        ),
                    ));
                }
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !on_root_tmpfs(&at, root) {
                    return Err(LockdownError::msg(
                        Layer::EmptyRoot,
                        "grant",
                        format!(
                            "{}: {} does not exist in the grant that holds it (it is not \
                             created in a granted folder)",
                            source.display(),
                            at.display()
                        ),
                    ));
                }
                if at.as_path() == target && !is_dir {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&at)
                        .map_err(io("create (bind target)"))?;
                } else {
                    std::fs::create_dir(&at).map_err(io("mkdir (bind target)"))?;
                }
            }
            Err(e) => return Err(io("stat (bind target)")(e)),
        }
    }
    Ok(())
}

/// The new root being built: where its tmpfs is, and whether it has a scratch /tmp.
#[derive(Clone, Copy)]
struct NewRoot<'a> {
    at: &'a Path,
    scratch: bool,
}

impl NewRoot<'_> {
    fn at(at: &str, scratch: bool) -> NewRoot<'_> {
        NewRoot {
            at: Path::new(at),
            scratch,
        }
    }
}

/// Whether the parent of `path` is on the new root's own tmpfs or its scratch /tmp,
/// not inside a grant.
fn on_root_tmpfs(path: &Path, root: NewRoot<'_>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = path.parent().unwrap_or(Path::new("/"));
    let Ok(p) = std::fs::metadata(parent) else {
        return false;
    };
    let mut ours = vec![root.at.to_path_buf()];
    if root.scratch {
        ours.push(root.at.join(relative(Path::new(SCRATCH_TMP))));
    }
    ours.iter()
        .filter_map(|r| std::fs::metadata(r).ok())
        .any(|r| r.dev() == p.dev())
}

/// Bind `source` at `target` (see [`make_target`]; `root` is the new root's tmpfs),
/// read-only unless `writable`.
fn bind(source: &Path, target: &Path, root: NewRoot<'_>, g: &Bind) -> Result<(), LockdownError> {
    let writable = g.writable;
    make_target(source, target, root)?;
    match g.tree {
        // A tree made for it (idmapped): attached as it is.
        Some(tree) => crate::sys::mount::move_mount_to(tree, target)
            .map_err(|e| LockdownError::new(Layer::EmptyRoot, "move_mount", e))?,
        None => mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(err("mount(MS_BIND)"))?,
    }
    // A bind remount must keep the flags the kernel locked on the source mount.
    let flags_now = statvfs(target).map_err(err("statvfs"))?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID;
    // Device nodes are granted one by one (a minimal /dev): only those keep working.
    let is_device = std::fs::metadata(source)
        .map(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_char_device() || m.file_type().is_block_device()
        })
        .unwrap_or(false);
    if !is_device || flags_now.contains(FsFlags::ST_NODEV) {
        flags |= MsFlags::MS_NODEV;
    }
    if !writable || flags_now.contains(FsFlags::ST_RDONLY) {
        flags |= MsFlags::MS_RDONLY;
    }
    // Nothing runs from a writable bind (Landlock grants no execute there either).
    if writable || flags_now.contains(FsFlags::ST_NOEXEC) {
        flags |= MsFlags::MS_NOEXEC;
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(err("mount(MS_REMOUNT|MS_BIND)"))
}

/// The root must list nothing but the first components of the grants.
pub(super) fn verify_empty(config: &Config) -> Result<bool, LockdownError> {
    let (grants, mount_proc) = (&config.binds[..], config.mount_proc);
    let mut allowed: Vec<std::ffi::OsString> = grants
        .iter()
        .filter_map(|g| {
            g.inside().components().find_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
        })
        .collect();
    if mount_proc {
        allowed.push("proc".into());
    }
    if config.scratch_tmp.is_some() {
        allowed.push("tmp".into());
    }
    let entries = std::fs::read_dir("/")
        .map_err(|e| LockdownError::new(Layer::EmptyRoot, "readdir(/)", e))?;
    for entry in entries {
        let name = entry
            .map_err(|e| LockdownError::new(Layer::EmptyRoot, "readdir(/)", e))?
            .file_name();
        if !allowed.contains(&name) {
            return Err(LockdownError::msg(
                Layer::EmptyRoot,
                "verify",
                format!("/ still holds {name:?}"),
            ));
        }
    }
    if !mount_proc && std::path::Path::new("/proc/self").exists() {
        return Err(LockdownError::msg(
            Layer::EmptyRoot,
            "verify",
            "/proc is reachable".into(),
        ));
    }
    Ok(true)
}

//! `--no-namespaces`: the program's private scratch folder (its HOME and TMPDIR), made
//! where the caller's temporary files go, granted writable, and removed after the run.

use super::RunError;
use sandbox::lockdown::Bind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A folder of the caller's (mode 0700), removed with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// A new folder `sandbox-run.XXXXXX` in the caller's temporary folder.
    pub(crate) fn new() -> Result<ScratchDir, RunError> {
        let template = std::env::temp_dir().join("sandbox-run.XXXXXX");
        let path = nix::unistd::mkdtemp(&template).map_err(|e| {
            RunError::Setup(format!(
                "cannot make a scratch folder in {}: {}",
                std::env::temp_dir().display(),
                crate::words::errno(e as i32)
            ))
        })?;
        Ok(ScratchDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The folder as a writable grant at its own path.
    pub(crate) fn bind(&self) -> Result<Bind, RunError> {
        let meta = std::fs::symlink_metadata(&self.path)
            .map_err(|e| RunError::Setup(format!("{}: {e}", self.path.display())))?;
        Ok(Bind {
            identity: Some((meta.dev(), meta.ino())),
            ..Bind::read_write(&self.path)
        })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        remove_tree(&self.path);
    }
}

/// Remove the folder `dir` and everything in it, whatever the program left there:
/// folders of mode 0 are opened up, links are never followed, and however deep the
/// tree, at most two descriptors are open at a time (the walk goes down with `openat`
/// and back up through `..`, starting each folder's listing again). Said on stderr
/// if it fails.
pub(crate) fn remove_tree(dir: &Path) {
    if let Err(e) = remove_tree_inner(dir) {
        if e != nix::Error::ENOENT {
            eprintln!(
                "sandbox: cannot remove the scratch folder {}: {}",
                dir.display(),
                crate::words::errno(e as i32)
            );
        }
    }
}

fn remove_tree_inner(dir: &Path) -> nix::Result<()> {
    use nix::fcntl::{openat, OFlag, AT_FDCWD};
    use nix::sys::stat::{fchmod, fstatat, Mode, SFlag};
    use nix::unistd::{unlinkat, UnlinkatFlags};
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut current = openat(AT_FDCWD, dir, flags, Mode::empty())?;
    let mut depth = 0usize;
    loop {
        let _ = fchmod(&current, Mode::S_IRWXU);
        match first_entry(&current)? {
            Some(name) => {
                let meta = fstatat(
                    &current,
                    name.as_c_str(),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
                if SFlag::from_bits_truncate(meta.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                    unlinkat(&current, name.as_c_str(), UnlinkatFlags::NoRemoveDir)?;
                } else if unlinkat(&current, name.as_c_str(), UnlinkatFlags::RemoveDir).is_err() {
                    current = openat(&current, name.as_c_str(), flags, Mode::empty())?;
                    depth += 1;
                }
            }
            None if depth == 0 => break,
            None => {
                // Empty: up, where the next listing finds it and removes it.
                current = openat(&current, c"..", flags, Mode::empty())?;
                depth -= 1;
            }
        }
    }
    drop(current);
    nix::unistd::unlinkat(AT_FDCWD, dir, UnlinkatFlags::RemoveDir)
}

/// The first name in folder `dir` other than `.` and `..`.
fn first_entry(dir: &std::os::fd::OwnedFd) -> nix::Result<Option<std::ffi::CString>> {
    use nix::fcntl::{openat, OFlag};
    let own = openat(
        dir,
        c".",
        OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let mut listing = nix::dir::Dir::from_fd(own)?;
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            return Ok(Some(name.to_owned()));
        }
    }
    Ok(None)
}

//! `--no-namespaces`: the program's private scratch folder (its HOME and TMPDIR), made
//! where the caller's temporary files go, granted writable, and removed after the run.

use super::RunError;
use sandbox::lockdown::Bind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
        if std::fs::remove_dir_all(&self.path).is_ok() {
            return;
        }
        // The program may have left folders it cannot be emptied through (mode 0):
        // open them up (never following a link) and try again.
        open_up(&self.path);
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!(
                "sandbox: cannot remove the scratch folder {}: {e}",
                self.path.display()
            );
        }
    }
}

/// Every folder beneath `dir` (and `dir`) made 0700, links not followed.
fn open_up(dir: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            open_up(&entry.path());
        }
    }
}

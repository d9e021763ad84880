//! The tree of grants the file-service targets resolve beneath (`file_paths`,
//! `open_request`): made once per process in the temporary directory.

use broker::services::files::{Access, FileService, Grant};
use std::path::PathBuf;
use std::sync::OnceLock;

pub struct Tree {
    pub root: PathBuf,
    pub files: FileService,
}

/// `ro/` (a, sub/b, in -> a, out -> /etc/passwd, up -> ../rw/c) read-only, recursive,
/// following symlinks; `rw/` (c) read-write; `flat/` (d, deep/e) read-only, not
/// recursive; `secret` beside them.
pub fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("fuzz-file-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["ro/sub", "rw", "flat/deep"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        for f in [
            "ro/a",
            "ro/sub/b",
            "rw/c",
            "flat/d",
            "flat/deep/e",
            "secret",
        ] {
            std::fs::write(root.join(f), f).expect("write");
        }
        std::os::unix::fs::symlink("a", root.join("ro/in")).expect("symlink");
        std::os::unix::fs::symlink("/etc/passwd", root.join("ro/out")).expect("symlink");
        std::os::unix::fs::symlink("../rw/c", root.join("ro/up")).expect("symlink");
        let files = FileService::new(vec![
            Grant::new(root.join("ro"), Access::ReadOnly)
                .recursive()
                .follow_symlinks(),
            Grant::new(root.join("rw"), Access::ReadWrite).recursive(),
            Grant::new(root.join("flat"), Access::ReadOnly),
        ])
        .expect("service");
        Tree { root, files }
    })
}

/// Where the descriptor points, as the kernel says.
pub fn target(fd: &std::os::fd::OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

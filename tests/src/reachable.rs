//! Executables that uid 65534 can run, wherever the checkout is.
//!
//! Tests that drop to uid 65534 and then execute a binary of the build (the `sandbox`
//! command, or the test binary re-executed as a helper) cannot reach it when the
//! checkout sits in a folder only its owner may enter — `/root/…`, a `mktemp -d` —
//! as a newcomer's clone often does. They run a copy instead, in a fresh folder of
//! mode 0755 under the temporary directory, made once per process and executable.
//! And [`drop_to_nobody`] is how a test process becomes that user.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static COPIES: Mutex<Option<HashMap<PathBuf, PathBuf>>> = Mutex::new(None);

/// A copy of the executable at `path` that every user can run (see the module).
pub fn copy_of(path: &Path) -> PathBuf {
    let mut copies = COPIES.lock().unwrap_or_else(|e| e.into_inner());
    let copies = copies.get_or_insert_with(HashMap::new);
    if let Some(c) = copies.get(path) {
        return c.clone();
    }
    let dir = std::env::temp_dir().join(format!(
        "sandbox-tests-{}-{}",
        std::process::id(),
        copies.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).expect("a folder for the copy");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let name = path.file_name().unwrap_or_else(|| "exe".as_ref());
    let copy = dir.join(name);
    // Copied by another process: a descriptor of ours open for writing would be
    // inherited by any fork another test thread makes meanwhile, and exec of the copy
    // would then fail with ETXTBSY (until that child execs).
    let copied = std::process::Command::new("cp")
        .arg(path)
        .arg(&copy)
        .status()
        .expect("cp runs");
    assert!(copied.success(), "cp {} failed", path.display());
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    copies.insert(path.to_path_buf(), copy.clone());
    copy
}

/// This test binary, as [`copy_of`] makes it.
pub fn current_exe() -> PathBuf {
    copy_of(&std::env::current_exe().expect("own path"))
}

/// Become uid and gid 65534 with no supplementary groups (the tests run as root);
/// panics if it cannot.
pub fn drop_to_nobody() {
    let g = nix::unistd::Gid::from_raw(65534);
    let u = nix::unistd::Uid::from_raw(65534);
    nix::unistd::setgroups(&[]).expect("setgroups (the tests run as root)");
    nix::unistd::setresgid(g, g, g).expect("setresgid");
    nix::unistd::setresuid(u, u, u).expect("setresuid");
    assert_eq!(nix::unistd::getuid().as_raw(), 65534, "still not uid 65534");
}

/// This test binary again with `args`, as root or (`nobody`) as uid 65534 through a
/// copy it can run; what it printed, standard output then standard error.
pub fn run_self(args: &[&str], nobody: bool) -> String {
    use std::os::unix::process::CommandExt;
    let exe = if nobody {
        current_exe()
    } else {
        match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => return format!("own path: {e}"),
        }
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args);
    if nobody {
        cmd.uid(65534).gid(65534);
    }
    match cmd.output() {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("could not run this binary: {e}"),
    }
}

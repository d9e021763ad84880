//! The command line of `sandbox run`, and what its arguments name on the host.

use super::RunError;
use clap::Args;
use sandbox::lockdown::Bind;
use std::path::{Path, PathBuf};

/// `sandbox run` options (bwrap's spellings where they exist).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Seccomp policy: a preset name, or a policy file named with a `/` (e.g.
    /// `./my.policy`; default: the `exec` preset).
    #[arg(long, default_value = "exec")]
    pub policy: String,
    /// Bind PATH read-only at DEST (default: the same path). Repeatable.
    #[arg(long = "ro", value_name = "PATH[:DEST]")]
    pub ro: Vec<String>,
    /// Bind PATH writable at DEST. Repeatable.
    #[arg(long = "rw", value_name = "PATH[:DEST]")]
    pub rw: Vec<String>,
    /// A minimal /dev: null, zero, urandom.
    #[arg(long)]
    pub dev: bool,
    /// A /proc of the sandbox's pid namespace.
    #[arg(long)]
    pub proc: bool,
    /// Keep the host's network namespace (default: a new, empty one).
    #[arg(long = "share-net")]
    pub share_net: bool,
    /// Address-space limit in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub mem: u64,
    /// CPU time limit in seconds (SIGXCPU, then SIGKILL one second later).
    #[arg(long, default_value_t = 60)]
    pub cpu: u64,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 300)]
    pub wall: u64,
    /// Open files limit.
    #[arg(long, default_value_t = 256)]
    pub nofile: u64,
    /// Largest file the program may write, in bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub fsize: u64,
    /// Processes plus threads (RLIMIT_NPROC, counted in the sandbox's own user
    /// namespace).
    #[arg(long, default_value_t = 64)]
    pub pids: u64,
    /// Set an environment variable, over the default one of that name. Repeatable.
    /// The default environment: PATH=/usr/local/bin:/usr/bin:/bin, HOME=/tmp,
    /// LANG=C.UTF-8 (nothing of the caller's).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Start from an empty environment instead of the default one (`--env` still adds).
    #[arg(long)]
    pub clearenv: bool,
    /// Size in bytes of the writable, empty /tmp the program gets (a tmpfs, counted in
    /// the sandbox's memory; 0: no /tmp; a --rw grant at /tmp replaces it).
    #[arg(long = "tmp-size", value_name = "BYTES", default_value_t = DEFAULT_TMP_SIZE)]
    pub tmp_size: u64,
    /// The program's uid and gid inside (default: 1000 when the caller is root, with a
    /// user id of its own outside; 0 — mapped to the caller — otherwise). Another id
    /// than 0 needs a root caller.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Do not bind the program, its loader and its libraries where no --ro/--rw holds
    /// them (then a program no grant holds is an error).
    #[arg(long = "no-auto-ro")]
    pub no_auto_ro: bool,
    /// Let the program change the terminal it inherits (its modes and size: an editor,
    /// a REPL). Without it, terminal ioctls that change anything get EPERM. Injecting
    /// input (TIOCSTI) and the console's TIOCLINUX stay refused. Only with the `exec`
    /// preset (a policy file writes its own ioctl rule).
    #[arg(long)]
    pub tty: bool,
    /// Write the verified status report as JSON to FILE.
    #[arg(long = "status-json", value_name = "FILE")]
    pub status_json: Option<PathBuf>,
    /// The program and its arguments (after `--`).
    #[arg(trailing_var_arg = true, required = true, value_name = "PROGRAM")]
    pub command: Vec<String>,
}

/// The default size of the program's /tmp: 64 MiB.
pub const DEFAULT_TMP_SIZE: u64 = 64 << 20;

/// The environment the program starts with unless `--clearenv`.
pub const DEFAULT_ENV: &[&str] = &[
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=/tmp",
    "LANG=C.UTF-8",
];

/// The program's environment: the default one (unless `clear`), each `--env K=V` set
/// over it in order. A `--env` without `=` is an error.
pub(super) fn environment(sets: &[String], clear: bool) -> Result<Vec<String>, RunError> {
    let mut env: Vec<String> = if clear {
        Vec::new()
    } else {
        DEFAULT_ENV.iter().map(|s| s.to_string()).collect()
    };
    for kv in sets {
        let Some((key, _)) = kv.split_once('=') else {
            return Err(RunError::Options(format!(
                "--env {kv}: expected NAME=VALUE"
            )));
        };
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(kv.clone());
    }
    Ok(env)
}

/// A `--ro`/`--rw` argument: the path as written (made absolute), where it appears
/// inside, and the identity of what it names now (checked again after the bind).
pub(super) fn parse_bind(spec: &str, writable: bool) -> Result<Bind, RunError> {
    let (path, dest) = match spec.split_once(':') {
        Some((p, d)) => (p, Some(PathBuf::from(d))),
        None => (spec, None),
    };
    // Kept as written (a symlink such as /bin is bound at its own name, following it).
    let path = std::path::absolute(path).map_err(|e| RunError::Options(format!("{path}: {e}")))?;
    let identity = std::fs::metadata(&path)
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        })
        .map_err(|e| RunError::Options(format!("{}: {e}", path.display())))?;
    Ok(Bind {
        path,
        writable,
        dest,
        identity: Some(identity),
        tree: None,
    })
}

/// The program: a path, or a name looked up in the absolute entries of `PATH`.
pub(super) fn resolve_program(name: &str) -> Result<PathBuf, RunError> {
    if name.contains('/') {
        return std::fs::canonicalize(name).map_err(|e| RunError::Options(format!("{name}: {e}")));
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    // Only absolute entries: an empty or relative one would look the name up in the
    // working directory, where an untrusted project can put a program of that name.
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| RunError::Options(format!("{name}: not found in PATH")))
}

//! The command line of `sandbox run`, and what its arguments name on the host.

use super::RunError;
use clap::Args;
use sandbox::lockdown::Bind;
use std::path::{Path, PathBuf};

/// `sandbox run` options (bwrap's spellings where they exist).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Seccomp policy: a preset name, or a policy file named with a `/` (e.g.
    /// `./my.policy`; default: the `exec` preset, or the profile's).
    #[arg(long, conflicts_with = "profile")]
    pub policy: Option<String>,
    /// A profile: a built-in name (shell, python3, imagemagick, poppler, sqlite3, jq) or
    /// a file named with a `/` — the policy, binds, environment and limits in one file
    /// (docs/profiles.md). Options given here add to it (binds, --env) or replace its
    /// values (limits).
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    /// The profile, loaded (filled in by `with_profile`).
    #[arg(skip)]
    pub loaded_profile: Option<sandbox::policy::Policy>,
    /// The profile's read-only binds (those that exist, for `@ro-if-exists`).
    #[arg(skip)]
    pub profile_ro: Vec<String>,
    /// The profile's writable binds.
    #[arg(skip)]
    pub profile_rw: Vec<String>,
    /// Bind PATH read-only at DEST (default: the same path). Repeatable.
    #[arg(long = "ro", value_name = "PATH[:DEST]")]
    pub ro: Vec<String>,
    /// Bind PATH writable at DEST. Repeatable.
    #[arg(long = "rw", value_name = "PATH[:DEST]")]
    pub rw: Vec<String>,
    /// Offer the folder PATH read-only without mounting it: the program's open, stat,
    /// access and readlink of absolute paths beneath it are answered by the supervisor
    /// (resolved beneath the folder, never out of it; regular files only). Every file
    /// call then passes through the supervisor. Repeatable; see docs/sandbox-run.md.
    #[arg(long = "broker-ro", value_name = "PATH")]
    pub broker_ro: Vec<std::path::PathBuf>,
    /// As --broker-ro, and the program may write and create files there (they belong
    /// to you, the caller).
    #[arg(long = "broker-rw", value_name = "PATH")]
    pub broker_rw: Vec<std::path::PathBuf>,
    /// A minimal /dev: null, zero, urandom.
    #[arg(long)]
    pub dev: bool,
    /// A /proc of the sandbox's pid namespace.
    #[arg(long)]
    pub proc: bool,
    /// Keep the host's network namespace (default: a new, empty one).
    #[arg(long = "share-net")]
    pub share_net: bool,
    /// Memory limit in bytes (K, M, G accepted; default 1G).
    #[arg(long, value_parser = size)]
    pub mem: Option<u64>,
    /// CPU time limit in seconds (SIGXCPU, then SIGKILL one second later; default 60).
    #[arg(long)]
    pub cpu: Option<u64>,
    /// Wall-clock limit in seconds (default 300).
    #[arg(long)]
    pub wall: Option<u64>,
    /// Open files limit (default 256).
    #[arg(long)]
    pub nofile: Option<u64>,
    /// Largest file the program may write, in bytes (K, M, G accepted; default 1G).
    #[arg(long, value_parser = size)]
    pub fsize: Option<u64>,
    /// Processes plus threads (default 64; see docs/sandbox-run.md).
    #[arg(long)]
    pub pids: Option<u64>,
    /// Set an environment variable, over the default one of that name. Repeatable.
    /// The default environment: PATH=/usr/local/bin:/usr/bin:/bin, HOME=/tmp,
    /// LANG=C.UTF-8 (nothing of the caller's).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Start from an empty environment instead of the default one (`--env` still adds).
    #[arg(long)]
    pub clearenv: bool,
    /// Size in bytes of the writable, empty /tmp the program gets (a tmpfs, counted in
    /// the sandbox's memory; K, M, G accepted; default 64M; 0: no /tmp; a --rw grant at
    /// /tmp replaces it).
    #[arg(long = "tmp-size", value_name = "BYTES", value_parser = size)]
    pub tmp_size: Option<u64>,
    /// The program's uid and gid inside (default: 1000 when the caller is root, with a
    /// user id of its own outside; 0 — mapped to the caller — otherwise). Another id
    /// than 0 needs a root caller.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Degraded mode, for hosts without user namespaces; root only: the sandbox's
    /// other namespaces are made without a user namespace (its pid 1 is real root
    /// while it builds the root; the program runs as a user id of its own, as without
    /// this flag). Said on stderr and in the status report.
    #[arg(long = "no-userns")]
    pub no_userns: bool,
    /// Degraded mode, for callers without privilege on hosts without user namespaces:
    /// no namespace at all. The program runs as you, among the host's processes and on
    /// its file system, confined by no_new_privs, Landlock (ABI 6 or later: only the
    /// grants, the program's own files and a private scratch folder as HOME and TMPDIR)
    /// and the filter, which here also refuses every socket, System V IPC and leaving
    /// the process group. Not for root (use --no-userns). Said on stderr and in the
    /// status report; see docs/sandbox-run.md.
    #[arg(long = "no-namespaces")]
    pub no_namespaces: bool,
    /// Let the program connect (TCP, IPv4 or IPv6) to HOST:PORT: the supervisor makes
    /// the connection outside the sandbox's empty network namespace and hands it over;
    /// every other destination gets EACCES. Names are resolved before the run and
    /// offered in the sandbox's /etc/hosts. Repeatable; see docs/sandbox-run.md.
    #[arg(long = "connect", value_name = "HOST:PORT")]
    pub connect: Vec<String>,
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

/// A size: bytes, or K, M, G (powers of 1024) after the number.
fn size(text: &str) -> Result<u64, String> {
    crate::profile::number(text, true)
}

/// The limits when neither the command line nor the profile sets them.
pub mod defaults {
    /// `--mem`: 1 GiB.
    pub const MEM: u64 = 1 << 30;
    /// `--cpu`: 60 s.
    pub const CPU: u64 = 60;
    /// `--wall`: 300 s.
    pub const WALL: u64 = 300;
    /// `--nofile`: 256.
    pub const NOFILE: u64 = 256;
    /// `--fsize`: 1 GiB.
    pub const FSIZE: u64 = 1 << 30;
    /// `--pids`: 64.
    pub const PIDS: u64 = 64;
    /// `--tmp-size`: 64 MiB.
    pub const TMP: u64 = 64 << 20;
}

impl RunArgs {
    /// Whether `--broker-ro`/`--broker-rw` offer folders through the supervisor.
    pub fn brokers_files(&self) -> bool {
        !self.broker_ro.is_empty() || !self.broker_rw.is_empty()
    }

    /// The `--broker-ro`/`--broker-rw` folders as grants (whole trees, symlinks
    /// followed inside them; read-write ones may create files).
    pub fn broker_grants(&self) -> Vec<broker::services::files::Grant> {
        use broker::services::files::{Access, Grant};
        let grant = |p: &std::path::PathBuf, a| Grant::new(p, a).recursive().follow_symlinks();
        let ro = self.broker_ro.iter().map(|p| grant(p, Access::ReadOnly));
        let rw = self.broker_rw.iter().map(|p| grant(p, Access::Create));
        ro.chain(rw).collect()
    }
    /// With `--profile`: the profile loaded, its binds (`profile_ro`, `profile_rw`) and
    /// environment before the command line's, its limits where the command line sets
    /// none (a limit neither sets takes its default: [`defaults`]).
    pub fn with_profile(mut self) -> Result<RunArgs, RunError> {
        if let Some(name) = &self.profile {
            let p = crate::profile::load(name, sandbox::policy::arch::Arch::native())
                .map_err(RunError::Policy)?;
            let s = p.settings;
            let exists = |spec: &String| {
                Path::new(spec.split_once(':').map_or(spec.as_str(), |(p, _)| p)).exists()
            };
            self.profile_ro = s.ro;
            self.profile_ro
                .extend(s.ro_if_exists.into_iter().filter(exists));
            self.profile_rw = s.rw;
            let mut env = s.env;
            env.append(&mut self.env);
            self.env = env;
            self.dev |= s.dev;
            self.proc |= s.proc;
            self.share_net |= s.share_net;
            let l = s.limits;
            self.mem = self.mem.or(l.mem);
            self.cpu = self.cpu.or(l.cpu);
            self.wall = self.wall.or(l.wall);
            self.nofile = self.nofile.or(l.nofile);
            self.fsize = self.fsize.or(l.fsize);
            self.pids = self.pids.or(l.pids);
            self.tmp_size = self.tmp_size.or(l.tmp);
            self.loaded_profile = Some(p.policy);
        }
        Ok(self)
    }

    /// `--mem`, the profile's, or the default.
    pub fn mem(&self) -> u64 {
        self.mem.unwrap_or(defaults::MEM)
    }
    /// `--cpu`, the profile's, or the default.
    pub fn cpu(&self) -> u64 {
        self.cpu.unwrap_or(defaults::CPU)
    }
    /// `--wall`, the profile's, or the default.
    pub fn wall(&self) -> u64 {
        self.wall.unwrap_or(defaults::WALL)
    }
    /// `--nofile`, the profile's, or the default.
    pub fn nofile(&self) -> u64 {
        self.nofile.unwrap_or(defaults::NOFILE)
    }
    /// `--fsize`, the profile's, or the default.
    pub fn fsize(&self) -> u64 {
        self.fsize.unwrap_or(defaults::FSIZE)
    }
    /// `--pids`, the profile's, or the default.
    pub fn pids(&self) -> u64 {
        self.pids.unwrap_or(defaults::PIDS)
    }
    /// `--tmp-size`, the profile's, or the default.
    pub fn tmp_size(&self) -> u64 {
        self.tmp_size.unwrap_or(defaults::TMP)
    }
}

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

/// The program: a path, or a name looked up in the absolute entries of `path` (the
/// PATH the program gets; without one, the default's).
pub(super) fn resolve_program(name: &str, path: Option<&str>) -> Result<PathBuf, RunError> {
    if name.contains('/') {
        return std::fs::canonicalize(name)
            .map_err(|e| RunError::Options(format!("{name}: {}", crate::words::io(&e))));
    }
    let path = path.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    // Only absolute entries: an empty or relative one would look the name up in the
    // working directory, where an untrusted project can put a program of that name.
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            RunError::Options(format!(
                "{name}: not found in the sandbox's PATH ({path}); name the program by its path"
            ))
        })
}

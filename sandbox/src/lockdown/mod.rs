//! Renderer lockdown: the layers of `docs/architecture.md`, in a fixed order, each
//! fail-closed.
//!
//! ```text
//! spawn (broker side, namespaces.rs)   user, pid, net, mount, ipc, uts, cgroup namespaces
//! ── exec ──
//! lock_down (renderer side, this file)
//!   1. empty root      root.rs      pivot_root into an empty read-only tmpfs
//!   2. descriptors     fds.rs       close_range all but the kept ones, checked
//!   3. rlimits         rlimits.rs   address space, files, file size 0, core 0, CPU, memlock 0
//!   4. capabilities    caps.rs      all sets and the bounding set empty, securebits locked,
//!                                   not dumpable, parent-death signal checked
//!   5. no_new_privs
//!   6. Landlock        landlock.rs  every file right of the kernel's ABI denied, TCP
//!                                   bind/connect denied, abstract sockets and signals scoped
//!   7. seccomp         (crate::seccomp) with TSYNC, from a preset or a policy
//! ```
//!
//! Every layer is required. Running without one is a named [`OptOut`], recorded in the
//! [`Status`]. Any error names its layer and the failing call with its errno, and
//! [`LockdownError::exit_code`] gives a distinct exit code per layer. Only a
//! [`LockedDown`] value — which only [`lock_down`] makes — lets serving code start.

mod caps;
mod fds;
mod landlock;
mod rlimits;
mod root;
pub mod status;

/// The kernel feature report, now in [`crate::launch::check`] (re-exported here).
pub use crate::launch::check;

/// Spawning moved to [`crate::launch`] (the trusted side); re-exported here for
/// existing callers.
pub mod namespaces {
    pub use super::inside_user_namespace;
    pub use crate::launch::{
        map_ids, own_id, spawn, EmptyNetwork, Namespaces, NetMode, SpawnSpec, Spawned, OWN_ID_BASE,
        OWN_ID_RANGE,
    };
}

pub use rlimits::Rlimits;

/// The old name of [`Bind`].
#[deprecated(note = "use Bind")]
pub type Grant = Bind;
pub use root::RootMethod;
pub use status::{Layer, LayerStatus, Status};

use crate::bpf;
use crate::policy::arch::Arch;
use crate::policy::presets::Preset;
use crate::policy::Policy;
use crate::seccomp::{self, InstallOptions};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Instant;

/// A layer the caller explicitly runs without, or a weaker form it accepts. Each is
/// listed in the [`Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OptOut {
    /// Keep the file system root (Landlock alone guards files).
    KeepRoot,
    /// Run without Landlock when the kernel has none.
    AllowMissingLandlock,
    /// Accept a Landlock domain that covers only the calling thread when other threads
    /// exist and the kernel cannot apply it to all of them.
    LandlockCallingThreadOnly,
    /// Install no seccomp filter.
    NoSeccomp,
    /// Run in the initial user namespace (a host where user namespaces are
    /// unavailable; the spawner is root and made the other namespaces): the
    /// namespaces layer, which checks for a user namespace of the process's own, is
    /// skipped. The other new namespaces are still checked from outside.
    NoUserNamespace,
    /// Run without any namespace, as an unprivileged process (a host where user
    /// namespaces are unavailable and the spawner is not root): the namespaces and
    /// empty-root layers are skipped (Landlock alone guards files, so every bind must
    /// be at its own path); the capabilities layer empties the ambient, effective,
    /// permitted and inheritable sets but leaves the bounding set and securebits
    /// (changing them needs CAP_SETPCAP; with no_new_privs no execve gains a
    /// capability); and Landlock must scope signals and abstract unix sockets (ABI 6),
    /// which here is all that keeps the process from signalling the user's other
    /// processes.
    NoNamespaces,
}

/// A bind mount: a host path made visible inside the empty root (and granted in
/// Landlock). (The broker's files service has grants: `broker::services::files::Grant`.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// Absolute path outside.
    pub path: PathBuf,
    /// Writable (else read-only).
    pub writable: bool,
    /// Where it appears inside (default: the same path).
    pub dest: Option<PathBuf>,
    /// The `(st_dev, st_ino)` the spawner found at `path` (symlinks followed): the
    /// bind is checked against it, so a path swapped between the spawner's check and
    /// the bind is an error instead of binding something else.
    #[serde(default)]
    pub identity: Option<(u64, u64)>,
    /// A detached mount tree of `path` to attach instead of binding `path` (e.g. an
    /// idmapped one a privileged spawner made: `launch::Idmap::tree`). The descriptor
    /// must stay open until the root is built; it does not travel with the value.
    #[serde(skip)]
    pub tree: Option<std::os::fd::RawFd>,
}

impl Bind {
    /// `path` at the same place inside, read-only.
    pub fn read_only(path: impl Into<PathBuf>) -> Bind {
        Bind {
            path: path.into(),
            writable: false,
            dest: None,
            identity: None,
            tree: None,
        }
    }

    /// `path` at the same place inside, writable.
    pub fn read_write(path: impl Into<PathBuf>) -> Bind {
        Bind {
            path: path.into(),
            writable: true,
            dest: None,
            identity: None,
            tree: None,
        }
    }

    /// Where the grant appears inside.
    pub fn inside(&self) -> &std::path::Path {
        self.dest.as_deref().unwrap_or(&self.path)
    }
}

/// Which seccomp policy the last layer installs.
#[derive(Clone, Debug)]
pub enum SeccompChoice {
    /// A program compiled elsewhere (e.g. once, by the trusted side) for this
    /// architecture; validated before it is installed.
    Program(bpf::Program),
    /// A built-in preset, with `SELF_PID` bound to the renderer's own pid.
    Preset(Preset),
    /// A policy the embedder built.
    Policy(Policy),
}

/// What [`lock_down`] applies. [`Config::default`] is every layer with the `renderer`
/// preset, no binds, and only fds 0, 1 and 2 kept.
#[derive(Clone, Debug)]
pub struct Config {
    /// Descriptors that stay open (everything else is closed).
    pub keep_fds: Vec<RawFd>,
    /// Resource limits.
    pub rlimits: Rlimits,
    /// Paths visible in the new root and granted in Landlock.
    pub binds: Vec<Bind>,
    /// The lowest Landlock ABI accepted (an error below it).
    pub landlock_min_abi: u32,
    /// Mount a /proc of the process's pid namespace in the new root (read-only for
    /// Landlock). Off by default: a renderer sees no /proc.
    pub mount_proc: bool,
    /// A writable, empty tmpfs of this many bytes at `/tmp` in the new root (mode 1777,
    /// `nosuid,nodev,noexec`; Landlock grants it like a writable bind). Grants beneath
    /// `/tmp` are mounted on it. None by default; a grant at `/tmp` itself is an error
    /// with it.
    pub scratch_tmp: Option<u64>,
    /// The root was already built by [`build_root`] (in a parent of this process):
    /// lockdown only verifies it, and takes what the parent read from /proc before
    /// the root was replaced.
    pub root_built: Option<RootBuilt>,
    /// Install the filter with a user-notification listener (on every thread) and hand
    /// it back in [`LockedDown::take_listener`].
    pub seccomp_listener: bool,
    /// Switch to this (uid, gid) inside, in the capabilities layer (after securebits
    /// and the bounding set, before the sets are emptied). The id must be mapped.
    pub switch_to: Option<(u32, u32)>,
    /// The seccomp policy.
    pub seccomp: SeccompChoice,
    /// Explicit opt-outs.
    pub opt_outs: Vec<OptOut>,
    /// The process stays dumpable: for a process about to `execve` a program (which
    /// the kernel makes dumpable again anyway, a readable binary run without a change
    /// of ids), so that its checker from outside may read its `/proc/PID/ns/*` without
    /// CAP_SYS_PTRACE in the user namespace the process's memory belongs to (a copy of
    /// an unprivileged caller). Off by default: a renderer, which never execs, is not
    /// dumpable.
    pub dumpable_until_exec: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keep_fds: vec![0, 1, 2],
            rlimits: Rlimits::default(),
            binds: Vec::new(),
            landlock_min_abi: 1,
            mount_proc: false,
            scratch_tmp: None,
            root_built: None,
            seccomp_listener: false,
            switch_to: None,
            seccomp: SeccompChoice::Preset(Preset::Renderer),
            opt_outs: Vec::new(),
            dumpable_until_exec: false,
        }
    }
}

impl Config {
    fn opted_out(&self, o: OptOut) -> bool {
        self.opt_outs.contains(&o)
    }

    /// The file system root stays as it is ([`OptOut::KeepRoot`] or
    /// [`OptOut::NoNamespaces`]).
    fn keeps_root(&self) -> bool {
        self.opted_out(OptOut::KeepRoot) || self.opted_out(OptOut::NoNamespaces)
    }
}

/// Why lockdown stopped. The process must not go on to untrusted work.
#[derive(Debug, thiserror::Error)]
#[error("lockdown failed at {layer} ({call}): {source}")]
pub struct LockdownError {
    /// The layer.
    pub layer: Layer,
    /// The call or check that failed.
    pub call: &'static str,
    /// The cause (an OS error carries its errno).
    #[source]
    pub source: io::Error,
}

impl LockdownError {
    pub(crate) fn new(layer: Layer, call: &'static str, source: io::Error) -> LockdownError {
        LockdownError {
            layer,
            call,
            source,
        }
    }

    pub(crate) fn msg(layer: Layer, call: &'static str, msg: String) -> LockdownError {
        LockdownError::new(layer, call, io::Error::other(msg))
    }

    /// A distinct exit code per layer (100 + the layer's position).
    pub fn exit_code(&self) -> i32 {
        100 + self.layer as i32
    }

    /// The errno, if the cause was an OS error.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

/// Proof that [`lock_down`] completed: the only way to obtain one.
#[derive(Debug)]
pub struct LockedDown {
    status: Status,
    listener: Option<std::os::fd::OwnedFd>,
}

impl LockedDown {
    /// What was applied and verified.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The seccomp user-notification listener, if [`Config::seccomp_listener`] asked for it.
    pub fn take_listener(&mut self) -> Option<std::os::fd::OwnedFd> {
        self.listener.take()
    }
}

/// Close every descriptor of the calling process but `keep` (the descriptors layer
/// alone, for a helper process that must hold nothing else of its parent's).
pub fn close_descriptors_except(keep: &[RawFd]) -> io::Result<()> {
    fds::close_all_but(keep).map_err(|e| e.source)
}

/// What a parent that built the root ([`build_root`]) knows for the process it forks
/// to lock down, read before /proc went away with the old root.
#[derive(Clone, Copy, Debug)]
pub struct RootBuilt {
    /// How the root was entered.
    pub method: RootMethod,
    /// Whether the parent was in a user namespace of its own.
    pub in_user_ns: bool,
    /// The kernel's highest capability (`/proc/sys/kernel/cap_last_cap`), if it
    /// could be read (the child otherwise probes it, one `prctl` a capability).
    pub cap_last_cap: Option<u32>,
}

/// Build the empty root (with `config.binds` and `config.mount_proc`) without the
/// other layers — for a parent that then forks the process to lock down (and that
/// passes the result as [`Config::root_built`]).
pub fn build_root(config: &Config) -> Result<RootBuilt, LockdownError> {
    let in_user_ns = inside_user_namespace();
    let cap_last_cap = read_cap_last_cap();
    let method = root::enter_empty_root(config)?;
    Ok(RootBuilt {
        method,
        in_user_ns,
        cap_last_cap,
    })
}

/// `/proc/sys/kernel/cap_last_cap`, if it can be read.
fn read_cap_last_cap() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Proof that the process was single-threaded when checked; consumed by the fork.
/// Take it before the root disappears (the check reads /proc), and start no thread
/// before forking.
#[derive(Debug)]
pub struct SingleThreaded(std::marker::PhantomData<*const ()>);

impl SingleThreaded {
    /// The proof for a fresh fork-like copy of a process that held one (the copy has
    /// one thread, the caller's, and has started none).
    pub(crate) fn of_fresh_copy() -> SingleThreaded {
        SingleThreaded(std::marker::PhantomData)
    }

    /// Check that the process has exactly one thread.
    pub fn check() -> io::Result<SingleThreaded> {
        if crate::sys::single_threaded()? {
            Ok(SingleThreaded(std::marker::PhantomData))
        } else {
            Err(io::Error::other("the process has several threads"))
        }
    }

    /// Fork: `Ok(0)` in the child, the child's pid in the parent.
    pub fn fork(self) -> io::Result<i32> {
        crate::sys::fork_checked_single_threaded()
    }

    /// A fork-like `clone` with `flags` (CLONE_NEW* bits, CLONE_PARENT): `Ok(0)` in the
    /// child, which — the process being single-threaded — may run any code.
    pub fn clone_with(self, flags: i32) -> io::Result<i32> {
        crate::sys::spawn::fork_like(flags)
    }
}

/// Facts read before the file system disappears.
struct Before {
    threads: usize,
    cap_last_cap: u32,
}

fn read_before(config: &Config) -> Result<Before, LockdownError> {
    if let Some(built) = config.root_built {
        // Forked from a single-threaded parent (checked by `fork_single_threaded`)
        // that already replaced the root: /proc may be gone, and there is one thread.
        return Ok(Before {
            threads: 1,
            cap_last_cap: built.cap_last_cap.unwrap_or_else(probe_cap_last_cap),
        });
    }
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| LockdownError::new(Layer::Namespaces, "read /proc/self/status", e))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1);
    let cap_last_cap = read_cap_last_cap().unwrap_or_else(probe_cap_last_cap);
    Ok(Before {
        threads,
        cap_last_cap,
    })
}

/// The highest capability the kernel knows: PR_CAPBSET_READ fails with EINVAL past it.
fn probe_cap_last_cap() -> u32 {
    (0u32..64)
        .take_while(|c| {
            crate::sys::process::prctl_int(libc::PR_CAPBSET_READ, libc::c_ulong::from(*c), 0)
                .is_ok()
        })
        .last()
        .unwrap_or(0)
}

/// Lock the calling process down as `config` says, in order, and verify each layer
/// from inside. On error the process must exit (e.g. with
/// [`LockdownError::exit_code`]) without running untrusted work.
pub fn lock_down(config: &Config) -> Result<LockedDown, LockdownError> {
    let mut status = Status::new(config);
    let before = read_before(config)?;
    status.record_namespaces(match config.root_built {
        Some(built) => built.in_user_ns,
        None => inside_user_namespace(),
    });
    if config.opted_out(OptOut::NoUserNamespace) || config.opted_out(OptOut::NoNamespaces) {
        status.skip(Layer::Namespaces);
    }

    // The filter is compiled first: a bad policy fails before anything changes.
    let t = Instant::now();
    let program = if config.opted_out(OptOut::NoSeccomp) {
        None
    } else {
        Some(compile(&config.seccomp)?)
    };
    let compile_time = t.elapsed();

    let t = Instant::now();
    if config.keeps_root() {
        status.skip(Layer::EmptyRoot);
    } else {
        let method = match config.root_built {
            Some(built) => built.method,
            None => root::enter_empty_root(config)?,
        };
        let listing = root::verify_empty(config)?;
        status.record(Layer::EmptyRoot, true, listing, format!("{method:?}"));
        status.root_method = Some(method);
    }
    status.time(Layer::EmptyRoot, t.elapsed());

    let t = Instant::now();
    fds::close_all_but(&config.keep_fds)?;
    let open = fds::verify(&config.keep_fds, config.rlimits.open_files)?;
    status.record(Layer::Fds, true, true, format!("open: {open:?}"));
    status.time(Layer::Fds, t.elapsed());

    let t = Instant::now();
    rlimits::apply(&config.rlimits)?;
    let limits_ok = rlimits::verify(&config.rlimits)?;
    status.record(
        Layer::Rlimits,
        true,
        limits_ok,
        format!("{:?}", config.rlimits),
    );
    status.time(Layer::Rlimits, t.elapsed());

    let t = Instant::now();
    let unprivileged = config.opted_out(OptOut::NoNamespaces);
    caps::drop_all(
        before.cap_last_cap,
        config.switch_to,
        unprivileged,
        config.dumpable_until_exec,
    )?;
    let caps_detail = caps::verify(
        before.cap_last_cap,
        unprivileged,
        config.dumpable_until_exec,
    )?;
    status.record(Layer::Capabilities, true, true, caps_detail);
    status.time(Layer::Capabilities, t.elapsed());

    let t = Instant::now();
    seccomp::set_no_new_privs()
        .map_err(|e| LockdownError::new(Layer::NoNewPrivs, "prctl(PR_SET_NO_NEW_PRIVS)", e))?;
    let nnp = seccomp::no_new_privs()
        .map_err(|e| LockdownError::new(Layer::NoNewPrivs, "prctl(PR_GET_NO_NEW_PRIVS)", e))?;
    status.record(Layer::NoNewPrivs, true, nnp, String::new());
    status.time(Layer::NoNewPrivs, t.elapsed());

    let t = Instant::now();
    let ll = landlock::restrict(config, before.threads)?;
    status.landlock_abi = ll.abi;
    status.record(Layer::Landlock, ll.applied, ll.applied, ll.detail);
    status.time(Layer::Landlock, t.elapsed());

    let t = Instant::now();
    let listener = match program {
        None => {
            status.skip(Layer::Seccomp);
            None
        }
        Some(program) => install_filter(config, &program, &mut status, t, compile_time)?,
    };
    // Compiling the policy (done first) counts as part of this layer.
    status.time(Layer::Seccomp, t.elapsed() + compile_time);
    Ok(LockedDown { status, listener })
}

/// The last layer: the filter installed (with a listener if asked), recorded in
/// `status` with its size and times (`t` when the layer started).
fn install_filter(
    config: &Config,
    program: &bpf::Program,
    status: &mut Status,
    t: Instant,
    compile_time: std::time::Duration,
) -> Result<Option<std::os::fd::OwnedFd>, LockdownError> {
    let mut listener = None;
    let installed = if config.seccomp_listener {
        seccomp::install_with_listener(program).map(|l| listener = Some(l))
    } else {
        seccomp::install(program, InstallOptions::default())
    };
    installed.map_err(|e| {
        LockdownError::msg(
            Layer::Seccomp,
            "seccomp(SECCOMP_SET_MODE_FILTER)",
            e.to_string(),
        )
    })?;
    status.record(
        Layer::Seccomp,
        true,
        true,
        format!(
            "{} instructions, {}; compiled in {} µs, installed in {} µs",
            program.instructions.len(),
            if config.seccomp_listener {
                "with a notification listener"
            } else {
                "all threads"
            },
            compile_time.as_micros(),
            t.elapsed().as_micros()
        ),
    );
    Ok(listener)
}

fn compile(choice: &SeccompChoice) -> Result<bpf::Program, LockdownError> {
    let policy = match choice {
        SeccompChoice::Preset(p) => {
            return p
                .compile(Arch::native(), std::process::id())
                .map_err(|e| LockdownError::msg(Layer::Seccomp, "preset", e))
        }
        SeccompChoice::Policy(p) => p.clone(),
        SeccompChoice::Program(p) => return Ok(p.clone()),
    };
    bpf::compile(&policy, Arch::native())
        .map_err(|e| LockdownError::msg(Layer::Seccomp, "compile", e.to_string()))
}

/// Whether this process is in a user namespace other than the
/// initial one (its uid map is not the identity over all ids).
pub fn inside_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"],
        Err(_) => false,
    }
}

//! Spawning a renderer in new namespaces (the broker side).
//!
//! All namespaces are created by one `clone(2)` while the child is a single-threaded
//! copy of the caller, so the renderer starts inside them: user, pid, network, mount,
//! IPC, UTS and cgroup. The user namespace maps one id: the renderer is uid/gid 0
//! inside (so it may build its own root and then drop every capability), the caller's
//! euid/egid outside; setgroups is denied first, as an unprivileged caller must. This
//! works the same when the caller is root and when it is an ordinary user.
//!
//! **Who reaps.** The renderer is pid 1 of its pid namespace: it reaps anything it
//! starts (the `renderer` preset lets it start nothing), and when it exits the kernel
//! kills whatever is left in the namespace. The spawner reaps the renderer itself.
//!
//! **Network.** [`NetMode::Fresh`] gives an empty namespace (only a down `lo`), which
//! costs about 0.6 ms of kernel work per spawn here; [`NetMode::Shared`] keeps the
//! caller's — and is an opt-out the status report shows.

use super::ids::{joined_id, write_id_maps};
use super::namespaces::{Namespaces, NetMode};
use super::LaunchError;
pub use crate::sys::spawn::InPlace;
use crate::sys::spawn::{clone_and_exec, Join, PreparedExec};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// What to start.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    /// The executable.
    pub exe: PathBuf,
    /// Arguments after `argv[0]` (which is `exe`).
    pub args: Vec<String>,
    /// The whole environment ("cleared by default": only what is listed here).
    pub env: Vec<(String, String)>,
    /// (descriptor in the caller, number it gets in the renderer). Everything else is
    /// close-on-exec or closed by the renderer's lockdown.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Namespaces to create.
    pub namespaces: Namespaces,
    /// One more id mapped besides 0 → the caller: (inside id, outside uid, outside
    /// gid). Needs CAP_SETUID/CAP_SETGID over the caller's namespace (a root caller).
    /// A process that switches to it (see `Config::switch_to`) has a user id of its
    /// own outside: not root, and counted alone by RLIMIT_NPROC (which the kernel
    /// never applies to root).
    pub extra_id: Option<(u32, u32, u32)>,
    /// Map uid and gid 0 inside to this id outside instead of the caller's, and have
    /// the child take it before exec (dropping its supplementary groups): a process
    /// that is not root outside, whose threads RLIMIT_NPROC counts alone (see
    /// [`own_id`](super::own_id)). Needs a root caller; with [`NetMode::Reuse`], a network made by
    /// root and an id in [`OWN_ID_BASE`](super::OWN_ID_BASE)'s range.
    pub outside_id: Option<u32>,
}

impl SpawnSpec {
    /// Start `exe` with `args`, all namespaces, an empty environment, no fds.
    pub fn new(exe: impl Into<PathBuf>, args: &[&str]) -> SpawnSpec {
        SpawnSpec {
            exe: exe.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            fds: Vec::new(),
            namespaces: Namespaces::default(),
            extra_id: None,
            outside_id: None,
        }
    }
}

/// A started renderer. Dropping it kills and reaps the process if it was not waited for.
#[derive(Debug)]
pub struct Spawned {
    pid: Pid,
    reaped: bool,
    /// A child of [`spawn_in_place`] not yet seen to have placed its descriptors: the
    /// report pipe it closes then (see [`Spawned::started`]).
    pending: Option<std::fs::File>,
}

impl Spawned {
    /// Take charge of `pid`, which must be an unreaped child of this process (e.g.
    /// one a zygote cloned with CLONE_PARENT): it is killed and reaped on drop.
    pub fn adopt(pid: i32) -> Spawned {
        Spawned {
            pid: Pid::from_raw(pid),
            reaped: false,
            pending: None,
        }
    }

    /// For a child of [`spawn_in_place`]: wait until it has placed its descriptors and
    /// runs its entry (at once if it has). Its failure to place them is an error, and
    /// the child is then reaped. Nothing to wait for with other children.
    pub fn started(&mut self) -> Result<(), LaunchError> {
        let Some(mut report) = self.pending.take() else {
            return Ok(());
        };
        // Woken by the child's exec (or its entry), this process stays on its own CPU
        // rather than queue behind the child's start (see `sys::cpus`).
        let _stay = crate::sys::cpus::StayHere::pin(crate::sys::cpus::own().as_ref());
        read_release(&mut report, self, "fd setup")
    }

    /// Its pid in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// A pidfd for it (readable once it has exited; it is our child and not yet
    /// reaped, so the pid cannot have been reused).
    pub fn open_pidfd(&self) -> std::io::Result<OwnedFd> {
        crate::sys::process::pidfd_open(self.pid.as_raw())
    }

    /// Reap it if it has exited (`None` while it runs).
    pub fn try_wait(&mut self) -> nix::Result<Option<WaitStatus>> {
        match waitpid(self.pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG))? {
            WaitStatus::StillAlive => Ok(None),
            s => {
                self.reaped = true;
                Ok(Some(s))
            }
        }
    }

    /// Send SIGKILL without waiting.
    pub fn signal_kill(&self) {
        let _ = kill(self.pid, Signal::SIGKILL);
    }

    /// Wait for it to end.
    pub fn wait(&mut self) -> nix::Result<WaitStatus> {
        let s = waitpid(self.pid, None)?;
        self.reaped = true;
        Ok(s)
    }

    /// Send SIGKILL and give up the duty to reap it: for a caller about to exit that
    /// need not wait for the kernel to finish the process's exit (its namespaces'
    /// teardown); whoever inherits it reaps it.
    pub fn kill_without_reaping(mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        self.reaped = true;
    }

    /// Kill it (SIGKILL) and reap it.
    pub fn kill(&mut self) -> nix::Result<WaitStatus> {
        let _ = kill(self.pid, Signal::SIGKILL);
        self.wait()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.kill();
        }
    }
}

pub(super) fn ns_err(call: &'static str) -> impl Fn(std::io::Error) -> LaunchError {
    move |e| LaunchError::new(call, e)
}

/// Start `spec` in new namespaces. Errors name the failing call and errno (EPERM when
/// a filter or policy forbids user namespaces, ENOSPC when their limit is reached).
pub fn spawn(spec: &SpawnSpec) -> Result<Spawned, LaunchError> {
    if matches!(spec.namespaces.net, NetMode::Reuse(_)) && !spec.namespaces.user {
        return Err(LaunchError::msg(
            "spec",
            "NetMode::Reuse needs a new user namespace".into(),
        ));
    }
    // Held until the child has exec'd (see `prepare`).
    let (prepared, _exe_fd) = prepare(spec)?;
    start(spec, spec.namespaces.clone_flags(), &prepared)
}

/// Start a copy of this process in new namespaces, as [`spawn`] does, that calls
/// `entry` where a spawned child would exec (`spec.exe`, `args` and `env` unused):
/// one exec fewer for a launcher whose next stage is its own code. The child keeps
/// only the descriptors `spec.fds` places (the caller's close-on-exec ones are closed
/// too) and this process's memory; `proof` says there is no other thread whose locks
/// the copy could inherit, so `entry` may run any code.
///
/// A fresh network namespace is not made by the clone but by the child right after
/// it (owned by the new user namespace all the same), on a CPU of its own while this
/// process writes its id maps and goes on — the network namespace is most of a
/// spawn's kernel work. `entry` learns whether it was made from its [`InPlace`]
/// ([`InPlace::namespaces`]), and runs narrowed to that CPU until
/// [`InPlace::release_cpus`] (or the `InPlace` is dropped). A missing namespace is
/// also caught by [`verify_from_outside`](super::verify_from_outside).
///
/// That check reads the child's `/proc/PID/ns/*`. For a process that is not dumpable
/// the kernel then asks for CAP_SYS_PTRACE over the user namespace its *memory* was
/// exec'd in — for an in-place child (or a fork of it) the spawner's, where an
/// unprivileged spawner has none ([`can_inspect_in_place_children`]). Such a spawner's
/// child, checked before it execs its program, stays dumpable until then
/// (`lockdown::Config::dumpable_until_exec`); the exec makes it dumpable anyway, and
/// its memory then belongs to its own user namespace.
pub fn spawn_in_place(
    spec: &SpawnSpec,
    _proof: crate::lockdown::SingleThreaded,
    entry: fn(InPlace) -> !,
) -> Result<Spawned, LaunchError> {
    if spec.outside_id.is_some() || matches!(spec.namespaces.net, NetMode::Reuse(_)) {
        return Err(LaunchError::msg(
            "spec",
            "an in-place child takes neither an outside id nor a joined network".into(),
        ));
    }
    let deferred = spec.namespaces.clone_flags() & libc::CLONE_NEWNET;
    let prepared =
        PreparedExec::in_place(&spec.fds, entry, deferred).map_err(ns_err("prepare child"))?;
    start(spec, spec.namespaces.clone_flags() & !deferred, &prepared)
}

/// Whether this process can read the `/proc/PID/ns/*` of a child of
/// [`spawn_in_place`] (or a fork of it) once it has made itself non-dumpable, as a
/// locked-down process does — what [`verify_from_outside`](super::verify_from_outside)
/// reads: CAP_SYS_PTRACE over this process's own user namespace, which an
/// unprivileged caller (or root in a container that drops it) lacks. Such a child must
/// then stay dumpable until it execs (`lockdown::Config::dumpable_until_exec`).
pub fn can_inspect_in_place_children() -> bool {
    const CAP_SYS_PTRACE: u32 = 19;
    crate::sys::process::capget()
        .is_ok_and(|(effective, _, _)| effective & (1 << CAP_SYS_PTRACE) != 0)
}

/// Clone the child `prepared` describes, map its ids, release it and wait for its
/// exec (or, in place, for it to close its report pipe).
fn start(
    spec: &SpawnSpec,
    flags: libc::c_int,
    prepared: &PreparedExec,
) -> Result<Spawned, LaunchError> {
    let (go_r, go_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err("pipe2")(e.into()))?;
    let (rep_r, rep_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err("pipe2")(e.into()))?;
    let join = match &spec.namespaces.net {
        NetMode::Reuse(n) => Some(Join {
            user: n.user.as_raw_fd(),
            net: n.net.as_raw_fd(),
        }),
        _ => None,
    };
    // The child runs on a CPU other than this process's from its clone to its exec or
    // entry, and this process keeps to its own meanwhile: woken by the child, it is
    // not queued behind it (see `sys::cpus`).
    // (Only with the set read before, which the child takes back: it inherits the
    // narrowed one.)
    let stay = crate::sys::cpus::StayHere::pin(prepared.cpus());
    let first = clone_and_exec(
        flags,
        prepared,
        go_r.as_raw_fd(),
        rep_w.as_raw_fd(),
        join,
        [go_w.as_raw_fd(), rep_r.as_raw_fd()],
    )
    .map_err(ns_err("clone"))?;
    if join.is_none() {
        prepared.place_apart(first);
    }
    drop(go_r);
    drop(rep_w);
    let mut report = std::fs::File::from(rep_r);
    let mut child = await_ready(&mut report, first, join.is_some())?;
    if join.is_some() {
        prepared.place_apart(child.pid());
    }
    if spec.namespaces.user && join.is_none() {
        if let Err(e) = write_id_maps(child.pid(), spec.extra_id, spec.outside_id) {
            let _ = child.kill();
            return Err(e);
        }
    }
    if prepared.in_place_child() {
        // It goes on with work of its own (see `InPlace`), and so does this process:
        // whether it placed its descriptors is read later (`Spawned::started`).
        release(go_w)?;
        child.pending = Some(report);
        return Ok(child);
    }
    release(go_w)?;
    let ended = read_release(&mut report, &mut child, "fd setup or execve");
    drop(stay);
    ended.map(|()| child)
}

/// Let the child go on (one byte on `go`).
fn release(go: OwnedFd) -> Result<(), LaunchError> {
    let mut go = std::fs::File::from(go);
    go.write_all(&[1]).map_err(ns_err("release child"))
}

/// Read the child's report to its end: end of file once it closed it (by exec, or in
/// place once its descriptors are placed); otherwise its errno, and the child reaped.
fn read_release(
    report: &mut std::fs::File,
    child: &mut Spawned,
    call: &'static str,
) -> Result<(), LaunchError> {
    let mut tag = [0u8; 1];
    match report.read(&mut tag).map_err(ns_err("read exec report"))? {
        0 => Ok(()),
        _ => {
            let errno = read_i32(report).unwrap_or(libc::ECHILD);
            let _ = child.wait();
            Err(LaunchError::new(
                call,
                std::io::Error::from_raw_os_error(errno),
            ))
        }
    }
}

/// Everything the child needs, prepared before the clone; and, when the child takes
/// an id of its own, a descriptor of the executable it runs through — that id may not
/// be allowed to walk the path to it (a root broker whose binary lives under /root/…).
fn prepare(spec: &SpawnSpec) -> Result<(PreparedExec, Option<OwnedFd>), LaunchError> {
    let exe = spec
        .exe
        .to_str()
        .ok_or_else(|| LaunchError::msg("exec path", "not UTF-8".into()))?;
    let mut argv = vec![exe.to_string()];
    argv.extend(spec.args.iter().cloned());
    let envp: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut prepared =
        PreparedExec::new(exe, &argv, &envp, &spec.fds).map_err(ns_err("prepare exec"))?;
    let exe_fd = match spec.outside_id {
        Some(_) => Some(
            nix::fcntl::open(
                spec.exe.as_path(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| ns_err("open the executable")(e.into()))?,
        ),
        None => None,
    };
    if let Some(fd) = &exe_fd {
        prepared.exec_through(fd.as_raw_fd());
    }
    match (spec.outside_id, &spec.namespaces.net) {
        (Some(id), _) => prepared.own_ids(joined_id(spec, id)?),
        // Joining a network made by root: 0 of its namespace is not root outside, so
        // the child takes it (the first id of the range) rather than stay unmapped.
        (None, NetMode::Reuse(n)) if n.own_ids => prepared.own_ids(0),
        _ => {}
    }
    Ok((prepared, exe_fd))
}

/// Read the child's report until it is ready for its id maps: the renderer, which is
/// `first` — or, with `join`, the process whose pid the first (a stage that then
/// exits; the renderer is still our child, CLONE_PARENT) reports.
fn await_ready(
    report: &mut std::fs::File,
    first: libc::pid_t,
    join: bool,
) -> Result<Spawned, LaunchError> {
    let mut stage = join.then(|| Spawned::adopt(first));
    let mut renderer: Option<Spawned> = (!join).then(|| Spawned::adopt(first));
    let mut ready = false;
    while !(ready && renderer.is_some()) {
        let mut tag = [0u8; 1];
        let n = report.read(&mut tag).map_err(ns_err("read spawn report"))?;
        match (n, tag[0]) {
            (1, b'R') => ready = true,
            (1, b'P') => {
                renderer = Some(Spawned::adopt(read_i32(report).unwrap_or(0)));
                if let Some(s) = stage.as_mut() {
                    let _ = s.wait();
                }
            }
            (1, b'E') => {
                let errno = read_i32(report).unwrap_or(libc::ECHILD);
                return Err(LaunchError::new(
                    "child setup",
                    std::io::Error::from_raw_os_error(errno),
                ));
            }
            _ => {
                return Err(LaunchError::new(
                    "child setup",
                    std::io::Error::from_raw_os_error(libc::ECHILD),
                ))
            }
        }
    }
    renderer.ok_or_else(|| LaunchError::msg("child setup", "no renderer pid".into()))
}

/// The 4-byte value (errno after `E`, pid after `P`) a child writes after its tag.
fn read_i32(report: &mut std::fs::File) -> Option<i32> {
    let mut e = [0u8; 4];
    report
        .read_exact(&mut e)
        .ok()
        .map(|()| i32::from_ne_bytes(e))
}

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

use super::{Layer, LockdownError};
use crate::sys::spawn::{clone_and_exec, PreparedExec};
use crate::sys::spawn::{hold_namespaces, Join};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

/// The network namespace a renderer gets.
#[derive(Clone, Debug)]
pub enum NetMode {
    /// A new, empty network namespace (about 0.5 ms of kernel work per spawn here).
    Fresh,
    /// One empty network namespace made once and joined by every renderer.
    Reuse(Arc<EmptyNetwork>),
    /// The caller's network namespace (an opt-out).
    Shared,
}

/// An empty network namespace (only a down loopback) made once, for
/// [`NetMode::Reuse`]. It is owned by a user namespace of its own, made with it; each
/// renderer joins that user namespace, then the network namespace, then creates its
/// own user namespace and the rest below it — so the renderer has no capability over
/// the shared network namespace, and an unprivileged caller can do all of this.
#[derive(Debug)]
pub struct EmptyNetwork {
    user: OwnedFd,
    net: OwnedFd,
    /// Made by root: its user namespace maps [`OWN_ID_RANGE`] ids from
    /// [`OWN_ID_BASE`], so that each renderer can take an outside id of its own.
    own_ids: bool,
}

/// The first of the outside user and group ids a root spawner gives its renderers
/// ([`SpawnSpec::outside_id`]): a renderer of a root broker is not root outside its
/// user namespace, and — one id each — RLIMIT_NPROC (which the kernel never applies
/// to root) counts its threads alone.
pub const OWN_ID_BASE: u32 = 0x7fe0_0000;
/// How many outside ids from [`OWN_ID_BASE`] renderers may get.
pub const OWN_ID_RANGE: u32 = 1 << 20;

/// An outside id of its own for renderer number `n` of the process `pid`, in
/// [`OWN_ID_BASE`]'s range (1024 renderers a process before ids repeat; processes whose
/// pids agree modulo 1024 share ids — both sides of a collision are sandboxes).
pub fn own_id(pid: u32, n: u64) -> u32 {
    OWN_ID_BASE + ((pid & 0x3ff) << 10) + (n & 0x3ff) as u32
}

impl EmptyNetwork {
    /// Make the namespaces (a short-lived child creates them; we keep fds to them).
    pub fn create() -> Result<Arc<EmptyNetwork>, LockdownError> {
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err("pipe2")(e.into()))
        };
        let (hold_r, hold_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let raw = hold_namespaces(
            libc::CLONE_NEWUSER | libc::CLONE_NEWNET,
            hold_r.as_raw_fd(),
            hold_w.as_raw_fd(),
            ready_w.as_raw_fd(),
        )
        .map_err(ns_err("clone(CLONE_NEWUSER|CLONE_NEWNET)"))?;
        drop(hold_r);
        drop(ready_w);
        let mut holder = Spawned {
            pid: Pid::from_raw(raw),
            reaped: false,
        };
        let mut byte = [0u8; 1];
        if std::fs::File::from(ready_r)
            .read(&mut byte)
            .map_err(ns_err("read holder"))?
            != 1
        {
            return Err(LockdownError::new(
                Layer::Namespaces,
                "holder",
                std::io::Error::from_raw_os_error(libc::ECHILD),
            ));
        }
        // Made by root, the namespace maps a range of ids, each renderer taking one.
        let own_ids = nix::unistd::geteuid().is_root();
        if own_ids {
            let range = format!("0 {OWN_ID_BASE} {OWN_ID_RANGE}\n");
            let write = |file: &str| std::fs::write(format!("/proc/{raw}/{file}"), &range);
            write("uid_map").map_err(ns_err("write /proc/PID/uid_map"))?;
            write("gid_map").map_err(ns_err("write /proc/PID/gid_map"))?;
        } else {
            write_id_maps(raw, None, None)?;
        }
        let open = |ns: &str| {
            std::fs::File::open(format!("/proc/{raw}/ns/{ns}"))
                .map(OwnedFd::from)
                .map_err(ns_err("open /proc/PID/ns"))
        };
        let made = EmptyNetwork {
            user: open("user")?,
            net: open("net")?,
            own_ids,
        };
        drop(hold_w);
        let _ = holder.wait();
        Ok(Arc::new(made))
    }
}

impl PartialEq for NetMode {
    fn eq(&self, other: &NetMode) -> bool {
        matches!(
            (self, other),
            (NetMode::Fresh, NetMode::Fresh)
                | (NetMode::Shared, NetMode::Shared)
                | (NetMode::Reuse(_), NetMode::Reuse(_))
        )
    }
}

/// Which namespaces to create. Default: all of them, with a fresh network namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct Namespaces {
    /// New user namespace (needed for the others when unprivileged).
    pub user: bool,
    /// New pid namespace.
    pub pid: bool,
    /// Network namespace.
    pub net: NetMode,
    /// New mount namespace (needed for the empty root).
    pub mount: bool,
    /// New IPC namespace.
    pub ipc: bool,
    /// New UTS namespace.
    pub uts: bool,
    /// New cgroup namespace.
    pub cgroup: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            user: true,
            pid: true,
            net: NetMode::Fresh,
            mount: true,
            ipc: true,
            uts: true,
            cgroup: true,
        }
    }
}

impl Namespaces {
    /// No new namespace at all: the child shares every one of the caller's (for a
    /// process that is not a sandbox, such as a zygote that makes them per child).
    pub fn none() -> Namespaces {
        Namespaces {
            user: false,
            pid: false,
            net: NetMode::Shared,
            mount: false,
            ipc: false,
            uts: false,
            cgroup: false,
        }
    }

    /// The CLONE_NEW* flags these namespaces need (a reused network namespace cannot
    /// be expressed as a flag).
    pub fn clone_flags(&self) -> libc::c_int {
        let mut f = 0;
        let mut set = |on: bool, flag: libc::c_int| {
            if on {
                f |= flag;
            }
        };
        set(self.user, libc::CLONE_NEWUSER);
        set(self.pid, libc::CLONE_NEWPID);
        set(self.net == NetMode::Fresh, libc::CLONE_NEWNET);
        set(self.mount, libc::CLONE_NEWNS);
        set(self.ipc, libc::CLONE_NEWIPC);
        set(self.uts, libc::CLONE_NEWUTS);
        set(self.cgroup, libc::CLONE_NEWCGROUP);
        f
    }

    /// The `/proc/PID/ns/*` names of the namespaces that must differ from the caller's.
    pub fn expected_new(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, name) in [
            (self.user, "user"),
            (self.pid, "pid"),
            (self.net != NetMode::Shared, "net"),
            (self.mount, "mnt"),
            (self.ipc, "ipc"),
            (self.uts, "uts"),
            (self.cgroup, "cgroup"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }
}

/// What to start.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    /// The executable.
    pub exe: PathBuf,
    /// Arguments after argv[0] (which is `exe`).
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
    /// [`own_id`]). Needs a root caller; with [`NetMode::Reuse`], a network made by
    /// root and an id in [`OWN_ID_BASE`]'s range.
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
}

impl Spawned {
    /// Take charge of `pid`, which must be an unreaped child of this process (e.g.
    /// one a zygote cloned with CLONE_PARENT): it is killed and reaped on drop.
    pub fn adopt(pid: i32) -> Spawned {
        Spawned {
            pid: Pid::from_raw(pid),
            reaped: false,
        }
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

fn ns_err(call: &'static str) -> impl Fn(std::io::Error) -> LockdownError {
    move |e| LockdownError::new(Layer::Namespaces, call, e)
}

/// Start `spec` in new namespaces. Errors name the failing call and errno (EPERM when
/// a filter or policy forbids user namespaces, ENOSPC when their limit is reached).
pub fn spawn(spec: &SpawnSpec) -> Result<Spawned, LockdownError> {
    let exe = spec
        .exe
        .to_str()
        .ok_or_else(|| LockdownError::msg(Layer::Namespaces, "exec path", "not UTF-8".into()))?;
    let mut argv = vec![exe.to_string()];
    argv.extend(spec.args.iter().cloned());
    let envp: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut prepared =
        PreparedExec::new(exe, &argv, &envp, &spec.fds).map_err(ns_err("prepare exec"))?;
    match (spec.outside_id, &spec.namespaces.net) {
        (Some(id), _) => prepared.own_ids(joined_id(spec, id)?),
        // Joining a network made by root: 0 of its namespace is not root outside, so
        // the child takes it (the first id of the range) rather than stay unmapped.
        (None, NetMode::Reuse(n)) if n.own_ids => prepared.own_ids(0),
        _ => {}
    }
    let (go_r, go_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err("pipe2")(e.into()))?;
    let (rep_r, rep_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err("pipe2")(e.into()))?;
    if matches!(spec.namespaces.net, NetMode::Reuse(_)) && !spec.namespaces.user {
        return Err(LockdownError::msg(
            Layer::Namespaces,
            "spec",
            "NetMode::Reuse needs a new user namespace".into(),
        ));
    }
    let join = match &spec.namespaces.net {
        NetMode::Reuse(n) => Some(Join {
            user: n.user.as_raw_fd(),
            net: n.net.as_raw_fd(),
        }),
        _ => None,
    };
    let first = clone_and_exec(
        spec.namespaces.clone_flags(),
        &prepared,
        go_r.as_raw_fd(),
        rep_w.as_raw_fd(),
        join,
        [go_w.as_raw_fd(), rep_r.as_raw_fd()],
    )
    .map_err(ns_err("clone"))?;
    drop(go_r);
    drop(rep_w);
    let mut report = std::fs::File::from(rep_r);
    // With `join`, the first process is a stage that reports the renderer's pid and
    // exits; the renderer is still our child (CLONE_PARENT).
    let mut stage = join.map(|_| Spawned {
        pid: Pid::from_raw(first),
        reaped: false,
    });
    let mut renderer: Option<Spawned> = join.is_none().then(|| Spawned {
        pid: Pid::from_raw(first),
        reaped: false,
    });
    let mut ready = false;
    while !(ready && renderer.is_some()) {
        let mut tag = [0u8; 1];
        let n = report.read(&mut tag).map_err(ns_err("read spawn report"))?;
        match (n, tag[0]) {
            (1, b'R') => ready = true,
            (1, b'P') => {
                let pid = read_i32(&mut report).unwrap_or(0);
                renderer = Some(Spawned {
                    pid: Pid::from_raw(pid),
                    reaped: false,
                });
                if let Some(s) = stage.as_mut() {
                    let _ = s.wait();
                }
            }
            (1, b'E') => {
                let errno = read_i32(&mut report).unwrap_or(libc::ECHILD);
                return Err(LockdownError::new(
                    Layer::Namespaces,
                    "child setup",
                    std::io::Error::from_raw_os_error(errno),
                ));
            }
            _ => {
                return Err(LockdownError::new(
                    Layer::Namespaces,
                    "child setup",
                    std::io::Error::from_raw_os_error(libc::ECHILD),
                ))
            }
        }
    }
    let Some(mut child) = renderer else {
        return Err(LockdownError::msg(
            Layer::Namespaces,
            "child setup",
            "no renderer pid".into(),
        ));
    };
    if spec.namespaces.user && join.is_none() {
        if let Err(e) = write_id_maps(child.pid(), spec.extra_id, spec.outside_id) {
            let _ = child.kill();
            return Err(e);
        }
    }
    let mut go = std::fs::File::from(go_w);
    go.write_all(&[1]).map_err(ns_err("release child"))?;
    drop(go);
    let mut tag = [0u8; 1];
    match report.read(&mut tag).map_err(ns_err("read exec report"))? {
        // EOF: the report pipe was closed by a successful exec.
        0 => Ok(child),
        _ => {
            let errno = read_i32(&mut report).unwrap_or(libc::ECHILD);
            let _ = child.wait();
            Err(LockdownError::new(
                Layer::Namespaces,
                "fd setup or execve",
                std::io::Error::from_raw_os_error(errno),
            ))
        }
    }
}

/// Map uid/gid 0 inside the user namespace of `pid` (a child just cloned with
/// CLONE_NEWUSER, not yet past its maps) to our euid/egid, setgroups denied first; or,
/// with `outside`, to that id (a root caller; setgroups stays allowed so that the child
/// can drop its groups as it takes the id).
pub fn map_ids(pid: i32, outside: Option<u32>) -> Result<(), LockdownError> {
    write_id_maps(pid, None, outside)
}

/// The id a `join` child maps 0 to for itself, in the joined namespace: `id` less the
/// range's start; or, without `join`, nothing to map (the parent writes the maps).
fn joined_id(spec: &SpawnSpec, id: u32) -> Result<u32, LockdownError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(LockdownError::msg(
            Layer::Namespaces,
            "spec",
            "an outside id of the renderer's own needs a root spawner".into(),
        ));
    }
    match &spec.namespaces.net {
        NetMode::Reuse(n) if !n.own_ids => Err(LockdownError::msg(
            Layer::Namespaces,
            "spec",
            "an outside id of the renderer's own needs an EmptyNetwork made by root".into(),
        )),
        NetMode::Reuse(_) => id
            .checked_sub(OWN_ID_BASE)
            .filter(|k| *k < OWN_ID_RANGE)
            .ok_or_else(|| {
                LockdownError::msg(
                    Layer::Namespaces,
                    "spec",
                    format!("outside id {id:#x} is not in the shared network's range"),
                )
            }),
        _ => Ok(0),
    }
}

/// setgroups = deny, then uid/gid 0 inside mapped to our euid/egid outside (or to
/// `outside`, setgroups left allowed), with the `extra` mapping.
fn write_id_maps(
    pid: i32,
    extra: Option<(u32, u32, u32)>,
    outside: Option<u32>,
) -> Result<(), LockdownError> {
    let uid = outside.unwrap_or(nix::unistd::geteuid().as_raw());
    let gid = outside.unwrap_or(nix::unistd::getegid().as_raw());
    let (more_uid, more_gid) = match extra {
        Some((inside, ou, og)) => (format!("{inside} {ou} 1\n"), format!("{inside} {og} 1\n")),
        None => (String::new(), String::new()),
    };
    let write = |file: &str, text: String| std::fs::write(format!("/proc/{pid}/{file}"), text);
    // An unprivileged caller must deny setgroups to write a gid map; root need not,
    // and leaves it allowed so that the child can drop root's supplementary groups
    // when it takes another id (`outside`, or `Config::switch_to` in lockdown).
    if !nix::unistd::geteuid().is_root() {
        write("setgroups", "deny".into()).map_err(ns_err("write /proc/PID/setgroups"))?;
    }
    write("uid_map", format!("0 {uid} 1\n{more_uid}"))
        .map_err(ns_err("write /proc/PID/uid_map"))?;
    write("gid_map", format!("0 {gid} 1\n{more_gid}")).map_err(ns_err("write /proc/PID/gid_map"))
}

/// The 4-byte value (errno after `E`, pid after `P`) a child writes after its tag.
fn read_i32(report: &mut std::fs::File) -> Option<i32> {
    let mut e = [0u8; 4];
    report
        .read_exact(&mut e)
        .ok()
        .map(|()| i32::from_ne_bytes(e))
}

/// Renderer side: whether this process is in a user namespace other than the
/// initial one (its uid map is not the identity over all ids).
pub fn inside_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"],
        Err(_) => false,
    }
}

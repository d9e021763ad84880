//! `sandbox run`: any program under the sandbox layers.
//!
//! ```text
//! sandbox run (this process, the supervisor; outside). While the stage starts: makes
//! │ the pids and memory cgroups (`Cgroups`), finds the program's files when no grant
//! │ holds it (`super::deps`), sends the plan with the cgroups' join descriptors.
//! ├─ stage: this binary, `__run-stage`, pid 1 of new user/pid/net/mount/ipc/uts/
//! │  cgroup namespaces. Joins the cgroups, builds the root (empty read-only tmpfs, the
//! │  --ro/--rw/--dev binds, --proc), then forks:
//! │    └─ payload: locks down (fds, rlimits, capabilities, no_new_privs, Landlock)
//! │       and installs the filter with a user-notification listener *last*, sends
//! │       its status and the listener to the supervisor, waits for "go", execve()s.
//! └─ cleanup child (after "go"): waits for the supervisor's end, removes the cgroups.
//! ```
//!
//! The filter is the policy (default: the `exec` preset) with its default action
//! replaced by `user-notify`: a call outside the policy blocks in the kernel and the
//! supervisor, holding the listener, prints one line naming the syscall and its
//! arguments, kills the sandbox (its pid 1, which takes the whole pid namespace) and
//! exits 159. The program never gets past the violation. execve is allowed by the
//! filter (the `exec` preset allows it for the programs' own use too); Landlock
//! limits what can be executed to the granted paths.

use super::notify::Outcome;
use super::policy::{load, PolicyArg, Source};
use clap::Args;
use sandbox::bpf;
use sandbox::ipc::{Channel, Limits, Message};
use sandbox::launch::cgroup::{Cgroup, CgroupError, Hierarchy, MemoryCgroup, PidsCgroup, Places};
use sandbox::launch::{spawn, Namespaces, NetMode, SpawnSpec};
use sandbox::launch::{verify_from_outside, Asked};
use sandbox::lockdown::{
    build_root, lock_down, Config, Grant, Rlimits, SeccompChoice, SingleThreaded, Status,
};
use sandbox::policy::arch::Arch;
use sandbox::policy::presets::Preset;
use sandbox::policy::Action;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The argument that makes this binary the in-sandbox stage.
pub const STAGE_ARG: &str = "__run-stage";
/// Exit status after a seccomp violation (128 + SIGSYS, as a shell reports it).
pub const EXIT_VIOLATION: i32 = 159;
/// Exit status when the wall-clock limit ended the program (as timeout(1)).
pub const EXIT_WALL: i32 = 124;
/// Exit status when a fork bomb was ended: forks were still refused [`BOMB_GRACE`] after
/// the pids cgroup's limit was reached (128 + SIGKILL, which ends it).
pub const EXIT_PIDS: i32 = 137;
/// How long forks may go on being refused at the pids limit before the sandbox is
/// ended as a fork bomb.
pub const BOMB_GRACE: Duration = Duration::from_secs(1);
/// How often the supervisor reads the pids cgroup's refusals.
const BOMB_TICK: Duration = Duration::from_millis(100);
/// Name prefix of the pids cgroups (`sandbox-run-<supervisor pid>`).
const CGROUP_PREFIX: &str = "sandbox-run-";
/// Exit status when the sandbox itself could not be set up.
pub const EXIT_SETUP: i32 = 125;
/// When the caller is root, the program runs as [`SANDBOX_UID`] inside, mapped to this
/// plus the supervisor's pid modulo 65536 outside: a user id of the sandbox's own.
pub const SANDBOX_ID_BASE: u32 = 0x7ff0_0000;
/// The program's uid and gid inside when the caller is root (else 0).
pub const SANDBOX_UID: u32 = 1000;
/// Where the stage finds its own executable (exec'd as /proc/self/fd/N).
const STAGE_EXE_FD: i32 = 4;

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
    /// Set an environment variable (the environment is otherwise empty). Repeatable.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// The program's uid and gid inside (default: 1000 when the caller is root, with a
    /// user id of its own outside; 0 — mapped to the caller — otherwise). Another id
    /// than 0 needs a root caller.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Do not bind the program, its loader and its libraries when no --ro/--rw holds
    /// the program (then that is an error).
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

/// Supervisor → stage.
#[derive(Serialize, Deserialize)]
enum ToStage {
    Plan {
        program: String,
        argv: Vec<String>,
        env: Vec<String>,
        grants: Vec<Grant>,
        mount_proc: bool,
        rlimits: Rlimits,
        filter: Vec<u8>,
        switch_to: Option<(u32, u32)>,
        /// The plan comes with this many descriptors of cgroups' join files
        /// ([`Cgroup::open_self_join`]): the stage moves itself into each before it
        /// starts anything.
        join_cgroups: usize,
    },
    Go,
}

impl Message for ToStage {
    fn fd_count(&self) -> usize {
        match self {
            ToStage::Plan { join_cgroups, .. } => *join_cgroups,
            _ => 0,
        }
    }
    const MAX_FDS: usize = 2;
}

/// Stage → supervisor.
#[derive(Serialize, Deserialize)]
enum FromStage {
    /// Locked down; the listener comes with it.
    Ready(Box<Status>),
    Failed(String),
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
}

impl Message for FromStage {
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, FromStage::Ready(_)))
    }
    const MAX_FDS: usize = 1;
}

fn limits() -> Limits {
    Limits {
        max_message: 1 << 20,
    }
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("sandbox: {msg}");
    EXIT_SETUP
}

fn parse_bind(spec: &str, writable: bool) -> Result<Grant, String> {
    let (path, dest) = match spec.split_once(':') {
        Some((p, d)) => (p, Some(PathBuf::from(d))),
        None => (spec, None),
    };
    // Kept as written (a symlink such as /bin is bound at its own name, following it).
    let path = std::path::absolute(path).map_err(|e| format!("{path}: {e}"))?;
    let identity = std::fs::metadata(&path)
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Grant {
        path,
        writable,
        dest,
        identity: Some(identity),
    })
}

fn resolve_program(name: &str) -> Result<PathBuf, String> {
    if name.contains('/') {
        return std::fs::canonicalize(name).map_err(|e| format!("{name}: {e}"));
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    // Only absolute entries: an empty or relative one would look the name up in the
    // working directory, where an untrusted project can put a program of that name.
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name}: not found in PATH"))
}

/// `sandbox run`; returns the exit status.
pub fn run(args: RunArgs) -> i32 {
    match supervise(args) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

/// The `exec` preset as [`compile_filter`] makes it, compiled by `build.rs` for the
/// target's architecture (empty for an architecture the compiler does not support).
const PRECOMPILED_EXEC: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/exec_notify.bpf"));

/// The policy as the filter the program gets: its default replaced by `user-notify`;
/// with `tty`, the `exec` preset's terminal rule replaced by one that lets the program
/// change its terminal (but never inject input or reach the console). The `exec`
/// preset (the default) comes precompiled. A preset name is never looked up in the file
/// system (see [`PolicyArg`]).
fn compile_filter(policy: &str, tty: bool) -> Result<Vec<u8>, String> {
    let exec = PolicyArg::parse(policy)? == PolicyArg::Preset(Preset::Exec);
    if tty && !exec {
        return Err(
            "--tty changes the exec preset's terminal rule; with --policy, write the \
                    ioctl rule you want in the policy"
                .into(),
        );
    }
    if exec && !tty && !PRECOMPILED_EXEC.is_empty() {
        return Ok(PRECOMPILED_EXEC.to_vec());
    }
    compile_filter_now(policy, tty)
}

/// [`compile_filter`] without the precompiled preset.
fn compile_filter_now(policy: &str, tty: bool) -> Result<Vec<u8>, String> {
    let arch = Arch::native();
    let mut policy = load(
        &Source {
            file: policy.to_string(),
            arch: None,
            include_dirs: Vec::new(),
            defines: Vec::new(),
        },
        arch,
    )?;
    if tty {
        use sandbox::policy::arg;
        let cmd = |name: &str| {
            sandbox::policy::consts::lookup(arch, name).ok_or_else(|| format!("no constant {name}"))
        };
        policy.remove("ioctl");
        policy
            .add_rule(
                "ioctl",
                arg(1).ne(cmd("TIOCSTI")?).and(arg(1).ne(cmd("TIOCLINUX")?)),
                Action::Allow,
            )
            .and_then(|()| policy.set_otherwise("ioctl", Action::Errno(libc::EPERM as u16)))
            .map_err(|e| e.to_string())?;
    }
    policy
        .set_default(Action::UserNotify)
        .map_err(|e| e.to_string())?;
    let program = bpf::compile(&policy, arch).map_err(|e| e.to_string())?;
    Ok(bpf::to_bytes(&program.instructions))
}

fn supervise(args: RunArgs) -> Result<i32, String> {
    let arch = Arch::native();
    let mut grants = Vec::new();
    for r in &args.ro {
        grants.push(parse_bind(r, false)?);
    }
    for r in &args.rw {
        grants.push(parse_bind(r, true)?);
    }
    if args.dev {
        for (dev, writable) in [
            ("/dev/null", true),
            ("/dev/zero", true),
            ("/dev/urandom", false),
        ] {
            grants.push(Grant {
                path: dev.into(),
                writable,
                dest: None,
                identity: None,
            });
        }
    }
    let exe = resolve_program(&args.command[0])?;
    // The program runs at the same path inside only if a grant holds it. If none
    // does, it is bound read-only with its loader and libraries (see `deps`), each
    // file at its own path, unless --no-auto-ro: then that is an error.
    let covered = |grants: &[Grant], f: &Path| {
        grants
            .iter()
            .any(|g| g.dest.is_none() && f.starts_with(&g.path))
    };
    let find_files = !covered(&grants, &exe);
    if find_files && args.no_auto_ro {
        return Err(format!(
            "{} is not reachable inside: bind it (e.g. --ro {}) and its libraries (e.g. --ro /usr --ro /lib --ro /lib64), or leave out --no-auto-ro",
            exe.display(),
            exe.parent().map_or("/".into(), |p| p.display().to_string())
        ));
    }
    let mut argv = args.command.clone();
    argv[0] = exe.display().to_string();
    // As root, the program runs as a user id of its own (inside: SANDBOX_UID), so that
    // RLIMIT_NPROC counts only its processes (the kernel never applies it to root) and
    // root's files outside are not its own.
    let root = nix::unistd::geteuid().is_root();
    let inside = match (args.uid, root) {
        (Some(0), _) => None,
        (Some(u), true) => Some(u),
        (Some(_), false) => {
            return Err("--uid other than 0 needs a root caller (only one id can be mapped)".into())
        }
        (None, true) => Some(SANDBOX_UID),
        (None, false) => None,
    };
    let extra_id = inside.map(|u| {
        let id = SANDBOX_ID_BASE + (std::process::id() & 0xffff);
        (u, id, id)
    });
    let (ours, theirs) = sandbox::ipc::socket_pair().map_err(|e| format!("socketpair: {e}"))?;
    let mut ctl: Channel<ToStage, FromStage> =
        Channel::from_fd(ours, limits()).map_err(|e| e.to_string())?;
    let namespaces = Namespaces {
        net: if args.share_net {
            NetMode::Shared
        } else {
            NetMode::Fresh
        },
        ..Namespaces::default()
    };
    // The stage is this binary, exec'd through a descriptor opened here: the sandbox's
    // user may not be able to walk the path to it.
    let self_exe = std::fs::File::open(std::env::current_exe().map_err(|e| e.to_string())?)
        .map_err(|e| format!("cannot open the sandbox binary: {e}"))?;
    let mut stage = spawn(&SpawnSpec {
        exe: PathBuf::from(format!("/proc/self/fd/{STAGE_EXE_FD}")),
        args: vec![STAGE_ARG.to_string()],
        env: Vec::new(),
        fds: vec![
            (0, 0),
            (1, 1),
            (2, 2),
            (theirs.as_raw_fd(), 3),
            (self_exe.as_raw_fd(), STAGE_EXE_FD),
        ],
        namespaces: namespaces.clone(),
        extra_id,
        // The stage stays root outside to build the root (the program takes an id of
        // its own through `extra_id` and `switch_to`).
        outside_id: None,
    })
    .map_err(|e| e.to_string())?;
    drop(theirs);
    drop(self_exe);
    // Found while the stage starts too (~0.3 ms for /bin/true).
    let mut auto_ro = Vec::new();
    if find_files {
        // What the caller granted may be used whatever its permissions.
        let granted: Vec<PathBuf> = grants
            .iter()
            .filter(|g| g.dest.is_none())
            .filter_map(|g| std::fs::canonicalize(&g.path).ok())
            .collect();
        for file in super::deps::needed_files(&exe, &granted)? {
            if !covered(&grants, &file.path) {
                // Bound from the file itself, at the path the loader opens: a symlink
                // on the way (/lib64/ld-linux-x86-64.so.2 is an absolute one) would
                // otherwise be followed inside the new root, where its target is not.
                // The stage checks that what it bound is the file checked here.
                grants.push(Grant {
                    dest: (file.real != file.path).then(|| file.path.clone()),
                    path: file.real,
                    writable: false,
                    identity: Some(file.id),
                });
                auto_ro.push(file.path);
            }
        }
    }
    // The cgroups are made while the stage starts (~0.4 ms: reading mountinfo, two
    // mkdirs); it joins them, with the plan, before it starts anything.
    // --pids: a pids cgroup where one can be made (root, or a delegated cgroup v2
    // subtree) holding the stage and everything below it — the stage counts, so the
    // program gets N — and RLIMIT_NPROC one above, as a backstop that the cgroup
    // reaches first (so that its refusals are counted); without a cgroup,
    // RLIMIT_NPROC alone: N, or N + 1 when the program runs as the stage's user
    // (an unprivileged caller's, or --uid 0), which counts the stage too.
    // --mem: a memory cgroup where one can be made, counting memory used (and then
    // no RLIMIT_AS); otherwise RLIMIT_AS.
    let mut groups = Cgroups::new(args.pids, args.mem, inside.is_none())?;
    let rlimits = Rlimits {
        address_space: groups.rlimit_as(),
        open_files: args.nofile,
        file_size: args.fsize,
        core: 0,
        cpu_seconds: args.cpu,
        memlock: 0,
        processes: groups.rlimit_nproc(),
    };

    // The policy is parsed and compiled (~0.5 ms; the default preset comes
    // precompiled) while the stage starts; a policy error ends here (dropping `stage`
    // kills and reaps it).
    let filter = compile_filter(&args.policy, args.tty)?;
    let joins = groups.open_self_joins()?;
    ctl.send(
        &ToStage::Plan {
            program: exe.display().to_string(),
            argv,
            env: args.env.clone(),
            grants,
            mount_proc: args.proc,
            rlimits,
            filter,
            switch_to: extra_id.map(|(u, _, _)| (u, u)),
            join_cgroups: joins.len(),
        },
        &joins.iter().map(|f| f.as_fd()).collect::<Vec<_>>(),
    )
    .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let wall = Duration::from_secs(args.wall);

    let (status, listener) = match ctl.recv_timeout(Duration::from_secs(10)) {
        Ok((FromStage::Ready(status), mut fds)) => (status, fds.pop()),
        Ok((FromStage::Failed(why), _)) => return Err(why),
        Ok(_) => return Err("unexpected message from the sandbox".into()),
        Err(e) => return Err(format!("the sandbox did not start: {e}")),
    };
    let Some(listener) = listener else {
        return Err("no notification listener".into());
    };
    // Wake the supervisor on the caller's CPU for each notification (Linux 6.6; a
    // kernel without it is only slower at answering memfd_create).
    let _ = sandbox::seccomp::wake_synchronously(listener.as_fd());
    let mut listener = Some(listener);
    let payload = payload_pid(stage.pid()).ok_or("cannot find the program's process")?;
    let asked = Asked {
        opt_outs: &[],
        new_namespaces: &namespaces.expected_new(),
    };
    if let Err(problems) = verify_from_outside(payload, &status, &asked) {
        return Err(format!(
            "the sandbox is not what was asked: {}",
            problems.join("; ")
        ));
    }
    groups.verify(payload)?;
    if let Some(file) = &args.status_json {
        let (pids, memory) = groups.report();
        let report = RunReport {
            lockdown: &status,
            pids,
            memory,
            auto_ro: &auto_ro,
        };
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(file, json).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    ctl.send(&ToStage::Go, &[]).map_err(|e| e.to_string())?;
    groups.start_janitor();

    let name = exe.display().to_string();
    let pidfd = stage.open_pidfd().map_err(|e| e.to_string())?;
    let mut bombs = BombWatch::default();
    // Cleared when the stage's end of the control channel is gone (then only the
    // pidfd tells the rest; polling a hung-up socket would spin).
    let mut ctl_open = true;
    loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let left = wall.saturating_sub(start.elapsed());
        if left.is_zero() {
            // Counted before the kill: a fork bomb shows itself here.
            let (processes, threads) = count_below(stage.pid());
            stage.signal_kill();
            let _ = stage.wait();
            eprintln!(
                "sandbox: killed {name}: wall-clock limit of {} s ({processes} processes, \
                 {threads} threads running; --pids {})",
                args.wall, args.pids
            );
            return Ok(EXIT_WALL);
        }
        // The listener is watched until it hangs up (every filter user is gone).
        // Which of the control channel, the stage's pidfd and the listener are ready.
        const CTL: usize = 0;
        const STAGE: usize = 1;
        const LISTENER: usize = 2;
        let mut flags = [PollFlags::empty(); 3];
        {
            let mut watched = vec![(STAGE, PollFd::new(pidfd.as_fd(), PollFlags::POLLIN))];
            if ctl_open {
                watched.push((CTL, PollFd::new(ctl.as_fd(), PollFlags::POLLIN)));
            }
            if let Some(l) = &listener {
                watched.push((LISTENER, PollFd::new(l.as_fd(), PollFlags::POLLIN)));
            }
            let (roles, mut fds): (Vec<usize>, Vec<PollFd>) = watched.into_iter().unzip();
            // With a pids cgroup, a look at its refusals every tick.
            let wait = if groups.pids.is_some() {
                left.min(BOMB_TICK)
            } else {
                left
            };
            let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
            let _ = poll(&mut fds, PollTimeout::from(ms));
            for (role, f) in roles.iter().zip(&fds) {
                if let Some(slot) = flags.get_mut(*role) {
                    *slot = f.revents().unwrap_or(PollFlags::empty());
                }
            }
        }
        let revents = |i: usize| flags.get(i).copied().unwrap_or(PollFlags::empty());
        let ready = |i: usize| !revents(i).is_empty();
        if bombs.still_refused(groups.pids.as_ref()) {
            let (processes, threads) = count_below(stage.pid());
            stage.signal_kill();
            let _ = stage.wait();
            eprintln!(
                "sandbox: killed {name}: process limit: forks still refused {} s after \
                 --pids {} was reached ({processes} processes, {threads} threads running)",
                BOMB_GRACE.as_secs(),
                args.pids
            );
            return Ok(EXIT_PIDS);
        }
        if revents(LISTENER).contains(PollFlags::POLLHUP)
            && !revents(LISTENER).contains(PollFlags::POLLIN)
        {
            // No process uses the filter any more: nothing can be notified.
            listener = None;
        } else if ready(LISTENER) {
            if let Some(l) = &listener {
                match super::notify::handle(l.as_fd(), arch) {
                    Outcome::Answered | Outcome::Retry => {}
                    Outcome::Violation { pid, call } => {
                        stage.signal_kill();
                        let _ = stage.wait();
                        eprintln!("sandbox: killed {name} (pid {pid}): seccomp violation: {call}");
                        return Ok(EXIT_VIOLATION);
                    }
                    Outcome::Lost(e) => {
                        // Without a reader the kernel would answer every later
                        // violation with ENOSYS: the sandbox cannot go on.
                        stage.signal_kill();
                        let _ = stage.wait();
                        eprintln!(
                            "sandbox: killed {name}: the seccomp notification listener failed ({e})"
                        );
                        return Ok(EXIT_SETUP);
                    }
                }
            }
        }
        if ready(CTL) {
            match ctl.try_recv() {
                Ok(Some((FromStage::Exited { code, signal }, _))) => {
                    // The stage reports only once nothing else of the sandbox is left;
                    // its own exit (the kernel tearing down the namespaces and mounts,
                    // 1 to 9 ms here) need not be waited for.
                    stage.kill_without_reaping();
                    return Ok(program_status(&name, code, signal, &groups));
                }
                Ok(_) => {}
                Err(_) => ctl_open = false,
            }
        }
        if ready(STAGE) {
            let _ = stage.wait();
            while let Ok(Some((m, _))) = ctl.try_recv() {
                if let FromStage::Exited { code, signal } = m {
                    return Ok(program_status(&name, code, signal, &groups));
                }
            }
            return Ok(fail("the sandbox ended without the program's status"));
        }
    }
}

/// The cgroups that hold the sandbox, where they could be made: `--pids` and `--mem`.
struct Cgroups {
    pids_limit: u64,
    /// Whether the program runs as the stage's user (then RLIMIT_NPROC counts the
    /// stage too).
    with_stage: bool,
    mem_limit: u64,
    pids: Option<PidsCgroup>,
    memory: Option<MemoryCgroup>,
    /// Why there is no pids cgroup, or no memory cgroup (in the report).
    no_pids: Option<String>,
    no_memory: Option<String>,
    /// The end of the pipe the cleanup child waits on (see `start_janitor`).
    janitor: Option<OwnedFd>,
}

/// `Some(cgroup)`, or `None` with the reason when none can be made here; any other
/// failure is an error.
fn made<T>(got: Result<T, CgroupError>) -> Result<(Option<T>, Option<String>), String> {
    match got {
        Ok(c) => Ok((Some(c), None)),
        Err(e @ CgroupError::Unavailable(..)) => Ok((None, Some(e.to_string()))),
        Err(e) => Err(format!("cgroup: {e}")),
    }
}

impl Cgroups {
    fn new(pids_limit: u64, mem_limit: u64, with_stage: bool) -> Result<Cgroups, String> {
        let name = format!("{CGROUP_PREFIX}{}", std::process::id());
        let places = Places::read();
        let (pids, no_pids) = made(PidsCgroup::create(
            &places,
            &name,
            pids_limit.saturating_add(1),
        ))?;
        let (memory, no_memory) = made(MemoryCgroup::create(&places, &name, mem_limit))?;
        let groups = Cgroups {
            pids_limit,
            with_stage,
            mem_limit,
            pids,
            memory,
            no_pids,
            no_memory,
            janitor: None,
        };
        Ok(groups)
    }

    fn all(&self) -> impl Iterator<Item = &Cgroup> {
        let pids = self.pids.as_deref();
        let memory = self.memory.as_deref();
        pids.into_iter().chain(memory)
    }

    /// RLIMIT_NPROC: the limit, one above it when the stage counts too (the same
    /// user) — or when the cgroup holds the limit, so that the cgroup refuses first
    /// and its refusals are counted.
    fn rlimit_nproc(&self) -> u64 {
        if self.pids.is_some() || self.with_stage {
            self.pids_limit.saturating_add(1)
        } else {
            self.pids_limit
        }
    }

    /// RLIMIT_AS: `--mem`, or unlimited when the memory cgroup holds `--mem` (which
    /// counts what is used, not address space reserved).
    fn rlimit_as(&self) -> u64 {
        if self.memory.is_some() {
            u64::MAX
        } else {
            self.mem_limit
        }
    }

    /// The files the stage writes to move itself into each cgroup.
    fn open_self_joins(&self) -> Result<Vec<std::fs::File>, String> {
        self.all()
            .map(|c| c.open_self_join().map_err(|e| format!("cgroup: {e}")))
            .collect()
    }

    /// Checked from outside with the rest of the status: the program is in each
    /// cgroup.
    fn verify(&self, pid: i32) -> Result<(), String> {
        if self.all().next().is_none() {
            return Ok(());
        }
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|e| format!("/proc/{pid}/cgroup: {e}"))?;
        for c in self.all() {
            if !c.listed_in(&text) {
                return Err(format!(
                    "the program is not in the cgroup {}",
                    c.path().display()
                ));
            }
        }
        Ok(())
    }

    /// Tasks the out-of-memory killer ended in the sandbox.
    fn oom_kills(&self) -> u64 {
        self.memory
            .as_ref()
            .and_then(|m| m.oom_kills())
            .unwrap_or(0)
    }

    fn report(&self) -> (PidsReport, MemoryReport) {
        let cgroup = |c: &Cgroup, limit: u64| CgroupReport {
            hierarchy: c.hierarchy(),
            path: c.path().display().to_string(),
            limit,
        };
        (
            PidsReport {
                limit: self.pids_limit,
                cgroup: self.pids.as_ref().map(|c| cgroup(c, c.max())),
                rlimit_nproc: self.rlimit_nproc(),
                no_cgroup: self.no_pids.clone(),
            },
            MemoryReport {
                limit: self.mem_limit,
                cgroup: self.memory.as_ref().map(|c| cgroup(c, c.limit())),
                rlimit_as: self.rlimit_as(),
                no_cgroup: self.no_memory.clone(),
            },
        )
    }
}

impl Cgroups {
    /// Start the child that removes the cgroups once this process has ended (it waits
    /// for the end of a pipe whose other end only this process holds — so it also
    /// cleans up after a supervisor that was killed, whose stage the parent-death
    /// signal then ends). Started while the program runs, its fork is off the path of
    /// the run's end. Without it (an error before "go"), [`Drop`] forks one.
    fn start_janitor(&mut self) {
        if self.all().next().is_none() || self.janitor.is_some() {
            return;
        }
        let Ok((wait, hold)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return;
        };
        let Ok(one) = SingleThreaded::check() else {
            return;
        };
        match one.fork() {
            Ok(0) => {
                drop(hold);
                // Not holding the caller's pipes open while the program runs, nor
                // anything else of the supervisor's: a copy of the seccomp listener
                // would keep a violation waiting if the supervisor lost its own.
                stdio_to_null();
                let keep = [0, 1, 2, wait.as_raw_fd()];
                if sandbox::lockdown::close_descriptors_except(&keep).is_err() {
                    std::process::exit(EXIT_SETUP);
                }
                let mut wait = std::fs::File::from(wait);
                let mut byte = [0u8; 1];
                // Returns at end of file: every copy of `hold` is closed.
                while matches!(std::io::Read::read(&mut wait, &mut byte), Ok(1)) {}
                self.clean_up_and_exit()
            }
            Ok(_) => self.janitor = Some(hold),
            Err(_) => {}
        }
    }

    /// In a child of the supervisor: stdio on /dev/null, remove the cgroups (retrying
    /// every millisecond for up to 10 s while the stage exits) and those that killed
    /// supervisors left behind, and exit — without returning, so that nothing else
    /// of the supervisor's state (the stage is not this child's) is dropped here.
    fn clean_up_and_exit(&self) -> ! {
        stdio_to_null();
        for cgroup in self.all() {
            for _ in 0..10_000 {
                match cgroup.remove() {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    _ => break,
                }
            }
        }
        for g in self.all() {
            g.remove_stale_siblings(CGROUP_PREFIX);
        }
        std::process::exit(0)
    }
}

/// Standard input, output and error onto /dev/null (in a cleanup child: the caller
/// reading the supervisor's output to its end must not wait for it).
fn stdio_to_null() {
    if let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

impl Drop for Cgroups {
    /// Remove the cgroups: let the janitor go; or, on an error before "go" (no
    /// janitor yet; the stage, dropped after this, is being ended), remove them here,
    /// forking a child to retry if one is still busy.
    fn drop(&mut self) {
        if let Some(hold) = self.janitor.take() {
            drop(hold);
            return;
        }
        if self.all().all(|c| c.remove().is_ok() || !c.path().exists()) {
            return;
        }
        if let Ok(one) = SingleThreaded::check() {
            if let Ok(0) = one.fork() {
                self.clean_up_and_exit()
            }
        }
    }
}

/// What `--status-json` writes: the program's verified lockdown status and how
/// `--pids` and `--mem` are enforced.
#[derive(Serialize)]
struct RunReport<'a> {
    lockdown: &'a Status,
    pids: PidsReport,
    memory: MemoryReport,
    /// The files bound read-only because no grant held the program (its own, its
    /// loader's, its libraries').
    auto_ro: &'a [PathBuf],
}

#[derive(Serialize)]
struct PidsReport {
    /// `--pids`.
    limit: u64,
    /// The cgroup holding the sandbox, if one could be made (`limit`: `pids.max`, the
    /// limit plus one for the stage).
    cgroup: Option<CgroupReport>,
    /// RLIMIT_NPROC of the program.
    rlimit_nproc: u64,
    /// Why there is no cgroup.
    no_cgroup: Option<String>,
}

#[derive(Serialize)]
struct MemoryReport {
    /// `--mem`.
    limit: u64,
    /// The cgroup holding the sandbox, if one could be made (`limit`: its limit).
    cgroup: Option<CgroupReport>,
    /// RLIMIT_AS of the program (`u64::MAX`: unlimited, the cgroup holds `--mem`).
    rlimit_as: u64,
    /// Why there is no cgroup.
    no_cgroup: Option<String>,
}

#[derive(Serialize)]
struct CgroupReport {
    hierarchy: Hierarchy,
    path: String,
    limit: u64,
}

/// Watches the pids cgroup's refusals: a fork bomb is a sandbox whose forks are still
/// being refused [`BOMB_GRACE`] after the first refusal seen; a program that hit the
/// limit once and backed off is left alone.
#[derive(Default)]
struct BombWatch {
    /// Refusals already judged.
    seen: u64,
    /// When refusals were first seen past `seen`, and their count then.
    since: Option<(Instant, u64)>,
    /// When the cgroup was last read: at most once a [`BOMB_TICK`], however often the
    /// supervisor wakes (a program answered through the listener wakes it per call).
    last: Option<Instant>,
}

impl BombWatch {
    fn still_refused(&mut self, pids: Option<&PidsCgroup>) -> bool {
        if self.last.is_some_and(|t| t.elapsed() < BOMB_TICK) {
            return false;
        }
        self.last = Some(Instant::now());
        let Some(refused) = pids.and_then(|c| c.refused()) else {
            return false;
        };
        match self.since {
            None => {
                if refused > self.seen {
                    self.since = Some((Instant::now(), refused));
                }
                false
            }
            Some((first, then)) if first.elapsed() >= BOMB_GRACE => {
                if refused > then {
                    return true;
                }
                self.since = None;
                self.seen = refused;
                false
            }
            Some(_) => false,
        }
    }
}

/// The exit status for the program's end, with a line on stderr if a signal ended it,
/// and one if the memory limit ended any of the sandbox's processes.
fn program_status(name: &str, code: Option<i32>, signal: Option<i32>, groups: &Cgroups) -> i32 {
    let oom = groups.oom_kills();
    let mem = groups.mem_limit;
    let status = match (code, signal) {
        (Some(code), _) => code,
        (None, Some(sig)) => {
            let why = match sig {
                libc::SIGXCPU => ": CPU time limit".to_string(),
                libc::SIGXFSZ => ": file size limit".to_string(),
                libc::SIGKILL if oom > 0 => {
                    format!(": memory limit (--mem {mem}): out of memory")
                }
                libc::SIGKILL => ": SIGKILL (CPU or memory limit, or killed)".to_string(),
                // Every call outside the policy is notified and named in the loop;
                // these are the filter's own kills (and the policy's kill or trap
                // rules), which the kernel does not tell us about.
                libc::SIGSYS => ": seccomp violation without a notification (an i386 or x32 \
                                 call, a 32-bit argument with junk in its high half, or a \
                                 kill or trap rule of the policy)"
                    .to_string(),
                _ => String::new(),
            };
            eprintln!("sandbox: {name} killed by signal {sig}{why}");
            128 + sig
        }
        (None, None) => return fail("the sandbox ended without the program's status"),
    };
    // The program may outlive a child the limit ended (a shell, a build tool).
    if oom > 0 && signal != Some(libc::SIGKILL) {
        eprintln!(
            "sandbox: the memory limit (--mem {mem}) ended {oom} process(es) in the sandbox of {name}"
        );
    }
    status
}

/// The first child of the stage: the program.
fn payload_pid(stage: i32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{stage}/task/{stage}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// The processes and threads below `pid` (its descendants, not itself), found through
/// `/proc/PID/task/TID/children`; at most [`MAX_COUNTED`] processes are visited.
fn count_below(pid: i32) -> (usize, usize) {
    let children = |p: i32| -> Vec<i32> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect()
    };
    let threads = |p: i32| std::fs::read_dir(format!("/proc/{p}/task")).map_or(0, |d| d.count());
    let mut todo = children(pid);
    let (mut processes, mut all_threads) = (0, 0);
    while let Some(p) = todo.pop() {
        if processes >= MAX_COUNTED {
            break;
        }
        processes += 1;
        all_threads += threads(p);
        todo.extend(children(p));
    }
    (processes, all_threads)
}

/// A bound on [`count_below`]'s walk.
const MAX_COUNTED: usize = 100_000;

/// The in-sandbox stage (pid 1). Never returns.
pub fn stage() -> ! {
    let code = match stage_inner() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sandbox: {e}");
            EXIT_SETUP
        }
    };
    std::process::exit(code)
}

fn stage_inner() -> Result<i32, String> {
    let fd = sandbox::renderer::take_channel().map_err(|e| format!("no control channel: {e}"))?;
    let mut ctl: Channel<FromStage, ToStage> =
        Channel::from_fd(fd, limits()).map_err(|e| e.to_string())?;
    let (plan, mut plan_fds) = ctl
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let ToStage::Plan {
        program,
        argv,
        env,
        grants,
        mount_proc,
        rlimits,
        filter,
        switch_to,
        join_cgroups,
    } = plan
    else {
        return Err("expected a plan".into());
    };
    // Into the cgroups first: everything the stage forks from here on is born in
    // them. (Single-threaded: with v1's `tasks`, only the writing thread moves.)
    if join_cgroups != plan_fds.len() {
        return Err("the plan's cgroup descriptors are missing".into());
    }
    if join_cgroups > 0 {
        SingleThreaded::check().map_err(|e| e.to_string())?;
    }
    for fd in plan_fds.drain(..) {
        let mut file = std::fs::File::from(fd);
        sandbox::launch::cgroup::join_self(&mut file).map_err(|e| format!("join a cgroup: {e}"))?;
    }
    drop(plan_fds);
    let instructions = bpf::from_bytes(&filter).ok_or("malformed filter")?;
    let mut config = Config {
        keep_fds: vec![0, 1, 2, 3],
        rlimits,
        grants,
        landlock_min_abi: 1,
        mount_proc,
        root_built: None,
        seccomp_listener: true,
        switch_to,
        seccomp: SeccompChoice::Program(bpf::Program {
            instructions,
            arch: Arch::native(),
            left_out: Vec::new(),
        }),
        opt_outs: Vec::new(),
    };
    let report = |ctl: &Channel<FromStage, ToStage>, why: String| {
        let _ = ctl.send(&FromStage::Failed(why.clone()), &[]);
        why
    };
    let one_thread = SingleThreaded::check().map_err(|e| report(&ctl, e.to_string()))?;
    let in_user_ns = sandbox::lockdown::inside_user_namespace();
    let method = build_root(&config).map_err(|e| report(&ctl, e.to_string()))?;
    config.root_built = Some((method, in_user_ns));
    let child = one_thread.fork().map_err(|e| report(&ctl, e.to_string()))?;
    if child == 0 {
        let code = payload(ctl, &config, &program, &argv, &env);
        std::process::exit(code);
    }
    // pid 1: reap everything until the program ends.
    let ended = loop {
        match nix::sys::wait::waitpid(None, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(pid, code)) if pid.as_raw() == child => {
                break FromStage::Exited {
                    code: Some(code),
                    signal: None,
                };
            }
            Ok(nix::sys::wait::WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == child => {
                break FromStage::Exited {
                    code: None,
                    signal: Some(sig as i32),
                };
            }
            Ok(_) => {}
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(format!("waitpid: {e}")),
        }
    };
    // Then end whatever the program left running (as pid 1, kill(-1) reaches every
    // other process of this pid namespace) and reap it all, so that once the
    // supervisor has the status, nothing of the sandbox runs or writes any more; only
    // this process's own exit (tearing the namespaces down) is left.
    // (The kernel aborts a fork whose parent has a fatal signal pending, so nothing
    // born after a kill escapes it; killing again on each reap is belt and braces.)
    loop {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(-1),
            nix::sys::signal::Signal::SIGKILL,
        );
        match nix::sys::wait::waitpid(None, None) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => break, // ECHILD: none left
        }
    }
    let _ = ctl.send(&ended, &[]);
    Ok(0)
}

fn payload(
    mut ctl: Channel<FromStage, ToStage>,
    config: &Config,
    program: &str,
    argv: &[String],
    env: &[String],
) -> i32 {
    if let Err(e) = crate::sys::default_sigpipe() {
        let _ = ctl.send(&FromStage::Failed(format!("SIGPIPE: {e}")), &[]);
        return EXIT_SETUP;
    }
    // A session of its own: the caller's terminal is not its controlling terminal, so
    // it cannot push input into it (TIOCSTI needs that even where a filter allows it)
    // or take part in the caller's job control.
    if let Err(e) = nix::unistd::setsid() {
        let _ = ctl.send(&FromStage::Failed(format!("setsid: {e}")), &[]);
        return EXIT_SETUP;
    }
    let mut locked = match lock_down(config) {
        Ok(l) => l,
        Err(e) => {
            let _ = ctl.send(&FromStage::Failed(e.to_string()), &[]);
            return e.exit_code();
        }
    };
    let listener: Option<OwnedFd> = locked.take_listener();
    let Some(listener) = listener else {
        let _ = ctl.send(&FromStage::Failed("no listener".into()), &[]);
        return EXIT_SETUP;
    };
    if ctl
        .send(
            &FromStage::Ready(Box::new(locked.status().clone())),
            &[listener.as_fd()],
        )
        .is_err()
    {
        return EXIT_SETUP;
    }
    drop(listener);
    match ctl.recv_timeout(Duration::from_secs(10)) {
        Ok((ToStage::Go, _)) => {}
        _ => return EXIT_SETUP,
    }
    drop(ctl);
    let c = |s: &str| CString::new(s).ok();
    let (Some(path), Some(argv), Some(env)) = (
        c(program),
        argv.iter().map(|a| c(a)).collect::<Option<Vec<_>>>(),
        env.iter().map(|a| c(a)).collect::<Option<Vec<_>>>(),
    ) else {
        return EXIT_SETUP;
    };
    let e = nix::unistd::execve(&path, &argv, &env);
    eprintln!("sandbox: cannot execute {program}: {e:?}");
    127
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes `build.rs` embedded are what the run-time compiler makes of the
    /// preset now: a change to the preset or the compiler cannot leave a stale copy.
    #[test]
    fn the_precompiled_exec_preset_is_what_the_compiler_makes() {
        assert!(
            !PRECOMPILED_EXEC.is_empty(),
            "build.rs compiled nothing for this architecture"
        );
        let now = compile_filter_now("exec", false).expect("the exec preset compiles");
        assert_eq!(PRECOMPILED_EXEC, now.as_slice());
        assert_eq!(compile_filter("exec", false).expect("precompiled"), now);
    }

    /// Any other policy is compiled at run time (a preset that is not `exec`, here
    /// a file).
    #[test]
    fn other_policies_are_compiled_at_run_time() {
        let dir = std::env::temp_dir().join(format!("run-filter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("p.policy");
        std::fs::write(&file, "read: allow\nwrite: allow\nexit_group: allow\n").expect("write");
        let got = compile_filter(file.to_str().expect("utf-8"), false).expect("compiles");
        assert_ne!(got.as_slice(), PRECOMPILED_EXEC);
        assert_eq!(
            got,
            compile_filter_now(file.to_str().expect("utf-8"), false).expect("compiles")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The supervisor: `sandbox run` step by step, then the loop that watches the run.
//!
//! 1. [`plan`]: the binds, the program, the ids, the namespaces.
//! 2. [`start_stage`]: the stage cloned into its namespaces (it starts meanwhile).
//! 3. [`bind_program_files`]: the program's own files, when no grant holds it.
//! 4. the cgroups and the filter; [`send_plan`].
//! 5. [`await_lockdown`]: the payload's report and listener, verified from outside.
//! 6. [`write_status`], "go", the cleanup child; [`Watch::run`] until the end.

use super::cgroups::{BombWatch, Cgroups};
use super::filter::compile_filter;
use super::grants::{idmapped_trees, GrantView, Trees};
use super::options::{environment, parse_bind, resolve_program, RunArgs};
use super::protocol::{limits, FromStage, ToStage, TREES_PER_MESSAGE};
use super::report::{count_below, payload_pid, program_status, RunReport};
use super::*;
use crate::learn::record::Recorder;
use crate::notify::Outcome;
use sandbox::ipc::Channel;
use sandbox::launch::{spawn, verify_from_outside, Asked, Namespaces, NetMode, SpawnSpec, Spawned};
use sandbox::lockdown::{Bind, Rlimits, Status};
use sandbox::policy::arch::Arch;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The channel to the stage.
type Ctl = Channel<ToStage, FromStage>;

/// What the caller asked, made concrete.
struct Plan {
    /// The profile's binds, the caller's `--ro`/`--rw` grants (at `grants`), the rest.
    binds: Vec<Bind>,
    grants: std::ops::Range<usize>,
    /// The program, resolved.
    exe: PathBuf,
    argv: Vec<String>,
    env: Vec<String>,
    /// The size of the program's /tmp, if it gets one.
    scratch_tmp: Option<u64>,
    /// The program's id inside when it is not 0 (a root caller's program).
    inside: Option<u32>,
    /// That id's mapping: (inside, outside uid, outside gid).
    extra_id: Option<(u32, u32, u32)>,
    namespaces: Namespaces,
    /// The program's own files are bound for it where no grant holds them.
    find_files: bool,
}

/// `sandbox run`, to the program's exit status.
pub(super) fn supervise(args: RunArgs, recorder: Option<&mut Recorder>) -> Result<i32, RunError> {
    let mut plan = plan(&args)?;
    let (stage, mut ctl) = start_stage(&plan).map_err(explain_userns)?;
    // Found, made and compiled while the stage starts.
    let auto_ro = bind_program_files(&mut plan)?;
    let caller = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let trees = idmapped_trees(
        &plan.binds,
        plan.grants.clone(),
        caller,
        plan.extra_id.map(|(_, outside, _)| outside),
    )?;
    // --pids: a pids cgroup where one can be made (root, or a delegated cgroup v2
    // subtree) holding the stage and everything below it — the stage counts, so the
    // program gets N — and RLIMIT_NPROC one above, as a backstop that the cgroup
    // reaches first (so that its refusals are counted); without a cgroup,
    // RLIMIT_NPROC alone: N, or N + 1 when the program runs as the stage's user
    // (an unprivileged caller's, or --uid 0), which counts the stage too.
    // --mem: a memory cgroup where one can be made, counting memory used (and then
    // no RLIMIT_AS); otherwise RLIMIT_AS.
    let mut groups = Cgroups::new(args.pids(), args.mem(), plan.inside.is_none())?;
    // ~0.5 ms (the default preset comes precompiled); a policy error ends here
    // (dropping `stage` kills and reaps it).
    let filter = match recorder {
        Some(_) => crate::learn::learning_policy()
            .and_then(|p| {
                sandbox::bpf::compile(&p, Arch::native())
                    .map(|prog| sandbox::bpf::to_bytes(&prog.instructions))
                    .map_err(|e| e.to_string())
            })
            .map_err(RunError::Policy)?,
        None => compile_filter(&args)?,
    };
    send_plan(
        &ctl,
        plan_message(&args, &plan, &groups, filter),
        &groups,
        &trees,
    )?;
    let start = Instant::now();
    let (status, listener) = await_lockdown(&mut ctl, &stage, &plan, &groups)?;
    write_status(&args, &status, &groups, &auto_ro, &trees.views)?;
    drop(trees);
    ctl.send(&ToStage::Go, &[])
        .map_err(|e| RunError::Io(e.to_string()))?;
    groups.start_janitor();
    let pidfd = stage
        .open_pidfd()
        .map_err(|e| RunError::Io(e.to_string()))?;
    Watch {
        name: plan.exe.display().to_string(),
        args: &args,
        stage: Some(stage),
        pidfd,
        ctl,
        ctl_open: true,
        listener: Some(listener),
        groups: &groups,
        bombs: BombWatch::default(),
        deadline: start + Duration::from_secs(args.wall()),
        recorder,
    }
    .run()
}

/// Step 1: the binds as asked, the program, its ids, the namespaces.
fn plan(args: &RunArgs) -> Result<Plan, RunError> {
    let mut binds = Vec::new();
    // The profile's binds, then the caller's grants.
    for (list, writable) in [(&args.profile_ro, false), (&args.profile_rw, true)] {
        for r in list {
            binds.push(parse_bind(r, writable)?);
        }
    }
    let first_grant = binds.len();
    for (list, writable) in [(&args.ro, false), (&args.rw, true)] {
        for r in list {
            binds.push(parse_bind(r, writable)?);
        }
    }
    let grants = first_grant..binds.len();
    if args.dev {
        for (dev, writable) in [
            ("/dev/null", true),
            ("/dev/zero", true),
            ("/dev/urandom", false),
        ] {
            binds.push(Bind {
                path: dev.into(),
                writable,
                dest: None,
                identity: None,
                tree: None,
            });
        }
    }
    let env = environment(&args.env, args.clearenv)?;
    // A name is looked up in the PATH the program gets (not the caller's: a shim of
    // the caller's, e.g. in a home directory, would not be inside).
    let path = env.iter().find_map(|e| e.strip_prefix("PATH="));
    let exe = resolve_program(&args.command[0], path)?;
    // The program, its loader and its libraries (see `deps`) are bound read-only, each
    // file at its own path, where no grant holds them — unless --no-auto-ro: then the
    // grants must hold the program.
    let find_files = !args.no_auto_ro;
    if args.no_auto_ro && !covered(&binds, &exe) {
        return Err(RunError::ProgramFiles(format!(
            "{} is not reachable inside: bind it (e.g. --ro {}) and its libraries (e.g. --ro /usr --ro /lib --ro /lib64), or leave out --no-auto-ro",
            exe.display(),
            exe.parent().map_or("/".into(), |p| p.display().to_string())
        )));
    }
    let mut argv = args.command.clone();
    if let Some(first) = argv.first_mut() {
        *first = exe.display().to_string();
    }
    // As root, the program runs as a user id of its own (inside: SANDBOX_UID), so that
    // RLIMIT_NPROC counts only its processes (the kernel never applies it to root) and
    // root's files outside are not its own.
    let root = nix::unistd::geteuid().is_root();
    let inside = match (args.uid, root) {
        (Some(0), _) => None,
        (Some(u), true) => Some(u),
        (Some(_), false) => {
            return Err(RunError::Options(
                "--uid other than 0 needs a root caller (only one id can be mapped)".into(),
            ))
        }
        (None, true) => Some(SANDBOX_UID),
        (None, false) => None,
    };
    let extra_id = inside.map(|u| {
        let id = SANDBOX_ID_BASE + (std::process::id() & 0xffff);
        (u, id, id)
    });
    let namespaces = Namespaces {
        net: if args.share_net {
            NetMode::Shared
        } else {
            NetMode::Fresh
        },
        ..Namespaces::default()
    };
    let at_tmp = binds.iter().any(|g| g.inside() == Path::new("/tmp"));
    let scratch_tmp = (args.tmp_size() > 0 && !at_tmp).then_some(args.tmp_size());
    Ok(Plan {
        binds,
        grants,
        exe,
        argv,
        env,
        scratch_tmp,
        inside,
        extra_id,
        namespaces,
        find_files,
    })
}

/// Whether a grant at its own path holds `file`.
fn covered(binds: &[Bind], file: &Path) -> bool {
    binds
        .iter()
        .any(|g| g.dest.is_none() && file.starts_with(&g.path))
}

/// A failure to make or map the sandbox's user namespace, with its cause and remedies.
fn explain_userns(e: RunError) -> RunError {
    match e {
        RunError::Launch(e) if e.call == "clone" || e.call.starts_with("write /proc/PID/") => {
            let facts = sandbox::launch::userns::UsernsFacts::read();
            let diagnosis = sandbox::launch::userns::diagnose(e.errno(), &facts);
            RunError::Setup(format!("{e}\n{diagnosis}"))
        }
        other => other,
    }
}

/// Step 2: the stage — this binary, exec'd through a descriptor opened here (the
/// sandbox's user may not be able to walk the path to it) — in its namespaces.
fn start_stage(plan: &Plan) -> Result<(Spawned, Ctl), RunError> {
    let (ours, theirs) =
        sandbox::ipc::socket_pair().map_err(|e| RunError::Io(format!("socketpair: {e}")))?;
    let ctl = Channel::from_fd(ours, limits()).map_err(|e| RunError::Io(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| RunError::Io(e.to_string()))?;
    let self_exe = std::fs::File::open(exe)
        .map_err(|e| RunError::Io(format!("cannot open the sandbox binary: {e}")))?;
    let stage = spawn(&SpawnSpec {
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
        namespaces: plan.namespaces.clone(),
        extra_id: plan.extra_id,
        // The stage stays root outside to build the root (the program takes an id of
        // its own through `extra_id` and `switch_to`).
        outside_id: None,
    })?;
    Ok((stage, ctl))
}

/// Step 3: the program's own files that no grant holds, each bound read-only at the
/// path the loader opens (~0.3 ms for /bin/true). Returns those paths.
fn bind_program_files(plan: &mut Plan) -> Result<Vec<PathBuf>, RunError> {
    let mut auto_ro = Vec::new();
    if !plan.find_files {
        return Ok(auto_ro);
    }
    // What the caller granted may be used whatever its permissions.
    let granted: Vec<PathBuf> = plan
        .binds
        .iter()
        .filter(|g| g.dest.is_none())
        .filter_map(|g| std::fs::canonicalize(&g.path).ok())
        .collect();
    for file in crate::deps::needed_files(&plan.exe, &granted).map_err(RunError::ProgramFiles)? {
        if !covered(&plan.binds, &file.path) {
            // Bound from the file itself, at the path the loader opens: a symlink on
            // the way (/lib64/ld-linux-x86-64.so.2 is an absolute one) would otherwise
            // be followed inside the new root, where its target is not. The stage
            // checks that what it bound is the file checked here.
            plan.binds.push(Bind {
                dest: (file.real != file.path).then(|| file.path.clone()),
                path: file.real,
                writable: false,
                identity: Some(file.id),
                tree: None,
            });
            auto_ro.push(file.path);
        }
    }
    Ok(auto_ro)
}

/// What the stage needs to build the sandbox and start the program.
fn plan_message(args: &RunArgs, plan: &Plan, groups: &Cgroups, filter: Vec<u8>) -> ToStage {
    ToStage::Plan {
        program: plan.exe.display().to_string(),
        argv: plan.argv.clone(),
        env: plan.env.clone(),
        binds: plan.binds.clone(),
        mount_proc: args.proc,
        scratch_tmp: plan.scratch_tmp,
        rlimits: Rlimits {
            address_space: groups.rlimit_as(),
            open_files: args.nofile(),
            file_size: args.fsize(),
            core: 0,
            cpu_seconds: args.cpu(),
            memlock: 0,
            processes: groups.rlimit_nproc(),
        },
        filter,
        switch_to: plan.extra_id.map(|(u, _, _)| (u, u)),
        join_cgroups: groups.count(),
    }
}

/// Step 4: the idmapped trees, then the plan with the descriptors the stage joins the
/// cgroups through.
fn send_plan(ctl: &Ctl, message: ToStage, groups: &Cgroups, trees: &Trees) -> Result<(), RunError> {
    for chunk in trees.trees.chunks(TREES_PER_MESSAGE) {
        let at = chunk.iter().map(|(i, _)| *i).collect();
        let fds: Vec<_> = chunk.iter().map(|(_, fd)| fd.as_fd()).collect();
        ctl.send(&ToStage::Trees(at), &fds)
            .map_err(|e| RunError::Io(e.to_string()))?;
    }
    let joins = groups.open_self_joins()?;
    ctl.send(
        &message,
        &joins.iter().map(|f| f.as_fd()).collect::<Vec<_>>(),
    )
    .map_err(|e| RunError::Io(e.to_string()))
}

/// Step 5: the payload's status report and its seccomp listener; the report checked
/// against what was asked and from outside, and the cgroups checked to hold it.
fn await_lockdown(
    ctl: &mut Ctl,
    stage: &Spawned,
    plan: &Plan,
    groups: &Cgroups,
) -> Result<(Box<Status>, OwnedFd), RunError> {
    let (status, listener) = match ctl.recv_timeout(Duration::from_secs(10)) {
        Ok((FromStage::Ready(status), mut fds)) => (status, fds.pop()),
        Ok((FromStage::Failed(why), _)) => {
            // Under AppArmor's restriction the namespace is made but powerless: the
            // first mount or map fails inside.
            let facts = sandbox::launch::userns::UsernsFacts::read();
            if facts.apparmor_restricts() {
                let diagnosis = sandbox::launch::userns::diagnose(None, &facts);
                return Err(RunError::Setup(format!("{why}\n{diagnosis}")));
            }
            return Err(RunError::Setup(why));
        }
        Ok(_) => {
            return Err(RunError::Setup(
                "unexpected message from the sandbox".into(),
            ))
        }
        Err(e) => return Err(RunError::Setup(format!("the sandbox did not start: {e}"))),
    };
    let listener = listener.ok_or(RunError::Setup("no notification listener".into()))?;
    // Wake the supervisor on the caller's CPU for each notification (Linux 6.6; a
    // kernel without it is only slower at answering memfd_create).
    let _ = sandbox::seccomp::wake_synchronously(listener.as_fd());
    let payload = payload_pid(stage.pid())
        .ok_or(RunError::Setup("cannot find the program's process".into()))?;
    let asked = Asked {
        opt_outs: &[],
        new_namespaces: &plan.namespaces.expected_new(),
    };
    if let Err(problems) = verify_from_outside(payload, &status, &asked) {
        return Err(RunError::Setup(format!(
            "the sandbox is not what was asked: {}",
            problems.join("; ")
        )));
    }
    groups.verify(payload)?;
    Ok((status, listener))
}

/// Step 6: `--status-json`.
fn write_status(
    args: &RunArgs,
    status: &Status,
    groups: &Cgroups,
    auto_ro: &[PathBuf],
    grants: &[GrantView],
) -> Result<(), RunError> {
    let Some(file) = &args.status_json else {
        return Ok(());
    };
    let (pids, memory) = groups.report();
    let report = RunReport {
        lockdown: status,
        pids,
        memory,
        auto_ro,
        grants,
    };
    let json = serde_json::to_string_pretty(&report).map_err(|e| RunError::Io(e.to_string()))?;
    std::fs::write(file, json).map_err(|e| RunError::Io(format!("{}: {e}", file.display())))
}

/// The run, watched: the stage's end, its report of the program's end, the listener,
/// the pids cgroup's refusals and the wall clock.
struct Watch<'a> {
    /// The program, for messages.
    name: String,
    args: &'a RunArgs,
    /// `None` once handed over without reaping (the run is over).
    stage: Option<Spawned>,
    pidfd: OwnedFd,
    ctl: Ctl,
    /// Cleared when the stage's end of the control channel is gone (then only the
    /// pidfd tells the rest; polling a hung-up socket would spin).
    ctl_open: bool,
    /// Watched until it hangs up (every filter user is gone).
    listener: Option<OwnedFd>,
    groups: &'a Cgroups,
    bombs: BombWatch,
    deadline: Instant,
    /// `sandbox learn`: every call is recorded here and runs.
    recorder: Option<&'a mut Recorder>,
}

/// What one poll found ready.
struct Ready {
    stage: bool,
    ctl: bool,
    listener: nix::poll::PollFlags,
}

impl Watch<'_> {
    /// Until the run ends; the exit status.
    fn run(mut self) -> Result<i32, RunError> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(self.wall_clock_reached());
            }
            let ready = self.poll(left);
            if self.bombs.still_refused(self.groups.pids.as_ref()) {
                return Ok(self.fork_bomb());
            }
            if let Some(code) = self.on_listener(ready.listener) {
                return Ok(code);
            }
            if ready.ctl {
                if let Some(code) = self.on_control() {
                    return Ok(code);
                }
            }
            if ready.stage {
                return Ok(self.on_stage_end());
            }
        }
    }

    /// Wait up to `left` (a pids cgroup's tick at most) for the stage's end, the
    /// control channel or the listener.
    fn poll(&self, left: Duration) -> Ready {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = vec![PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        if self.ctl_open {
            fds.push(PollFd::new(self.ctl.as_fd(), PollFlags::POLLIN));
        }
        if let Some(l) = &self.listener {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
        }
        let wait = if self.groups.pids.is_some() {
            left.min(BOMB_TICK)
        } else {
            left
        };
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let got = |f: Option<&PollFd>| f.and_then(|f| f.revents()).unwrap_or(PollFlags::empty());
        let mut at = fds.iter();
        let mut ready = Ready {
            stage: !got(at.next()).is_empty(),
            ctl: false,
            listener: PollFlags::empty(),
        };
        if self.ctl_open {
            ready.ctl = !got(at.next()).is_empty();
        }
        if self.listener.is_some() {
            ready.listener = got(at.next());
        }
        ready
    }

    /// Kill the sandbox (its pid 1) and reap it.
    fn end_sandbox(&mut self) {
        if let Some(stage) = self.stage.as_mut() {
            stage.signal_kill();
            let _ = stage.wait();
        }
    }

    fn wall_clock_reached(&mut self) -> i32 {
        // Counted before the kill: a fork bomb shows itself here.
        let (processes, threads) = self.stage.as_ref().map_or((0, 0), |s| count_below(s.pid()));
        self.end_sandbox();
        eprintln!(
            "sandbox: killed {}: wall-clock limit of {} s ({processes} processes, \
             {threads} threads running; --pids {})",
            self.name,
            self.args.wall(),
            self.args.pids()
        );
        EXIT_WALL
    }

    fn fork_bomb(&mut self) -> i32 {
        let (processes, threads) = self.stage.as_ref().map_or((0, 0), |s| count_below(s.pid()));
        self.end_sandbox();
        eprintln!(
            "sandbox: killed {}: process limit: forks still refused {} s after \
             --pids {} was reached ({processes} processes, {threads} threads running)",
            self.name,
            BOMB_GRACE.as_secs(),
            self.args.pids()
        );
        EXIT_PIDS
    }

    /// A call handed over by the filter: answered, or a violation that ends the run.
    fn on_listener(&mut self, revents: nix::poll::PollFlags) -> Option<i32> {
        use nix::poll::PollFlags;
        if revents.contains(PollFlags::POLLHUP) && !revents.contains(PollFlags::POLLIN) {
            // No process uses the filter any more: nothing can be notified.
            self.listener = None;
            return None;
        }
        if revents.is_empty() {
            return None;
        }
        let listener = self.listener.as_ref()?.as_fd();
        let outcome = match self.recorder.as_deref_mut() {
            Some(r) => r.handle(listener, Arch::native()),
            None => crate::notify::handle(listener, Arch::native()),
        };
        match outcome {
            Outcome::Answered | Outcome::Retry => None,
            Outcome::Violation { pid, call, data } => {
                self.end_sandbox();
                eprintln!(
                    "sandbox: killed {} (pid {pid}): seccomp violation: {call}",
                    self.name
                );
                eprint!("{}", explain_violation(self.args, &data));
                Some(EXIT_VIOLATION)
            }
            Outcome::Lost(e) => {
                // Without a reader the kernel would answer every later violation with
                // ENOSYS: the sandbox cannot go on.
                self.end_sandbox();
                eprintln!(
                    "sandbox: killed {}: the seccomp notification listener failed ({e})",
                    self.name
                );
                Some(EXIT_SETUP)
            }
        }
    }

    /// The stage's report of the program's end.
    fn on_control(&mut self) -> Option<i32> {
        match self.ctl.try_recv() {
            Ok(Some((FromStage::Exited { code, signal }, _))) => {
                // The stage reports only once nothing else of the sandbox is left; its
                // own exit (the kernel tearing down the namespaces and mounts, 1 to 9
                // ms here) need not be waited for.
                if let Some(stage) = self.stage.take() {
                    stage.kill_without_reaping();
                }
                Some(program_status(&self.name, code, signal, self.groups))
            }
            Ok(_) => None,
            Err(_) => {
                self.ctl_open = false;
                None
            }
        }
    }

    /// The stage ended: the program's status, if it sent it first.
    fn on_stage_end(&mut self) -> i32 {
        if let Some(stage) = self.stage.as_mut() {
            let _ = stage.wait();
        }
        while let Ok(Some((m, _))) = self.ctl.try_recv() {
            if let FromStage::Exited { code, signal } = m {
                return program_status(&self.name, code, signal, self.groups);
            }
        }
        fail("the sandbox ended without the program's status")
    }
}

/// What decided a violation, and the line that would allow the call (two lines, each
/// `sandbox:   ...`), from the policy the program runs under.
fn explain_violation(args: &RunArgs, data: &sandbox::policy::arch::SeccompData) -> String {
    let arch = Arch::native();
    let Ok(policy) = super::filter::effective_policy(args) else {
        return String::new();
    };
    let (_, by) = policy.explain(arch, data);
    let mut out = format!("sandbox:   decided by {by}\n");
    if let Some(name) = arch.syscall_name(data.nr) {
        out.push_str(&format!(
            "sandbox:   to allow it, a policy or profile line: `{}`\n",
            crate::explain::allowing_line(arch, name, &data.args)
        ));
    }
    out
}

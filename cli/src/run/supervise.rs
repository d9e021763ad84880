//! The supervisor: `sandbox run` step by step, then the loop that watches the run.
//!
//! 1. [`plan`]: the binds, the program, the ids, the namespaces.
//! 2. [`start_stage`]: the stage cloned into its namespaces (it starts meanwhile).
//! 3. [`bind_program_files`]: the program's own files, when no grant holds it; the
//!    idmapped trees; [`send_plan`].
//! 4. While the stage builds the root: the cgroups, the cleanup child, the filter;
//!    [`send_payload`].
//! 5. [`await_lockdown`]: the payload's report and listener, verified from outside.
//! 6. [`write_status`], "go"; [`Watch::run`] until the end.

use super::cgroups::{tasks_of_this_user, BombWatch, Cgroups};
use super::filter::compile_filter;
use super::grants::{idmapped_trees, GrantView, Trees};
use super::options::RunArgs;
use super::plan::{bind_program_files, plan, Plan};
use super::protocol::{limits, FromStage, ToStage, TREES_PER_MESSAGE};
use super::report::{payload_pid, RunReport};
use super::watch::Watch;
use super::*;
use crate::learn::record::Recorder;
use sandbox::ipc::Channel;
use sandbox::launch::{
    can_inspect_in_place_children, spawn_in_place, verify_with_namespaces, Asked, NamespaceLinks,
    SpawnSpec, Spawned,
};
use sandbox::lockdown::{Rlimits, SingleThreaded, Status};
use sandbox::policy::arch::Arch;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

/// The channel to the stage.
type Ctl = Channel<ToStage, FromStage>;

/// `sandbox run`, to the program's exit status.
pub(super) fn supervise(args: RunArgs, recorder: Option<&mut Recorder>) -> Result<i32, RunError> {
    let mut plan = plan(&args)?;
    if let Some(degraded) = degraded(&args) {
        eprintln!("sandbox: degraded mode: {degraded}");
    }
    // Without namespaces: what the stage leaves if it is killed comes to this process
    // (see `group::end_orphans`).
    if plan.without_namespaces() {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| RunError::Setup(format!("PR_SET_CHILD_SUBREAPER: {e}")))?;
    }
    let (mut stage, mut ctl) = start_stage(&plan).map_err(explain_userns)?;
    let auto_ro = bind_program_files(&mut plan)?;
    let caller = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let trees = idmapped_trees(&plan.binds, plan.grants.clone(), caller, plan.outside)?;
    send_plan(&mut ctl, plan_message(&args, &plan), &trees)
        .map_err(|e| or_start_failure(&mut stage, e))?;
    // While the stage builds the root: the cgroups, the filter, the services.
    let mut groups = Cgroups::new(args.pids(), args.mem(), also_counted(&plan))?;
    let filter = filter(&args, recorder.is_some())?;
    send_payload(&mut ctl, &groups, payload_message(&args, &groups, filter))
        .map_err(|e| or_start_failure(&mut stage, e))?;
    // Its fork off the path: the stage is building the root meanwhile.
    groups.start_janitor();
    let files = if args.brokers_files() {
        Some(
            broker::services::files::FileService::new(args.broker_grants())
                .map_err(|e| RunError::Options(format!("--broker-ro/--broker-rw: {e}")))?,
        )
    } else {
        None
    };
    let egress = match plan.egress.take() {
        Some((allowed, folder)) => Some((
            super::egress::Egress {
                allowed,
                policy: super::filter::effective_policy(&args)?,
                in_flight: Default::default(),
            },
            folder,
        )),
        None => None,
    };
    // (The stage went on without being waited for: see `start_stage`.)
    stage.started()?;
    let start = Instant::now();
    let (status, listener, payload) = await_lockdown(&mut ctl, &stage, &plan, &groups, &args)?;
    let scratch = plan.scratch_dir.as_ref().map(|d| d.path());
    write_status(&args, &status, &groups, &auto_ro, &trees.views, scratch)?;
    ctl.send(&ToStage::Go, &[])
        .map_err(|e| RunError::Io(e.to_string()))?;
    drop(trees);
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
        grouped: plan.without_namespaces().then_some(payload),
        egress: egress.as_ref().map(|(e, _)| e),
        files: files.as_ref(),
        bombs: BombWatch::default(),
        deadline: start + Duration::from_secs(args.wall()),
        recorder,
    }
    .run()
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

/// The lockdown opt-outs a run asks for.
fn opt_outs(args: &RunArgs) -> Vec<sandbox::lockdown::OptOut> {
    use sandbox::lockdown::OptOut;
    if args.no_namespaces {
        vec![OptOut::NoNamespaces]
    } else if args.no_userns {
        vec![OptOut::NoUserNamespace]
    } else {
        Vec::new()
    }
}

/// The degraded mode asked for, and what it gives up (for stderr and the report).
fn degraded(args: &RunArgs) -> Option<&'static str> {
    if args.no_namespaces {
        Some(DEGRADED_NO_NAMESPACES)
    } else if args.no_userns {
        Some(DEGRADED_NO_USERNS)
    } else {
        None
    }
}

/// What `--no-userns` gives up, for stderr and the report.
const DEGRADED_NO_USERNS: &str = "--no-userns: no user namespace. The sandbox's pid 1 \
     is root outside while it builds the root (it runs only this binary, then forks the \
     program, which drops every capability and takes a user id of its own before it \
     starts); a kernel bug reachable from the program meets the host's user namespace, \
     not an empty one";

/// What `--no-namespaces` gives up, for stderr and the report.
const DEGRADED_NO_NAMESPACES: &str = "--no-namespaces: no namespace at all. The \
     program runs as you, among your processes, on the host's file system: Landlock \
     lets it open only the grants, its own files and a private scratch folder (HOME, \
     TMPDIR), but it can still see names and metadata (stat) elsewhere and which \
     processes run; its signals and tracing stay inside (Landlock's scopes); every \
     socket, System V IPC and leaving its process group are refused; --pids counts \
     every process of yours (RLIMIT_NPROC); a kernel bug reachable from it meets the \
     host's namespaces";

/// Step 2: the stage, in its namespaces: a copy of this process (single-threaded,
/// checked) cloned in place, running [`stage`](super::stage) with the channel as fd 3
/// and stdio — no exec of this binary again (~0.5 ms: a static binary's start-up,
/// most of it the C library's CPU-feature probing, which a virtual machine traps), and
/// the network namespace made by the copy itself while this process prepares the plan.
/// Where this process lacks CAP_SYS_PTRACE (an unprivileged caller; root in a
/// container that drops it), the program's process stays dumpable until its exec
/// (`Config::dumpable_until_exec`), so that this process can check it from outside:
/// see `sandbox::launch::spawn_in_place`. The stage's failure to start is read only
/// before the payload's report is awaited, or when a send to it fails.
fn start_stage(plan: &Plan) -> Result<(Spawned, Ctl), RunError> {
    let (ours, theirs) =
        sandbox::ipc::socket_pair().map_err(|e| RunError::Io(format!("socketpair: {e}")))?;
    let ctl = Channel::from_fd(ours, limits()).map_err(|e| RunError::Io(e.to_string()))?;
    let spec = SpawnSpec {
        fds: vec![(0, 0), (1, 1), (2, 2), (theirs.as_raw_fd(), 3)],
        namespaces: plan.namespaces.clone(),
        extra_id: plan.extra_id,
        // The stage stays root outside to build the root (the program takes an id of
        // its own through `extra_id` and `switch_to`).
        outside_id: None,
        ..SpawnSpec::new("", &[])
    };
    // Nothing buffered may be written twice (the copy would flush it again at exit).
    std::io::Write::flush(&mut std::io::stdout())
        .map_err(|e| RunError::Io(format!("cannot flush standard output: {e}")))?;
    let one_thread = SingleThreaded::check()
        .map_err(|e| RunError::Setup(format!("cannot start the stage: {e}")))?;
    let stage = spawn_in_place(&spec, one_thread, super::stage)?;
    Ok((stage, ctl))
}

/// What the stage needs to build the sandbox.
fn plan_message(args: &RunArgs, plan: &Plan) -> ToStage {
    ToStage::Plan {
        program: plan.exe.display().to_string(),
        argv: plan.argv.clone(),
        env: plan.env.clone(),
        binds: plan.binds.clone(),
        mount_proc: args.proc,
        opt_outs: opt_outs(args),
        scratch_tmp: plan.scratch_tmp,
        scratch_dir: plan.scratch_dir.as_ref().map(|d| d.path().to_path_buf()),
        switch_to: plan.switch_to,
        // (Without namespaces there is no /proc/PID/ns to read.)
        dumpable_until_exec: !plan.without_namespaces() && !can_inspect_in_place_children(),
    }
}

/// Step 4: the idmapped trees, then the plan.
fn send_plan(ctl: &mut Ctl, message: ToStage, trees: &Trees) -> Result<(), RunError> {
    for chunk in trees.trees.chunks(TREES_PER_MESSAGE) {
        let at = chunk.iter().map(|(i, _)| *i).collect();
        let fds: Vec<_> = chunk.iter().map(|(_, fd)| fd.as_fd()).collect();
        let sent = ctl.send(&ToStage::Trees(at), &fds);
        sent.map_err(|e| stage_reason(ctl, RunError::Io(e.to_string())))?;
    }
    let sent = ctl.send(&message, &[]);
    sent.map_err(|e| stage_reason(ctl, RunError::Io(e.to_string())))
}

/// Talking to the stage failed: the reason the stage gave, if it stopped and said why
/// (a network namespace it could not make, say), else `e`. A broken channel says
/// less — and a stage that exits with a message of ours unread makes the kernel
/// report a reset connection here before the messages it sent last.
fn stage_reason(ctl: &mut Ctl, e: RunError) -> RunError {
    while let Ok(Some((message, _))) = ctl.try_recv() {
        if let FromStage::Failed(why) = message {
            return stage_failed(why);
        }
    }
    e
}

/// An error while talking to a stage cloned in place: its failure to start, if that is
/// what happened (its report says more than the broken channel).
fn or_start_failure(stage: &mut Spawned, e: RunError) -> RunError {
    match stage.started() {
        Err(failed) => RunError::Launch(failed),
        Ok(()) => e,
    }
}

/// The stage's own failure, with the diagnosis of AppArmor's restriction where it
/// applies: under it the namespace is made but powerless, and the first mount or map
/// fails inside.
fn stage_failed(why: String) -> RunError {
    let facts = sandbox::launch::userns::UsernsFacts::read();
    if facts.apparmor_restricts() {
        let diagnosis = sandbox::launch::userns::diagnose(None, &facts);
        return RunError::Setup(format!("{why}\n{diagnosis}"));
    }
    RunError::Setup(why)
}

/// The tasks RLIMIT_NPROC counts besides the program's (see [`Cgroups::rlimit_nproc`]).
///
/// --pids: a pids cgroup where one can be made (root, or a delegated cgroup v2
/// subtree) holding the stage and everything below it — the stage counts, so the
/// program gets N — and RLIMIT_NPROC one above, as a backstop that the cgroup reaches
/// first (so that its refusals are counted); without a cgroup, RLIMIT_NPROC alone: N,
/// or N + 1 when the program runs as the stage's user (an unprivileged caller's, or
/// --uid 0), which counts the stage too. --mem: a memory cgroup where one can be made,
/// counting memory used (and then no RLIMIT_AS); otherwise RLIMIT_AS.
fn also_counted(plan: &Plan) -> u64 {
    if plan.without_namespaces() {
        tasks_of_this_user()
    } else {
        u64::from(plan.switch_to.is_none())
    }
}

/// The program's filter: the policy compiled (the default preset comes precompiled),
/// or in learn mode the recording one. A policy error ends the run here (dropping the
/// stage kills and reaps it).
fn filter(args: &RunArgs, learning: bool) -> Result<Vec<u8>, RunError> {
    if !learning {
        return compile_filter(args);
    }
    crate::learn::learning_policy()
        .and_then(|mut p| {
            // Without namespaces, what they held is refused even while learning.
            if args.no_namespaces {
                sandbox::policy::guards::without_namespaces(&mut p).map_err(|e| e.to_string())?;
            }
            sandbox::bpf::compile(&p, Arch::native())
                .map(|prog| sandbox::bpf::to_bytes(&prog.instructions))
                .map_err(|e| e.to_string())
        })
        .map_err(RunError::Policy)
}

/// What the program's process gets besides the root: its limits and filter.
fn payload_message(args: &RunArgs, groups: &Cgroups, filter: Vec<u8>) -> ToStage {
    ToStage::Payload {
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
        join_cgroups: groups.count(),
    }
}

/// Step 4b: the limits and filter, with the descriptors the stage joins the cgroups
/// through.
fn send_payload(ctl: &mut Ctl, groups: &Cgroups, message: ToStage) -> Result<(), RunError> {
    let joins = groups.open_self_joins()?;
    let fds: Vec<_> = joins.iter().map(|f| f.as_fd()).collect();
    let sent = ctl.send(&message, &fds);
    sent.map_err(|e| stage_reason(ctl, RunError::Io(e.to_string())))
}

/// Step 5: the payload's status report and its seccomp listener; the report checked
/// against what was asked and from outside, and the cgroups checked to hold it. The
/// stage says when it has forked the payload (which runs only this binary's code until
/// its exec): the payload's pid, namespaces and cgroups are checked then, while it
/// locks down, and its locked-down state (`/proc/PID/status`) once it reports.
fn await_lockdown(
    ctl: &mut Ctl,
    stage: &Spawned,
    plan: &Plan,
    groups: &Cgroups,
    args: &RunArgs,
) -> Result<(Box<Status>, OwnedFd, i32), RunError> {
    let mut early = None;
    let (status, listener) = loop {
        match ctl.recv_timeout(Duration::from_secs(10)) {
            // (Not there any more — the payload failed and was reaped — is left for
            // its own report, which says why.)
            Ok((FromStage::Forked, _)) if early.is_none() => {
                early = payload_seen(stage, groups).ok();
            }
            Ok((FromStage::Ready(status), mut fds)) => break (status, fds.pop()),
            Ok((FromStage::Failed(why), _)) => return Err(stage_failed(why)),
            Ok(_) => {
                return Err(RunError::Setup(
                    "unexpected message from the sandbox".into(),
                ))
            }
            Err(e) => {
                let e = RunError::Setup(format!("the sandbox did not start: {e}"));
                return Err(stage_reason(ctl, e));
            }
        }
    };
    let listener = listener.ok_or(RunError::Setup("no notification listener".into()))?;
    // Wake the supervisor on the caller's CPU for each notification (Linux 6.6; a
    // kernel without it is only slower at answering memfd_create).
    let _ = sandbox::seccomp::wake_synchronously(listener.as_fd());
    // (The report may come first when the stage was slow to say it forked.)
    let (payload, namespaces) = match early {
        Some(seen) => seen,
        None => payload_seen(stage, groups)?,
    };
    let opt_outs = opt_outs(args);
    let asked = Asked {
        opt_outs: &opt_outs,
        new_namespaces: &plan.namespaces.expected_new(),
    };
    if let Err(problems) = verify_with_namespaces(payload, &status, &asked, &namespaces) {
        return Err(RunError::Setup(format!(
            "the sandbox is not what was asked: {}",
            problems.join("; ")
        )));
    }
    Ok((status, listener, payload))
}

/// The payload (the stage's child), its namespaces, and the check that the cgroups
/// hold it.
fn payload_seen(stage: &Spawned, groups: &Cgroups) -> Result<(i32, NamespaceLinks), RunError> {
    let payload = payload_pid(stage.pid())
        .ok_or(RunError::Setup("cannot find the program's process".into()))?;
    groups.verify(payload)?;
    Ok((payload, NamespaceLinks::read(payload)))
}

/// Step 6: `--status-json`.
fn write_status(
    args: &RunArgs,
    status: &Status,
    groups: &Cgroups,
    auto_ro: &[PathBuf],
    grants: &[GrantView],
    scratch_dir: Option<&std::path::Path>,
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
        degraded: degraded(args),
        scratch_dir,
    };
    let json = serde_json::to_string_pretty(&report).map_err(|e| RunError::Io(e.to_string()))?;
    std::fs::write(file, json).map_err(|e| RunError::Io(format!("{}: {e}", file.display())))
}

//! Inside: the stage (pid 1 of the new namespaces) builds the root and joins the
//! cgroups, forks the payload, reaps until the program ends, ends whatever is left and
//! reports; the payload locks down, hands the supervisor its listener, waits for "go"
//! and execs the program.

use super::group;
use super::protocol::{limits, FromStage, ToStage};
use super::*;
use sandbox::bpf;
use sandbox::ipc::Channel;
use sandbox::launch::InPlace;
use sandbox::lockdown::{
    build_root, lock_down, Config, OptOut, Rlimits, SeccompChoice, SingleThreaded,
};
use sandbox::policy::arch::Arch;
use sandbox::policy::presets::Preset;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The channel to the supervisor.
type Ctl = Channel<FromStage, ToStage>;

/// What the plan says to the stage.
type Received = (Config, Program, Vec<OwnedFd>, Option<std::path::PathBuf>);

/// The in-sandbox stage (pid 1). Never returns.
pub(super) fn stage(start: InPlace) -> ! {
    let code = match stage_inner(start) {
        Ok(code) => code,
        // Told to the supervisor, which says it.
        Err(RunError::Told(_)) => EXIT_SETUP,
        Err(e) => {
            eprintln!("sandbox: {e}");
            EXIT_SETUP
        }
    };
    std::process::exit(code)
}

/// What the payload runs.
struct Program {
    path: String,
    argv: Vec<String>,
    env: Vec<String>,
}

fn stage_inner(mut start: InPlace) -> Result<i32, RunError> {
    let setup = |e: String| RunError::Setup(e);
    let supervisor = nix::unistd::getppid().as_raw();
    let fd =
        sandbox::renderer::take_channel().map_err(|e| setup(format!("no control channel: {e}")))?;
    let mut ctl: Ctl = Channel::from_fd(fd, limits()).map_err(|e| setup(e.to_string()))?;
    let (mut config, program, trees, scratch_dir) = receive_plan(&mut ctl)?;
    // The empty network, made right after the clone (when in place) while the
    // supervisor prepared the plan; a failure is told once the plan is read (the
    // supervisor, still sending it, would see a reset connection rather than the
    // reason).
    if let Err(e) = start.namespaces() {
        return Err(report_failure(&ctl, network_failure(&e)));
    }
    // A copy of the supervisor holds its environment: no core file of it.
    let no_core = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    no_core.map_err(|e| report_failure(&ctl, format!("setrlimit(RLIMIT_CORE): {e}")))?;
    let one_thread = match start.single_threaded() {
        Some(proof) => proof,
        None => SingleThreaded::check().map_err(|e| report_failure(&ctl, e.to_string()))?,
    };
    // --no-namespaces: no root to build; the payload's process group stands in for
    // the pid namespace (see `group`).
    let grouped = config.opt_outs.contains(&OptOut::NoNamespaces);
    let supervisor_gone = if grouped {
        group::prepare(supervisor).map_err(|e| report_failure(&ctl, e.to_string()))?
    } else {
        let built = build_root(&config).map_err(|e| report_failure(&ctl, e.to_string()))?;
        config.root_built = Some(built);
        false
    };
    drop(trees);
    receive_payload(&mut ctl, &mut config, &one_thread).map_err(|e| match e {
        RunError::Setup(why) | RunError::Cgroup(why) => report_failure(&ctl, why),
        other => other,
    })?;
    // Off the CPU of its own (see `sandbox::launch::spawn_in_place`): the program runs
    // on the caller's CPUs.
    start
        .release_cpus()
        .map_err(|e| report_failure(&ctl, format!("cannot take the CPU set back: {e}")))?;
    let child = one_thread
        .fork()
        .map_err(|e| report_failure(&ctl, e.to_string()))?;
    if child == 0 {
        let code = payload(ctl, &config, &program, grouped);
        std::process::exit(code);
    }
    // The supervisor checks from outside what it can while the payload locks down.
    let _ = ctl.send(&FromStage::Forked, &[]);
    let ended = if grouped {
        let ended = group::reap(child, supervisor_gone)?;
        if let Some(dir) = scratch_dir {
            super::scratch::remove_tree(&dir);
        }
        ended
    } else {
        let ended = reap_until(child)?;
        end_everything_left();
        ended
    };
    let _ = ctl.send(&ended, &[]);
    Ok(0)
}

/// Why the sandbox's network namespace could not be made (by the stage itself, after
/// its clone), in words.
fn network_failure(e: &std::io::Error) -> String {
    format!(
        "lockdown failed at namespaces: cannot make the network namespace (unshare): {}{}",
        e.raw_os_error()
            .map_or_else(|| e.to_string(), crate::words::errno),
        if e.raw_os_error() == Some(libc::ENOSPC) {
            " — the limit user.max_net_namespaces is reached"
        } else {
            ""
        }
    )
}

/// Tell the supervisor why the stage stops; the error to stop with.
fn report_failure(ctl: &Ctl, why: String) -> RunError {
    match ctl.send(&FromStage::Failed(why.clone()), &[]) {
        Ok(()) => RunError::Told(why),
        Err(_) => RunError::Setup(why),
    }
}

/// The idmapped trees and the plan: the configuration that builds the root (its
/// rlimits and filter still the strictest, until [`receive_payload`]), the program, and the trees' descriptors (each bind with a
/// tree names it; kept open until the root is built).
/// (And the scratch folder to remove, without namespaces.)
fn receive_plan(ctl: &mut Ctl) -> Result<Received, RunError> {
    let setup = |e: String| RunError::Setup(e);
    let mut trees: Vec<(usize, OwnedFd)> = Vec::new();
    let plan = loop {
        let (message, fds) = ctl
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| setup(e.to_string()))?;
        match message {
            ToStage::Trees(at) => trees.extend(at.into_iter().zip(fds)),
            other => break other,
        }
    };
    let ToStage::Plan {
        program,
        argv,
        env,
        binds,
        mount_proc,
        scratch_tmp,
        scratch_dir,
        opt_outs,
        switch_to,
        dumpable_until_exec,
    } = plan
    else {
        return Err(setup("expected a plan".into()));
    };
    let mut binds = binds;
    for (at, tree) in &trees {
        let bind = binds
            .get_mut(*at)
            .filter(|b| b.tree.is_none())
            .ok_or(setup("a mount tree for no bind".into()))?;
        bind.tree = Some(tree.as_raw_fd());
    }
    let config = Config {
        keep_fds: vec![0, 1, 2, 3],
        // Until `receive_payload`: the strictest (and never used before it, as the
        // payload is forked only after it).
        rlimits: Rlimits::default(),
        seccomp: SeccompChoice::Preset(Preset::Renderer),
        binds,
        landlock_min_abi: 1,
        mount_proc,
        scratch_tmp,
        root_built: None,
        seccomp_listener: true,
        switch_to,
        opt_outs,
        dumpable_until_exec,
    };
    Ok((
        config,
        Program {
            path: program,
            argv,
            env,
        },
        trees.into_iter().map(|(_, fd)| fd).collect(),
        scratch_dir,
    ))
}

/// The rest of the program's lockdown (its rlimits and filter) into `config`; the
/// stage joins the cgroups — everything it forks from then on is born in them.
/// `_one` proves the stage single-threaded: with v1's `tasks`, only the writing thread
/// would move.
fn receive_payload(
    ctl: &mut Ctl,
    config: &mut Config,
    _one: &SingleThreaded,
) -> Result<(), RunError> {
    let setup = |e: String| RunError::Setup(e);
    let (message, mut fds) = ctl
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| setup(e.to_string()))?;
    let ToStage::Payload {
        rlimits,
        filter,
        join_cgroups,
    } = message
    else {
        return Err(setup("expected the program's limits and filter".into()));
    };
    if join_cgroups != fds.len() {
        return Err(setup("the cgroups' descriptors are missing".into()));
    }
    for fd in fds.drain(..) {
        let mut file = std::fs::File::from(fd);
        sandbox::launch::cgroup::join_self(&mut file)
            .map_err(|e| RunError::Cgroup(format!("join a cgroup: {e}")))?;
    }
    let instructions = bpf::from_bytes(&filter).ok_or(setup("malformed filter".into()))?;
    config.rlimits = rlimits;
    config.seccomp = SeccompChoice::Program(bpf::Program {
        instructions,
        arch: Arch::native(),
        left_out: Vec::new(),
    });
    Ok(())
}

/// As pid 1, reap everything until the payload (`child`) ends; how it ended.
fn reap_until(child: i32) -> Result<FromStage, RunError> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == child => {
                return Ok(FromStage::Exited {
                    code: Some(code),
                    signal: None,
                });
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == child => {
                return Ok(FromStage::Exited {
                    code: None,
                    signal: Some(sig as i32),
                });
            }
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(RunError::Setup(format!("waitpid: {e}"))),
        }
    }
}

/// End whatever the program left running (as pid 1, kill(-1) reaches every other
/// process of this pid namespace) and reap it all, so that once the supervisor has the
/// status, nothing of the sandbox runs or writes any more; only this process's own
/// exit (tearing the namespaces down) is left. (The kernel aborts a fork whose parent
/// has a fatal signal pending, so nothing born after a kill escapes it; killing again
/// on each reap is belt and braces.)
fn end_everything_left() {
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
}

/// The payload: locked down, its listener handed over, "go" awaited, the program
/// exec'd. Its exit status (it returns only when something failed).
fn payload(mut ctl: Ctl, config: &Config, program: &Program, grouped: bool) -> i32 {
    if let Err(e) = crate::sys::default_sigpipe() {
        let _ = ctl.send(&FromStage::Failed(format!("SIGPIPE: {e}")), &[]);
        return EXIT_SETUP;
    }
    // Without namespaces: the stage's blocked signals unblocked, and "/" as the working
    // folder, as in an empty root (the caller's is not the program's).
    if grouped {
        let ready = group::unblock_in_payload()
            .map_err(std::io::Error::from)
            .and_then(|()| nix::unistd::chdir("/").map_err(std::io::Error::from))
            // The program's processes before the stage, for the OOM killer: the stage
            // is all that ends them (memfds escape RLIMIT_AS). Landlock keeps the
            // program from writing it back.
            .and_then(|()| std::fs::write("/proc/self/oom_score_adj", "1000"));
        if let Err(e) = ready {
            let _ = ctl.send(&FromStage::Failed(format!("payload: {e}")), &[]);
            return EXIT_SETUP;
        }
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
        c(&program.path),
        program
            .argv
            .iter()
            .map(|a| c(a))
            .collect::<Option<Vec<_>>>(),
        program.env.iter().map(|a| c(a)).collect::<Option<Vec<_>>>(),
    ) else {
        return EXIT_SETUP;
    };
    let Err(e) = nix::unistd::execve(&path, &argv, &env);
    eprintln!(
        "sandbox: cannot execute {}: {}{}",
        program.path,
        crate::words::errno(e as i32),
        exec_hint(e)
    );
    127
}

/// What to do about an execve error.
fn exec_hint(e: nix::Error) -> &'static str {
    match e {
        nix::Error::EACCES => {
            " — the program, or a folder on its path, is not executable by the sandbox's \
             user; grant its folder with --ro, or run it as you with --uid 0"
        }
        nix::Error::ENOENT => {
            " — it, or the interpreter its #! line names, is not inside the sandbox; \
             grant its folder with --ro"
        }
        _ => "",
    }
}

//! The filter the program gets: the policy behind the set-ID guard (and, with
//! `--no-namespaces`, the no-namespace guard: `sandbox::policy::guards`), with its
//! default replaced by `user-notify`.

use super::options::RunArgs;
use super::RunError;
use crate::policy::{load, PolicyArg, Source};
use sandbox::bpf;
use sandbox::policy::arch::Arch;
use sandbox::policy::presets::Preset;
use sandbox::policy::{Action, Policy};

/// The `exec` preset as [`compile_filter`] makes it, compiled by `build.rs` for the
/// target's architecture (empty for an architecture the compiler does not support).
const PRECOMPILED_EXEC: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/exec_notify.bpf"));

/// The policy as the filter the program gets: its default replaced by `user-notify`;
/// with `tty`, the `exec` preset's terminal rule replaced by one that lets the program
/// change its terminal (but never inject input or reach the console). The `exec`
/// preset (the default) comes precompiled. A preset name is never looked up in the file
/// system (see [`PolicyArg`]).
pub(super) fn compile_filter(args: &RunArgs) -> Result<Vec<u8>, RunError> {
    let plain_exec = args.loaded_profile.is_none()
        && !args.tty
        && !args.no_namespaces
        && args.connect.is_empty()
        && !args.brokers_files()
        && PolicyArg::parse(args.policy.as_deref().unwrap_or("exec")).map_err(RunError::Options)?
            == PolicyArg::Preset(Preset::Exec);
    if plain_exec && !PRECOMPILED_EXEC.is_empty() {
        return Ok(PRECOMPILED_EXEC.to_vec());
    }
    let mut policy = effective_policy(args)?;
    // --connect: every connect to the supervisor, which decides it (`egress`), and no
    // send that connects by itself (MSG_FASTOPEN).
    if !args.connect.is_empty() {
        sandbox::policy::guards::no_fast_open(&mut policy)
            .map_err(|e| RunError::Policy(e.to_string()))?;
        policy.remove("connect");
        policy
            .add_action("connect", Action::UserNotify)
            .map_err(|e| RunError::Policy(e.to_string()))?;
    }
    if args.brokers_files() {
        hand_file_calls_over(&mut policy).map_err(RunError::Policy)?;
    }
    notifying(policy).map_err(RunError::Policy)
}

/// `--broker-ro/--broker-rw`: every file call of `broker::services::file_calls` to the
/// supervisor, which answers those beneath its folders and lets the kernel run the
/// others in the sandbox's own view (`crate::notify`) — except `fstat` in its
/// `newfstatat(fd, "", AT_EMPTY_PATH)` and `statx(fd, "", AT_EMPTY_PATH)` forms, which
/// stay in the kernel: with a non-empty path they resolve in the sandbox's view, where
/// the folders are not mounted.
fn hand_file_calls_over(policy: &mut Policy) -> Result<(), String> {
    use sandbox::policy::arg;
    let arch = Arch::native();
    let empty_path = libc::AT_EMPTY_PATH as u64;
    for name in broker::services::file_calls::HANDED_OVER {
        if arch.syscall_number(name).is_none() {
            continue;
        }
        policy.remove(name);
        let kept = match *name {
            "newfstatat" | "fstatat" => Some(arg(3).eq(empty_path)),
            "statx" => Some(arg(2).any_bits(empty_path)),
            _ => None,
        };
        if let Some(when) = kept {
            policy
                .add_rule(name, when, Action::Allow)
                .map_err(|e| e.to_string())?;
        }
        policy
            .set_otherwise(name, Action::UserNotify)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The policy the program runs under, as written (its own default; its rules know
/// where they were written): the profile's, `--policy`'s or the `exec` preset, with
/// `--tty`'s terminal rule and the set-ID guard in front. Reports explain a violation
/// with it.
pub(crate) fn effective_policy(args: &RunArgs) -> Result<Policy, RunError> {
    let tty = args.tty;
    let mut policy = match &args.loaded_profile {
        Some(_) if tty => {
            return Err(RunError::Options(
                "--tty changes the exec preset's terminal rule; with --profile, write the \
                 ioctl rule you want in the profile"
                    .into(),
            ))
        }
        Some(profile) => profile.clone(),
        None => {
            let name = args.policy.as_deref().unwrap_or("exec");
            let exec = PolicyArg::parse(name).map_err(RunError::Options)?
                == PolicyArg::Preset(Preset::Exec);
            if tty && !exec {
                return Err(RunError::Options(
                    "--tty changes the exec preset's terminal rule; with --policy, write the \
                     ioctl rule you want in the policy"
                        .into(),
                ));
            }
            load_policy(name).map_err(RunError::Policy)?
        }
    };
    if tty {
        widen_terminal_rule(&mut policy).map_err(RunError::Policy)?;
    }
    // Whatever the policy says: no set-ID files (see `guards`).
    sandbox::policy::guards::refuse_setid_modes(&mut policy)
        .map_err(|e| RunError::Policy(e.to_string()))?;
    // And without namespaces, what they would have held.
    if args.no_namespaces {
        sandbox::policy::guards::without_namespaces(&mut policy)
            .map_err(|e| RunError::Policy(e.to_string()))?;
    }
    Ok(policy)
}

/// A preset or policy file, for this machine.
fn load_policy(name: &str) -> Result<Policy, String> {
    load(
        &Source {
            file: name.to_string(),
            arch: None,
            include_dirs: Vec::new(),
            defines: Vec::new(),
        },
        Arch::native(),
    )
}

/// `--tty`: the terminal may be changed, but not injected into or the console reached.
fn widen_terminal_rule(policy: &mut Policy) -> Result<(), String> {
    use sandbox::policy::arg;
    let arch = Arch::native();
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
        .map_err(|e| e.to_string())
}

/// `policy` with its default replaced by `user-notify`, compiled.
fn notifying(mut policy: Policy) -> Result<Vec<u8>, String> {
    policy
        .set_default(Action::UserNotify)
        .map_err(|e| e.to_string())?;
    let program = bpf::compile(&policy, Arch::native()).map_err(|e| e.to_string())?;
    Ok(bpf::to_bytes(&program.instructions))
}

/// [`compile_filter`] for a preset or file, without the precompiled preset.
#[cfg(test)]
fn compile_filter_now(name: &str, tty: bool) -> Result<Vec<u8>, String> {
    let mut policy = load_policy(name)?;
    if tty {
        widen_terminal_rule(&mut policy)?;
    }
    sandbox::policy::guards::refuse_setid_modes(&mut policy).map_err(|e| e.to_string())?;
    notifying(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sandbox run ARGS -- /bin/true`'s options, the profile loaded.
    fn args(extra: &[&str]) -> RunArgs {
        let mut line = vec!["sandbox", "run"];
        line.extend(extra);
        line.extend(["--", "/bin/true"]);
        match clap::Parser::try_parse_from(line).expect("parses") {
            crate::Cli {
                command: crate::Command::Run(a),
            } => a.0.with_profile().expect("profile"),
            _ => panic!("not run"),
        }
    }

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
        assert_eq!(compile_filter(&args(&[])).expect("precompiled"), now);
    }

    /// Any other policy is compiled at run time (here a file, and a profile that
    /// includes the exec preset: the same filter).
    #[test]
    fn other_policies_are_compiled_at_run_time() {
        let dir = std::env::temp_dir().join(format!("run-filter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("p.policy");
        std::fs::write(&file, "read: allow\nwrite: allow\nexit_group: allow\n").expect("write");
        let f = file.to_str().expect("utf-8");
        let got = compile_filter(&args(&["--policy", f])).expect("compiles");
        assert_ne!(got.as_slice(), PRECOMPILED_EXEC);
        assert_eq!(got, compile_filter_now(f, false).expect("compiles"));
        let profile = compile_filter(&args(&["--profile", "jq"])).expect("compiles");
        assert_eq!(profile.as_slice(), PRECOMPILED_EXEC);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

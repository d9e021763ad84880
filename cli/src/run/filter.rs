//! The filter the program gets: the policy behind the set-ID guard
//! (`sandbox::policy::guards`), with its default replaced by `user-notify`.

use super::RunError;
use crate::policy::{load, PolicyArg, Source};
use sandbox::bpf;
use sandbox::policy::arch::Arch;
use sandbox::policy::presets::Preset;
use sandbox::policy::Action;

/// The `exec` preset as [`compile_filter`] makes it, compiled by `build.rs` for the
/// target's architecture (empty for an architecture the compiler does not support).
const PRECOMPILED_EXEC: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/exec_notify.bpf"));

/// The policy as the filter the program gets: its default replaced by `user-notify`;
/// with `tty`, the `exec` preset's terminal rule replaced by one that lets the program
/// change its terminal (but never inject input or reach the console). The `exec`
/// preset (the default) comes precompiled. A preset name is never looked up in the file
/// system (see [`PolicyArg`]).
pub(super) fn compile_filter(policy: &str, tty: bool) -> Result<Vec<u8>, RunError> {
    let exec =
        PolicyArg::parse(policy).map_err(RunError::Options)? == PolicyArg::Preset(Preset::Exec);
    if tty && !exec {
        return Err(RunError::Options(
            "--tty changes the exec preset's terminal rule; with --policy, write the ioctl \
             rule you want in the policy"
                .into(),
        ));
    }
    if exec && !tty && !PRECOMPILED_EXEC.is_empty() {
        return Ok(PRECOMPILED_EXEC.to_vec());
    }
    compile_filter_now(policy, tty).map_err(RunError::Policy)
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
    // Whatever the policy says: no set-ID files (see `guards`).
    sandbox::policy::guards::refuse_setid_modes(&mut policy).map_err(|e| e.to_string())?;
    policy
        .set_default(Action::UserNotify)
        .map_err(|e| e.to_string())?;
    let program = bpf::compile(&policy, arch).map_err(|e| e.to_string())?;
    Ok(bpf::to_bytes(&program.instructions))
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

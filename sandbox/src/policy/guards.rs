//! Rules put in front of a whole policy, whatever it says.
//!
//! [`refuse_setid_modes`]: no set-user-ID or set-group-ID file. A program that can
//! write into a granted folder must not leave a set-ID program there: outside, where
//! the folder's file system may not be `nosuid`, anyone who can reach it would run
//! that program as its owner — the caller (as root, through an idmapped grant: root).

use super::{arg, Action, Expr, Policy, PolicyError};

/// Where reports say a guard rule was written.
pub const GUARD_ORIGIN: &str = "sandbox run's set-ID guard";

/// The set-ID mode bits (S_ISUID | S_ISGID).
pub const SETID_BITS: u64 = 0o6000;

/// The calls that take a mode for a file, and the index of that parameter.
pub const MODE_CALLS: &[(&str, u8)] = &[
    ("chmod", 1),
    ("fchmod", 1),
    ("fchmodat", 2),
    ("fchmodat2", 2),
    ("open", 2),
    ("openat", 3),
    ("creat", 1),
    ("mknod", 1),
    ("mknodat", 2),
];

/// Put in front of `policy`'s own rules: a mode call whose mode has a set-ID bit gets
/// EPERM (as it would for a user who may not set it); `openat2`, whose mode is in
/// memory a filter cannot read, gets ENOSYS (libc and runtimes fall back to `openat`).
/// The call's other rules (and its fallback) follow unchanged; a call the policy does
/// not name keeps the default for every other mode. (`open` and `openat` are refused
/// for such a mode even without O_CREAT, where the kernel would ignore it.)
pub fn refuse_setid_modes(policy: &mut Policy) -> Result<(), PolicyError> {
    for (call, mode) in MODE_CALLS {
        prepend(
            policy,
            call,
            arg(*mode).any_bits(SETID_BITS),
            Action::Errno(libc::EPERM as u16),
        )?;
    }
    policy.remove("openat2");
    policy.add_action("openat2", Action::Errno(libc::ENOSYS as u16))?;
    if let Some(rule) = policy
        .syscalls
        .get_mut(&super::Syscall::new("openat2")?)
        .and_then(|r| r.rules.first_mut())
    {
        rule.origin = super::Origin::at(GUARD_ORIGIN.into());
    }
    Ok(())
}

/// `when` → `action` as `syscall`'s first rule.
fn prepend(
    policy: &mut Policy,
    syscall: &str,
    when: Expr,
    action: Action,
) -> Result<(), PolicyError> {
    let old = policy.remove(syscall);
    policy.add_rule(syscall, when, action)?;
    if let Some(old) = &old {
        for r in old.rules() {
            policy.add_rule(syscall, r.when.clone(), r.action)?;
        }
        if let Some(otherwise) = old.otherwise() {
            policy.set_otherwise(syscall, otherwise)?;
        }
    }
    // Where each rule was written, for reports: the guard's, then the old ones'.
    let s = super::Syscall::new(syscall)?;
    if let Some(now) = policy.syscalls.get_mut(&s) {
        let mut origins = vec![super::Origin::at(GUARD_ORIGIN.into())];
        if let Some(old) = old {
            origins.extend(old.rules.into_iter().map(|r| r.origin));
            now.otherwise_origin = old.otherwise_origin;
        }
        for (rule, origin) in now.rules.iter_mut().zip(origins) {
            rule.origin = origin;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::arch::Arch;
    use crate::policy::presets::Preset;
    use crate::policy::text::Options;

    fn exec() -> Policy {
        Preset::Exec
            .policy(&Options::new(Arch::native()))
            .expect("exec parses")
    }

    fn eval(p: &Policy, call: &str, args: [u64; 6]) -> Action {
        let arch = Arch::native();
        let nr = arch.syscall_number(call).expect("a syscall");
        p.evaluate(
            arch,
            &crate::policy::arch::SeccompData {
                nr,
                arch: arch.audit_arch(),
                instruction_pointer: 0,
                args,
            },
        )
    }

    #[test]
    fn set_id_modes_are_refused_and_every_other_decision_is_kept() {
        let mut p = exec();
        refuse_setid_modes(&mut p).expect("guards apply");
        let eperm = Action::Errno(libc::EPERM as u16);
        assert_eq!(eval(&p, "chmod", [0, 0o4755, 0, 0, 0, 0]), eperm);
        assert_eq!(eval(&p, "fchmodat", [0, 0, 0o2755, 0, 0, 0]), eperm);
        assert_eq!(eval(&p, "openat", [0, 0, 0o100, 0o6755, 0, 0]), eperm);
        assert_eq!(eval(&p, "chmod", [0, 0o755, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(
            eval(&p, "openat", [0, 0, 0o100, 0o644, 0, 0]),
            Action::Allow
        );
        assert_eq!(
            eval(&p, "openat2", [0; 6]),
            Action::Errno(libc::ENOSYS as u16)
        );
        // The rest of the preset is as it was.
        let before = exec();
        for (call, args) in [("ioctl", [1, 0x5412, 0, 0, 0, 0]), ("ptrace", [0; 6])] {
            assert_eq!(eval(&p, call, args), eval(&before, call, args), "{call}");
        }
    }

    #[test]
    fn a_policy_that_does_not_name_a_mode_call_keeps_its_default_for_it() {
        let mut p = Policy::new(Action::KillProcess)
            .and_then(|p| p.with_allowed(&["read"]))
            .expect("policy");
        refuse_setid_modes(&mut p).expect("guards apply");
        assert_eq!(
            eval(&p, "chmod", [0, 0o644, 0, 0, 0, 0]),
            Action::KillProcess
        );
        assert_eq!(
            eval(&p, "chmod", [0, 0o4644, 0, 0, 0, 0]),
            Action::Errno(libc::EPERM as u16)
        );
    }
}

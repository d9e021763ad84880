use super::arch::X32_SYSCALL_BIT;
use super::*;

#[test]
fn action_round_trip() {
    for a in [
        Action::KillProcess,
        Action::KillThread,
        Action::Trap(7),
        Action::Errno(13),
        Action::UserNotify,
        Action::Trace(3),
        Action::Log,
        Action::Allow,
    ] {
        assert_eq!(Action::from_ret(a.to_ret()), a);
    }
    assert_eq!(Action::from_ret(0x1234_0000), Action::KillProcess);
    assert_eq!(
        Action::from_ret(RET_ERRNO | 0xffff),
        Action::Errno(MAX_ERRNO)
    );
}

#[test]
fn precedence_matches_kernel_order() {
    let order = [
        Action::KillProcess,
        Action::KillThread,
        Action::Trap(0),
        Action::Errno(1),
        Action::UserNotify,
        Action::Trace(0),
        Action::Log,
        Action::Allow,
    ];
    for w in order.windows(2) {
        assert!(
            w[0].precedence() < w[1].precedence(),
            "{} vs {}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn junk_high_half_of_32bit_parameter_gets_junk_action() {
    let p = Policy::new(Action::Errno(1))
        .and_then(|p| p.with_rule("ioctl", arg(1).ne(0x5412), Action::Allow))
        .expect("policy");
    let a = Arch::X86_64;
    let nr = a.syscall_number("ioctl").expect("ioctl");
    let call = |cmd: u64| p.evaluate(a, &SeccompData::new(a, nr, [0, cmd, 0, 0, 0, 0]));
    assert_eq!(call(0x5401), Action::Allow);
    assert_eq!(call(0x5412), Action::Errno(1));
    // TIOCSTI | 1 << 32 does not slip past `cmd != TIOCSTI`.
    assert_eq!(call(0x1_0000_5412), Action::Errno(1));
    // A sign-extended negative command is a 32-bit value, compared by its low half.
    assert_eq!(call(0xffff_ffff_c018_aa3f), Action::Allow);
    // All ones above a low half without bit 31 is junk.
    assert_eq!(call(0xffff_ffff_0000_5401), Action::Errno(1));
}

#[test]
fn wide_constant_for_32bit_parameter_is_an_error() {
    let r = Policy::new(Action::KillProcess)
        .and_then(|p| p.with_rule("ioctl", arg(1).eq(1 << 32), Action::Allow));
    assert!(matches!(r, Err(PolicyError::ValueTooWide { arg: 1, .. })));
}

#[test]
fn foreign_arch_and_x32_are_killed() {
    let p = Policy::new(Action::Allow)
        .and_then(|p| p.with_allowed(&["read"]))
        .expect("policy");
    let d = SeccompData {
        nr: 0,
        arch: arch::AUDIT_ARCH_I386,
        ..Default::default()
    };
    assert_eq!(p.evaluate(Arch::X86_64, &d), Action::KillProcess);
    let d = SeccompData::new(Arch::X86_64, X32_SYSCALL_BIT, [0; 6]);
    assert_eq!(p.evaluate(Arch::X86_64, &d), Action::KillProcess);
    let d = SeccompData::new(Arch::Aarch64, X32_SYSCALL_BIT, [0; 6]);
    assert_eq!(p.evaluate(Arch::Aarch64, &d), Action::Allow);
}

#[test]
fn rules_after_unconditional_are_refused() {
    let mut p = Policy::new(Action::KillProcess).expect("policy");
    p.add_rule("write", arg(0).eq(1), Action::Allow)
        .expect("first");
    p.allow("write")
        .expect("unconditional after conditional is the else branch");
    assert_eq!(p.allow("write"), Err(PolicyError::Unreachable("write")));
    assert!(matches!(
        p.add_rule("write", arg(0).eq(2), Action::Allow),
        Err(PolicyError::Unreachable(_))
    ));
}

#[test]
fn stacking_only_narrows() {
    let a = Arch::X86_64;
    let loose = Policy::new(Action::Allow)
        .and_then(|p| p.with_action("getppid", Action::Errno(1)))
        .expect("policy");
    let tight = Policy::new(Action::Allow)
        .and_then(|p| p.with_action("getpid", Action::Errno(2)))
        .and_then(|p| p.with_action("getppid", Action::Allow))
        .expect("policy");
    let call = |n: &str| SeccompData::new(a, a.syscall_number(n).expect("nr"), [0; 6]);
    assert_eq!(
        evaluate_stack(&[&loose, &tight], a, &call("getppid")),
        Action::Errno(1)
    );
    assert_eq!(
        evaluate_stack(&[&loose, &tight], a, &call("getpid")),
        Action::Errno(2)
    );
    assert_eq!(
        evaluate_stack(&[&loose, &tight], a, &call("read")),
        Action::Allow
    );
}

#[test]
fn empty_policy_is_an_error() {
    let p = Policy::new(Action::Allow).expect("policy");
    assert_eq!(p.check_not_empty(), Err(PolicyError::Empty));
}

#[test]
fn handing_over_refusals_keeps_what_is_allowed() {
    use crate::policy::presets::Preset;
    use crate::policy::text::Options;
    let arch = Arch::native();
    let options = Options::new(arch).define("SELF_PID", 1);
    let mut p = Preset::Renderer.policy(&options).expect("preset");
    for name in ["newfstatat", "openat", "statx"] {
        p.hand_over_refusals(name).expect("hand over");
    }
    // A violation (trapped by the default, or named as one) cannot be handed over.
    for name in ["getppid", "ptrace"] {
        assert!(matches!(
            p.hand_over_refusals(name),
            Err(PolicyError::CannotHandOver(_))
        ));
    }
    let nr = |n: &str| arch.syscall_number(n).expect("nr");
    let call = |n: &str, args: [u64; 6]| p.evaluate(arch, &SeccompData::new(arch, nr(n), args));
    // fstat through newfstatat(fd, "", buf, AT_EMPTY_PATH) stays allowed in the kernel.
    let empty_path = libc::AT_EMPTY_PATH as u64;
    assert_eq!(
        call("newfstatat", [3, 0, 0, empty_path, 0, 0]),
        Action::Allow
    );
    // Its refused form, and every openat and statx, go to the listener's holder.
    assert_eq!(call("newfstatat", [3, 0, 0, 0, 0, 0]), Action::UserNotify);
    assert_eq!(call("openat", [0, 0, 0, 0, 0, 0]), Action::UserNotify);
    assert_eq!(call("statx", [0, 0, 0, 0, 0, 0]), Action::UserNotify);
    assert_eq!(call("statx", [3, 0, empty_path, 0, 0, 0]), Action::Allow);
    // One that stays allowed is untouched; a violation stays the default's trap.
    assert_eq!(call("read", [0; 6]), Action::Allow);
    assert!(matches!(call("getppid", [0; 6]), Action::Trap(_)));
    // Handing over twice is an error (the refusal is a notification already).
    assert!(p.hand_over_refusals("openat").is_err());
}

//! The compiled program answers exactly what the policy means, for random policies and
//! random calls on both architectures: foreign arch values, x32 numbers, numbers no
//! table has, and random high halves included.

use proptest::prelude::*;
use sandbox::bpf::{compile, run, validate};
use sandbox::policy::arch::{Arch, SeccompData, AUDIT_ARCH_I386, X32_SYSCALL_BIT};
use sandbox::policy::{arg, Action, Expr, Op, Policy};

/// Syscalls whose parameters mix 32- and 64-bit widths, plus plain ones.
const NAMES: &[&str] = &[
    "read",
    "write",
    "ioctl",
    "fcntl",
    "mmap",
    "mprotect",
    "madvise",
    "prctl",
    "clone",
    "socket",
    "kill",
    "tgkill",
    "futex",
    "openat",
    "getpid",
    "exit_group",
    "close",
    "clock_gettime",
    "getrandom",
    "memfd_create",
    "open",
    "uname",
    "ptrace",
    "bpf",
];

fn interesting() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(2),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(0xffff_ffff),
        Just(0x1_0000_0000),
        Just(0xffff_ffff_8000_0000),
        Just(0xffff_ffff_ffff_fffe),
        Just(u64::MAX),
        0u64..16,
        any::<u64>(),
        any::<u32>().prop_map(u64::from),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        Just(Action::KillProcess),
        Just(Action::KillThread),
        Just(Action::Log),
        Just(Action::UserNotify),
        (0u16..4).prop_map(Action::Trap),
        (0u16..=4095).prop_map(Action::Errno),
        (0u16..4).prop_map(Action::Trace),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Eq),
        Just(Op::Ne),
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Gt),
        Just(Op::Ge),
        Just(Op::AnyBits),
        Just(Op::InMask),
        interesting().prop_map(Op::MaskedEq),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = (0u8..6, op(), interesting()).prop_map(|(i, op, v)| match op {
        // Keep masked compares satisfiable so they are not rejected.
        Op::MaskedEq(m) => arg(i).masked_eq(m, v & m),
        Op::Eq => arg(i).eq(v),
        Op::Ne => arg(i).ne(v),
        Op::Lt => arg(i).lt(v),
        Op::Le => arg(i).le(v),
        Op::Gt => arg(i).gt(v),
        Op::Ge => arg(i).ge(v),
        Op::AnyBits => arg(i).any_bits(v),
        Op::InMask => arg(i).in_mask(v),
    });
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::Or),
            inner.prop_map(|e| e.not()),
        ]
    })
}

type RuleSpec = (usize, Option<Expr>, Action);

fn policy_spec() -> impl Strategy<Value = (Action, Vec<RuleSpec>, Vec<(usize, Action)>)> {
    (
        action(),
        prop::collection::vec(
            (
                0..NAMES.len(),
                prop::option::weighted(0.8, expr()),
                action(),
            ),
            1..14,
        ),
        prop::collection::vec((0..NAMES.len(), action()), 0..3),
    )
}

/// Build a policy, skipping rules the builder refuses (too-wide constants for 32-bit
/// parameters, rules after an unconditional one, conflicting fallbacks).
fn build(spec: &(Action, Vec<RuleSpec>, Vec<(usize, Action)>)) -> Option<Policy> {
    let (default, rules, otherwise) = spec;
    let mut p = Policy::new(*default).ok()?;
    for (i, e, a) in rules {
        let _ = match e {
            Some(e) => p.add_rule(NAMES[*i], e.clone(), *a),
            None => p.add_action(NAMES[*i], *a),
        };
    }
    for (i, a) in otherwise {
        let _ = p.set_otherwise(NAMES[*i], *a);
    }
    p.check_not_empty().ok()?;
    Some(p)
}

/// Argument values near the policy's constants, with random high halves.
fn args_near(policy: &Policy, picks: &[u64; 12]) -> [u64; 6] {
    let mut consts = vec![0u64];
    for (_, rules) in policy.syscalls() {
        for r in rules.rules() {
            r.when.for_each_cond(&mut |c| {
                consts.push(c.value);
                if let Op::MaskedEq(m) = c.op {
                    consts.push(m);
                }
            });
        }
    }
    let mut out = [0u64; 6];
    for (i, slot) in out.iter_mut().enumerate() {
        let base = consts[(picks[i] as usize) % consts.len()];
        let tweak = picks[i + 6];
        let low = match tweak % 5 {
            0 => base,
            1 => base.wrapping_add(1),
            2 => base.wrapping_sub(1),
            3 => !base,
            _ => tweak,
        } as u32;
        let high = match (tweak >> 8) % 5 {
            0 => (base >> 32) as u32,
            1 => 0,
            2 => u32::MAX,
            3 => (tweak >> 32) as u32,
            _ => ((base >> 32) as u32).wrapping_add(1),
        };
        *slot = (u64::from(high) << 32) | u64::from(low);
    }
    out
}

fn nr_for(arch: Arch, pick: u32, kind: u8) -> u32 {
    match kind % 6 {
        0 | 1 => NAMES
            .iter()
            .filter_map(|n| arch.syscall_number(n))
            .nth(pick as usize % NAMES.len())
            .unwrap_or(0),
        2 => pick % 500,
        3 => X32_SYSCALL_BIT | (pick % 600),
        4 => pick,
        _ => u32::MAX - (pick % 4),
    }
}

fn audit_for(arch: Arch, kind: u8, raw: u32) -> u32 {
    match kind % 8 {
        0 => AUDIT_ARCH_I386,
        1 => raw,
        2 => {
            if arch == Arch::X86_64 {
                Arch::Aarch64.audit_arch()
            } else {
                Arch::X86_64.audit_arch()
            }
        }
        _ => arch.audit_arch(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, .. ProptestConfig::default() })]

    #[test]
    fn interpret_compile_equals_evaluate(
        spec in policy_spec(),
        x86 in any::<bool>(),
        calls in prop::collection::vec((any::<u32>(), any::<u8>(), any::<u8>(), any::<u32>(), any::<[u64; 12]>()), 24),
    ) {
        let arch = if x86 { Arch::X86_64 } else { Arch::Aarch64 };
        let Some(policy) = build(&spec) else { return Ok(()); };
        let program = compile(&policy, arch).expect("random policies fit");
        validate(&program.instructions).expect("the kernel would accept it");
        for (pick, nr_kind, arch_kind, raw_arch, picks) in calls {
            let data = SeccompData {
                nr: nr_for(arch, pick, nr_kind),
                arch: audit_for(arch, arch_kind, raw_arch),
                instruction_pointer: u64::from(pick),
                args: args_near(&policy, &picks),
            };
            let got = run(&program.instructions, &data).expect("runs");
            let want = policy.evaluate(arch, &data);
            prop_assert_eq!(got.action, want, "data {:x?}\npolicy {:#?}", data, policy);
            prop_assert!(got.executed <= program.instructions.len());
        }
    }
}

#[test]
fn long_jumps_use_trampolines() {
    // Enough argument checks that the search tree sits more than 255 instructions
    // away from the shared returns.
    let mut p = Policy::new(Action::Errno(1)).expect("policy");
    let names: Vec<&str> = Arch::X86_64
        .syscalls()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| sandbox::policy::params::params(n).is_none())
        .take(120)
        .collect();
    for (i, n) in names.iter().enumerate() {
        p.add_rule(n, arg(0).eq(i as u64).or(arg(1).gt(1 << 40)), Action::Allow)
            .expect("rule");
    }
    let prog = compile(&p, Arch::X86_64).expect("compiles");
    assert!(prog.instructions.len() > 600, "{}", prog.instructions.len());
    assert!(
        prog.instructions.iter().any(|i| i.code == 0x05),
        "no `ja` was needed"
    );
    validate(&prog.instructions).expect("valid");
    for (i, n) in names.iter().enumerate() {
        let nr = Arch::X86_64.syscall_number(n).expect("nr");
        for args in [
            [i as u64, 0, 0, 0, 0, 0],
            [0, 1 << 41, 0, 0, 0, 0],
            [i as u64 + 1, 5, 0, 0, 0, 0],
        ] {
            let d = SeccompData::new(Arch::X86_64, nr, args);
            assert_eq!(
                run(&prog.instructions, &d).expect("runs").action,
                p.evaluate(Arch::X86_64, &d)
            );
        }
    }
}

#[test]
fn oversize_program_is_an_error_naming_its_size() {
    let mut p = Policy::new(Action::Errno(1)).expect("policy");
    let all = Arch::X86_64.syscalls();
    let plain = all
        .iter()
        .filter(|(n, _)| sandbox::policy::params::params(n).is_none());
    for (n, _) in plain.take(300) {
        let e = (0..16u64).fold(arg(0).eq(1 << 40), |e, v| e.or(arg(1).eq((v + 3) << 36)));
        p.add_rule(n, e, Action::Allow).expect("rule");
    }
    let err = compile(&p, Arch::X86_64).expect_err("too large");
    let msg = err.to_string();
    assert!(
        msg.contains("instructions; the kernel accepts at most 4096"),
        "{msg}"
    );
}

#[test]
fn empty_policy_is_an_error() {
    let p = Policy::new(Action::Allow).expect("policy");
    assert!(compile(&p, Arch::X86_64).is_err());
}

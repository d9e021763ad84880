//! Differential: a random policy and random calls; the compiled program, run by the
//! reference interpreter (which runs BPF as the kernel does), must decide every call
//! exactly as `Policy::evaluate` says the policy means — gVisor fuzzes its optimizer
//! the same way. A disagreement is a compiler bug and aborts.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sandbox::bpf::{compile, run, validate};
use sandbox::policy::arch::{Arch, SeccompData};
use sandbox::policy::{arg, Action, Expr, Policy};

const NAMES: &[&str] = &[
    "read",
    "write",
    "ioctl",
    "fcntl",
    "mmap",
    "mprotect",
    "prctl",
    "clone",
    "socket",
    "kill",
    "futex",
    "openat",
    "getpid",
    "close",
    "memfd_create",
    "ptrace",
    "newfstatat",
    "statx",
];

#[derive(Arbitrary, Debug)]
enum ExprSpec {
    Leaf {
        arg: u8,
        op: u8,
        value: u64,
        mask: u64,
    },
    And(Vec<ExprSpec>),
    Or(Vec<ExprSpec>),
    Not(Box<ExprSpec>),
}

#[derive(Arbitrary, Debug)]
struct Spec {
    aarch64: bool,
    default: u8,
    rules: Vec<(u8, Option<ExprSpec>, u8, u16)>,
    otherwise: Vec<(u8, u8, u16)>,
    calls: Vec<(u8, bool, bool, [u64; 6])>,
}

fn action(kind: u8, data: u16) -> Action {
    match kind % 8 {
        0 => Action::Allow,
        1 => Action::KillProcess,
        2 => Action::KillThread,
        3 => Action::Log,
        4 => Action::UserNotify,
        5 => Action::Trap(data % 4),
        6 => Action::Errno(data % 4096),
        _ => Action::Trace(data % 4),
    }
}

fn expr(spec: &ExprSpec, depth: u8) -> Expr {
    match spec {
        ExprSpec::Leaf {
            arg: i,
            op,
            value,
            mask,
        } => {
            let a = arg(i % 6);
            match op % 9 {
                0 => a.eq(*value),
                1 => a.ne(*value),
                2 => a.lt(*value),
                3 => a.le(*value),
                4 => a.gt(*value),
                5 => a.ge(*value),
                6 => a.any_bits(*value),
                7 => a.in_mask(*value),
                _ => a.masked_eq(*mask, value & mask),
            }
        }
        _ if depth > 3 => arg(0).eq(0),
        ExprSpec::And(v) if !v.is_empty() => {
            Expr::And(v.iter().take(3).map(|e| expr(e, depth + 1)).collect())
        }
        ExprSpec::Or(v) if !v.is_empty() => {
            Expr::Or(v.iter().take(3).map(|e| expr(e, depth + 1)).collect())
        }
        ExprSpec::Not(e) => expr(e, depth + 1).not(),
        _ => arg(1).ne(0),
    }
}

fuzz_target!(|spec: Spec| {
    let arch = if spec.aarch64 {
        Arch::Aarch64
    } else {
        Arch::X86_64
    };
    let Ok(mut policy) = Policy::new(action(spec.default, 1)) else {
        return;
    };
    for (name, when, kind, data) in spec.rules.iter().take(16) {
        let name = NAMES[usize::from(*name) % NAMES.len()];
        let a = action(*kind, *data);
        // Invalid rules (a value too wide for a 32-bit parameter, an unreachable rule)
        // are refused by the policy itself: skip them, as a writer would fix them.
        let _ = match when {
            Some(e) => policy.add_rule(name, expr(e, 0), a),
            None => policy.add_action(name, a),
        };
    }
    for (name, kind, data) in spec.otherwise.iter().take(4) {
        let _ = policy.set_otherwise(
            NAMES[usize::from(*name) % NAMES.len()],
            action(*kind, *data),
        );
    }
    if policy.check_not_empty().is_err() {
        return;
    }
    let Ok(program) = compile(&policy, arch) else {
        return;
    };
    validate(&program.instructions).expect("the kernel would accept every compiled program");
    for (name, foreign, raw_nr, args) in spec.calls.iter().take(32) {
        let nr = if *raw_nr {
            u32::from(*name) * 3
        } else {
            arch.syscall_number(NAMES[usize::from(*name) % NAMES.len()])
                .unwrap_or(0)
        };
        let mut data = SeccompData::new(arch, nr, *args);
        if *foreign {
            data.arch ^= 0x10;
        }
        let got = run(&program.instructions, &data)
            .expect("compiled programs run")
            .action;
        let want = policy.evaluate(arch, &data);
        assert_eq!(got, want, "data {data:x?}\npolicy {policy:#?}");
    }
});

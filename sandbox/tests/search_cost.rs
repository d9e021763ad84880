//! The cost the compiler promises: in a 300-syscall allow-list, every syscall is
//! decided within 16 instructions (arch and x32 checks included), and foreign-arch and
//! x32 calls are killed within a handful.

use sandbox::bpf::{compile, run};
use sandbox::policy::arch::{Arch, SeccompData, AUDIT_ARCH_I386, X32_SYSCALL_BIT};
use sandbox::policy::{Action, Policy};

fn allow_list(arch: Arch, n: usize) -> (Policy, Vec<u32>) {
    let mut p = Policy::new(Action::KillProcess).expect("policy");
    let mut nrs = Vec::new();
    for (name, nr) in arch.syscalls().into_iter().take(n) {
        p.allow(name).expect("allow");
        nrs.push(nr);
    }
    (p, nrs)
}

#[test]
fn worst_case_of_a_300_syscall_allow_list_is_at_most_16() {
    for arch in Arch::ALL {
        let (p, nrs) = allow_list(arch, 300);
        assert_eq!(nrs.len(), 300);
        let prog = compile(&p, arch).expect("compiles");
        let mut worst = 0;
        // Every number the table has, plus every number up to well past the table.
        for nr in (0..1024).chain(nrs.iter().copied()) {
            let d = SeccompData::new(arch, nr, [0; 6]);
            let out = run(&prog.instructions, &d).expect("runs");
            assert_eq!(out.action, p.evaluate(arch, &d), "{arch} nr {nr}");
            worst = worst.max(out.executed);
        }
        assert!(worst <= 16, "{arch}: worst case {worst} instructions");
        // A linear chain would need ~300 compares for the last entry.
        let last = *nrs.last().expect("300 entries");
        let out = run(&prog.instructions, &SeccompData::new(arch, last, [0; 6])).expect("runs");
        assert_eq!(out.action, Action::Allow);
        assert!(out.executed <= 16);
    }
}

#[test]
fn every_syscall_subset_size_stays_logarithmic() {
    // Alternate allowed and unlisted numbers: the worst layout for range merging.
    let arch = Arch::X86_64;
    let mut p = Policy::new(Action::Errno(1)).expect("policy");
    let all = arch.syscalls();
    for (name, _) in all.iter().step_by(2) {
        p.allow(name).expect("allow");
    }
    let prog = compile(&p, arch).expect("compiles");
    let ranges = all.len() + 2;
    // Header (4) + one compare per level + the return, and one `ja` on paths that cross
    // a subtree longer than a jump's 255-instruction reach (only near the root).
    let depth = (usize::BITS - (ranges - 1).leading_zeros()) as usize;
    let bound = 4 + depth + 1 + 1;
    for (_, nr) in &all {
        let out = run(&prog.instructions, &SeccompData::new(arch, *nr, [0; 6])).expect("runs");
        assert!(out.executed <= bound, "nr {nr}: {} > {bound}", out.executed);
    }
}

#[test]
fn foreign_arch_and_x32_get_the_kill_action_early() {
    let (p, nrs) = allow_list(Arch::X86_64, 300);
    let prog = compile(&p, Arch::X86_64).expect("compiles");
    for nr in nrs.iter().copied().chain([0, 39, 59, 101]) {
        for arch in [AUDIT_ARCH_I386, Arch::Aarch64.audit_arch(), 0, u32::MAX] {
            let d = SeccompData {
                nr,
                arch,
                ..Default::default()
            };
            let out = run(&prog.instructions, &d).expect("runs");
            assert_eq!(out.action, Action::KillProcess);
            assert_eq!(out.executed, 3, "ld arch; jeq; ret kill");
        }
        let d = SeccompData::new(Arch::X86_64, nr | X32_SYSCALL_BIT, [0; 6]);
        let out = run(&prog.instructions, &d).expect("runs");
        assert_eq!(out.action, Action::KillProcess, "x32 {nr:#x}");
        assert_eq!(out.executed, 5, "ld arch; jeq; ld nr; jset; ret kill");
    }
}

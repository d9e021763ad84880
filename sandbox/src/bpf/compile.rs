//! Policy → classic BPF.
//!
//! Layout of every program:
//!
//! ```text
//!   ld  [arch]           ; seccomp_data.arch
//!   jeq AUDIT_ARCH, +1   ; otherwise kill-process: an int 0x80 (i386) or compat call
//!   ret KILL_PROCESS         never reaches the rules
//!   ld  [nr]
//!   jset 0x40000000      ; x86_64 only: every x32 number is killed
//!   <binary search>      ; over ranges of numbers sharing one outcome
//!   <argument blocks>    ; one per syscall whose rules look at arguments
//!   <return blocks>      ; one `ret` per distinct action, shared
//! ```
//!
//! The search splits the sorted list of ranges at the middle with `jge`, so every
//! syscall is reached after ⌈log2(ranges)⌉ compares however many the policy names.
//!
//! Code is generated back to front, so every jump target already exists when the jump
//! is written; a target further than 255 instructions (the reach of `jt`/`jf`) is
//! reached through a `ja` trampoline placed right after the jump.

use super::op::*;
use super::{SockFilter, MAX_INSTRUCTIONS};
use crate::policy::arch::{
    offset_arg_hi, offset_arg_lo, Arch, OFFSET_ARCH, OFFSET_NR, X32_SYSCALL_BIT,
};
use crate::policy::params::{self, Width};
use crate::policy::{Action, Cond, Expr, Op, Policy, PolicyError, Syscall, SyscallRules};
use std::collections::HashMap;

/// A compiled program and what went into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The instructions, ready for `seccomp(2)`.
    pub instructions: Vec<SockFilter>,
    /// The architecture it was compiled for.
    pub arch: Arch,
    /// Syscalls the policy names that this architecture does not have (left out).
    pub left_out: Vec<Syscall>,
}

/// Why a policy could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The policy itself is unusable (e.g. empty).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The program would exceed the kernel's limit.
    #[error("the compiled program has {0} instructions; the kernel accepts at most 4096")]
    TooLarge(usize),
}

/// Compile `policy` for `arch`.
pub fn compile(policy: &Policy, arch: Arch) -> Result<Program, CompileError> {
    policy.check_not_empty()?;
    let mut g = Gen::default();
    let kill = g.ret(Action::KillProcess);

    // What each syscall number of this architecture leads to.
    let mut by_number: Vec<(u32, Leaf)> = Vec::new();
    for (syscall, rules) in policy.syscalls() {
        let Some(nr) = arch.syscall_number(syscall.name()) else {
            continue;
        };
        let leaf = match rules.rules().first() {
            Some(first) if first.when == Expr::True => Leaf::Ret(first.action),
            None => Leaf::Ret(rules.otherwise().unwrap_or(policy.default_action())),
            Some(_) => {
                let pos = g.syscall_block(policy, syscall, rules);
                Leaf::Block(pos)
            }
        };
        by_number.push((nr, leaf));
    }
    by_number.sort_by_key(|(nr, _)| *nr);
    let default = Leaf::Ret(policy.default_action());
    let ranges = ranges(&by_number, default);

    let targets: Vec<(u32, Pos)> = ranges
        .iter()
        .map(|(start, leaf)| {
            let pos = match leaf {
                Leaf::Ret(a) => g.ret(*a),
                Leaf::Block(p) => *p,
            };
            (*start, pos)
        })
        .collect();
    let search = g.search(&targets, kill);

    let after_x32 = if arch.has_x32() {
        g.jump(JMP | JSET | K, X32_SYSCALL_BIT, kill, search)
    } else {
        search
    };
    let nr = g.load(OFFSET_NR, after_x32);
    let arch_ok = g.jump(JMP | JEQ | K, arch.audit_arch(), nr, kill);
    g.load(OFFSET_ARCH, arch_ok);

    let n = g.rev.len();
    if n > MAX_INSTRUCTIONS {
        return Err(CompileError::TooLarge(n));
    }
    let mut instructions = g.rev;
    instructions.reverse();
    Ok(Program {
        instructions,
        arch,
        left_out: policy.missing_on(arch),
    })
}

/// Where a syscall number leads: straight to a return, or to its argument block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Leaf {
    Ret(Action),
    Block(Pos),
}

/// Cover all of `0..=u32::MAX` with ranges (start, leaf), merging neighbours that
/// lead to the same place.
fn ranges(by_number: &[(u32, Leaf)], default: Leaf) -> Vec<(u32, Leaf)> {
    let mut out: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u32, leaf: Leaf| {
        if out.last().map(|(_, l)| *l) != Some(leaf) {
            out.push((start, leaf));
        }
    };
    let mut next = 0u64;
    for (nr, leaf) in by_number {
        if u64::from(*nr) > next {
            push(next as u32, default);
        }
        push(*nr, *leaf);
        next = u64::from(*nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        push(next as u32, default);
    }
    out
}

/// Position of an instruction counted from the end of the program (0 = last).
type Pos = usize;

#[derive(Default)]
struct Gen {
    /// The program, last instruction first.
    rev: Vec<SockFilter>,
    rets: HashMap<Action, Pos>,
}

impl Gen {
    fn emit(&mut self, ins: SockFilter) -> Pos {
        self.rev.push(ins);
        self.rev.len() - 1
    }

    /// Distance from the next instruction to be emitted to `target`.
    fn distance(&self, target: Pos) -> usize {
        self.rev.len() - target - 1
    }

    fn ja(&mut self, target: Pos) -> Pos {
        let k = self.distance(target) as u32;
        self.emit(SockFilter::stmt(JMP | JA, k))
    }

    fn ret(&mut self, action: Action) -> Pos {
        if let Some(p) = self.rets.get(&action) {
            return *p;
        }
        let p = self.emit(SockFilter::stmt(RET | K, action.to_ret()));
        self.rets.insert(action, p);
        p
    }

    /// Make `next` the instruction right after the one about to be emitted.
    fn fall_into(&mut self, next: Pos) {
        if next + 1 != self.rev.len() {
            self.ja(next);
        }
    }

    /// Something here that does what the far instruction `target` does: a copy of it if
    /// it is a return (one instruction either way, and one fewer executed; later jumps
    /// reuse the nearer copy), else a `ja` to it.
    fn near_copy(&mut self, target: Pos) -> Pos {
        match self.rev.get(target).copied() {
            Some(ins) if class(ins.code) == RET => {
                let copy = self.emit(ins);
                if ins.code == RET | K {
                    self.rets.insert(Action::from_ret(ins.k), copy);
                }
                copy
            }
            _ => self.ja(target),
        }
    }

    /// `A = word at offset`, then continue at `next`.
    fn load(&mut self, offset: u32, next: Pos) -> Pos {
        self.fall_into(next);
        self.emit(SockFilter::stmt(LD | W | ABS, offset))
    }

    /// A conditional jump; far targets go through trampolines.
    fn jump(&mut self, code: u16, k: u32, mut jt: Pos, mut jf: Pos) -> Pos {
        if jt == jf {
            // Both ways lead to the same place: no test needed.
            return jt;
        }
        loop {
            if self.distance(jt) > 255 {
                jt = self.near_copy(jt);
                continue;
            }
            if self.distance(jf) > 255 {
                jf = self.near_copy(jf);
                continue;
            }
            break;
        }
        let (t, f) = (self.distance(jt) as u8, self.distance(jf) as u8);
        self.emit(SockFilter::jump(code, k, t, f))
    }

    /// Balanced binary search over `ranges` (A holds the syscall number). `ranges`
    /// is never empty (it covers every number); `empty` is only there to fail closed.
    fn search(&mut self, ranges: &[(u32, Pos)], empty: Pos) -> Pos {
        match ranges {
            [] => empty,
            [(_, pos)] => *pos,
            _ => {
                let (left, right) = ranges.split_at(ranges.len() / 2);
                let right_pos = self.search(right, empty);
                let left_pos = self.search(left, empty);
                let split = right.first().map_or(0, |(start, _)| *start);
                self.jump(JMP | JGE | K, split, right_pos, left_pos)
            }
        }
    }

    /// The argument block of one syscall: junk checks of its 32-bit parameters, then
    /// its rules in order, then its fallback.
    fn syscall_block(&mut self, policy: &Policy, syscall: Syscall, rules: &SyscallRules) -> Pos {
        let otherwise = self.ret(rules.otherwise().unwrap_or(policy.default_action()));
        let widths = |i: u8| params::width(syscall.name(), i);
        let mut next = otherwise;
        for rule in rules.rules().iter().rev() {
            let hit = self.ret(rule.action);
            next = self.expr(&rule.when, hit, next, &widths);
        }
        let junk = self.ret(policy.junk_action());
        for i in rules.checked_32bit_args(syscall).into_iter().rev() {
            next = self.junk_check(i, next, junk);
        }
        next
    }

    /// Continue at `ok` when argument `i` is a zero- or sign-extended 32-bit value.
    fn junk_check(&mut self, i: u8, ok: Pos, junk: Pos) -> Pos {
        let negative = self.jump(JMP | JSET | K, 0x8000_0000, ok, junk);
        let negative = self.load(offset_arg_lo(i), negative);
        let all_ones = self.jump(JMP | JEQ | K, u32::MAX, negative, junk);
        let zero = self.jump(JMP | JEQ | K, 0, ok, all_ones);
        self.load(offset_arg_hi(i), zero)
    }

    fn expr(&mut self, e: &Expr, t: Pos, f: Pos, widths: &dyn Fn(u8) -> Width) -> Pos {
        match e {
            Expr::True => t,
            Expr::Cond(c) => self.cond(c, t, f, widths(c.arg)),
            Expr::And(v) => v.iter().rev().fold(t, |t, e| self.expr(e, t, f, widths)),
            Expr::Or(v) => v.iter().rev().fold(f, |f, e| self.expr(e, t, f, widths)),
            Expr::Not(e) => self.expr(e, f, t, widths),
        }
    }

    fn cond(&mut self, c: &Cond, t: Pos, f: Pos, width: Width) -> Pos {
        let lo_off = offset_arg_lo(c.arg);
        let hi_off = offset_arg_hi(c.arg);
        let v_lo = c.value as u32;
        let v_hi = (c.value >> 32) as u32;
        match (width, c.op) {
            (_, Op::Ne) => self.cond(&Cond { op: Op::Eq, ..*c }, f, t, width),
            (_, Op::Lt) => self.cond(&Cond { op: Op::Ge, ..*c }, f, t, width),
            (_, Op::Le) => self.cond(&Cond { op: Op::Gt, ..*c }, f, t, width),
            (Width::W32, Op::Eq) => self.test(lo_off, JEQ, v_lo, t, f),
            (Width::W32, Op::Gt) => self.test(lo_off, JGT, v_lo, t, f),
            (Width::W32, Op::Ge) => self.test(lo_off, JGE, v_lo, t, f),
            (Width::W32, Op::AnyBits) => self.any_bits(lo_off, v_lo, t, f),
            (Width::W32, Op::InMask) => self.any_bits(lo_off, !v_lo, f, t),
            (Width::W32, Op::MaskedEq(m)) => self.masked_eq(lo_off, m as u32, v_lo, t, f),
            (Width::W64, Op::MaskedEq(m)) => {
                let lo = self.masked_eq(lo_off, m as u32, v_lo, t, f);
                self.masked_eq(hi_off, (m >> 32) as u32, v_hi, lo, f)
            }
            (Width::W64, Op::Eq) => {
                let lo = self.test(lo_off, JEQ, v_lo, t, f);
                self.test(hi_off, JEQ, v_hi, lo, f)
            }
            (Width::W64, Op::Gt | Op::Ge) => {
                let lo_op = if c.op == Op::Gt { JGT } else { JGE };
                let lo = self.test(lo_off, lo_op, v_lo, t, f);
                let hi_eq = self.jump(JMP | JEQ | K, v_hi, lo, f);
                self.test(hi_off, JGT, v_hi, t, hi_eq)
            }
            (Width::W64, Op::AnyBits) => {
                let lo = self.any_bits(lo_off, v_lo, t, f);
                self.any_bits(hi_off, v_hi, t, lo)
            }
            (Width::W64, Op::InMask) => {
                let lo = self.any_bits(lo_off, !v_lo, f, t);
                self.any_bits(hi_off, !v_hi, f, lo)
            }
        }
    }

    /// `ld [off]; j<op> k, t, f`
    fn test(&mut self, off: u32, jop: u16, k: u32, t: Pos, f: Pos) -> Pos {
        if t == f {
            return t;
        }
        let j = self.jump(JMP | jop | K, k, t, f);
        self.load(off, j)
    }

    /// `t` when the word at `off`, masked, equals `v`, else `f`.
    fn masked_eq(&mut self, off: u32, mask: u32, v: u32, t: Pos, f: Pos) -> Pos {
        if t == f {
            return t;
        }
        match (mask, v) {
            // Nothing to compare: every value matches (the policy rejects v outside mask).
            (0, 0) => t,
            (0, _) => f,
            (u32::MAX, _) => self.test(off, JEQ, v, t, f),
            _ => {
                let j = self.jump(JMP | JEQ | K, v, t, f);
                self.fall_into(j);
                let and = self.emit(SockFilter::stmt(ALU | AND | K, mask));
                self.load(off, and)
            }
        }
    }

    /// `t` when any bit of `mask` is set in the word at `off`, else `f`.
    fn any_bits(&mut self, off: u32, mask: u32, t: Pos, f: Pos) -> Pos {
        if mask == 0 {
            f
        } else {
            self.test(off, JSET, mask, t, f)
        }
    }
}

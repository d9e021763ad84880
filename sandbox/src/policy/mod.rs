//! Seccomp policies as data: actions, conditions on arguments, per-syscall rules.
//!
//! A [`Policy`] says, for each syscall it names, an ordered list of rules (a condition
//! and an action; the first that holds decides), an optional fallback action for that
//! syscall, and a default action for every syscall it does not name. It is written in
//! Rust with the small DSL here ([`arg`], [`Expr`]) or in the policy text language
//! ([`text`]), and compiled to classic BPF by [`crate::bpf`].
//!
//! [`Policy::evaluate`] is the meaning of a policy, written independently of the
//! compiler; the property tests hold the compiled program to it.
//!
//! # Argument semantics
//!
//! * Compares are unsigned. A 64-bit parameter compares all 64 bits.
//! * A 32-bit parameter (see [`params`]) compares its low 32 bits with the low 32 bits
//!   of the constant, and the constant must be a 32-bit value, unsigned or sign-extended
//!   (`-1`, `~PROT_EXEC` are fine; `1 << 32` is an error).
//! * Junk in the high half of a 32-bit parameter: before any rule of a syscall runs,
//!   every 32-bit parameter that one of its rules inspects must have a high half of 0, or
//!   of all ones with bit 31 of the low half set (a sign-extended negative `int`). Any
//!   other value gets the policy's [junk action](Policy::junk_action) instead of the
//!   rules: the kernel would act on the low half only, so no rule may be matched or
//!   missed because of the high half (CVE-2019-7303).
//! * Architecture: a call made with another `AUDIT_ARCH` than the compiled one (e.g.
//!   `int 0x80` on x86_64), and on x86_64 any number with bit 30 set (x32), gets
//!   [`Action::KillProcess`] before any rule.
//!
//! Policies stack the way the kernel stacks filters: every installed filter runs and the
//! most restrictive action wins ([`evaluate_stack`]), so a later policy can only narrow.

pub mod arch;
pub mod consts;
pub mod params;
pub mod presets;
pub mod text;

use arch::{Arch, SeccompData, X32_SYSCALL_BIT};
use params::Width;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The largest errno the kernel lets a filter return (`MAX_ERRNO`).
pub const MAX_ERRNO: u16 = 4095;
/// How deeply conditions may nest (and/or/not); keeps every walk of an [`Expr`] bounded.
pub const MAX_EXPR_DEPTH: usize = 32;
/// How many leaf conditions one syscall's rules may hold in all.
pub const MAX_CONDITIONS_PER_SYSCALL: usize = 512;

/// What the kernel does with a syscall (`SECCOMP_RET_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Kill the whole process as by an uncatchable SIGSYS (core dump).
    KillProcess,
    /// Kill the calling thread only.
    KillThread,
    /// Deliver SIGSYS with `si_syscall` and `si_errno` = the data (0..=65535).
    Trap(u16),
    /// Fail the call with this errno (0..=4095) without running it.
    Errno(u16),
    /// Ask a user-space supervisor listening on the notification fd.
    UserNotify,
    /// Notify a ptrace tracer with this data; fails with ENOSYS if there is none.
    Trace(u16),
    /// Run the call and log it.
    Log,
    /// Run the call.
    Allow,
}

/// `SECCOMP_RET_KILL_PROCESS`.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_KILL_THREAD`.
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
/// `SECCOMP_RET_TRAP`.
pub const RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO`.
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE`.
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_LOG`.
pub const RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ACTION_FULL`.
pub const RET_ACTION_FULL: u32 = 0xffff_0000;
/// `SECCOMP_RET_DATA`.
pub const RET_DATA: u32 = 0x0000_ffff;

impl Action {
    /// The filter return value for this action.
    pub const fn to_ret(self) -> u32 {
        match self {
            Action::KillProcess => RET_KILL_PROCESS,
            Action::KillThread => RET_KILL_THREAD,
            Action::Trap(d) => RET_TRAP | d as u32,
            Action::Errno(e) => RET_ERRNO | e as u32,
            Action::UserNotify => RET_USER_NOTIF,
            Action::Trace(d) => RET_TRACE | d as u32,
            Action::Log => RET_LOG,
            Action::Allow => RET_ALLOW,
        }
    }

    /// What the kernel does with filter return value `ret`. Unknown actions are
    /// treated as kill-process, as `__seccomp_filter` does; an errno above
    /// [`MAX_ERRNO`] is capped, as the kernel caps it.
    pub const fn from_ret(ret: u32) -> Action {
        let data = (ret & RET_DATA) as u16;
        match ret & RET_ACTION_FULL {
            RET_KILL_PROCESS => Action::KillProcess,
            RET_KILL_THREAD => Action::KillThread,
            RET_TRAP => Action::Trap(data),
            RET_ERRNO => Action::Errno(if data > MAX_ERRNO { MAX_ERRNO } else { data }),
            RET_USER_NOTIF => Action::UserNotify,
            RET_TRACE => Action::Trace(data),
            RET_LOG => Action::Log,
            RET_ALLOW => Action::Allow,
            _ => Action::KillProcess,
        }
    }

    /// The kernel's precedence key: when several stacked filters answer, the smallest
    /// key wins (`ACTION_ONLY(ret)` compared as a signed int in `seccomp_run_filters`).
    pub const fn precedence(self) -> i32 {
        (self.to_ret() & RET_ACTION_FULL) as i32
    }

    /// Whether the call runs (allow or log).
    pub const fn runs_the_call(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }

    fn validate(self) -> Result<Action, PolicyError> {
        match self {
            Action::Errno(e) if e > MAX_ERRNO => Err(PolicyError::ErrnoRange(e)),
            a => Ok(a),
        }
    }
}

impl fmt::Display for Action {
    /// Spelled as in the policy language.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::KillProcess => f.write_str("kill-process"),
            Action::KillThread => f.write_str("kill-thread"),
            Action::Trap(0) => f.write_str("trap"),
            Action::Trap(d) => write!(f, "trap {d}"),
            Action::Errno(e) => write!(f, "errno {e}"),
            Action::UserNotify => f.write_str("user-notify"),
            Action::Trace(0) => f.write_str("trace"),
            Action::Trace(d) => write!(f, "trace {d}"),
            Action::Log => f.write_str("log"),
            Action::Allow => f.write_str("allow"),
        }
    }
}

/// A comparison of one argument with a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `arg == v`
    Eq,
    /// `arg != v`
    Ne,
    /// `arg < v` (unsigned)
    Lt,
    /// `arg <= v` (unsigned)
    Le,
    /// `arg > v` (unsigned)
    Gt,
    /// `arg >= v` (unsigned)
    Ge,
    /// `arg & v`: true when any bit of `v` is set in the argument.
    AnyBits,
    /// `arg in v`: true when no bit outside `v` is set in the argument.
    InMask,
    /// `arg & mask == v`: the argument's bits under `mask` equal `v`.
    MaskedEq(u64),
}

impl Op {
    /// The operator as written in the policy language.
    pub const fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::AnyBits => "&",
            Op::InMask => "in",
            Op::MaskedEq(_) => "& ==",
        }
    }

    /// Whether `x op v` holds.
    pub const fn holds(self, x: u64, v: u64) -> bool {
        match self {
            Op::Eq => x == v,
            Op::Ne => x != v,
            Op::Lt => x < v,
            Op::Le => x <= v,
            Op::Gt => x > v,
            Op::Ge => x >= v,
            Op::AnyBits => x & v != 0,
            Op::InMask => x & !v == 0,
            Op::MaskedEq(mask) => x & mask == v,
        }
    }
}

/// One comparison: argument `arg` (0..=5) `op` `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cond {
    /// Argument index, 0..=5.
    pub arg: u8,
    /// The comparison.
    pub op: Op,
    /// The constant, as 64 bits (a 32-bit parameter uses the low half).
    pub value: u64,
}

/// A condition on a syscall's arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Expr {
    /// Always holds (an unconditional rule).
    True,
    /// One comparison.
    Cond(Cond),
    /// All hold (evaluated left to right).
    And(Vec<Expr>),
    /// Any holds (evaluated left to right).
    Or(Vec<Expr>),
    /// Does not hold.
    Not(Box<Expr>),
}

/// Argument `index` of a syscall, to build conditions: `arg(1).eq(TCGETS)`.
pub const fn arg(index: u8) -> ArgRef {
    ArgRef(index)
}

/// An argument reference made by [`arg`].
#[derive(Clone, Copy, Debug)]
pub struct ArgRef(u8);

impl ArgRef {
    fn cond(self, op: Op, value: u64) -> Expr {
        Expr::Cond(Cond {
            arg: self.0,
            op,
            value,
        })
    }
    /// `arg == v`
    pub fn eq(self, v: u64) -> Expr {
        self.cond(Op::Eq, v)
    }
    /// `arg != v`
    pub fn ne(self, v: u64) -> Expr {
        self.cond(Op::Ne, v)
    }
    /// `arg < v`
    pub fn lt(self, v: u64) -> Expr {
        self.cond(Op::Lt, v)
    }
    /// `arg <= v`
    pub fn le(self, v: u64) -> Expr {
        self.cond(Op::Le, v)
    }
    /// `arg > v`
    pub fn gt(self, v: u64) -> Expr {
        self.cond(Op::Gt, v)
    }
    /// `arg >= v`
    pub fn ge(self, v: u64) -> Expr {
        self.cond(Op::Ge, v)
    }
    /// `arg & mask`: any bit of `mask` set.
    pub fn any_bits(self, mask: u64) -> Expr {
        self.cond(Op::AnyBits, mask)
    }
    /// `arg in mask`: no bit outside `mask` set.
    pub fn in_mask(self, mask: u64) -> Expr {
        self.cond(Op::InMask, mask)
    }
    /// `arg & mask == v`
    pub fn masked_eq(self, mask: u64, v: u64) -> Expr {
        self.cond(Op::MaskedEq(mask), v)
    }
}

impl Expr {
    /// `self && other`
    pub fn and(self, other: Expr) -> Expr {
        match self {
            Expr::And(mut v) => {
                v.push(other);
                Expr::And(v)
            }
            e => Expr::And(vec![e, other]),
        }
    }
    /// `self || other`
    pub fn or(self, other: Expr) -> Expr {
        match self {
            Expr::Or(mut v) => {
                v.push(other);
                Expr::Or(v)
            }
            e => Expr::Or(vec![e, other]),
        }
    }
    /// `!self`
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// Evaluate against full argument values; `width` says how many bits each
    /// argument has.
    pub fn holds(&self, args: &[u64; 6], width: &dyn Fn(u8) -> Width) -> bool {
        match self {
            Expr::True => true,
            Expr::Cond(c) => {
                let raw = args.get(usize::from(c.arg)).copied().unwrap_or(0);
                match width(c.arg) {
                    Width::W64 => c.op.holds(raw, c.value),
                    Width::W32 => {
                        let op = match c.op {
                            Op::MaskedEq(m) => Op::MaskedEq(u64::from(m as u32)),
                            op => op,
                        };
                        op.holds(u64::from(raw as u32), u64::from(c.value as u32))
                    }
                }
            }
            Expr::And(v) => v.iter().all(|e| e.holds(args, width)),
            Expr::Or(v) => v.iter().any(|e| e.holds(args, width)),
            Expr::Not(e) => !e.holds(args, width),
        }
    }

    /// Call `f` on every comparison, left to right.
    pub fn for_each_cond(&self, f: &mut dyn FnMut(&Cond)) {
        match self {
            Expr::True => {}
            Expr::Cond(c) => f(c),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.for_each_cond(f)),
            Expr::Not(e) => e.for_each_cond(f),
        }
    }

    fn check_shape(&self, depth: usize) -> Result<(), PolicyError> {
        if depth > MAX_EXPR_DEPTH {
            return Err(PolicyError::TooDeep(MAX_EXPR_DEPTH));
        }
        match self {
            Expr::True | Expr::Cond(_) => Ok(()),
            Expr::And(v) | Expr::Or(v) if v.is_empty() => Err(PolicyError::EmptyCombinator),
            Expr::And(v) | Expr::Or(v) => v.iter().try_for_each(|e| e.check_shape(depth + 1)),
            Expr::Not(e) => e.check_shape(depth + 1),
        }
    }
}

/// Whether `value` is a 32-bit value: zero-extended or sign-extended from bit 31.
pub const fn fits_32(value: u64) -> bool {
    let hi = (value >> 32) as u32;
    hi == 0 || (hi == u32::MAX && value & 0x8000_0000 != 0)
}

/// A syscall name known to at least one supported architecture's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Syscall(&'static str);

impl Syscall {
    /// The syscall called `name`, or an error if no supported architecture has it.
    pub fn new(name: &str) -> Result<Syscall, PolicyError> {
        for a in Arch::ALL {
            if let Some(nr) = a.syscall_number(name) {
                if let Some(n) = a.syscall_name(nr) {
                    return Ok(Syscall(n));
                }
            }
        }
        Err(PolicyError::UnknownSyscall(name.to_string()))
    }

    /// Its name.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Syscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One rule: when `when` holds, `action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The condition.
    pub when: Expr,
    /// The action when it holds.
    pub action: Action,
}

/// The rules of one syscall.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyscallRules {
    rules: Vec<Rule>,
    otherwise: Option<Action>,
}

impl SyscallRules {
    /// The ordered rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The action when no rule holds, if set for this syscall (else the default).
    pub fn otherwise(&self) -> Option<Action> {
        self.otherwise
    }

    /// The 32-bit parameters the rules inspect, in index order.
    pub fn checked_32bit_args(&self, syscall: Syscall) -> Vec<u8> {
        let mut seen = [false; 6];
        for r in &self.rules {
            r.when.for_each_cond(&mut |c| {
                if params::width(syscall.name(), c.arg) == Width::W32 {
                    if let Some(s) = seen.get_mut(usize::from(c.arg)) {
                        *s = true;
                    }
                }
            });
        }
        (0u8..6).filter(|i| seen[usize::from(*i)]).collect()
    }

    fn has_unconditional(&self) -> bool {
        self.rules.iter().any(|r| r.when == Expr::True)
    }
}

/// Why a policy could not be built or compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The name is in no supported architecture's syscall table.
    #[error("unknown syscall `{0}`")]
    UnknownSyscall(String),
    /// An argument index past 5.
    #[error("argument index {0} out of range (0..=5)")]
    ArgIndex(u8),
    /// An errno past `MAX_ERRNO`.
    #[error("errno {0} out of range (0..=4095)")]
    ErrnoRange(u16),
    /// A 64-bit constant compared with a 32-bit parameter.
    #[error(
        "value {value:#x} does not fit 32-bit parameter {arg} of {syscall} \
         (a 32-bit parameter compares its low half; use a 32-bit or sign-extended value)"
    )]
    ValueTooWide {
        /// The syscall.
        syscall: &'static str,
        /// Argument index.
        arg: u8,
        /// The constant.
        value: u64,
    },
    /// A syscall already has an unconditional rule, so a later rule could never run.
    #[error("`{0}` already has an unconditional rule; a later rule for it could never apply")]
    Unreachable(&'static str),
    /// A fallback that an unconditional rule of the same syscall makes unreachable.
    #[error(
        "`{syscall}` has an unconditional rule, so its fallback `{fallback}` could never apply"
    )]
    DeadFallback {
        /// The syscall.
        syscall: &'static str,
        /// The fallback.
        fallback: Action,
    },
    /// A syscall was given two different fallback actions.
    #[error("`{syscall}` already falls back to `{first}`; cannot also fall back to `{second}`")]
    ConflictingFallback {
        /// The syscall.
        syscall: &'static str,
        /// The fallback set first.
        first: Action,
        /// The one that conflicts.
        second: Action,
    },
    /// A masked compare whose value has bits outside the mask.
    #[error("`{syscall}`: `& {mask:#x} == {value:#x}` can never hold (the value has bits outside the mask)")]
    NeverHolds {
        /// The syscall.
        syscall: &'static str,
        /// The mask.
        mask: u64,
        /// The value.
        value: u64,
    },
    /// `And`/`Or` with nothing inside.
    #[error("an and/or with no operands")]
    EmptyCombinator,
    /// Conditions nested too deeply.
    #[error("conditions nest deeper than {0} levels")]
    TooDeep(usize),
    /// Too many comparisons for one syscall.
    #[error("`{0}` has more than 512 comparisons")]
    TooManyConditions(&'static str),
    /// A policy with no rule at all.
    #[error("empty policy: it names no syscall (a filter that only applies its default is almost certainly a mistake)")]
    Empty,
}

/// A seccomp policy. See the [module docs](self) for its exact meaning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    default: Action,
    syscalls: BTreeMap<Syscall, SyscallRules>,
}

impl Policy {
    /// A policy with no rules yet whose default action is `default`.
    pub fn new(default: Action) -> Result<Policy, PolicyError> {
        Ok(Policy {
            default: default.validate()?,
            syscalls: BTreeMap::new(),
        })
    }

    /// The action for syscalls the policy does not name.
    pub fn default_action(&self) -> Action {
        self.default
    }

    /// Change the default action.
    pub fn set_default(&mut self, default: Action) -> Result<(), PolicyError> {
        self.default = default.validate()?;
        Ok(())
    }

    /// The action for a 32-bit parameter with junk in its high half: the default action
    /// when that denies the call without running it (kill-process, kill-thread, trap,
    /// errno), and kill-process otherwise (a default of allow, log, trace or user-notify
    /// would let the kernel act on a value no rule looked at).
    pub fn junk_action(&self) -> Action {
        match self.default {
            a @ (Action::KillProcess | Action::KillThread | Action::Trap(_) | Action::Errno(_)) => {
                a
            }
            _ => Action::KillProcess,
        }
    }

    /// The syscalls named, with their rules, in name order.
    pub fn syscalls(&self) -> impl Iterator<Item = (Syscall, &SyscallRules)> {
        self.syscalls.iter().map(|(s, r)| (*s, r))
    }

    /// The rules of `name`, if named.
    pub fn rules_for(&self, name: &str) -> Option<&SyscallRules> {
        let s = Syscall::new(name).ok()?;
        self.syscalls.get(&s)
    }

    /// Append a rule for `syscall`: when `when` holds, `action`. Rules of a syscall are
    /// tried in the order they were added.
    pub fn add_rule(
        &mut self,
        syscall: &str,
        when: Expr,
        action: Action,
    ) -> Result<(), PolicyError> {
        let s = Syscall::new(syscall)?;
        let action = action.validate()?;
        when.check_shape(1)?;
        let mut err = None;
        let mut count = 0usize;
        when.for_each_cond(&mut |c| {
            count += 1;
            if err.is_some() {
                return;
            }
            let w32 = params::width(s.name(), c.arg) == Width::W32;
            if c.arg > 5 {
                err = Some(PolicyError::ArgIndex(c.arg));
            } else if w32 && !fits_32(c.value) {
                err = Some(PolicyError::ValueTooWide {
                    syscall: s.name(),
                    arg: c.arg,
                    value: c.value,
                });
            } else if let Op::MaskedEq(mask) = c.op {
                if w32 && !fits_32(mask) {
                    err = Some(PolicyError::ValueTooWide {
                        syscall: s.name(),
                        arg: c.arg,
                        value: mask,
                    });
                } else if (w32 && (c.value as u32) & !(mask as u32) != 0)
                    || (!w32 && c.value & !mask != 0)
                {
                    err = Some(PolicyError::NeverHolds {
                        syscall: s.name(),
                        mask,
                        value: c.value,
                    });
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        let entry = self.syscalls.entry(s).or_default();
        if entry.has_unconditional() {
            return Err(PolicyError::Unreachable(s.name()));
        }
        if when == Expr::True {
            if let Some(fallback) = entry.otherwise {
                return Err(PolicyError::DeadFallback {
                    syscall: s.name(),
                    fallback,
                });
            }
        }
        let existing: usize = entry.rules.iter().map(|r| count_conds(&r.when)).sum();
        if existing + count > MAX_CONDITIONS_PER_SYSCALL {
            return Err(PolicyError::TooManyConditions(s.name()));
        }
        entry.rules.push(Rule { when, action });
        Ok(())
    }

    /// `syscall` always gets `action` (an unconditional rule).
    pub fn add_action(&mut self, syscall: &str, action: Action) -> Result<(), PolicyError> {
        self.add_rule(syscall, Expr::True, action)
    }

    /// Allow `syscall` unconditionally.
    pub fn allow(&mut self, syscall: &str) -> Result<(), PolicyError> {
        self.add_action(syscall, Action::Allow)
    }

    /// When no rule of `syscall` holds, `action` instead of the default.
    pub fn set_otherwise(&mut self, syscall: &str, action: Action) -> Result<(), PolicyError> {
        let s = Syscall::new(syscall)?;
        let action = action.validate()?;
        let entry = self.syscalls.entry(s).or_default();
        if entry.has_unconditional() {
            return Err(PolicyError::DeadFallback {
                syscall: s.name(),
                fallback: action,
            });
        }
        match entry.otherwise {
            Some(first) if first != action => Err(PolicyError::ConflictingFallback {
                syscall: s.name(),
                first,
                second: action,
            }),
            _ => {
                entry.otherwise = Some(action);
                Ok(())
            }
        }
    }

    /// Take every rule of `syscall` out of the policy (to write it anew); its rules,
    /// if it was named.
    pub fn remove(&mut self, syscall: &str) -> Option<SyscallRules> {
        let s = Syscall::new(syscall).ok()?;
        self.syscalls.remove(&s)
    }

    /// Chaining form of [`Policy::add_rule`].
    pub fn with_rule(
        mut self,
        syscall: &str,
        when: Expr,
        action: Action,
    ) -> Result<Policy, PolicyError> {
        self.add_rule(syscall, when, action)?;
        Ok(self)
    }

    /// Chaining form of [`Policy::add_action`].
    pub fn with_action(mut self, syscall: &str, action: Action) -> Result<Policy, PolicyError> {
        self.add_action(syscall, action)?;
        Ok(self)
    }

    /// Chaining form of [`Policy::allow`] for several syscalls.
    pub fn with_allowed(mut self, syscalls: &[&str]) -> Result<Policy, PolicyError> {
        for s in syscalls {
            self.allow(s)?;
        }
        Ok(self)
    }

    /// Chaining form of [`Policy::set_otherwise`].
    pub fn with_otherwise(mut self, syscall: &str, action: Action) -> Result<Policy, PolicyError> {
        self.set_otherwise(syscall, action)?;
        Ok(self)
    }

    /// An error if the policy names no syscall.
    pub fn check_not_empty(&self) -> Result<(), PolicyError> {
        if self.syscalls.is_empty() {
            Err(PolicyError::Empty)
        } else {
            Ok(())
        }
    }

    /// The syscalls the policy names that `arch` does not have (compiling for `arch`
    /// leaves them out: they cannot be called there).
    pub fn missing_on(&self, arch: Arch) -> Vec<Syscall> {
        self.syscalls
            .keys()
            .filter(|s| arch.syscall_number(s.name()).is_none())
            .copied()
            .collect()
    }

    /// What a filter compiled from this policy for `arch` must answer for `data`.
    pub fn evaluate(&self, arch: Arch, data: &SeccompData) -> Action {
        if data.arch != arch.audit_arch() {
            return Action::KillProcess;
        }
        if arch.has_x32() && data.nr & X32_SYSCALL_BIT != 0 {
            return Action::KillProcess;
        }
        let Some(name) = arch.syscall_name(data.nr) else {
            return self.default;
        };
        let Ok(syscall) = Syscall::new(name) else {
            return self.default;
        };
        let Some(rules) = self.syscalls.get(&syscall) else {
            return self.default;
        };
        for i in rules.checked_32bit_args(syscall) {
            if !fits_32(data.args[usize::from(i)]) {
                return self.junk_action();
            }
        }
        let width = |i: u8| params::width(name, i);
        rules
            .rules
            .iter()
            .find(|r| r.when.holds(&data.args, &width))
            .map(|r| r.action)
            .or(rules.otherwise)
            .unwrap_or(self.default)
    }
}

fn count_conds(e: &Expr) -> usize {
    let mut n = 0;
    e.for_each_cond(&mut |_| n += 1);
    n
}

/// What the kernel answers when `policies` are installed in order (oldest first): every
/// filter runs and the most restrictive action wins; on a tie the newest filter's data
/// is used, as in `seccomp_run_filters`.
pub fn evaluate_stack(policies: &[&Policy], arch: Arch, data: &SeccompData) -> Action {
    let mut result = Action::Allow;
    for p in policies.iter().rev() {
        let a = p.evaluate(arch, data);
        if a.precedence() < result.precedence() {
            result = a;
        }
    }
    result
}

#[cfg(test)]
mod tests {
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
}

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
pub mod guards;
pub mod params;
pub mod presets;
pub mod text;

mod action;
mod error;
mod explain;
mod expr;
mod syscall;
#[cfg(test)]
mod tests;

pub use action::*;
pub use error::PolicyError;
pub use explain::{DecidedBy, Origin};
pub use expr::*;
pub use syscall::{Rule, Syscall, SyscallRules};

use arch::{Arch, SeccompData};
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

/// A seccomp policy. See the [module docs](self) for its exact meaning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    default: Action,
    syscalls: BTreeMap<Syscall, SyscallRules>,
    /// Where `@default` was written.
    #[serde(skip)]
    default_origin: Origin,
}

impl Policy {
    /// A policy with no rules yet whose default action is `default`.
    pub fn new(default: Action) -> Result<Policy, PolicyError> {
        Ok(Policy {
            default: default.validate()?,
            syscalls: BTreeMap::new(),
            default_origin: Origin::default(),
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

    /// Every action — the default's, each rule's and each fallback — passed through
    /// `f` (e.g. every trap made a user notification, for a supervisor that holds the
    /// listener).
    pub fn map_actions(&mut self, f: impl Fn(Action) -> Action) -> Result<(), PolicyError> {
        self.default = f(self.default).validate()?;
        for rules in self.syscalls.values_mut() {
            for rule in &mut rules.rules {
                rule.action = f(rule.action).validate()?;
            }
            if let Some(o) = rules.otherwise {
                rules.otherwise = Some(f(o).validate()?);
            }
        }
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
        entry.rules.push(Rule {
            when,
            action,
            origin: Origin::default(),
        });
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

    /// Hand `syscall`'s refusals to the listener's holder: every rule of it that
    /// answers with an errno, and its errno fallback (its own, or the default when it
    /// has none), become [`Action::UserNotify`]; what it allows stays allowed, in the
    /// kernel. For a broker that answers those calls itself (a file call beneath a
    /// grant). A case the policy treats as a violation (trap, kill, or user-notify
    /// already) cannot be handed over — its holder could not tell it from a call to
    /// answer — and is an error, as is a syscall the policy does not name.
    pub fn hand_over_refusals(&mut self, syscall: &str) -> Result<(), PolicyError> {
        let s = Syscall::new(syscall)?;
        let default = self.default;
        let Some(entry) = self.syscalls.get_mut(&s) else {
            return Err(PolicyError::CannotHandOver(s.name()));
        };
        let fallback = (!entry.has_unconditional()).then(|| entry.otherwise.unwrap_or(default));
        let actions = entry.rules.iter().map(|r| r.action).chain(fallback);
        let violation = |a: Action| {
            matches!(
                a,
                Action::Trap(_) | Action::KillProcess | Action::KillThread | Action::UserNotify
            )
        };
        if actions.clone().any(violation) {
            return Err(PolicyError::CannotHandOver(s.name()));
        }
        for rule in &mut entry.rules {
            if matches!(rule.action, Action::Errno(_)) {
                rule.action = Action::UserNotify;
            }
        }
        if let Some(Action::Errno(_)) = fallback {
            entry.otherwise = Some(Action::UserNotify);
        }
        Ok(())
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
        self.explain(arch, data).0
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

//! Why a policy could not be built or compiled.

use super::*;

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
    /// `hand_over_refusals` of a syscall the policy does not name or treats as a
    /// violation somewhere.
    #[error(
        "`{0}` cannot be handed over: the policy does not name it, or a case of it is a violation"
    )]
    CannotHandOver(&'static str),
}

//! Conditions on arguments: comparisons, combinators, and the DSL that writes them.

use super::*;

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
    pub(crate) fn cond(self, op: Op, value: u64) -> Expr {
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

    pub(crate) fn check_shape(&self, depth: usize) -> Result<(), PolicyError> {
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

//! Syscalls by name, and the ordered rules of one syscall.

use super::*;

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
    /// Where it was written (not part of its meaning).
    #[serde(skip)]
    pub origin: super::Origin,
}

/// The rules of one syscall.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyscallRules {
    pub(crate) rules: Vec<Rule>,
    pub(crate) otherwise: Option<Action>,
    #[serde(skip)]
    pub(crate) otherwise_origin: super::Origin,
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

    pub(crate) fn has_unconditional(&self) -> bool {
        self.rules.iter().any(|r| r.when == Expr::True)
    }
}

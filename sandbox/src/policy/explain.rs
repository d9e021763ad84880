//! Which part of a policy decided a call: a rule (and where it was written), a
//! syscall's fallback, the default, or a check made before any rule (architecture,
//! x32, junk in a 32-bit parameter). For `sandbox policy eval`, violation reports and
//! learn mode.

use super::arch::{Arch, SeccompData, X32_SYSCALL_BIT};
use super::params::{self, Width};
use super::{fits_32, Action, Policy, Syscall};
use serde::Serialize;
use std::fmt;

/// Where a rule, fallback or default was written (`file:line:column`), when it came
/// from text. It is not part of a policy's meaning: any two origins compare equal, so
/// a policy parsed from text equals the same policy built in Rust.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Origin(pub Option<String>);

impl PartialEq for Origin {
    fn eq(&self, _other: &Origin) -> bool {
        true
    }
}
impl Eq for Origin {}

impl Origin {
    /// At `place`.
    pub fn at(place: String) -> Origin {
        Origin(Some(place))
    }
}

/// What decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum DecidedBy {
    /// A rule of the syscall held (the first that did).
    Rule {
        /// The syscall.
        syscall: &'static str,
        /// Where the rule was written.
        origin: Option<String>,
    },
    /// No rule of the syscall held: its fallback (`; ACTION`).
    Fallback {
        /// The syscall.
        syscall: &'static str,
        /// Where the fallback was written.
        origin: Option<String>,
    },
    /// The policy's default: the syscall has no rule (`named` false), or none held
    /// and it has no fallback.
    Default {
        /// The syscall, if the architecture has a name for it.
        syscall: Option<&'static str>,
        /// Whether the policy names the syscall.
        named: bool,
        /// Where `@default` was written.
        origin: Option<String>,
    },
    /// Another architecture's calling convention (e.g. `int 0x80` on x86_64).
    WrongArch,
    /// An x32 syscall number.
    X32,
    /// A 32-bit parameter a rule inspects had junk in its high half.
    Junk {
        /// The syscall.
        syscall: &'static str,
        /// The parameter's index.
        arg: u8,
    },
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |o: &Option<String>| o.as_ref().map(|o| format!(" at {o}")).unwrap_or_default();
        match self {
            DecidedBy::Rule { syscall, origin } => {
                write!(f, "the rule for `{syscall}`{}", at(origin))
            }
            DecidedBy::Fallback { syscall, origin } => {
                write!(
                    f,
                    "the fallback of `{syscall}`{} (no rule of it held)",
                    at(origin)
                )
            }
            DecidedBy::Default {
                syscall,
                named,
                origin,
            } => {
                let why = match (syscall, named) {
                    (Some(s), false) => format!("no rule names `{s}`"),
                    (Some(s), true) => format!("no rule of `{s}` held and it has no fallback"),
                    (None, _) => "a syscall number this architecture has no name for".into(),
                };
                match origin {
                    Some(o) => write!(f, "the default (@default at {o}): {why}"),
                    None => write!(f, "the default: {why}"),
                }
            }
            DecidedBy::WrongArch => {
                f.write_str("the architecture check (another calling convention)")
            }
            DecidedBy::X32 => f.write_str("the x32 check"),
            DecidedBy::Junk { syscall, arg } => {
                write!(f, "the junk check: parameter {arg} of `{syscall}` has a high half that is not 0 or a sign extension")
            }
        }
    }
}

impl Policy {
    /// What a filter compiled from this policy for `arch` answers for `data`, and what
    /// decided it ([`Policy::evaluate`] is its action).
    pub fn explain(&self, arch: Arch, data: &SeccompData) -> (Action, DecidedBy) {
        if data.arch != arch.audit_arch() {
            return (Action::KillProcess, DecidedBy::WrongArch);
        }
        if arch.has_x32() && data.nr & X32_SYSCALL_BIT != 0 {
            return (Action::KillProcess, DecidedBy::X32);
        }
        let default = |syscall, named| {
            (
                self.default,
                DecidedBy::Default {
                    syscall,
                    named,
                    origin: self.default_origin.0.clone(),
                },
            )
        };
        let Some(name) = arch.syscall_name(data.nr) else {
            return default(None, false);
        };
        let Ok(syscall) = Syscall::new(name) else {
            return default(None, false);
        };
        let Some(rules) = self.syscalls.get(&syscall) else {
            return default(Some(syscall.name()), false);
        };
        for i in rules.checked_32bit_args(syscall) {
            if !fits_32(data.args[usize::from(i)]) {
                return (
                    self.junk_action(),
                    DecidedBy::Junk {
                        syscall: syscall.name(),
                        arg: i,
                    },
                );
            }
        }
        let width = |i: u8| -> Width { params::width(name, i) };
        if let Some(r) = rules
            .rules
            .iter()
            .find(|r| r.when.holds(&data.args, &width))
        {
            return (
                r.action,
                DecidedBy::Rule {
                    syscall: syscall.name(),
                    origin: r.origin.0.clone(),
                },
            );
        }
        match rules.otherwise {
            Some(o) => (
                o,
                DecidedBy::Fallback {
                    syscall: syscall.name(),
                    origin: rules.otherwise_origin.0.clone(),
                },
            ),
            None => default(Some(syscall.name()), true),
        }
    }
}

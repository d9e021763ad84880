//! The renderer side of a Chromium-style sandbox, the seccomp policy engine both
//! sides use, and the trusted side's launcher.
//!
//! * [`policy`]: seccomp policies as data (a Rust DSL and a text language), their
//!   exact meaning ([`policy::Policy::evaluate`]) and the built-in presets;
//! * [`bpf`]: the compiler from policies to classic BPF, a reference interpreter of
//!   BPF programs, and a disassembler;
//! * [`seccomp`]: installing a filter, and a user-notification listener's API;
//! * [`lockdown`]: the layers a process applies to itself, in order, fail-closed, and
//!   the status report of what was applied;
//! * [`launch`] (the trusted side): spawning into namespaces, id maps, the check from
//!   outside, the kernel feature report, cgroups;
//! * [`ipc`]: the typed channel both sides use (size and descriptor caps, validated
//!   decoding, request/response, sealed memfds);
//! * [`protocol`]: the broker ↔ renderer messages; [`renderer`]: a renderer's entry
//!   point;
//! * `probe` (feature `test-support`): probes and a SIGSYS recorder for tests;
//! * `sys` (private): the only `unsafe` code, thin wrappers over syscalls.
//!
//! A policy written with the DSL, compiled, and checked with the reference
//! interpreter:
//!
//! ```
//! use sandbox::bpf;
//! use sandbox::policy::arch::{Arch, SeccompData};
//! use sandbox::policy::{arg, Action, Policy};
//!
//! let policy = Policy::new(Action::Trap(0))?
//!     .with_allowed(&["read", "exit_group"])?
//!     .with_rule("write", arg(0).eq(1).or(arg(0).eq(2)), Action::Allow)?
//!     .with_rule("ioctl", arg(1).eq(0x5401), Action::Allow)? // TCGETS
//!     .with_otherwise("ioctl", Action::Errno(25))?; // ENOTTY
//! let program = bpf::compile(&policy, Arch::X86_64)?;
//!
//! let ioctl = Arch::X86_64.syscall_number("ioctl").unwrap_or(16);
//! let call = SeccompData::new(Arch::X86_64, ioctl, [0, 0x5412, 0, 0, 0, 0]); // TIOCSTI
//! let outcome = bpf::run(&program.instructions, &call)?;
//! assert_eq!(outcome.action, Action::Errno(25));
//! assert_eq!(outcome.action, policy.evaluate(Arch::X86_64, &call));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same policy in the text language (see `docs/policy-language.md`):
//!
//! ```
//! use sandbox::policy::arch::Arch;
//! use sandbox::policy::text::{parse_str, EmbeddedSources, Options};
//!
//! let text = "@default trap\n\
//!             {read, exit_group}: allow\n\
//!             write: fd == 1 || fd == 2\n\
//!             ioctl: cmd == TCGETS; errno ENOTTY\n";
//! let policy = parse_str("example.policy", text, &Options::new(Arch::X86_64), &EmbeddedSources(&[]))?;
//! assert_eq!(policy.syscalls().count(), 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod bpf;
pub mod ipc;
pub mod launch;
pub mod lockdown;
pub mod policy;
#[cfg(feature = "test-support")]
pub mod probe;
pub mod protocol;
pub mod renderer;
pub mod seccomp;
mod sys;

/// The cgroups that hold a sandbox, now in [`launch::cgroup`] (re-exported here).
pub use launch::cgroup;

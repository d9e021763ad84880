//! The renderer side of a Chromium-style sandbox, and the seccomp policy engine both
//! sides use.
//!
//! * [`policy`]: seccomp policies as data (a Rust DSL and a text language), their
//!   exact meaning ([`policy::Policy::evaluate`]) and the built-in presets;
//! * [`bpf`]: the compiler from policies to classic BPF, a reference interpreter of
//!   BPF programs, and a disassembler;
//! * `sys` (private): the only `unsafe` code, thin wrappers over syscalls.
#![deny(missing_docs)]

pub mod bpf;
pub mod policy;
pub mod probe;
pub mod seccomp;
mod sys;

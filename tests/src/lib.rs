//! Support shared by the test suites that re-execute their own binary: the runner
//! ([`runner::run_cases`]) and copies of executables that an unprivileged user can
//! run whatever the checkout's path ([`reachable`]); the escape vectors a renderer
//! attempts ([`escape`]); the plain protocol and service of suites that test the
//! built-in paths ([`plain`]).
#![deny(missing_docs)]

pub mod escape;
pub mod plain;
pub mod reachable;
pub mod runner;

pub use runner::{run_cases, Case};

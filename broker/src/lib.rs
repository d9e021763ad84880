//! The privileged side of the sandbox: it spawns renderers and serves their requests.
//! For now it holds the `sandbox` command line; the broker proper builds on the
//! lockdown layer.
#![deny(missing_docs)]

pub mod cli;

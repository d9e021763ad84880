//! The command line's one raw call: the only `unsafe` in this crate.
#![allow(unsafe_code)]

use std::io;

/// Give SIGPIPE its default action back (the Rust runtime ignores it, and an ignored
/// signal stays ignored across execve: a program would see EPIPE where it expects to
/// die quietly, as in `yes | head -1`).
pub(crate) fn default_sigpipe() -> io::Result<()> {
    // SAFETY: installs SIG_DFL, not a handler: no code of ours runs on the signal, so
    // no handler-safety invariant is involved.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

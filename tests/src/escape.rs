//! The escape vectors of `escape.c` (compiled by `build.rs`), for a locked-down
//! renderer to attempt (`tests/escape.rs`). The only `unsafe` of this crate: one call
//! into C.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_long, CString};

extern "C" {
    fn escape_attempt(vector: *const c_char, grant: *const c_char, err: *mut c_int) -> c_long;
}

/// What an attempt came to, when it returned at all (a violation does not return).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The call succeeded (its result).
    Ok(i64),
    /// It failed with this errno.
    Errno(i32),
    /// `escape.c` has no vector of that name.
    Unknown,
}

/// Attempt `vector`; `grant` is the renderer's granted folder (for the vectors that
/// try to leave it).
pub fn attempt(vector: &str, grant: &str) -> Attempt {
    let (Ok(v), Ok(g)) = (CString::new(vector), CString::new(grant)) else {
        return Attempt::Unknown;
    };
    let mut err: c_int = 0;
    // `escape_attempt` (escape.c) only reads the two strings, writes `*err`, and makes
    // syscalls whose pointer arguments are string literals or its own buffers.
    // SAFETY: `v`, `g` are NUL-terminated and live across the call; `err` is a live int.
    let r = unsafe { escape_attempt(v.as_ptr(), g.as_ptr(), &mut err) };
    match (r, err) {
        (-2, -1) => Attempt::Unknown,
        (r, 0) if r >= 0 => Attempt::Ok(r),
        (_, e) => Attempt::Errno(e),
    }
}

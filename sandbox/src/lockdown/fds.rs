//! Descriptor hygiene: close everything but the kept descriptors, then check in one
//! `poll` over every possible descriptor number that exactly those are open.

use super::{Layer, LockdownError};
use crate::sys::process;
use std::os::fd::RawFd;

pub(super) fn close_all_but(keep: &[RawFd]) -> Result<(), LockdownError> {
    let mut keep: Vec<u32> = keep.iter().filter_map(|f| u32::try_from(*f).ok()).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut next = 0u32;
    for k in keep {
        if k > next {
            process::close_between(next, k - 1)
                .map_err(|e| LockdownError::new(Layer::Fds, "close_range", e))?;
        }
        next = k.saturating_add(1);
    }
    process::close_from(next).map_err(|e| LockdownError::new(Layer::Fds, "close_range", e))
}

/// Check that exactly the kept descriptors (those that were open) are open below the
/// descriptor limit `limit`. Returns the open ones.
pub(super) fn verify(keep: &[RawFd], limit: u64) -> Result<Vec<i32>, LockdownError> {
    let n = usize::try_from(limit.clamp(64, 1 << 16)).unwrap_or(1 << 16);
    let open = process::open_fds(n).map_err(|e| LockdownError::new(Layer::Fds, "poll", e))?;
    if let Some(stray) = open.iter().find(|fd| !keep.contains(fd)) {
        return Err(LockdownError::msg(
            Layer::Fds,
            "verify",
            format!("descriptor {stray} is still open"),
        ));
    }
    Ok(open)
}

//! CPU sets for a parent and the child it releases. A released child queued behind
//! its parent on the parent's CPU waits until the parent blocks, while the other CPU
//! idles: the scheduler puts a task woken by a process that goes on running on the
//! waker's CPU when the other one looks busy, and an idle virtual CPU looks busy to
//! the guest. So the parent narrows the sleeping child to a CPU other than its own
//! ([`place_apart`]) and keeps to its own CPU while it may be woken by the child
//! ([`StayHere`]); each gets its set back.

use std::io;

/// A set of CPUs (`cpu_set_t`).
pub type CpuSet = libc::cpu_set_t;

/// The CPUs this thread may run on (`None` if unknown).
pub fn own() -> Option<CpuSet> {
    // SAFETY: cpu_set_t is plain data (all zero is an empty set); sched_getaffinity
    // writes only the live set passed with its size.
    unsafe {
        let mut all: CpuSet = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of_val(&all), &mut all) == 0).then_some(all)
    }
}

/// Let this thread run on `set` (a thread running on a CPU of `set` stays there).
pub fn take(set: &CpuSet) -> io::Result<()> {
    // SAFETY: `set` is a live cpu_set_t passed with its own size.
    match unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(set), set) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Take `set` back after a narrowing; if the kernel refuses it (EINVAL: a cpuset
/// changed meanwhile leaves none of its CPUs), every CPU, which the kernel narrows to
/// what is allowed. Never leaves this thread on the one CPU it was narrowed to when
/// more are allowed. Allocates nothing (for a fork-like child).
pub fn take_back(set: &CpuSet) -> io::Result<()> {
    const BYTES: usize = std::mem::size_of::<CpuSet>();
    take(set).or_else(|_| {
        // SAFETY: cpu_set_t is plain data, an array of bit words of BYTES bytes: all
        // ones is every CPU the set can name.
        let every: CpuSet = unsafe { std::mem::transmute([u8::MAX; BYTES]) };
        take(&every)
    })
}

/// The CPU this thread runs on (`None` if unknown).
fn here() -> Option<usize> {
    // SAFETY: sched_getcpu takes nothing.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

/// `{cpu}` alone (`None` past the set's size).
fn only(cpu: usize) -> Option<CpuSet> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return None;
    }
    // SAFETY: cpu_set_t is plain data (all zero is an empty set); CPU_SET writes the
    // bit of `cpu`, checked above to be within the live, zeroed set.
    unsafe {
        let mut one: CpuSet = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        Some(one)
    }
}

/// Narrow `child` to one CPU of `from` (the caller's set) other than the one the
/// caller runs on, when `from` has two or more. Cheap while the child sleeps or waits
/// to run (no migration of a running task). `false` if nothing changed.
pub fn place_apart(child: libc::pid_t, from: &CpuSet) -> bool {
    let Some(here) = here() else {
        return false;
    };
    // SAFETY: CPU_COUNT and CPU_ISSET read the live set `from`.
    let other = unsafe {
        if libc::CPU_COUNT(from) < 2 {
            return false;
        }
        (0..libc::CPU_SETSIZE as usize).find(|&c| c != here && libc::CPU_ISSET(c, from))
    };
    let Some(one) = other.and_then(only) else {
        return false;
    };
    // SAFETY: `one` is a live cpu_set_t passed with its own size.
    unsafe { libc::sched_setaffinity(child, std::mem::size_of_val(&one), &one) == 0 }
}

/// This thread kept on the CPU it runs on until dropped (then its set is `all` again):
/// for a parent that a child it released is about to wake, so that the wake-up brings
/// it back here rather than behind the child. A child cloned meanwhile inherits the
/// narrowed set: it must take `all` back (see `spawn::PreparedExec`).
pub struct StayHere(Option<CpuSet>);

impl StayHere {
    /// Pinned where it runs, if `all` (the caller's set, read before) has another CPU
    /// (else, or without `all`, nothing changes).
    pub fn pin(all: Option<&CpuSet>) -> StayHere {
        let (Some(all), Some(here)) = (all, here()) else {
            return StayHere(None);
        };
        // SAFETY: CPU_COUNT reads the live set `all`.
        if unsafe { libc::CPU_COUNT(all) } < 2 {
            return StayHere(None);
        }
        match only(here).map(|one| take(&one)) {
            Some(Ok(())) => StayHere(Some(*all)),
            _ => StayHere(None),
        }
    }
}

impl Drop for StayHere {
    fn drop(&mut self) {
        if let Some(all) = self.0.take() {
            let _ = take_back(&all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(set: &CpuSet) -> i32 {
        // SAFETY: CPU_COUNT reads the live set.
        unsafe { libc::CPU_COUNT(set) }
    }

    /// A set the kernel refuses (here: empty, EINVAL) is not left half-applied: the
    /// thread gets every CPU it is allowed, not the one it was narrowed to. (In a
    /// thread of its own: CPU sets are per thread.)
    #[test]
    fn taking_back_a_refused_set_gives_every_allowed_cpu() {
        let before = own().expect("own set");
        let after = std::thread::spawn(|| {
            // SAFETY: cpu_set_t is plain data; all zero is the empty set.
            let empty: CpuSet = unsafe { std::mem::zeroed() };
            assert!(take(&empty).is_err(), "an empty set is refused");
            if let Some(one) = here().and_then(only) {
                take(&one).expect("narrowed to one CPU");
            }
            take_back(&empty).expect("falls back");
            own().expect("own set")
        })
        .join()
        .expect("thread");
        assert_eq!(count(&after), count(&before));
    }
}

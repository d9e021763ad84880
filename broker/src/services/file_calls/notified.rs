//! The caller of a waiting notification, as [`Caller`]: its memory and descriptors,
//! each use checked against the notification; and the answer sent back.

use super::{Answer, Caller, MAX_CALL_PATH};
use sandbox::seccomp::{self, Notification};
use std::os::fd::{AsFd, BorrowedFd};

/// Send `answer` for notification `id`: a descriptor installed in the caller as the
/// call's result (atomically, `ADDFD` + `SEND`), a value, or an errno. An answer to a
/// call that went away fails quietly: nobody waits for it.
pub fn respond(listener: BorrowedFd<'_>, id: u64, answer: Answer) {
    match answer {
        Answer::Fd { fd, cloexec } => {
            if let Err(e) = seccomp::answer_with_fd(listener, id, fd.as_fd(), cloexec) {
                // The call still waits unless it went away (ENOENT): e.g. EMFILE,
                // its descriptor table is full.
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                if errno != libc::ENOENT {
                    let _ = seccomp::answer_error(listener, id, errno);
                }
            }
        }
        Answer::Value(v) => {
            let _ = seccomp::answer_value(listener, id, v);
        }
        Answer::Error(errno) => {
            let _ = seccomp::answer_error(listener, id, errno);
        }
    }
}

/// The caller of a waiting notification: its memory through `process_vm_readv`/
/// `writev` (which honour its page protections), checked against the notification so
/// that nothing is read from or written to a process that reused its id.
pub struct Notified<'a> {
    listener: BorrowedFd<'a>,
    id: u64,
    /// Held while the caller's memory is reached through `memory` (see
    /// [`Notified::of_process`]).
    guard: Option<&'a std::sync::Mutex<()>>,
    /// Whose memory is read and written: the caller's thread group where known (see
    /// [`Notified::of_process`]), else the calling thread.
    memory: u32,
}

impl<'a> Notified<'a> {
    /// The caller of notification `n`, read from `listener`; its memory reached
    /// through its thread id. Between the validity check and a write the thread could
    /// end and its id be taken by another process — a wrap of the whole pid space in
    /// microseconds; [`Notified::of_process`] closes even that.
    pub fn new(listener: BorrowedFd<'a>, n: &Notification) -> Notified<'a> {
        Notified {
            listener,
            id: n.id,
            guard: None,
            memory: n.pid,
        }
    }

    /// The caller of notification `n`, which must be a thread of process `tgid` — a
    /// child of this process, reaped only while `guard` is held: its memory is reached
    /// through `tgid` (the threads share it) with `guard` held, so that the validity
    /// check and the access see the same process. `None` if the calling thread is not
    /// one of its (e.g. a process it started).
    pub fn of_process(
        listener: BorrowedFd<'a>,
        n: &Notification,
        tgid: u32,
        guard: &'a std::sync::Mutex<()>,
    ) -> Option<Notified<'a>> {
        let member =
            n.pid == tgid || std::path::Path::new(&format!("/proc/{tgid}/task/{}", n.pid)).exists();
        member.then_some(Notified {
            listener,
            id: n.id,
            guard: Some(guard),
            memory: tgid,
        })
    }

    fn still_waits(&self) -> Result<(), i32> {
        match seccomp::notification_valid(self.listener, self.id) {
            Ok(true) => Ok(()),
            _ => Err(libc::ENOENT),
        }
    }
}

impl Caller for Notified<'_> {
    fn path(&self, at: u64) -> Result<Vec<u8>, i32> {
        let _held = self.guard.map(|g| g.lock());
        let path =
            seccomp::read_callers_string(self.memory, at, MAX_CALL_PATH).map_err(|e| {
                match e.raw_os_error() {
                    Some(libc::ENAMETOOLONG) => libc::ENAMETOOLONG,
                    _ => libc::EFAULT,
                }
            })?;
        // Read, then checked: the call was waiting throughout, so these were its bytes.
        self.still_waits()?;
        Ok(path)
    }

    fn write(&self, at: u64, bytes: &[u8]) -> Result<(), i32> {
        let _held = self.guard.map(|g| g.lock());
        // Checked, then written: the thread is still blocked in this call.
        self.still_waits()?;
        seccomp::write_callers_memory(self.memory, at, bytes).map_err(|_| libc::EFAULT)
    }
}

//! The thread that answers one renderer's handed-over file calls.
//!
//! A renderer with grants installs a filter that hands its file calls' refusals to the
//! broker (user notifications; see `services::file_calls`). Each such renderer gets a
//! thread of its own that waits on its listener and answers: one slow file system
//! stalls only the renderer whose call it is, and the broker's loop never waits on a
//! file. The thread waits in `poll` (the listener reports `POLLHUP` when the renderer
//! is gone, which a blocking receive would not), then receives, decodes and answers.
//! With `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6) the kernel wakes it on the
//! calling thread's CPU.
//!
//! A notification that is not a handed-over file call is a violation (the filter's
//! traps are notifications too): the thread keeps the first one and wakes the broker's
//! loop through a pipe, and the loop ends the renderer exactly as it ends one whose
//! listener it reads itself. The violating call is never answered.

use crate::services::file_calls::{self, Answer, Caller, FileCall, MAX_CALL_PATH};
use crate::services::files::FileService;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sandbox::policy::arch::Arch;
use sandbox::seccomp::{self, Notification};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// The broker's side of a renderer's file-call thread.
pub(crate) struct Handover {
    /// Readable when the thread has seen a violation (the epoll set watches it).
    pub(crate) wake: OwnedFd,
    /// The first violation it saw.
    violation: Arc<Mutex<Option<Notification>>>,
}

impl Handover {
    /// The violation the thread saw, if any (the wake-up is drained).
    pub(crate) fn take_violation(&self) -> Option<Notification> {
        let mut byte = [0u8; 16];
        while nix::unistd::read(&self.wake, &mut byte).is_ok_and(|n| n > 0) {}
        self.violation.lock().ok().and_then(|mut v| v.take())
    }
}

/// Start the thread for the renderer whose filter's listener is `listener`, answering
/// beneath `files`.
pub(crate) fn start(
    listener: OwnedFd,
    files: Arc<FileService>,
    id: u64,
    sync_wake_up: bool,
) -> io::Result<Handover> {
    let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
    let (wake, wake_write) = nix::unistd::pipe2(flags)?;
    let violation = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&violation);
    std::thread::Builder::new()
        .name(format!("file-calls-{id}"))
        .spawn(move || {
            if sync_wake_up {
                // Best effort: older kernels only wake less directly.
                let _ = seccomp::wake_synchronously(listener.as_fd());
            }
            serve(listener, &files, &seen, wake_write)
        })?;
    Ok(Handover { wake, violation })
}

/// Answer calls until the renderer is gone.
fn serve(
    listener: OwnedFd,
    files: &FileService,
    violation: &Mutex<Option<Notification>>,
    wake: OwnedFd,
) {
    let arch = Arch::native();
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let ready = fds[0].revents().unwrap_or(PollFlags::empty());
        if !ready.contains(PollFlags::POLLIN) {
            // POLLHUP: no task uses the filter any more; POLLERR/POLLNVAL: nothing to
            // read ever again.
            return;
        }
        let n = match seccomp::receive(listener.as_fd()) {
            Ok(n) => n,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => continue,
            Err(_) => return,
        };
        let call = (n.arch == arch.audit_arch())
            .then(|| FileCall::decode(arch, n.nr, n.args))
            .flatten();
        match call {
            Some(call) => answer(listener.as_fd(), files, &n, call),
            None => {
                if let Ok(mut v) = violation.lock() {
                    v.get_or_insert(n);
                }
                let _ = nix::unistd::write(&wake, &[1]);
            }
        }
    }
}

/// Answer one file call.
fn answer(listener: BorrowedFd<'_>, files: &FileService, n: &Notification, call: FileCall) {
    let caller = Notified {
        listener,
        id: n.id,
        tid: n.pid,
    };
    match file_calls::answer(files, call, &caller) {
        Answer::Fd { fd, cloexec } => {
            if let Err(e) = seccomp::answer_with_fd(listener, n.id, fd.as_fd(), cloexec) {
                // The call still waits unless it went away (ENOENT): e.g. EMFILE,
                // its descriptor table is full.
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                if errno != libc::ENOENT {
                    let _ = seccomp::answer_error(listener, n.id, errno);
                }
            }
        }
        Answer::Value(v) => {
            let _ = seccomp::answer_value(listener, n.id, v);
        }
        Answer::Error(errno) => {
            let _ = seccomp::answer_error(listener, n.id, errno);
        }
    }
}

/// The caller of a waiting notification: its memory through `process_vm_readv`/
/// `writev` (which honour its page protections), checked against the notification so
/// that nothing is read from or written to a process that reused its id.
struct Notified<'a> {
    listener: BorrowedFd<'a>,
    id: u64,
    tid: u32,
}

impl Notified<'_> {
    fn still_waits(&self) -> Result<(), i32> {
        match seccomp::notification_valid(self.listener, self.id) {
            Ok(true) => Ok(()),
            _ => Err(libc::ENOENT),
        }
    }
}

impl Caller for Notified<'_> {
    fn path(&self, at: u64) -> Result<Vec<u8>, i32> {
        let path =
            seccomp::read_callers_string(self.tid, at, MAX_CALL_PATH).map_err(|e| {
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
        // Checked, then written: the thread is still blocked in this call.
        self.still_waits()?;
        seccomp::write_callers_memory(self.tid, at, bytes).map_err(|_| libc::EFAULT)
    }

    fn fd(&self, fd: i32) -> Result<OwnedFd, i32> {
        let dup = seccomp::callers_fd(self.tid, fd).map_err(|_| libc::EBADF)?;
        self.still_waits()?;
        Ok(dup)
    }
}

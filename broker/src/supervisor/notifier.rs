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

use crate::services::file_calls::{self, respond, FileCall, Notified};
use crate::services::files::FileService;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sandbox::policy::arch::Arch;
use sandbox::seccomp::{self, Notification};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// The broker's side of a renderer's file-call thread.
pub(crate) struct Handover {
    /// Readable when the thread has something to say (the epoll set watches it), and
    /// at its end of file once the thread has ended. A socket, written with
    /// MSG_NOSIGNAL: the thread's last word after this end is gone raises no SIGPIPE.
    pub(crate) wake: OwnedFd,
    said: Arc<Mutex<Said>>,
    /// Held by the thread while it reaches the renderer's memory through its pid, and
    /// by the loop while it reaps the renderer: the pid names the renderer throughout.
    pub(crate) reaping: Arc<Mutex<()>>,
}

/// What the thread tells the broker's loop.
#[derive(Default)]
struct Said {
    /// The first violation it saw.
    violation: Option<Notification>,
    /// It stopped reading the listener for this reason while the renderer may live
    /// on: every later violation would go unanswered (the kernel says ENOSYS when the
    /// listener is gone), so the renderer must be ended.
    lost: Option<String>,
}

/// What a wake-up of the broker's loop found.
pub(crate) enum Heard {
    /// A violation: end the renderer with it.
    Violation(Notification),
    /// The thread lost the listener: end the renderer, with this cause.
    Lost(String),
    /// The thread has ended with its renderer: stop watching `wake`.
    Ended,
    /// Nothing (yet).
    Nothing,
}

impl Handover {
    /// What the thread has to say (the wake-up drained).
    pub(crate) fn hear(&self) -> Heard {
        let mut bytes = [0u8; 16];
        let mut ended = false;
        loop {
            match nix::unistd::read(&self.wake, &mut bytes) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let Ok(mut said) = self.said.lock() else {
            return Heard::Lost("its file-call thread panicked".into());
        };
        if let Some(n) = said.violation.take() {
            return Heard::Violation(n);
        }
        if let Some(cause) = said.lost.take() {
            return Heard::Lost(cause);
        }
        if ended {
            Heard::Ended
        } else {
            Heard::Nothing
        }
    }
}

/// Start the thread for the renderer `pid` (in this process's pid namespace, its
/// unreaped child) whose filter's listener is `listener`, answering beneath `files`.
pub(crate) fn start(
    listener: OwnedFd,
    files: Arc<FileService>,
    (id, pid): (u64, u32),
    sync_wake_up: bool,
) -> io::Result<Handover> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let (wake, wake_write) = socketpair(AddressFamily::Unix, SockType::Stream, None, flags)?;
    let said = Arc::new(Mutex::new(Said::default()));
    let theirs = Arc::clone(&said);
    let reaping = Arc::new(Mutex::new(()));
    let guard = Arc::clone(&reaping);
    std::thread::Builder::new()
        .name(format!("file-calls-{id}"))
        .spawn(move || {
            if sync_wake_up {
                // Best effort: older kernels only wake less directly.
                let _ = seccomp::wake_synchronously(listener.as_fd());
            }
            let caller = Renderer { pid, guard: &guard };
            let lost = serve(&listener, &files, &caller, &theirs, &wake_write).err();
            if let (Some(cause), Ok(mut said)) = (lost, theirs.lock()) {
                said.lost = Some(cause);
            }
            tell(&wake_write);
        })?;
    Ok(Handover {
        wake,
        said,
        reaping,
    })
}

/// The renderer a thread answers for: its pid, and the guard the loop takes to reap it.
struct Renderer<'a> {
    pid: u32,
    guard: &'a Mutex<()>,
}

/// Wake the broker's loop (never blocking, never SIGPIPE if it has gone).
fn tell(wake: &OwnedFd) {
    use nix::sys::socket::{send, MsgFlags};
    let _ = send(
        wake.as_raw_fd(),
        &[1],
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    );
}

/// Answer calls until the renderer is gone (`Ok`), or the listener fails (`Err`, why).
fn serve(
    listener: &OwnedFd,
    files: &FileService,
    renderer: &Renderer<'_>,
    said: &Mutex<Said>,
    wake: &OwnedFd,
) -> Result<(), String> {
    let arch = Arch::native();
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll of its seccomp listener: {e}")),
        }
        let ready = fds[0].revents().unwrap_or(PollFlags::empty());
        if ready.contains(PollFlags::POLLHUP) && !ready.contains(PollFlags::POLLIN) {
            // No task uses the filter any more: the renderer is gone.
            return Ok(());
        }
        if !ready.contains(PollFlags::POLLIN) {
            continue;
        }
        let n = match seccomp::receive(listener.as_fd()) {
            Ok(n) => n,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => continue,
            Err(e) => return Err(format!("read of its seccomp listener: {e}")),
        };
        let call = (n.arch == arch.audit_arch())
            .then(|| FileCall::decode(arch, n.nr, n.args))
            .flatten();
        match call {
            Some(call) => {
                match Notified::of_process(listener.as_fd(), &n, renderer.pid, renderer.guard) {
                    Some(caller) => {
                        respond(
                            listener.as_fd(),
                            n.id,
                            file_calls::answer(files, call, &caller),
                        );
                    }
                    // A process the renderer started (a preset that allows it): its file
                    // calls are not answered beneath the renderer's grants.
                    None => {
                        let _ = seccomp::answer_error(listener.as_fd(), n.id, libc::EACCES);
                    }
                }
            }
            None => {
                if let Ok(mut s) = said.lock() {
                    s.violation.get_or_insert(n);
                }
                tell(wake);
            }
        }
    }
}

//! The renderer's entry point: take the inherited channel, receive the broker's
//! [`Setup`], lock down, report, then run the embedder's code with a typed client.
//!
//! ```no_run
//! use sandbox::renderer::{self, Protocol};
//! struct Mine;
//! impl Protocol for Mine {
//!     type Req = String;
//!     type Resp = String;
//!     type Note = ();
//! }
//! fn main() {
//!     if std::env::args().any(|a| a == "--type=renderer") {
//!         renderer::run::<Mine>(|_locked, client| {
//!             match client.call("hello".into(), std::time::Duration::from_secs(1)) {
//!                 Ok(_) => 0,
//!                 Err(_) => 1,
//!             }
//!         });
//!     }
//! }
//! ```

use crate::ipc::rpc::{Client, Down, Up};
use crate::ipc::{Channel, IpcError, Limits, Message};
use crate::lockdown::{lock_down, Config, LockedDown, SeccompChoice};
use crate::protocol::{
    BrokerNote, ConnectError, ConnectRequest, OpenError, OpenMode, OpenRequest, RendererNote,
    Request, Response, Setup, Violation,
};
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

/// Where the broker places the renderer's end of its channel.
pub const CHANNEL_FD: RawFd = 3;
/// The argument a re-executed embedder binary gets to become a renderer (as Chromium's
/// `--type=renderer`).
pub const ROLE_ARG: &str = "--type=renderer";
/// Exit code when the channel or the setup is unusable.
pub const EXIT_NO_CHANNEL: i32 = 90;

/// The system allocator, plus a report to the broker when an allocation fails, so the
/// broker can tell an out-of-memory death (`EndReason::OutOfMemory`) from other aborts.
/// Opt in from the renderer binary:
///
/// ```
/// #[global_allocator]
/// static ALLOC: sandbox::renderer::ReportingAllocator = sandbox::renderer::ReportingAllocator;
/// ```
pub use crate::sys::ReportingAllocator;

/// Take the descriptor the spawner placed at [`CHANNEL_FD`] (once per process).
pub fn take_channel() -> std::io::Result<OwnedFd> {
    sys::take_inherited_channel(CHANNEL_FD)
}

/// The embedder's message types.
pub trait Protocol {
    /// Renderer → broker requests.
    type Req: Message;
    /// Broker → renderer responses.
    type Resp: Message;
    /// Broker → renderer notifications.
    type Note: Message;
}

/// The renderer's end of the channel, as sent and received.
pub type RendererChannel<P> = Channel<
    Up<Request<<P as Protocol>::Req>, RendererNote>,
    Down<Response<<P as Protocol>::Resp>, BrokerNote<<P as Protocol>::Note>>,
>;

/// The request/response client a renderer holds.
pub type RawClient<P> = Client<
    Request<<P as Protocol>::Req>,
    Response<<P as Protocol>::Resp>,
    RendererNote,
    BrokerNote<<P as Protocol>::Note>,
>;

/// Typed calls to the broker.
pub struct RendererClient<P: Protocol> {
    client: RawClient<P>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The channel failed (closed, timed out, ...).
    #[error(transparent)]
    Ipc(#[from] IpcError),
    /// The broker refused to open the file.
    #[error("open refused: {0}")]
    Open(#[from] OpenError),
    /// The broker connected nothing.
    #[error("connect refused: {0}")]
    Connect(#[from] ConnectError),
    /// The broker refused the request (rate limit, shutdown).
    #[error("refused: {0}")]
    Refused(String),
    /// The broker answered with something else.
    #[error("unexpected answer")]
    Unexpected,
}

impl<P: Protocol> RendererClient<P> {
    /// Ask the broker to open `path` under this renderer's grants.
    pub fn open(
        &mut self,
        path: &str,
        mode: OpenMode,
        timeout: Duration,
    ) -> Result<OwnedFd, CallError> {
        let req = Request::Open(OpenRequest {
            path: path.to_string(),
            mode,
        });
        match self.client.call(req, &[], timeout)? {
            (Response::Opened, mut fds) => fds.pop().ok_or(CallError::Unexpected),
            (Response::OpenFailed(e), _) => Err(CallError::Open(e)),
            (Response::Refused(r), _) => Err(CallError::Refused(r)),
            _ => Err(CallError::Unexpected),
        }
    }

    /// Ask the broker for a TCP connection to `host:port`, which the renderer's spec
    /// must allow (`RendererSpec::connect_to`, the host spelled as there). The broker
    /// connects outside the renderer's empty network namespace and hands the socket
    /// back (blocking, close-on-exec). The `renderer` preset allows reading, writing
    /// and shutting it down, not socket options.
    pub fn connect(
        &mut self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<std::net::TcpStream, CallError> {
        let req = Request::Connect(ConnectRequest {
            host: host.to_string(),
            port,
        });
        match self.client.call(req, &[], timeout)? {
            (Response::Connected, mut fds) => fds
                .pop()
                .map(std::net::TcpStream::from)
                .ok_or(CallError::Unexpected),
            (Response::ConnectFailed(e), _) => Err(CallError::Connect(e)),
            (Response::Refused(r), _) => Err(CallError::Refused(r)),
            _ => Err(CallError::Unexpected),
        }
    }

    /// Send the embedder's request and wait for its answer.
    pub fn call(&mut self, req: P::Req, timeout: Duration) -> Result<P::Resp, CallError> {
        self.call_with_fds(req, &[], timeout).map(|(r, _)| r)
    }

    /// As [`RendererClient::call`], with descriptors both ways.
    pub fn call_with_fds(
        &mut self,
        req: P::Req,
        fds: &[BorrowedFd<'_>],
        timeout: Duration,
    ) -> Result<(P::Resp, Vec<OwnedFd>), CallError> {
        match self.client.call(Request::Embedder(req), fds, timeout)? {
            (Response::Embedder(r), fds) => Ok((r, fds)),
            (Response::Refused(r), _) => Err(CallError::Refused(r)),
            _ => Err(CallError::Unexpected),
        }
    }

    /// Send a log line (level 1 error .. 5 trace) to the broker's log.
    pub fn log(&self, level: u8, line: &str) -> Result<(), IpcError> {
        let line: String = line
            .chars()
            .take(crate::protocol::MAX_LOG_LINE / 4)
            .collect();
        self.client.notify(
            RendererNote::Log {
                level: level.clamp(1, 5),
                line,
            },
            &[],
            Duration::from_secs(5),
        )
    }

    /// The next notification from the broker.
    pub fn next_note(&mut self, timeout: Duration) -> Result<BrokerNote<P::Note>, IpcError> {
        self.client.next_notification(timeout).map(|(n, _)| n)
    }

    /// The raw request/response client (for benchmarks and tests).
    pub fn raw(&mut self) -> &mut RawClient<P> {
        &mut self.client
    }
}

fn violation_template<P: Protocol>(channel: &RendererChannel<P>) -> Option<Vec<u8>> {
    let marker = Violation {
        nr: [0xa1; 4],
        arch: [0xa2; 4],
        args: [[0xa3; 8]; 6],
    };
    let bytes = channel
        .encode(&Up::Notify(RendererNote::Violation(marker)))
        .ok()?;
    // The violation's 56 bytes must be the frame's tail, byte for byte.
    let tail = bytes.get(bytes.len().checked_sub(56)?..)?;
    let expected: Vec<u8> = [0xa1u8; 4]
        .iter()
        .chain(&[0xa2; 4])
        .chain(&[0xa3; 48])
        .copied()
        .collect();
    (tail == expected.as_slice()).then_some(bytes)
}

/// Become a renderer: never returns. `main` runs only after a complete lockdown that
/// the broker has verified from outside (it answers the report with
/// `BrokerNote::Verified`); its return value is the exit code.
pub fn run<P: Protocol>(main: impl FnOnce(LockedDown, &mut RendererClient<P>) -> i32) -> ! {
    let fd = match sys::take_inherited_channel(CHANNEL_FD) {
        Ok(fd) => fd,
        Err(_) => std::process::exit(EXIT_NO_CHANNEL),
    };
    run_with_channel(fd, main)
}

/// [`run`] with the channel already in hand (a zygote's child).
fn run_with_channel<P: Protocol>(
    fd: OwnedFd,
    main: impl FnOnce(LockedDown, &mut RendererClient<P>) -> i32,
) -> ! {
    let channel_fd = fd.as_raw_fd();
    let setup_channel: Channel<(), Setup> = match Channel::from_fd(fd, Limits::default()) {
        Ok(c) => c,
        Err(_) => std::process::exit(EXIT_NO_CHANNEL),
    };
    let mut setup_channel = setup_channel;
    let setup = match setup_channel.recv_timeout(Duration::from_secs(10)) {
        Ok((s, _)) => s,
        Err(_) => std::process::exit(EXIT_NO_CHANNEL),
    };
    let channel: RendererChannel<P> =
        match Channel::from_fd(setup_channel.into_fd(), Limits::default()) {
            Ok(c) => c,
            Err(_) => std::process::exit(EXIT_NO_CHANNEL),
        };
    let preset = setup.preset;
    let config = Config {
        keep_fds: vec![0, 1, 2, channel_fd],
        rlimits: setup.rlimits,
        binds: Vec::new(),
        landlock_min_abi: setup.landlock_min_abi,
        mount_proc: false,
        scratch_tmp: None,
        root_built: None,
        seccomp_listener: setup.listener,
        switch_to: None,
        seccomp: match setup.filter.as_deref().map(crate::bpf::from_bytes) {
            Some(Some(instructions)) => SeccompChoice::Program(crate::bpf::Program {
                instructions,
                arch: crate::policy::arch::Arch::native(),
                left_out: Vec::new(),
            }),
            Some(None) => fail_setup::<P>(&channel, "malformed filter".into()),
            None => SeccompChoice::Preset(preset),
        },
        opt_outs: setup.opt_outs.clone(),
        dumpable_until_exec: false,
    };
    if let Some(template) = violation_template::<P>(&channel) {
        let _ = sys::install_violation_reporter(channel.as_fd_raw(), &template);
    }
    let oom =
        Up::<Request<P::Req>, RendererNote>::Notify(RendererNote::OutOfMemory { size: [0xa5; 8] });
    if let Ok(template) = channel.encode(&oom) {
        if template.ends_with(&[0xa5; 8]) {
            let _ = sys::install_oom_reporter(channel.as_fd_raw(), &template);
        }
    }
    let locked = match lock_down(&config) {
        Ok(l) => l,
        Err(e) => {
            let _ = channel.send(
                &Up::Notify(RendererNote::LockdownFailed {
                    error: e.to_string(),
                }),
                &[],
            );
            std::process::exit(e.exit_code());
        }
    };
    let mut locked = locked;
    let listener = locked.take_listener();
    let report = Up::Notify(RendererNote::LockedDown {
        status: Box::new(locked.status().clone()),
        listener: listener.is_some(),
    });
    let fds: Vec<BorrowedFd<'_>> = listener.iter().map(|l| l.as_fd()).collect();
    if channel.send(&report, &fds).is_err() {
        std::process::exit(EXIT_NO_CHANNEL);
    }
    // The broker holds it now; this process must not (a copy here would keep
    // violations waiting if the broker closed its own).
    drop(fds);
    drop(listener);
    let mut client = RendererClient {
        client: Client::new(channel),
    };
    // Untrusted work starts only once the broker has checked the report from outside.
    match client.client.next_notification(Duration::from_secs(10)) {
        Ok((BrokerNote::Verified, _)) => {}
        _ => std::process::exit(EXIT_NO_CHANNEL),
    }
    let code = main(locked, &mut client);
    std::process::exit(code)
}

fn fail_setup<P: Protocol>(channel: &RendererChannel<P>, why: String) -> ! {
    let _ = channel.send(
        &Up::Notify(RendererNote::LockdownFailed { error: why }),
        &[],
    );
    std::process::exit(EXIT_NO_CHANNEL)
}

impl<S, R> Channel<S, R> {
    /// The socket's descriptor number (for the signal-handler path only).
    pub(crate) fn as_fd_raw(&self) -> RawFd {
        use std::os::fd::AsFd;
        self.as_fd().as_raw_fd()
    }
}

/// The argument a re-executed embedder binary gets to become the zygote.
pub const ZYGOTE_ARG: &str = "--type=zygote";

/// Broker → zygote: clone a renderer into namespaces `flags`; its channel comes along.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum ZygoteRequest {
    /// Start one renderer.
    Spawn {
        /// CLONE_NEW* flags.
        flags: i32,
        /// An outside id of its own (see `SpawnSpec::outside_id`).
        outside_id: Option<u32>,
    },
}

impl Message for ZygoteRequest {
    fn fd_count(&self) -> usize {
        1
    }
    const MAX_FDS: usize = 1;
}

/// Zygote → broker.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum ZygoteReply {
    /// The renderer runs; it is the broker's child (CLONE_PARENT).
    Spawned {
        /// Its pid in the broker's pid namespace.
        pid: i32,
    },
    /// It could not be started.
    Failed {
        /// Why.
        error: String,
    },
}

impl Message for ZygoteReply {}

/// Become a zygote (a fork server): a process started once by the broker, which then
/// clones renderers into their namespaces without an exec each — saving the exec and
/// the start-up of the binary. Every renderer runs `main` after the usual setup,
/// lockdown and verification, exactly as with [`run`]. Never returns.
///
/// Renderers from one zygote share its memory layout (ASLR is not re-randomised per
/// renderer), as with Chromium's zygote.
pub fn run_zygote<P: Protocol>(main: impl Fn(LockedDown, &mut RendererClient<P>) -> i32) -> ! {
    let fd = match sys::take_inherited_channel(CHANNEL_FD) {
        Ok(fd) => fd,
        Err(_) => std::process::exit(EXIT_NO_CHANNEL),
    };
    let mut ctl: Option<ZygoteChannel> = match Channel::from_fd(fd, Limits::default()) {
        Ok(c) => Some(c),
        Err(_) => std::process::exit(EXIT_NO_CHANNEL),
    };
    loop {
        let Some(c) = ctl.as_mut() else {
            std::process::exit(EXIT_NO_CHANNEL)
        };
        let (request, mut fds) = match c.recv_timeout(Duration::from_secs(3600)) {
            Ok(m) => m,
            Err(IpcError::TimedOut) => continue,
            // The broker is gone.
            Err(_) => std::process::exit(0),
        };
        let ZygoteRequest::Spawn { flags, outside_id } = request;
        let reply = match fds.pop() {
            Some(channel) => zygote_spawn(flags, outside_id, channel, &mut ctl, &main),
            None => ZygoteReply::Failed {
                error: "no channel".into(),
            },
        };
        if ctl.as_ref().is_none_or(|c| c.send(&reply, &[]).is_err()) {
            std::process::exit(0);
        }
    }
}

/// The zygote's end of its channel to the broker.
type ZygoteChannel = Channel<ZygoteReply, ZygoteRequest>;

fn zygote_spawn<P: Protocol>(
    flags: i32,
    outside_id: Option<u32>,
    channel: OwnedFd,
    zygote_ctl: &mut Option<ZygoteChannel>,
    main: &impl Fn(LockedDown, &mut RendererClient<P>) -> i32,
) -> ZygoteReply {
    let failed = |e: String| ZygoteReply::Failed { error: e };
    let one = match crate::lockdown::SingleThreaded::check() {
        Ok(one) => one,
        Err(e) => return failed(e.to_string()),
    };
    let (go_r, go_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return failed(e.to_string()),
    };
    match one.clone_with(flags | libc::CLONE_PARENT) {
        Ok(0) => {
            // The renderer: the broker is its parent (CLONE_PARENT).
            drop(go_w);
            if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err() {
                std::process::exit(EXIT_NO_CHANNEL);
            }
            let mut byte = [0u8; 1];
            use std::io::Read;
            if !matches!(std::fs::File::from(go_r).read(&mut byte), Ok(1)) {
                std::process::exit(EXIT_NO_CHANNEL);
            }
            // The outside id the zygote mapped: no groups, uid and gid 0 of the
            // namespace (the capabilities over it stay, as in the spawner's child).
            if outside_id.is_some() {
                let zero_g = nix::unistd::Gid::from_raw(0);
                let zero_u = nix::unistd::Uid::from_raw(0);
                if nix::unistd::setgroups(&[]).is_err()
                    || nix::unistd::setresgid(zero_g, zero_g, zero_g).is_err()
                    || nix::unistd::setresuid(zero_u, zero_u, zero_u).is_err()
                {
                    std::process::exit(EXIT_NO_CHANNEL);
                }
            }
            // The channel takes the zygote's channel's place, CHANNEL_FD, as in an
            // exec'd renderer: the presets let only that descriptor carry descriptors.
            let Some(mut at_channel_fd) = zygote_ctl.take().map(Channel::into_fd) else {
                std::process::exit(EXIT_NO_CHANNEL)
            };
            if at_channel_fd.as_raw_fd() != CHANNEL_FD
                || nix::unistd::dup2(&channel, &mut at_channel_fd).is_err()
            {
                std::process::exit(EXIT_NO_CHANNEL);
            }
            drop(channel);
            run_with_channel(at_channel_fd, main)
        }
        Ok(pid) => {
            drop(go_r);
            drop(channel);
            if flags & libc::CLONE_NEWUSER != 0 {
                if let Err(e) = crate::launch::map_ids(pid, outside_id) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    return failed(e.to_string());
                }
            }
            use std::io::Write;
            match std::fs::File::from(go_w).write_all(&[1]) {
                Ok(()) => ZygoteReply::Spawned { pid },
                Err(e) => failed(e.to_string()),
            }
        }
        Err(e) => failed(e.to_string()),
    }
}

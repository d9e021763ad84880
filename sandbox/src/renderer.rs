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
use crate::policy::presets::Preset;
use crate::protocol::{
    BrokerNote, OpenError, OpenMode, OpenRequest, RendererNote, Request, Response, Setup, Violation,
};
use crate::sys;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
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
    let preset: Preset = match setup.preset.parse() {
        Ok(p) => p,
        Err(e) => fail_setup::<P>(&channel, e),
    };
    let config = Config {
        keep_fds: vec![0, 1, 2, CHANNEL_FD],
        rlimits: setup.rlimits,
        grants: Vec::new(),
        landlock_min_abi: setup.landlock_min_abi,
        mount_proc: false,
        root_built: None,
        seccomp_listener: false,
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
    let report = Up::Notify(RendererNote::LockedDown(Box::new(locked.status().clone())));
    if channel.send(&report, &[]).is_err() {
        std::process::exit(EXIT_NO_CHANNEL);
    }
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

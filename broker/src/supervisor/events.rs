//! What the embedder sees: renderer ids, its service, why renderers end, events, settings.

use super::*;

/// Identifies a renderer for the life of the broker (restarts get a new id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RendererId(pub u64);

impl fmt::Display for RendererId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "renderer#{}", self.0)
    }
}

/// The embedder's own service.
pub trait Service {
    /// Its message types.
    type Proto: Protocol;
    /// Answer one request from renderer `from`. Descriptors that came with the request
    /// are passed on (their number was checked against the request's `fd_count`); the
    /// answer may carry some back. `Err(reason)` means the request was malformed in a
    /// way only the service can see (e.g. a descriptor of the wrong kind): the renderer
    /// is ended with [`EndReason::BadMessage`].
    #[allow(clippy::type_complexity)]
    fn handle(
        &mut self,
        from: RendererId,
        request: <Self::Proto as Protocol>::Req,
        fds: Vec<OwnedFd>,
    ) -> Result<(<Self::Proto as Protocol>::Resp, Vec<OwnedFd>), String>;
}

/// Why a renderer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal (not by the broker, not SIGSYS).
    Signaled(i32),
    /// The seccomp filter stopped it. `nr` is -1 when only WTERMSIG == SIGSYS is known.
    SeccompViolation {
        /// Syscall number.
        nr: i32,
        /// Its name on this architecture, if known.
        name: Option<&'static str>,
        /// The arguments (zero when unknown).
        args: [u64; 6],
        /// The kernel said so: the broker read the call from the filter's listener, or
        /// the process died of SIGSYS. `false`: the renderer's own report (the fallback
        /// of a renderer without a listener), taken only because it then ended as that
        /// report's handler ends it (exit status 159).
        attested: bool,
    },
    /// Lockdown did not complete, or its report did not match what the broker saw.
    LockdownFailed(String),
    /// Its wall-clock deadline passed.
    DeadlineExceeded,
    /// It broke the protocol.
    BadMessage(String),
    /// It let its outgoing queue fill.
    NotReading,
    /// It exceeded its request rate.
    RateLimited,
    /// An allocation failed: the renderer's own report (by
    /// `sandbox::renderer::ReportingAllocator`, before the abort), taken only because it
    /// then died by a signal (without it, this shows as `Signaled`).
    OutOfMemory {
        /// The size of the allocation that failed.
        requested: u64,
    },
    /// The broker shut down.
    BrokerShutdown,
}

/// What happened, for the embedder.
#[derive(Clone, Debug)]
pub enum Event {
    /// Lockdown completed and was verified from outside.
    Ready {
        /// Which renderer.
        id: RendererId,
        /// Its report.
        status: Box<Status>,
    },
    /// A log line (also emitted through `tracing`).
    Log {
        /// Which renderer.
        id: RendererId,
        /// 1 error .. 5 trace.
        level: u8,
        /// The line.
        line: String,
    },
    /// It ended.
    Ended {
        /// Which renderer.
        id: RendererId,
        /// Why.
        reason: EndReason,
        /// The id of its replacement, if restarted.
        restarted_as: Option<RendererId>,
    },
}

/// Broker-wide settings.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Channel size limits.
    pub limits: Limits,
    /// Messages queued for one renderer before it counts as not reading.
    pub max_queued: usize,
    /// Descriptors queued for one renderer, not yet sent, before it counts as not
    /// reading.
    pub max_queued_fds: usize,
    /// Descriptors sent to one renderer that it may leave unread; further answers with
    /// descriptors wait until it has read (the broker holds no more on its behalf).
    pub max_fds_in_flight: usize,
    /// Requests per second one renderer may make (a burst of this many is allowed).
    pub max_requests_per_sec: u32,
    /// Log lines per second forwarded per renderer (the rest are dropped, counted).
    pub max_logs_per_sec: u32,
    /// Time from spawn to a verified lockdown report.
    pub ready_timeout: Duration,
    /// Messages handled per renderer per round (fairness).
    pub max_per_round: usize,
    /// Ask the kernel to wake the thread that answers a renderer's file calls on the
    /// calling thread's CPU (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, Linux 6.6; ignored
    /// where the kernel lacks it). On by default; off only to measure what it saves.
    pub sync_wake_up: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            limits: Limits::default(),
            max_queued: 256,
            max_requests_per_sec: 10_000,
            max_logs_per_sec: 100,
            ready_timeout: Duration::from_secs(10),
            max_per_round: 64,
            max_queued_fds: 64,
            max_fds_in_flight: 32,
            sync_wake_up: true,
        }
    }
}

/// Why a spawn failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Creating the channel, epoll registration, ...
    #[error("spawn: {0}")]
    Io(#[from] std::io::Error),
    /// Namespaces or exec.
    #[error(transparent)]
    Launch(#[from] sandbox::launch::LaunchError),
    /// The file grants could not be opened.
    #[error("file grants: {0}")]
    Grants(String),
    /// A host of the spec's allow-list could not be resolved.
    #[error("allow-list: {0}")]
    Egress(String),
}

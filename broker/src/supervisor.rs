//! The broker: spawns renderers, serves their requests, supervises their lives.
//!
//! One thread serves every renderer: an epoll set holds each renderer's channel and
//! pidfd, and [`Broker::poll`] runs one round. Nothing a renderer does can block it:
//! receives are non-blocking and bounded per round, sends go through a bounded
//! per-renderer queue (a renderer that lets it fill is ended as *not reading*), and a
//! renderer that breaks the protocol in any way is ended with the reason, while the
//! others go on.

use crate::services::files::FileService;
use crate::spec::RendererSpec;
use crate::spec::RENDERER_ROLE_ARG;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::wait::WaitStatus;
use sandbox::ipc::rpc::{Down, Up};
use sandbox::ipc::{Channel, IpcError, Limits, Message};
use sandbox::launch::{own_id, spawn, NetMode, SpawnSpec, Spawned};
use sandbox::launch::{verify_from_outside, Asked};
use sandbox::lockdown::Status;
use sandbox::policy::arch::Arch;
use sandbox::policy::presets::Preset;
use sandbox::policy::text::Options;
use sandbox::protocol::{BrokerNote, RendererNote, Request, Response, Setup, Violation};
use sandbox::renderer::{Protocol, ZygoteReply, ZygoteRequest, CHANNEL_FD, ZYGOTE_ARG};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

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
    /// An allocation failed (reported by `sandbox::renderer::ReportingAllocator`
    /// before the abort; without it, this shows as `Signaled(SIGABRT)`).
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
    /// Requests per second one renderer may make (a burst of this many is allowed).
    pub max_requests_per_sec: u32,
    /// Log lines per second forwarded per renderer (the rest are dropped, counted).
    pub max_logs_per_sec: u32,
    /// Time from spawn to a verified lockdown report.
    pub ready_timeout: Duration,
    /// Messages handled per renderer per round (fairness).
    pub max_per_round: usize,
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
}

/// What the broker sends a renderer speaking `P`.
type DownFrame<P> = Down<Response<<P as Protocol>::Resp>, BrokerNote<<P as Protocol>::Note>>;

type BrokerChannel<P> = Channel<
    Down<Response<<P as Protocol>::Resp>, BrokerNote<<P as Protocol>::Note>>,
    Up<Request<<P as Protocol>::Req>, RendererNote>,
>;

struct Renderer<P: Protocol> {
    spec: RendererSpec,
    child: Spawned,
    pidfd: OwnedFd,
    channel: BrokerChannel<P>,
    outbox: VecDeque<(Vec<u8>, Vec<OwnedFd>)>,
    /// `None` when the renderer has no file grants.
    files: Option<FileService>,
    started: Instant,
    ready: bool,
    closed: bool,
    ending: Option<EndReason>,
    violation: Option<Violation>,
    out_of_memory: Option<u64>,
    tokens: f64,
    log_tokens: f64,
    last_refill: Instant,
    restarts: u32,
    want_write: bool,
}

/// Restarts waiting for their backoff.
struct PendingRestart {
    due: Instant,
    spec: RendererSpec,
    restarts: u32,
    replaces: RendererId,
}

/// The broker. Dropping it kills and reaps every renderer.
pub struct Broker<S: Service> {
    config: BrokerConfig,
    service: S,
    epoll: Epoll,
    renderers: HashMap<u64, Renderer<S::Proto>>,
    pending: Vec<PendingRestart>,
    next_id: u64,
    events: VecDeque<Event>,
    /// Presets compiled for `SELF_PID` = 1.
    compiled: HashMap<Preset, Vec<u8>>,
    /// The fork server, once started.
    zygote: Option<Zygote>,
}

/// A started zygote (see `sandbox::renderer::run_zygote`).
struct Zygote {
    _process: Spawned,
    ctl: Channel<ZygoteRequest, ZygoteReply>,
}

const PIDFD_BIT: u64 = 1 << 63;

impl<S: Service> Broker<S> {
    /// A broker serving `service`.
    pub fn new(config: BrokerConfig, service: S) -> std::io::Result<Broker<S>> {
        Ok(Broker {
            config,
            service,
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(std::io::Error::from)?,
            renderers: HashMap::new(),
            pending: Vec::new(),
            next_id: 1,
            events: VecDeque::new(),
            compiled: HashMap::new(),
            zygote: None,
        })
    }

    /// The preset compiled once for renderers that are pid 1 of their own pid
    /// namespace (`SELF_PID` = 1), as raw `sock_filter` bytes.
    fn compiled_preset(&mut self, preset: Preset) -> Option<Vec<u8>> {
        if let Some(bytes) = self.compiled.get(&preset) {
            return Some(bytes.clone());
        }
        let options = Options::new(Arch::native()).define("SELF_PID", 1);
        let policy = preset.policy(&options).ok()?;
        let program = sandbox::bpf::compile(&policy, Arch::native()).ok()?;
        let bytes = sandbox::bpf::to_bytes(&program.instructions);
        self.compiled.insert(preset, bytes.clone());
        Some(bytes)
    }

    /// Start a zygote from `spec`'s executable (re-executed with `--type=zygote`; it
    /// must call `sandbox::renderer::run_zygote`). From then on, renderers are cloned
    /// from it into their namespaces without an exec each (`spec`'s executable, args
    /// and environment are the zygote's; a `NetMode::Reuse` spawn still execs).
    pub fn start_zygote(&mut self, spec: &RendererSpec) -> Result<(), SpawnError> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        let devnull = std::fs::File::open("/dev/null")?;
        let mut args: Vec<String> = spec
            .args
            .iter()
            .filter(|a| *a != RENDERER_ROLE_ARG)
            .cloned()
            .collect();
        args.push(ZYGOTE_ARG.to_string());
        let process = spawn(&SpawnSpec {
            exe: spec.exe.clone(),
            args,
            env: spec.env.clone(),
            fds: vec![
                (devnull.as_raw_fd(), 0),
                (devnull.as_raw_fd(), 1),
                (
                    if spec.inherit_stderr {
                        2
                    } else {
                        devnull.as_raw_fd()
                    },
                    2,
                ),
                (theirs.as_raw_fd(), CHANNEL_FD),
            ],
            namespaces: sandbox::launch::Namespaces::none(),
            extra_id: None,
            outside_id: None,
        })?;
        self.zygote = Some(Zygote {
            _process: process,
            ctl: Channel::from_fd(ours, self.config.limits)?,
        });
        Ok(())
    }

    /// Clone a renderer from the zygote; its end of the channel goes along.
    fn spawn_from_zygote(
        &mut self,
        spec: &RendererSpec,
        theirs: &OwnedFd,
        outside_id: Option<u32>,
    ) -> Result<Option<Spawned>, SpawnError> {
        let Some(z) = self.zygote.as_mut() else {
            return Ok(None);
        };
        if matches!(spec.namespaces.net, NetMode::Reuse(_)) {
            return Ok(None);
        }
        let request = ZygoteRequest::Spawn {
            flags: spec.namespaces.clone_flags(),
            outside_id,
        };
        z.ctl
            .send(&request, &[theirs.as_fd()])
            .map_err(|e| std::io::Error::other(format!("zygote: {e}")))?;
        match z.ctl.recv_timeout(Duration::from_secs(10)) {
            Ok((ZygoteReply::Spawned { pid }, _)) => Ok(Some(Spawned::adopt(pid))),
            Ok((ZygoteReply::Failed { error }, _)) => {
                Err(std::io::Error::other(format!("zygote: {error}")).into())
            }
            Err(e) => Err(std::io::Error::other(format!("zygote: {e}")).into()),
        }
    }

    /// The embedder's service.
    pub fn service(&mut self) -> &mut S {
        &mut self.service
    }

    /// How many renderers are alive.
    pub fn len(&self) -> usize {
        self.renderers.len()
    }

    /// Whether none is alive and no restart is pending.
    pub fn is_empty(&self) -> bool {
        self.renderers.is_empty() && self.pending.is_empty()
    }

    /// The pid of a renderer (in the broker's pid namespace).
    pub fn pid(&self, id: RendererId) -> Option<i32> {
        self.renderers.get(&id.0).map(|r| r.child.pid())
    }

    /// Start a renderer.
    pub fn spawn(&mut self, spec: RendererSpec) -> Result<RendererId, SpawnError> {
        self.spawn_with(spec, 0)
    }

    fn spawn_with(&mut self, spec: RendererSpec, restarts: u32) -> Result<RendererId, SpawnError> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let files = if spec.grants.is_empty() {
            None
        } else {
            Some(
                FileService::new(spec.grants.clone())
                    .map_err(|e| SpawnError::Grants(e.to_string()))?,
            )
        };
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        let setup_channel: Channel<Setup, ()> = Channel::from_fd(ours, self.config.limits)?;
        let setup = Setup {
            preset: spec.preset.name().to_string(),
            rlimits: spec.rlimits,
            opt_outs: spec.opt_outs.clone(),
            landlock_min_abi: spec.landlock_min_abi,
            filter: if spec.namespaces.pid {
                self.compiled_preset(spec.preset)
            } else {
                None
            },
        };
        // The socket buffer is empty: this cannot block or fail for want of room.
        setup_channel
            .send(&setup, &[])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let channel: BrokerChannel<S::Proto> =
            Channel::from_fd(setup_channel.into_fd(), self.config.limits)?;

        // A root broker's renderer runs as a user id of its own outside (not root, and
        // counted alone by RLIMIT_NPROC); an unprivileged broker's as the broker's user.
        let outside_id = (nix::unistd::geteuid().is_root() && spec.namespaces.user)
            .then(|| own_id(std::process::id(), self.next_id));
        let child = match self.spawn_from_zygote(&spec, &theirs, outside_id)? {
            Some(child) => child,
            None => {
                let devnull = std::fs::File::open("/dev/null")?;
                let mut fds = vec![
                    (devnull.as_raw_fd(), 0),
                    (devnull.as_raw_fd(), 1),
                    (theirs.as_raw_fd(), CHANNEL_FD),
                ];
                fds.push(if spec.inherit_stderr {
                    (2, 2)
                } else {
                    (devnull.as_raw_fd(), 2)
                });
                spawn(&SpawnSpec {
                    exe: spec.exe.clone(),
                    args: spec.args.clone(),
                    env: spec.env.clone(),
                    fds,
                    namespaces: spec.namespaces.clone(),
                    extra_id: None,
                    outside_id,
                })?
            }
        };
        drop(theirs);
        let pidfd = child.open_pidfd()?;
        let id = self.next_id;
        self.next_id += 1;
        self.epoll
            .add(channel.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, id))
            .map_err(std::io::Error::from)?;
        self.epoll
            .add(
                pidfd.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, id | PIDFD_BIT),
            )
            .map_err(std::io::Error::from)?;
        let now = Instant::now();
        self.renderers.insert(
            id,
            Renderer {
                spec,
                child,
                pidfd,
                channel,
                outbox: VecDeque::new(),
                files,
                started: now,
                ready: false,
                closed: false,
                ending: None,
                violation: None,
                out_of_memory: None,
                tokens: f64::from(self.config.max_requests_per_sec),
                log_tokens: f64::from(self.config.max_logs_per_sec),
                last_refill: now,
                restarts,
                want_write: false,
            },
        );
        Ok(RendererId(id))
    }

    /// Send a notification to a renderer (queued; never blocks).
    pub fn notify(
        &mut self,
        id: RendererId,
        note: <S::Proto as Protocol>::Note,
        fds: Vec<OwnedFd>,
    ) -> bool {
        let frame = Down::Notify(BrokerNote::Embedder(note));
        self.queue(id.0, &frame, fds)
    }

    /// End a renderer now, with `reason` (delivered when it has been reaped).
    pub fn kill(&mut self, id: RendererId, reason: EndReason) {
        if let Some(r) = self.renderers.get_mut(&id.0) {
            end(r, reason);
        }
    }

    /// Run one round: wait up to `timeout` for activity, handle it, and return what
    /// happened.
    pub fn poll(&mut self, timeout: Duration) -> Vec<Event> {
        self.start_due_restarts();
        let wait = self.next_timer().map_or(timeout, |t| t.min(timeout));
        let mut events = [EpollEvent::empty(); 32];
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let n = self
            .epoll
            .wait(&mut events, EpollTimeout::from(ms))
            .unwrap_or(0);
        for ev in events.iter().take(n) {
            let key = ev.data();
            let id = key & !PIDFD_BIT;
            if key & PIDFD_BIT != 0 {
                self.reap(id);
            } else {
                if ev
                    .events()
                    .intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR)
                {
                    self.read(id);
                }
                if ev.events().contains(EpollFlags::EPOLLOUT) {
                    self.flush(id);
                }
            }
        }
        self.check_timers();
        self.events.drain(..).collect()
    }

    /// Ask every renderer to finish (`BrokerNote::Shutdown`), wait up to `grace` for
    /// them to exit, then kill the rest; every one ends with
    /// [`EndReason::BrokerShutdown`] unless it ended for another reason first.
    /// Returns the events of the shutdown.
    pub fn shutdown(&mut self, grace: Duration) -> Vec<Event> {
        self.pending.clear();
        let ids: Vec<u64> = self.renderers.keys().copied().collect();
        for id in &ids {
            self.queue(*id, &Down::Notify(BrokerNote::Shutdown), Vec::new());
            if let Some(r) = self.renderers.get_mut(id) {
                if r.ending.is_none() {
                    r.ending = Some(EndReason::BrokerShutdown);
                }
            }
        }
        let mut events = self.run_until_idle(grace);
        for r in self.renderers.values_mut() {
            r.child.signal_kill();
        }
        events.extend(self.run_until_idle(Duration::from_secs(5)));
        events
    }

    /// Run rounds until every renderer has ended (or `limit` passes); returns all
    /// events.
    pub fn run_until_idle(&mut self, limit: Duration) -> Vec<Event> {
        let end = Instant::now() + limit;
        let mut all = Vec::new();
        while !self.is_empty() && Instant::now() < end {
            all.extend(self.poll(Duration::from_millis(50)));
        }
        all
    }

    fn next_timer(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Instant> = self.pending.iter().map(|p| p.due).min();
        for r in self.renderers.values() {
            let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
            if let Some(d) = r.spec.deadline {
                consider(r.started + d);
            }
            if !r.ready {
                consider(r.started + self.config.ready_timeout);
            }
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    fn check_timers(&mut self) {
        let now = Instant::now();
        let ready_timeout = self.config.ready_timeout;
        for r in self.renderers.values_mut() {
            if r.ending.is_some() {
                continue;
            }
            if r.spec.deadline.is_some_and(|d| now >= r.started + d) {
                end(r, EndReason::DeadlineExceeded);
            } else if !r.ready && now >= r.started + ready_timeout {
                end(
                    r,
                    EndReason::LockdownFailed("no verified lockdown report in time".into()),
                );
            }
        }
    }

    fn start_due_restarts(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due <= now);
        self.pending = later;
        for p in due {
            match self.spawn_with(p.spec.clone(), p.restarts) {
                Ok(new_id) => {
                    tracing::info!(old = %p.replaces, new = %new_id, "renderer restarted")
                }
                Err(e) => tracing::warn!(old = %p.replaces, "restart failed: {e}"),
            }
        }
    }

    fn queue(&mut self, id: u64, frame: &DownFrame<S::Proto>, fds: Vec<OwnedFd>) -> bool {
        let max_queued = self.config.max_queued;
        let Some(r) = self.renderers.get_mut(&id) else {
            return false;
        };
        if r.ending.is_some() {
            return false;
        }
        if frame.fd_count() != fds.len() {
            tracing::error!(
                renderer = id,
                "a response carries {} fds, its type says {}",
                fds.len(),
                frame.fd_count()
            );
            return false;
        }
        match r.channel.encode(frame) {
            Ok(bytes) => r.outbox.push_back((bytes, fds)),
            Err(e) => {
                tracing::error!(renderer = id, "cannot encode a response: {e}");
                return false;
            }
        }
        if r.outbox.len() > max_queued {
            end(r, EndReason::NotReading);
            return false;
        }
        self.flush(id);
        true
    }

    fn flush(&mut self, id: u64) {
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        while let Some((bytes, fds)) = r.outbox.front() {
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            match r.channel.send_raw(bytes, &borrowed) {
                Ok(()) => {
                    r.outbox.pop_front();
                }
                Err(IpcError::WouldBlock) => break,
                Err(_) => {
                    // The peer is gone; its pidfd will tell why.
                    r.outbox.clear();
                    r.closed = true;
                    break;
                }
            }
        }
        let want = !r.outbox.is_empty() && !r.closed;
        if want != r.want_write {
            let flags = if want {
                EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT
            } else {
                EpollFlags::EPOLLIN
            };
            let mut ev = EpollEvent::new(flags, id);
            let _ = self.epoll.modify(r.channel.as_fd(), &mut ev);
            r.want_write = want;
        }
    }

    fn read(&mut self, id: u64) {
        for _ in 0..self.config.max_per_round {
            let Some(r) = self.renderers.get_mut(&id) else {
                return;
            };
            if r.closed || r.ending.is_some() {
                return;
            }
            match r.channel.try_recv() {
                Ok(None) => return,
                Ok(Some((frame, fds))) => self.dispatch(id, frame, fds),
                Err(IpcError::Closed) => {
                    r.closed = true;
                    let _ = self.epoll.delete(r.channel.as_fd());
                    return;
                }
                Err(e) => {
                    end(r, EndReason::BadMessage(e.to_string()));
                    return;
                }
            }
        }
    }

    fn dispatch(
        &mut self,
        id: u64,
        frame: Up<Request<<S::Proto as Protocol>::Req>, RendererNote>,
        fds: Vec<OwnedFd>,
    ) {
        let rate = f64::from(self.config.max_requests_per_sec);
        let log_rate = f64::from(self.config.max_logs_per_sec);
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        let now = Instant::now();
        let dt = now.duration_since(r.last_refill).as_secs_f64();
        r.last_refill = now;
        r.tokens = (r.tokens + dt * rate).min(rate);
        r.log_tokens = (r.log_tokens + dt * log_rate).min(log_rate);
        match frame {
            Up::Notify(RendererNote::LockedDown(status)) => {
                if r.ready {
                    return end(r, EndReason::BadMessage("a second lockdown report".into()));
                }
                let expected = r.spec.namespaces.expected_new();
                let asked = Asked {
                    opt_outs: &r.spec.opt_outs,
                    new_namespaces: &expected,
                };
                match verify_from_outside(r.child.pid(), &status, &asked) {
                    Ok(_) => {
                        r.ready = true;
                        self.events.push_back(Event::Ready {
                            id: RendererId(id),
                            status,
                        });
                        self.queue(id, &Down::Notify(BrokerNote::Verified), Vec::new());
                    }
                    Err(problems) => end(r, EndReason::LockdownFailed(problems.join("; "))),
                }
            }
            Up::Notify(RendererNote::LockdownFailed { error }) => {
                r.ending = Some(EndReason::LockdownFailed(error));
            }
            Up::Notify(RendererNote::Violation(v)) => r.violation = Some(v),
            Up::Notify(RendererNote::OutOfMemory { size }) => {
                r.out_of_memory = Some(u64::from_le_bytes(size))
            }
            Up::Notify(RendererNote::Log { level, line }) => {
                if r.log_tokens >= 1.0 {
                    r.log_tokens -= 1.0;
                    // A renderer's text must not forge log lines or drive a terminal:
                    // control characters (newlines, escapes) become U+FFFD.
                    let line: String = line
                        .chars()
                        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                        .collect();
                    match level {
                        1 => tracing::error!(renderer = id, "{line}"),
                        2 => tracing::warn!(renderer = id, "{line}"),
                        3 => tracing::info!(renderer = id, "{line}"),
                        4 => tracing::debug!(renderer = id, "{line}"),
                        _ => tracing::trace!(renderer = id, "{line}"),
                    }
                    self.events.push_back(Event::Log {
                        id: RendererId(id),
                        level,
                        line,
                    });
                }
            }
            Up::Cancel { .. } => {}
            Up::Request { id: req_id, body } => {
                if !r.ready {
                    return end(
                        r,
                        EndReason::BadMessage("a request before its lockdown report".into()),
                    );
                }
                if r.tokens < 1.0 {
                    return end(r, EndReason::RateLimited);
                }
                r.tokens -= 1.0;
                let (response, out_fds) = match body {
                    Request::Open(req) => match r.files.as_ref().map(|f| f.open(&req)) {
                        Some(Ok(fd)) => (Response::Opened, vec![fd]),
                        Some(Err(e)) => (Response::OpenFailed(e), Vec::new()),
                        None => (
                            Response::OpenFailed(sandbox::protocol::OpenError::NotGranted),
                            Vec::new(),
                        ),
                    },
                    Request::Embedder(req) => match self.service.handle(RendererId(id), req, fds) {
                        Ok((resp, out)) => (Response::Embedder(resp), out),
                        Err(reason) => return end(r, EndReason::BadMessage(reason)),
                    },
                };
                self.queue(
                    id,
                    &Down::Response {
                        id: req_id,
                        body: response,
                    },
                    out_fds,
                );
            }
        }
    }

    fn reap(&mut self, id: u64) {
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        let status = match r.child.try_wait() {
            Ok(Some(s)) => s,
            _ => return,
        };
        // Read what is left: a violation report may have arrived just before the death.
        while let Ok(Some((frame, _))) = r.channel.try_recv() {
            match frame {
                Up::Notify(RendererNote::Violation(v)) => r.violation = Some(v),
                Up::Notify(RendererNote::OutOfMemory { size }) => {
                    r.out_of_memory = Some(u64::from_le_bytes(size))
                }
                _ => {}
            }
        }
        let Some(mut r) = self.renderers.remove(&id) else {
            return;
        };
        let _ = self.epoll.delete(r.channel.as_fd());
        let _ = self.epoll.delete(r.pidfd.as_fd());
        let reason = classify(&mut r, status);
        let mut restarted_as = None;
        if let Some(policy) = r.spec.restart {
            if reason != EndReason::BrokerShutdown && r.restarts < policy.max {
                let backoff = policy
                    .initial_backoff
                    .saturating_mul(1 << r.restarts.min(16));
                let new_id = RendererId(self.next_id);
                // The id the replacement will get if nothing else spawns first; the
                // embedder gets the real one from `Ready`.
                restarted_as = Some(new_id);
                self.pending.push(PendingRestart {
                    due: Instant::now() + backoff,
                    spec: r.spec.clone(),
                    restarts: r.restarts + 1,
                    replaces: RendererId(id),
                });
            }
        }
        self.events.push_back(Event::Ended {
            id: RendererId(id),
            reason,
            restarted_as,
        });
    }
}

fn end(r: &mut Renderer<impl Protocol>, reason: EndReason) {
    if r.ending.is_none() {
        r.ending = Some(reason);
    }
    r.child.signal_kill();
}

fn classify<P: Protocol>(r: &mut Renderer<P>, status: WaitStatus) -> EndReason {
    if let Some(v) = r.violation {
        return EndReason::SeccompViolation {
            nr: v.nr(),
            name: u32::try_from(v.nr())
                .ok()
                .and_then(|n| Arch::native().syscall_name(n)),
            args: v.args(),
        };
    }
    if let Some(reason) = r.ending.take() {
        return reason;
    }
    // After the report the process aborts: SIGABRT, or — as pid 1 of its namespace,
    // which ignores its own SIGABRT — glibc's fallback fault (SIGSEGV).
    if let Some(requested) = r.out_of_memory {
        return EndReason::OutOfMemory { requested };
    }
    match status {
        WaitStatus::Exited(_, code) => EndReason::Exited(code),
        WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGSYS, _) => {
            EndReason::SeccompViolation {
                nr: -1,
                name: None,
                args: [0; 6],
            }
        }
        WaitStatus::Signaled(_, sig, _) => EndReason::Signaled(sig as i32),
        _ => EndReason::Signaled(0),
    }
}

impl<S: Service> Drop for Broker<S> {
    fn drop(&mut self) {
        // Each Spawned kills and reaps its process when dropped.
        for r in self.renderers.values_mut() {
            end(r, EndReason::BrokerShutdown);
        }
        self.renderers.clear();
    }
}

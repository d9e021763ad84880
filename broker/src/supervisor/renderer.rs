//! One renderer as the broker keeps it, and how its end is classified.

use super::*;

/// What the broker sends a renderer speaking `P`.
pub(super) type DownFrame<P> =
    Down<Response<<P as Protocol>::Resp>, BrokerNote<<P as Protocol>::Note>>;

/// The broker's end of a renderer's channel.
pub(super) type BrokerChannel<P> = Channel<
    Down<Response<<P as Protocol>::Resp>, BrokerNote<<P as Protocol>::Note>>,
    Up<Request<<P as Protocol>::Req>, RendererNote>,
>;

/// One renderer, from spawn to reaping.
pub(super) struct Renderer<P: Protocol> {
    pub(super) spec: RendererSpec,
    pub(super) child: Spawned,
    pub(super) pidfd: OwnedFd,
    pub(super) channel: BrokerChannel<P>,
    pub(super) outbox: Outbox,
    /// `None` when the renderer has no file grants.
    pub(super) files: Option<Arc<FileService>>,
    /// Its filter hands its file calls over (it has grants): its listener goes to a
    /// thread of its own, which answers them.
    pub(super) hands_over: bool,
    /// That thread, once started.
    pub(super) handover: Option<Handover>,
    /// The hosts it may ask to be connected to, resolved at spawn.
    pub(super) egress: Vec<super::egress::Allowed>,
    pub(super) started: Instant,
    pub(super) life: Life,
    /// What it said about its own end (a violation, a failed allocation).
    pub(super) said: Said,
    pub(super) budget: Budget,
    pub(super) restarts: u32,
    /// Its filter's notification listener (from its lockdown report): the broker reads
    /// its violations from the kernel.
    pub(super) listener: Option<OwnedFd>,
    /// Its setup asked it for that listener (a filter the broker compiled with
    /// `user-notify`).
    pub(super) asked_listener: bool,
}

/// Where a renderer is in its life.
pub(super) enum Life {
    /// Spawned; its lockdown report is not verified yet (requests are refused).
    Starting,
    /// Verified from outside: its requests are served.
    Serving,
    /// Being ended, for this reason (the first one given); reaped when its pidfd says
    /// it has exited.
    Ending(EndReason),
}

impl Life {
    pub(super) fn is_ending(&self) -> bool {
        matches!(self, Life::Ending(_))
    }

    pub(super) fn is_serving(&self) -> bool {
        matches!(self, Life::Serving)
    }

    /// Record `reason` unless one is recorded already.
    pub(super) fn end_with(&mut self, reason: EndReason) {
        if !self.is_ending() {
            *self = Life::Ending(reason);
        }
    }
}

/// Frames waiting to be sent, and the channel's state.
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) queue: VecDeque<(Vec<u8>, Vec<OwnedFd>)>,
    /// Whether epoll also waits for room to write.
    pub(super) want_write: bool,
    /// When the peer hung up (or a send failed): nothing more is read or sent.
    pub(super) closed: Option<Instant>,
    /// Descriptors in `queue`.
    pub(super) queued_fds: usize,
    /// Descriptors sent since the peer was last seen to have read everything.
    pub(super) fds_unread: usize,
    /// An answer with descriptors waits for the peer to read what it was sent.
    pub(super) held: bool,
}

impl Outbox {
    pub(super) fn close(&mut self) {
        self.closed.get_or_insert_with(Instant::now);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.is_some()
    }
}

/// How often answers held for a renderer that has not read its descriptors are tried
/// again.
pub(super) const HELD_RETRY: Duration = Duration::from_millis(5);

/// How long a renderer whose channel closed may live on before it is ended (an exiting
/// renderer closes its channel a moment before its pidfd says it has exited).
pub(super) const CLOSED_GRACE: Duration = Duration::from_secs(1);

/// What the renderer reported about itself before it died.
#[derive(Default)]
pub(super) struct Said {
    pub(super) violation: Option<Violation>,
    pub(super) out_of_memory: Option<u64>,
}

impl Said {
    /// Keep what a last frame says about the renderer's end; drop anything else.
    pub(super) fn note<Req>(&mut self, frame: Up<Req, RendererNote>) {
        match frame {
            Up::Notify(RendererNote::Violation(v)) => self.violation = Some(v),
            Up::Notify(RendererNote::OutOfMemory { size }) => {
                self.out_of_memory = Some(u64::from_le_bytes(size))
            }
            _ => {}
        }
    }
}

/// Token buckets: messages (requests, notes, cancels — every frame) and log lines
/// forwarded, per second.
pub(super) struct Budget {
    pub(super) requests: f64,
    pub(super) logs: f64,
    pub(super) refilled: Instant,
}

impl Budget {
    /// Full buckets.
    pub(super) fn full(config: &BrokerConfig) -> Budget {
        Budget {
            requests: f64::from(config.max_requests_per_sec),
            logs: f64::from(config.max_logs_per_sec),
            refilled: Instant::now(),
        }
    }

    /// Add what the time since the last refill earned, up to one second's worth.
    pub(super) fn refill(&mut self, config: &BrokerConfig) {
        let (rate, log_rate) = (
            f64::from(config.max_requests_per_sec),
            f64::from(config.max_logs_per_sec),
        );
        let now = Instant::now();
        let dt = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.requests = (self.requests + dt * rate).min(rate);
        self.logs = (self.logs + dt * log_rate).min(log_rate);
    }

    /// Take one token from `bucket` if there is one.
    pub(super) fn take(bucket: &mut f64) -> bool {
        if *bucket >= 1.0 {
            *bucket -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A renderer asked of the zygote, not yet started: everything but its process.
pub(super) struct Launching<P: Protocol> {
    pub(super) id: u64,
    pub(super) spec: RendererSpec,
    pub(super) channel: BrokerChannel<P>,
    pub(super) files: Option<Arc<FileService>>,
    pub(super) hands_over: bool,
    pub(super) egress: Vec<super::egress::Allowed>,
    pub(super) restarts: u32,
    pub(super) asked_listener: bool,
    pub(super) started: Instant,
    /// `Broker::kill` came before the zygote's answer: ended as soon as it arrives.
    pub(super) ending: Option<EndReason>,
}

/// Restarts waiting for their backoff.
pub(super) struct PendingRestart {
    pub(super) due: Instant,
    pub(super) spec: RendererSpec,
    pub(super) restarts: u32,
    /// Its allow-list as resolved for the first spawn: a restart, made in the loop,
    /// never waits on the resolver.
    pub(super) egress: Vec<super::egress::Allowed>,
    pub(super) replaces: RendererId,
}

/// End `r` with `reason` (the first reason given stays): killed now, reaped later.
pub(super) fn end(r: &mut Renderer<impl Protocol>, reason: EndReason) {
    r.life.end_with(reason);
    r.child.signal_kill();
}

/// Why `r` ended: what the broker decided (including a violation it read from the
/// kernel), else what the kernel says of its end; the renderer's own reports only label
/// an end that matches them (a violation report with the handler's exit status 159, an
/// out-of-memory report with a death by signal) and cannot turn one ending into another.
pub(super) fn classify<P: Protocol>(r: &mut Renderer<P>, status: WaitStatus) -> EndReason {
    use nix::sys::signal::Signal;
    if let Life::Ending(reason) = std::mem::replace(&mut r.life, Life::Starting) {
        return reason;
    }
    let violation = |v: Violation, attested: bool| EndReason::SeccompViolation {
        nr: v.nr(),
        name: u32::try_from(v.nr())
            .ok()
            .and_then(|n| Arch::native().syscall_name(n)),
        args: v.args(),
        attested,
    };
    match status {
        WaitStatus::Exited(_, VIOLATION_EXIT) if r.said.violation.is_some() => r
            .said
            .violation
            .map_or(EndReason::Exited(VIOLATION_EXIT), |v| violation(v, false)),
        WaitStatus::Exited(_, code) => EndReason::Exited(code),
        WaitStatus::Signaled(_, Signal::SIGSYS, _) => match r.said.violation {
            // The kernel's SIGSYS, with the renderer's word for which call.
            Some(v) => violation(v, true),
            None => EndReason::SeccompViolation {
                nr: -1,
                name: None,
                args: [0; 6],
                attested: true,
            },
        },
        // After the report the process aborts: SIGABRT, or — as pid 1 of its namespace,
        // which ignores its own SIGABRT — glibc's fallback fault (SIGSEGV).
        WaitStatus::Signaled(_, sig, _) => match r.said.out_of_memory {
            Some(requested) => EndReason::OutOfMemory { requested },
            None => EndReason::Signaled(sig as i32),
        },
        _ => EndReason::Signaled(0),
    }
}

/// The exit status the renderer's SIGSYS handler ends it with (128 + SIGSYS: as pid 1
/// of its namespace, the renderer ignores its own SIGSYS).
const VIOLATION_EXIT: i32 = 128 + libc::SIGSYS;

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
use sandbox::protocol::{BrokerNote, RendererNote, Request, Response, Setup, Violation};
use sandbox::renderer::{Protocol, ZygoteReply, ZygoteRequest, CHANNEL_FD, ZYGOTE_ARG};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod dispatch;
mod egress;
mod events;
mod io;
mod notifier;
mod reaping;
mod renderer;
mod spawn;
mod zygote;

pub use egress::{CONNECT_TIMEOUT, MAX_CONNECTS};
pub use events::{BrokerConfig, EndReason, Event, RendererId, Service, SpawnError};
use notifier::{Handover, Heard};
use renderer::*;
use zygote::Zygote;

/// The broker. Dropping it kills and reaps every renderer.
pub struct Broker<S: Service> {
    config: BrokerConfig,
    service: S,
    epoll: Epoll,
    renderers: HashMap<u64, Renderer<S::Proto>>,
    pending: Vec<PendingRestart>,
    next_id: u64,
    events: VecDeque<Event>,
    /// Presets compiled for `SELF_PID` = 1, with or without the file calls handed over.
    compiled: HashMap<(Preset, bool), Vec<u8>>,
    /// The fork server, once started.
    zygote: Option<Zygote>,
    /// `shutdown` has begun: nothing is restarted any more.
    shutting_down: bool,
    /// Renderers asked of the zygote, in the order asked (it answers in that order).
    launching: VecDeque<Launching<S::Proto>>,
    /// Connections being made for renderers, by token.
    connects: HashMap<u64, egress::PendingConnect>,
    next_connect: u64,
}

const PIDFD_BIT: u64 = 1 << 63;
/// The epoll key of a renderer's seccomp listener: its id with this bit.
const LISTENER_BIT: u64 = 1 << 62;
/// The epoll key of the zygote's channel.
const ZYGOTE_KEY: u64 = PIDFD_BIT | LISTENER_BIT;

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
            shutting_down: false,
            launching: VecDeque::new(),
            connects: HashMap::new(),
            next_connect: 0,
        })
    }

    /// The embedder's service.
    pub fn service(&mut self) -> &mut S {
        &mut self.service
    }

    /// How many renderers are alive.
    pub fn len(&self) -> usize {
        self.renderers.len() + self.launching.len()
    }

    /// Whether none is alive, being started or waiting to be restarted.
    pub fn is_empty(&self) -> bool {
        self.renderers.is_empty() && self.pending.is_empty() && self.launching.is_empty()
    }

    /// The pid of a renderer (in the broker's pid namespace); `None` while the zygote
    /// is still starting it.
    pub fn pid(&self, id: RendererId) -> Option<i32> {
        self.renderers.get(&id.0).map(|r| r.child.pid())
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
        } else if let Some(l) = self.launching.iter_mut().find(|l| l.id == id.0) {
            l.ending.get_or_insert(reason);
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
            let id = key & !(PIDFD_BIT | LISTENER_BIT);
            if key == ZYGOTE_KEY {
                self.on_zygote();
            } else if key & egress::CONNECT_BIT != 0 {
                self.on_connect(key & !egress::CONNECT_BIT);
            } else if key & PIDFD_BIT != 0 {
                self.reap(id);
            } else if key & LISTENER_BIT != 0 {
                let hung_up = ev.events().contains(EpollFlags::EPOLLHUP)
                    && !ev.events().contains(EpollFlags::EPOLLIN);
                self.on_notification(id, hung_up);
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
        self.shutting_down = true;
        self.pending.clear();
        let ids: Vec<u64> = self.renderers.keys().copied().collect();
        for id in &ids {
            self.queue(*id, &Down::Notify(BrokerNote::Shutdown), Vec::new());
            if let Some(r) = self.renderers.get_mut(id) {
                r.life.end_with(EndReason::BrokerShutdown);
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

//! Ends: reaping, deadlines, restarts.

use super::*;

impl<S: Service> Broker<S> {
    pub(super) fn reap(&mut self, id: u64) {
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        // Not while a file-call thread reaches its memory through its pid.
        let reaping = r.handover.as_ref().map(|h| Arc::clone(&h.reaping));
        let held = reaping.as_ref().map(|g| g.lock());
        let status = match r.child.try_wait() {
            Ok(Some(s)) => s,
            _ => return,
        };
        drop(held);
        // Read what is left: a violation report may have arrived just before the death.
        while let Ok(Some((frame, _))) = r.channel.try_recv() {
            r.said.note(frame);
        }
        let Some(mut r) = self.renderers.remove(&id) else {
            return;
        };
        let _ = self.epoll.delete(r.channel.as_fd());
        let _ = self.epoll.delete(r.pidfd.as_fd());
        if let Some(l) = r.listener.take() {
            let _ = self.epoll.delete(l.as_fd());
        }
        if let Some(h) = r.handover.take() {
            let _ = self.epoll.delete(h.wake.as_fd());
        }
        let reason = classify(&mut r, status);
        let mut restarted_as = None;
        if let Some(policy) = r.spec.restart {
            // Nothing is restarted once shutdown has begun.
            if !self.shutting_down && reason != EndReason::BrokerShutdown && r.restarts < policy.max
            {
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
                    egress: r.egress.clone(),
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

    pub(super) fn next_timer(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Instant> = self.pending.iter().map(|p| p.due).min();
        if let Some(t) = self.next_connect_deadline() {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        for r in self.renderers.values() {
            let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
            if let Some(d) = r.spec.deadline {
                consider(r.started + d);
            }
            if matches!(r.life, Life::Starting) {
                consider(r.started + self.config.ready_timeout);
            }
            if let Some(t) = r.outbox.closed {
                consider(t + CLOSED_GRACE);
            }
            if r.outbox.held {
                consider(now + HELD_RETRY);
            }
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    pub(super) fn check_timers(&mut self) {
        self.expire_connects();
        let held: Vec<u64> = self
            .renderers
            .iter()
            .filter(|(_, r)| r.outbox.held)
            .map(|(id, _)| *id)
            .collect();
        for id in held {
            self.flush(id);
        }
        let now = Instant::now();
        let ready_timeout = self.config.ready_timeout;
        for r in self.renderers.values_mut() {
            if r.life.is_ending() {
                continue;
            }
            if r.spec.deadline.is_some_and(|d| now >= r.started + d) {
                end(r, EndReason::DeadlineExceeded);
            } else if r.outbox.closed.is_some_and(|t| now >= t + CLOSED_GRACE) {
                end(
                    r,
                    EndReason::BadMessage("closed its channel and went on running".into()),
                );
            } else if matches!(r.life, Life::Starting) && now >= r.started + ready_timeout {
                end(
                    r,
                    EndReason::LockdownFailed("no verified lockdown report in time".into()),
                );
            }
        }
    }

    pub(super) fn start_due_restarts(&mut self) {
        if self.shutting_down {
            self.pending.clear();
            return;
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due <= now);
        self.pending = later;
        for p in due {
            match self.spawn_with(p.spec.clone(), p.restarts, Some(p.egress.clone())) {
                Ok(new_id) => {
                    tracing::info!(old = %p.replaces, new = %new_id, "renderer restarted")
                }
                Err(e) => tracing::warn!(old = %p.replaces, "restart failed: {e}"),
            }
        }
    }
}

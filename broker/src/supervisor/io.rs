//! The channels: bounded outgoing queues, non-blocking sends, bounded reads per round.

use super::*;

impl<S: Service> Broker<S> {
    pub(super) fn queue(
        &mut self,
        id: u64,
        frame: &DownFrame<S::Proto>,
        fds: Vec<OwnedFd>,
    ) -> bool {
        let (max_queued, max_queued_fds) = (self.config.max_queued, self.config.max_queued_fds);
        let Some(r) = self.renderers.get_mut(&id) else {
            return false;
        };
        if r.life.is_ending() {
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
            Ok(bytes) => {
                r.outbox.queued_fds += fds.len();
                r.outbox.queue.push_back((bytes, fds));
            }
            Err(e) => {
                tracing::error!(renderer = id, "cannot encode a response: {e}");
                return false;
            }
        }
        if r.outbox.queue.len() > max_queued || r.outbox.queued_fds > max_queued_fds {
            end(r, EndReason::NotReading);
            return false;
        }
        self.flush(id);
        true
    }

    /// Send what is queued, as far as the socket takes it — and, for answers with
    /// descriptors, as far as `max_fds_in_flight` allows: past it they wait until the
    /// peer has read everything it was sent (`Channel::unread_by_peer` is 0).
    pub(super) fn flush(&mut self, id: u64) {
        let max_in_flight = self.config.max_fds_in_flight;
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        r.outbox.held = false;
        while let Some((bytes, fds)) = r.outbox.queue.front() {
            if !fds.is_empty() && r.outbox.fds_unread + fds.len() > max_in_flight {
                if r.channel.unread_by_peer().ok() == Some(0) {
                    r.outbox.fds_unread = 0;
                } else {
                    r.outbox.held = true;
                    break;
                }
            }
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            let sent_fds = fds.len();
            match r.channel.send_raw(bytes, &borrowed) {
                Ok(()) => {
                    r.outbox.queue.pop_front();
                    r.outbox.queued_fds -= sent_fds;
                    r.outbox.fds_unread += sent_fds;
                }
                Err(IpcError::WouldBlock) => break,
                Err(_) => {
                    // The peer is gone; its pidfd will tell why (or the grace runs out).
                    r.outbox.queue.clear();
                    r.outbox.queued_fds = 0;
                    r.outbox.close();
                    break;
                }
            }
        }
        // EPOLLOUT while the socket is full; held answers are retried on a short timer
        // (the socket stays writable, so EPOLLOUT would fire at once, again and again).
        let want = !r.outbox.queue.is_empty() && !r.outbox.is_closed() && !r.outbox.held;
        if want != r.outbox.want_write {
            let flags = if want {
                EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT
            } else {
                EpollFlags::EPOLLIN
            };
            let mut ev = EpollEvent::new(flags, id);
            let _ = self.epoll.modify(r.channel.as_fd(), &mut ev);
            r.outbox.want_write = want;
        }
    }

    /// Read up to `max_per_round` messages. A renderer that is being ended or whose
    /// channel is closed is no longer watched (a frame left pending would otherwise
    /// wake the loop at once, round after round); its pidfd says when it is gone.
    pub(super) fn read(&mut self, id: u64) {
        for _ in 0..self.config.max_per_round {
            let Some(r) = self.renderers.get_mut(&id) else {
                return;
            };
            if r.outbox.is_closed() || r.life.is_ending() {
                // What it sent meanwhile is read and dropped (descriptors closed), so
                // that nothing it sent stays in flight while it is ended.
                for _ in 0..self.config.max_per_round {
                    match r.channel.try_recv() {
                        Ok(Some((frame, _))) => r.said.note(frame),
                        Err(IpcError::Decode(_)) => {}
                        _ => break,
                    }
                }
                let _ = self.epoll.delete(r.channel.as_fd());
                return;
            }
            match r.channel.try_recv() {
                Ok(None) => return,
                Ok(Some((frame, fds))) => self.dispatch(id, frame, fds),
                Err(IpcError::Closed) => {
                    // Exiting (the pidfd comes next), or closed its channel and lives
                    // on: `check_timers` ends it after `CLOSED_GRACE`.
                    r.outbox.close();
                    let _ = self.epoll.delete(r.channel.as_fd());
                    return;
                }
                Err(e) => {
                    end(r, EndReason::BadMessage(e.to_string()));
                    let _ = self.epoll.delete(r.channel.as_fd());
                    return;
                }
            }
        }
    }
}

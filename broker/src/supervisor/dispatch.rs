//! One message from a renderer: its lockdown report, its notes, its requests.

use super::*;
use sandbox::protocol::OpenError;

impl<S: Service> Broker<S> {
    pub(super) fn dispatch(
        &mut self,
        id: u64,
        frame: Up<Request<<S::Proto as Protocol>::Req>, RendererNote>,
        fds: Vec<OwnedFd>,
    ) {
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        r.budget.refill(&self.config);
        // Every frame costs a token, notes and cancels as much as requests.
        if !Budget::take(&mut r.budget.requests) {
            return end(r, EndReason::RateLimited);
        }
        match frame {
            Up::Notify(RendererNote::LockedDown { status, .. }) => self.on_report(id, status, fds),
            Up::Notify(RendererNote::LockdownFailed { error }) => {
                let reason = if matches!(r.life, Life::Starting) {
                    EndReason::LockdownFailed(error)
                } else {
                    EndReason::BadMessage(
                        "a lockdown-failed note after the lockdown was verified".into(),
                    )
                };
                end(r, reason);
            }
            Up::Notify(RendererNote::Violation(v)) => r.said.violation = Some(v),
            Up::Notify(RendererNote::OutOfMemory { size }) => {
                r.said.out_of_memory = Some(u64::from_le_bytes(size))
            }
            Up::Notify(RendererNote::Log { level, line }) => self.on_log(id, level, line),
            Up::Cancel { .. } => {}
            Up::Request { id: req_id, body } => self.serve(id, req_id, body, fds),
        }
    }

    /// Its lockdown report: checked against what was asked, and from outside; then it
    /// may serve (it is told so), or it is ended.
    fn on_report(&mut self, id: u64, status: Box<Status>, mut fds: Vec<OwnedFd>) {
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        if !matches!(r.life, Life::Starting) {
            return end(r, EndReason::BadMessage("a second lockdown report".into()));
        }
        let expected = r.spec.namespaces.expected_new();
        let asked = Asked {
            opt_outs: &r.spec.opt_outs,
            new_namespaces: &expected,
        };
        if let Err(problems) = verify_from_outside(r.child.pid(), &status, &asked) {
            return end(r, EndReason::LockdownFailed(problems.join("; ")));
        }
        // Sent a filter compiled with `user-notify`, it must send the listener back.
        match (r.asked_listener, fds.pop()) {
            (true, Some(listener)) => {
                let key = EpollEvent::new(EpollFlags::EPOLLIN, id | LISTENER_BIT);
                // With its file calls handed over, a thread of its own reads the
                // listener and wakes the loop for a violation; else the loop reads it.
                let sync = self.config.sync_wake_up;
                let pid = u32::try_from(r.child.pid()).unwrap_or(0);
                let watched = match (&r.files, r.hands_over) {
                    (Some(files), true) => {
                        notifier::start(listener, Arc::clone(files), (id, pid), sync).and_then(
                            |h| {
                                let added = self.epoll.add(h.wake.as_fd(), key);
                                r.handover = Some(h);
                                added.map_err(std::io::Error::from)
                            },
                        )
                    }
                    _ => {
                        let added = self.epoll.add(listener.as_fd(), key);
                        r.listener = Some(listener);
                        added.map_err(std::io::Error::from)
                    }
                };
                if let Err(e) = watched {
                    return end(
                        r,
                        EndReason::LockdownFailed(format!("cannot watch its listener: {e}")),
                    );
                }
            }
            (true, None) => {
                return end(
                    r,
                    EndReason::LockdownFailed("no seccomp listener with the report".into()),
                )
            }
            (false, Some(_)) => {
                return end(
                    r,
                    EndReason::BadMessage("a listener nobody asked for".into()),
                )
            }
            (false, None) => {}
        }
        r.life = Life::Serving;
        self.events.push_back(Event::Ready {
            id: RendererId(id),
            status,
        });
        self.queue(id, &Down::Notify(BrokerNote::Verified), Vec::new());
    }

    /// A log line, within its rate, with control characters neutralised.
    fn on_log(&mut self, id: u64, level: u8, line: String) {
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        if !Budget::take(&mut r.budget.logs) {
            return;
        }
        // A renderer's text must not forge log lines or drive a terminal: control
        // characters (newlines, escapes) become U+FFFD.
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

    /// A request of a verified renderer, within its rate: to the built-in files
    /// service or to the embedder's, both [`Service`]s, and the answer queued.
    fn serve(
        &mut self,
        id: u64,
        req_id: u64,
        body: Request<<S::Proto as Protocol>::Req>,
        fds: Vec<OwnedFd>,
    ) {
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        if !r.life.is_serving() {
            return end(
                r,
                EndReason::BadMessage("a request before its lockdown report".into()),
            );
        }
        let from = RendererId(id);
        let answer = match body {
            // Answered when the connection is made or has failed.
            Request::Connect(req) => return self.start_connect(id, req_id, &req),
            Request::Open(req) => match r.files.as_ref() {
                Some(files) => Ok(match files.open(&req) {
                    Ok(fd) => (Response::Opened, vec![fd]),
                    Err(e) => (Response::OpenFailed(e), Vec::new()),
                }),
                None => Ok((Response::OpenFailed(OpenError::NotGranted), Vec::new())),
            },
            Request::Embedder(req) => self
                .service
                .handle(from, req, fds)
                .map(|(resp, out)| (Response::Embedder(resp), out)),
        };
        match answer {
            Ok((body, out)) => {
                self.queue(id, &Down::Response { id: req_id, body }, out);
            }
            Err(reason) => {
                if let Some(r) = self.renderers.get_mut(&id) {
                    end(r, EndReason::BadMessage(reason));
                }
            }
        }
    }

    /// A call its filter handed over: a violation the kernel attests (the renderer is
    /// ended, the call never returns), or nothing (the call went away; read again when
    /// woken). A listener that hangs up or fails is no longer watched.
    pub(super) fn on_notification(&mut self, id: u64, hung_up: bool) {
        let Some(r) = self.renderers.get_mut(&id) else {
            return;
        };
        if let Some(h) = r.handover.as_ref() {
            // Its file-call thread saw a violation (and keeps the call waiting), lost
            // the listener, or ended with the renderer.
            match h.hear() {
                Heard::Violation(n) => on_violation(r, &n),
                Heard::Lost(cause) => end(r, EndReason::LockdownFailed(cause)),
                Heard::Ended => {
                    let _ = self.epoll.delete(h.wake.as_fd());
                }
                Heard::Nothing => {}
            }
            return;
        }
        let Some(listener) = r.listener.as_ref() else {
            return;
        };
        let stop = |epoll: &Epoll, r: &mut Renderer<S::Proto>| {
            if let Some(l) = r.listener.take() {
                let _ = epoll.delete(l.as_fd());
            }
        };
        match sandbox::seccomp::receive(listener.as_fd()) {
            Ok(n) => {
                on_violation(r, &n);
                stop(&self.epoll, r);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) && !hung_up => {}
            Err(_) => stop(&self.epoll, r),
        }
    }
}

/// A violation the kernel attests (the call never returns): `r` is ended with it.
/// Another architecture's call is killed by the filter before any notification, so
/// one cannot come; it ends the renderer anyway, without a name.
fn on_violation<P: Protocol>(r: &mut Renderer<P>, n: &sandbox::seccomp::Notification) {
    let reason = if n.arch == Arch::native().audit_arch() {
        EndReason::SeccompViolation {
            nr: n.nr,
            name: u32::try_from(n.nr)
                .ok()
                .and_then(|nr| Arch::native().syscall_name(nr)),
            args: n.args,
            attested: true,
        }
    } else {
        EndReason::SeccompViolation {
            nr: -1,
            name: None,
            args: [0; 6],
            attested: true,
        }
    };
    // A violation the kernel attests outranks the broker's own shutdown.
    if matches!(r.life, Life::Ending(EndReason::BrokerShutdown)) {
        r.life = Life::Ending(reason);
        r.child.signal_kill();
    } else {
        end(r, reason);
    }
}

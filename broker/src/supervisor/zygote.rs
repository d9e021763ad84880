//! The fork server: renderers cloned from a zygote instead of exec'd one by one.

use super::*;

/// A started zygote (see `sandbox::renderer::run_zygote`).
pub(super) struct Zygote {
    _process: Spawned,
    ctl: Channel<ZygoteRequest, ZygoteReply>,
}

impl<S: Service> Broker<S> {
    /// Start a zygote from `spec`'s executable (re-executed with `--type=zygote`; it
    /// must call `sandbox::renderer::run_zygote`). From then on, renderers are cloned
    /// from it into their namespaces without an exec each (`spec`'s executable, args
    /// and environment are the zygote's; a `NetMode::Reuse` spawn still execs).
    pub fn start_zygote(&mut self, spec: &RendererSpec) -> Result<(), SpawnError> {
        let (ours, theirs) = sandbox::ipc::socket_pair()?;
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
        let ctl = Channel::from_fd(ours, self.config.limits)?;
        self.epoll
            .add(
                ctl.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, ZYGOTE_KEY),
            )
            .map_err(std::io::Error::from)?;
        self.zygote = Some(Zygote {
            _process: process,
            ctl,
        });
        Ok(())
    }

    /// Ask the zygote to clone `l`'s renderer (its end of the channel goes along):
    /// `None` when asked (the answer comes to `on_zygote`), `Some(l)` back when there
    /// is no zygote or it cannot be used for this spec (a reused network namespace).
    pub(super) fn ask_zygote(
        &mut self,
        l: Launching<S::Proto>,
        theirs: &OwnedFd,
        outside_id: Option<u32>,
    ) -> Result<Option<Launching<S::Proto>>, SpawnError> {
        let Some(z) = self.zygote.as_mut() else {
            return Ok(Some(l));
        };
        if matches!(l.spec.namespaces.net, NetMode::Reuse(_)) {
            return Ok(Some(l));
        }
        let request = ZygoteRequest::Spawn {
            flags: l.spec.namespaces.clone_flags(),
            outside_id,
        };
        z.ctl
            .send(&request, &[theirs.as_fd()])
            .map_err(|e| std::io::Error::other(format!("zygote: {e}")))?;
        self.launching.push_back(l);
        Ok(None)
    }

    /// The zygote's answers, in the order it was asked: each renderer started (taken in
    /// charge) or not (ended at once, with the zygote's reason).
    pub(super) fn on_zygote(&mut self) {
        loop {
            let Some(z) = self.zygote.as_mut() else {
                return;
            };
            let (pid, failure) = match z.ctl.try_recv() {
                Ok(None) => return,
                Ok(Some((ZygoteReply::Spawned { pid }, _))) => (Some(pid), None),
                Ok(Some((ZygoteReply::Failed { error }, _))) => (None, Some(error)),
                Err(e) => {
                    // The zygote is gone: nothing more will come of what was asked.
                    let _ = self.epoll.delete(z.ctl.as_fd());
                    self.zygote = None;
                    for l in std::mem::take(&mut self.launching) {
                        self.launch_failed(l.id, format!("zygote: {e}"));
                    }
                    return;
                }
            };
            let Some(l) = self.launching.pop_front() else {
                continue;
            };
            let id = l.id;
            match pid {
                Some(pid) => {
                    if let Err(e) = self.register(l, Spawned::adopt(pid)) {
                        self.launch_failed(id, e.to_string());
                    }
                }
                None => self.launch_failed(id, format!("zygote: {}", failure.unwrap_or_default())),
            }
        }
    }

    fn launch_failed(&mut self, id: u64, why: String) {
        self.events.push_back(Event::Ended {
            id: RendererId(id),
            reason: EndReason::LockdownFailed(format!("spawn: {why}")),
            restarted_as: None,
        });
    }
}

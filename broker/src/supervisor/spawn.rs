//! Starting a renderer: its channel, its setup, its process (exec'd or from the zygote).

use super::*;
use crate::services::file_calls::HANDED_OVER;

impl<S: Service> Broker<S> {
    /// The preset compiled once for renderers that are pid 1 of their own pid
    /// namespace (`SELF_PID` = 1), as raw `sock_filter` bytes, its violations made
    /// user notifications: the renderer sends the broker the listener, and the broker
    /// reads each violation from the kernel. With `hand_over`, the refusals of the
    /// file calls (`file_calls::HANDED_OVER`) are notifications too, answered by the
    /// broker beneath the renderer's grants.
    pub(super) fn compiled_preset(
        &mut self,
        preset: Preset,
        hand_over: bool,
    ) -> Result<Vec<u8>, String> {
        if let Some(bytes) = self.compiled.get(&(preset, hand_over)) {
            return Ok(bytes.clone());
        }
        let handed: &[&str] = if hand_over { HANDED_OVER } else { &[] };
        let program = preset.compile_handing_over(Arch::native(), 1, handed)?;
        let bytes = sandbox::bpf::to_bytes(&program.instructions);
        self.compiled.insert((preset, hand_over), bytes.clone());
        Ok(bytes)
    }

    /// Start a renderer.
    pub fn spawn(&mut self, spec: RendererSpec) -> Result<RendererId, SpawnError> {
        self.spawn_with(spec, 0, None)
    }

    /// Start a renderer that is restart number `restarts` of its spec: its files
    /// service, its channel with the setup already in it, its process, its place in
    /// the epoll set. `resolved`: its allow-list as resolved for an earlier spawn (a
    /// restart); else it is resolved now.
    pub(super) fn spawn_with(
        &mut self,
        spec: RendererSpec,
        restarts: u32,
        resolved: Option<Vec<super::egress::Allowed>>,
    ) -> Result<RendererId, SpawnError> {
        let files = if spec.grants.is_empty() {
            None
        } else {
            Some(Arc::new(
                FileService::new(spec.grants.clone())
                    .map_err(|e| SpawnError::Grants(e.to_string()))?,
            ))
        };
        let hands_over = hands_over_file_calls(&spec)?;
        // Names are resolved once, when the embedder spawns; a restart reuses them.
        let egress = match resolved {
            Some(allowed) => allowed,
            None => super::egress::resolve(&spec.connect)?,
        };
        let (channel, theirs, asked_listener) = self.channel_with_setup(&spec, hands_over)?;
        let id = self.next_id;
        self.next_id += 1;
        // A root broker's renderer runs as a user id of its own outside (not root, and
        // counted alone by RLIMIT_NPROC); an unprivileged broker's as the broker's user.
        let outside_id = (nix::unistd::geteuid().is_root() && spec.namespaces.user)
            .then(|| own_id(std::process::id(), id));
        let launching = Launching {
            id,
            spec,
            channel,
            files,
            hands_over,
            egress,
            restarts,
            asked_listener,
            started: Instant::now(),
            ending: None,
        };
        // From the zygote: asked for, and done when it answers (`on_zygote`); the loop
        // goes on serving meanwhile.
        let launching = match self.ask_zygote(launching, &theirs, outside_id)? {
            None => return Ok(RendererId(id)),
            Some(launching) => launching,
        };
        let child = exec_renderer(&launching.spec, &theirs, outside_id)?;
        drop(theirs);
        self.register(launching, child)?;
        Ok(RendererId(id))
    }

    /// Take a started renderer in charge: its pidfd and channel watched, its entry made.
    pub(super) fn register(
        &mut self,
        l: Launching<S::Proto>,
        child: Spawned,
    ) -> Result<(), SpawnError> {
        let pidfd = child.open_pidfd()?;
        let id = l.id;
        self.epoll
            .add(l.channel.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, id))
            .map_err(std::io::Error::from)?;
        self.epoll
            .add(
                pidfd.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, id | PIDFD_BIT),
            )
            .map_err(std::io::Error::from)?;
        let ending = l.ending;
        let mut r = Renderer {
            spec: l.spec,
            child,
            pidfd,
            channel: l.channel,
            outbox: Outbox::default(),
            files: l.files,
            hands_over: l.hands_over,
            handover: None,
            egress: l.egress,
            started: l.started,
            life: Life::Starting,
            said: Said::default(),
            budget: Budget::full(&self.config),
            restarts: l.restarts,
            listener: None,
            asked_listener: l.asked_listener,
        };
        if let Some(reason) = ending {
            end(&mut r, reason);
        } else if self.shutting_down {
            end(&mut r, EndReason::BrokerShutdown);
        }
        self.renderers.insert(id, r);
        Ok(())
    }

    /// The broker's end of a new channel, with the renderer's [`Setup`] already sent
    /// on it, the renderer's end, and whether it was asked for its filter's listener.
    fn channel_with_setup(
        &mut self,
        spec: &RendererSpec,
        hands_over: bool,
    ) -> Result<(BrokerChannel<S::Proto>, OwnedFd, bool), SpawnError> {
        let (ours, theirs) = sandbox::ipc::socket_pair()?;
        let setup_channel: Channel<Setup, ()> = Channel::from_fd(ours, self.config.limits)?;
        let setup = Setup {
            preset: spec.preset,
            rlimits: spec.rlimits,
            opt_outs: spec.opt_outs.clone(),
            landlock_min_abi: spec.landlock_min_abi,
            filter: match spec.namespaces.pid {
                false => None,
                true => match self.compiled_preset(spec.preset, hands_over) {
                    Ok(bytes) => Some(bytes),
                    Err(e) if hands_over => {
                        return Err(SpawnError::Grants(format!(
                            "the file calls cannot be handed over under the {} preset: {e}",
                            spec.preset
                        )))
                    }
                    // The renderer compiles the preset itself (and reports it).
                    Err(_) => None,
                },
            },
            listener: false,
        };
        let setup = Setup {
            listener: setup.filter.is_some()
                && !spec
                    .opt_outs
                    .contains(&sandbox::lockdown::OptOut::NoSeccomp),
            ..setup
        };
        let listener = setup.listener;
        // The socket buffer is empty: this cannot block or fail for want of room.
        setup_channel
            .send(&setup, &[])
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let channel = Channel::from_fd(setup_channel.into_fd(), self.config.limits)?;
        Ok((channel, theirs, listener))
    }
}

/// Whether `spec`'s renderer hands its file calls to the broker: when it has grants,
/// unless its spec says not to or it runs without seccomp. The handing over is part of
/// the filter the broker compiles, which needs the renderer to be pid 1 of its own pid
/// namespace: without that namespace, such a spec is refused rather than run with file
/// calls that silently fail.
fn hands_over_file_calls(spec: &RendererSpec) -> Result<bool, SpawnError> {
    let wanted = !spec.grants.is_empty()
        && spec.file_calls
        && !spec
            .opt_outs
            .contains(&sandbox::lockdown::OptOut::NoSeccomp);
    if wanted && !spec.namespaces.pid {
        return Err(SpawnError::Grants(
            "file calls beneath the grants are answered through the filter the broker \
             compiles, which needs the renderer's own pid namespace; keep \
             `Namespaces::pid`, or turn them off with `RendererSpec::file_calls(false)` \
             (`client.open` still works)"
                .into(),
        ));
    }
    Ok(wanted)
}

/// Exec `spec`'s binary in its namespaces, with `theirs` as its channel, standard
/// input and output on /dev/null, and standard error the broker's or /dev/null.
fn exec_renderer(
    spec: &RendererSpec,
    theirs: &OwnedFd,
    outside_id: Option<u32>,
) -> Result<Spawned, SpawnError> {
    let devnull = std::fs::File::open("/dev/null")?;
    let stderr = if spec.inherit_stderr {
        2
    } else {
        devnull.as_raw_fd()
    };
    Ok(spawn(&SpawnSpec {
        exe: spec.exe.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        fds: vec![
            (devnull.as_raw_fd(), 0),
            (devnull.as_raw_fd(), 1),
            (theirs.as_raw_fd(), CHANNEL_FD),
            (stderr, 2),
        ],
        namespaces: spec.namespaces.clone(),
        extra_id: None,
        outside_id,
    })?)
}

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
        self.zygote = Some(Zygote {
            _process: process,
            ctl: Channel::from_fd(ours, self.config.limits)?,
        });
        Ok(())
    }

    /// Clone a renderer from the zygote; its end of the channel goes along.
    pub(super) fn spawn_from_zygote(
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
}

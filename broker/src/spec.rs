//! What to start: a `Command`-style builder for renderers.

use crate::services::files::Grant;
use sandbox::launch::Namespaces;
use sandbox::lockdown::{OptOut, Rlimits};
use sandbox::policy::presets::Preset;
use std::path::PathBuf;
use std::time::Duration;

pub use sandbox::renderer::ROLE_ARG as RENDERER_ROLE_ARG;

/// Restart a renderer that ended (for any reason but broker shutdown), with a delay
/// that doubles after each restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restart {
    /// How many restarts at most.
    pub max: u32,
    /// The first delay.
    pub initial_backoff: Duration,
}

/// A renderer to start. The environment is empty unless set; the default executable
/// is the running binary re-executed with [`RENDERER_ROLE_ARG`].
#[derive(Clone, Debug)]
pub struct RendererSpec {
    pub(crate) exe: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) preset: Preset,
    pub(crate) rlimits: Rlimits,
    pub(crate) opt_outs: Vec<OptOut>,
    pub(crate) landlock_min_abi: u32,
    pub(crate) namespaces: Namespaces,
    pub(crate) grants: Vec<Grant>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) restart: Option<Restart>,
    pub(crate) inherit_stderr: bool,
    pub(crate) file_calls: bool,
    pub(crate) connect: Vec<(String, u16)>,
}

impl RendererSpec {
    /// The running executable, re-executed with [`RENDERER_ROLE_ARG`].
    pub fn current_exe() -> std::io::Result<RendererSpec> {
        let mut s = RendererSpec::new(std::env::current_exe()?);
        s.args.push(RENDERER_ROLE_ARG.to_string());
        Ok(s)
    }

    /// Another executable, which must call `sandbox::renderer::run`.
    pub fn new(exe: impl Into<PathBuf>) -> RendererSpec {
        RendererSpec {
            exe: exe.into(),
            args: Vec::new(),
            env: Vec::new(),
            preset: Preset::Renderer,
            rlimits: Rlimits::default(),
            opt_outs: Vec::new(),
            landlock_min_abi: 1,
            namespaces: Namespaces::default(),
            grants: Vec::new(),
            deadline: None,
            restart: None,
            inherit_stderr: true,
            file_calls: true,
            connect: Vec::new(),
        }
    }

    /// Add an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Set an environment variable (the environment is otherwise empty).
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The seccomp preset (default `renderer`).
    pub fn preset(mut self, p: Preset) -> Self {
        self.preset = p;
        self
    }

    /// Resource limits.
    pub fn rlimits(mut self, r: Rlimits) -> Self {
        self.rlimits = r;
        self
    }

    /// Address-space limit in bytes.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.rlimits.address_space = bytes;
        self
    }

    /// A named opt-out (shown in the renderer's status).
    pub fn opt_out(mut self, o: OptOut) -> Self {
        self.opt_outs.push(o);
        self
    }

    /// Namespaces to create.
    pub fn namespaces(mut self, n: Namespaces) -> Self {
        self.namespaces = n;
        self
    }

    /// A file grant the files service honours for this renderer (`client.open`, and
    /// its own file calls unless [`RendererSpec::file_calls`] is off). Writing through
    /// a read-write grant also needs a non-zero `Rlimits::file_size`: a renderer grows
    /// no file by default.
    pub fn grant(mut self, g: Grant) -> Self {
        self.grants.push(g);
        self
    }

    /// Kill the renderer this long after it was started.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// Restart it when it ends.
    pub fn restart(mut self, r: Restart) -> Self {
        self.restart = Some(r);
        self
    }

    /// Whether the renderer's own file calls (`open`, `stat`, `access`, `readlink` and
    /// their `*at` forms — e.g. `std::fs::File::open`) are answered by the broker
    /// beneath its grants (default: yes, when it has grants). Their filter hands them
    /// to the broker as user notifications; this needs the renderer's pid namespace.
    /// Off, those calls fail with `EACCES` and files come only through `client.open`.
    pub fn file_calls(mut self, yes: bool) -> Self {
        self.file_calls = yes;
        self
    }

    /// Let the renderer ask for a TCP connection to `host:port`
    /// (`RendererClient::connect`, naming the host exactly as here). The broker
    /// resolves `host` when it spawns the renderer (a name that resolves to nothing
    /// fails the spawn), connects outside the renderer's network namespace to those
    /// addresses only, and hands the connected socket over. The renderer itself still
    /// cannot make a socket or connect one.
    pub fn connect_to(mut self, host: impl Into<String>, port: u16) -> Self {
        self.connect.push((host.into(), port));
        self
    }

    /// Whether the renderer shares the broker's stderr (default) or gets /dev/null.
    pub fn inherit_stderr(mut self, yes: bool) -> Self {
        self.inherit_stderr = yes;
        self
    }
}

//! A plugin host: each plugin is a shared library (a cdylib crate of this workspace),
//! loaded by a generic plugin process (this binary with `--type=renderer --plugin
//! PATH`) before it locks itself down with the `plugin` preset, and called through a
//! typed interface: the broker hands it jobs, it answers. A crashing plugin, a looping
//! one, one that tries to reach files and the network, and one that allocates without
//! bound are contained and reported, while the host keeps serving the good one.
//!
//! ```sh
//! examples/plugin_host/run
//! ```

mod sys;

use broker::{Broker, BrokerConfig, EndReason, Event, RendererId, RendererSpec, Service};
use sandbox::ipc::Message;
use sandbox::policy::presets::Preset;
use sandbox::renderer::{self, Protocol};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a plugin process asks.
#[derive(Serialize, Deserialize)]
enum Req {
    /// The next job.
    Next,
    /// The plugin's answer to the last job.
    Answer(String),
}
impl Message for Req {
    fn validate(&self) -> Result<(), String> {
        match self {
            Req::Answer(a) if a.len() > 4096 => Err("answer over 4 KiB".into()),
            _ => Ok(()),
        }
    }
}

/// A job, or none left.
#[derive(Serialize, Deserialize)]
struct Job(Option<String>);
impl Message for Job {}

struct Plugins;
impl Protocol for Plugins {
    type Req = Req;
    type Resp = Job;
    type Note = ();
}

// ------------------------------------------------------------------------------------
// The plugin process.

fn plugin_process(path: &Path) -> ! {
    // Loaded before the lockdown: the library's pages are mapped while the file
    // system and mmap still allow it; afterwards the plugin preset only lets the
    // process run code it already has.
    let plugin = sys::Plugin::load(path);
    renderer::run::<Plugins>(move |_status, client| {
        let Ok(plugin) = &plugin else { return 3 };
        loop {
            match client.call(Req::Next, Duration::from_secs(5)) {
                Ok(Job(Some(input))) => {
                    let answer = plugin
                        .call(&input)
                        .unwrap_or_else(|e| format!("error: {e}"));
                    if client
                        .call(Req::Answer(answer), Duration::from_secs(5))
                        .is_err()
                    {
                        return 2;
                    }
                }
                Ok(Job(None)) => return 0,
                Err(_) => return 1,
            }
        }
    })
}

// ------------------------------------------------------------------------------------
// The host.

const JOBS: &[&str] = &[
    "the quick brown fox",
    "jumps over the lazy dog",
    "sandboxed plugins",
];

#[derive(Default)]
struct Host {
    names: HashMap<RendererId, String>,
    jobs: HashMap<RendererId, VecDeque<String>>,
    answers: BTreeMap<String, Vec<String>>,
}

impl Service for Host {
    type Proto = Plugins;
    fn handle(
        &mut self,
        from: RendererId,
        req: Req,
        _: Vec<OwnedFd>,
    ) -> Result<(Job, Vec<OwnedFd>), String> {
        let name = self.names.get(&from).cloned().unwrap_or_default();
        match req {
            Req::Next => Ok((
                Job(self.jobs.get_mut(&from).and_then(VecDeque::pop_front)),
                Vec::new(),
            )),
            Req::Answer(a) => {
                println!("  {name}: answered {a:?}");
                self.answers.entry(name).or_default().push(a);
                Ok((Job(None), Vec::new()))
            }
        }
    }
}

/// What the host expects of each plugin, and whether its end matches.
fn contained(name: &str, answers: &[String], reason: &EndReason) -> bool {
    match name {
        "good" => answers.len() == JOBS.len() && *reason == EndReason::Exited(0),
        // Both attempts refused inside the sandbox, the answer still delivered.
        "files" => answers
            .first()
            .is_some_and(|a| a.matches("Err").count() == 2),
        "looping" => *reason == EndReason::DeadlineExceeded,
        // A fault or a failed allocation ends it, by a signal or an out-of-memory report.
        "crash" | "hog" => matches!(
            reason,
            EndReason::Signaled(_) | EndReason::OutOfMemory { .. }
        ),
        _ => false,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--plugin") {
        if args.iter().any(|a| a == renderer::ROLE_ARG) {
            plugin_process(Path::new(args.get(i + 1).map_or("", String::as_str)));
        }
    }
    std::process::exit(match host(&args[1..]) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("plugin_host: {e}");
            2
        }
    })
}

/// The plugins, copied where a plugin process can read them: a root broker runs each
/// under a user id of its own, which cannot enter the caller's private folders (a
/// checkout in a 0700 `mktemp -d`, say). The folder is removed when this is dropped.
struct Installed(PathBuf);

impl Installed {
    fn new(libraries: &[String]) -> Result<(Installed, Vec<PathBuf>), String> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("plugin-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let installed = Installed(dir.clone());
        let open =
            |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
        open(&dir, 0o755).map_err(|e| e.to_string())?;
        let mut paths = Vec::new();
        for lib in libraries {
            let from = Path::new(lib);
            let to = dir.join(
                from.file_name()
                    .ok_or_else(|| format!("{lib}: no file name"))?,
            );
            std::fs::copy(from, &to).map_err(|e| format!("{lib}: {e}"))?;
            open(&to, 0o644).map_err(|e| e.to_string())?;
            paths.push(to);
        }
        Ok((installed, paths))
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host(libraries: &[String]) -> Result<bool, String> {
    let (_installed, libraries) = Installed::new(libraries)?;
    let mut broker =
        Broker::new(BrokerConfig::default(), Host::default()).map_err(|e| e.to_string())?;
    for path in &libraries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.trim_start_matches("libplugin_").to_string())
            .unwrap_or_default();
        let spec = RendererSpec::current_exe()
            .map_err(|e| e.to_string())?
            .arg("--plugin")
            .arg(path.display().to_string())
            .preset(Preset::Plugin)
            .memory_limit(256 << 20)
            .deadline(Duration::from_secs(3))
            .inherit_stderr(false);
        let id = broker.spawn(spec).map_err(|e| format!("{name}: {e}"))?;
        println!("{name}: plugin process spawned");
        broker.service().names.insert(id, name);
        broker
            .service()
            .jobs
            .insert(id, JOBS.iter().map(|j| j.to_string()).collect());
    }
    let mut ends = BTreeMap::new();
    let mut pids = HashMap::new();
    while !broker.is_empty() {
        for event in broker.poll(Duration::from_millis(100)) {
            match event {
                Event::Ready { id, .. } => {
                    pids.insert(id, broker.pid(id).unwrap_or(0));
                }
                Event::Ended { id, reason, .. } => {
                    let name = broker.service().names.get(&id).cloned().unwrap_or_default();
                    println!("  {name}: ended: {reason:?}");
                    ends.insert(name, (pids.get(&id).copied().unwrap_or(0), reason));
                }
                Event::Log { .. } => {}
            }
        }
    }
    println!();
    println!("| plugin | process pid | answers | end | contained as expected |");
    println!("|---|---:|---:|---|---|");
    let mut all = ends.len() == libraries.len();
    for (name, (pid, reason)) in &ends {
        let answers = broker
            .service()
            .answers
            .get(name)
            .cloned()
            .unwrap_or_default();
        let ok = contained(name, &answers, reason);
        all &= ok;
        println!(
            "| {name} | {pid} | {} | {reason:?} | {} |",
            answers.len(),
            if ok { "yes" } else { "NO" }
        );
    }
    println!();
    println!(
        "{}",
        if all {
            "every plugin contained; the good one served every job"
        } else {
            "SOMETHING UNEXPECTED happened"
        }
    );
    Ok(all)
}

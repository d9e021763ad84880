//! A minimal embedding: this one binary is the broker and, re-executed with
//! `--type=renderer`, the renderer.
//!
//! The broker grants one directory read-only and serves one request type ("publish a
//! word count"). The renderer locks itself down, asks the broker to open the input file,
//! counts its words, publishes the count, shows that it can reach nothing by itself,
//! and finally tries a forbidden syscall — which the broker reports by name.
//!
//! ```sh
//! cargo run --release -p broker --example hello_renderer
//! ```

use broker::services::files::{Access, Grant};
use broker::{Broker, BrokerConfig, Event, RendererId, RendererSpec, Service};
use sandbox::ipc::Message;
use sandbox::protocol::OpenMode;
use sandbox::renderer::{self, Protocol, RendererClient};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// The one request this embedder serves.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Publish {
    file: String,
    words: u64,
}

impl Message for Publish {
    fn validate(&self) -> Result<(), String> {
        if self.file.len() > 256 {
            return Err("file name too long".into());
        }
        Ok(())
    }
}

struct Hello;
impl Protocol for Hello {
    type Req = Publish;
    type Resp = bool;
    type Note = ();
}

/// The broker side: prints what renderers publish.
struct Publisher;
impl Service for Publisher {
    type Proto = Hello;
    fn handle(
        &mut self,
        from: RendererId,
        req: Publish,
        _fds: Vec<OwnedFd>,
    ) -> Result<(bool, Vec<OwnedFd>), String> {
        println!("broker: {from} says {} has {} words", req.file, req.words);
        Ok((true, Vec::new()))
    }
}

fn renderer_main(client: &mut RendererClient<Hello>) -> i32 {
    let t = Duration::from_secs(5);
    let dir = std::env::var("INPUT_DIR").unwrap_or_default();
    let path = format!("{dir}/input.txt");
    let words = match client.open(&path, OpenMode::Read, t) {
        Ok(fd) => {
            let mut text = String::new();
            let _ = std::fs::File::from(fd).read_to_string(&mut text);
            text.split_whitespace().count() as u64
        }
        Err(e) => {
            let _ = client.log(1, &format!("could not open {path}: {e}"));
            return 1;
        }
    };
    let _ = client.call(
        Publish {
            file: path.clone(),
            words,
        },
        t,
    );
    let direct = std::fs::File::open("/etc/passwd")
        .map(|_| ())
        .map_err(|e| e.to_string());
    let _ = client.log(3, &format!("opening /etc/passwd myself: {direct:?}"));
    let via_broker = client
        .open("/etc/passwd", OpenMode::Read, t)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let _ = client.log(
        3,
        &format!("asking the broker for /etc/passwd: {via_broker:?}"),
    );
    // Not in the renderer preset: the filter traps it, the SIGSYS handler reports it,
    // and the process dies.
    let _ = nix::sys::ptrace::attach(nix::unistd::Pid::from_raw(1));
    0
}

fn main() {
    if std::env::args().any(|a| a == renderer::ROLE_ARG) {
        renderer::run::<Hello>(|_locked, client| renderer_main(client));
    }
    let dir = std::env::temp_dir().join(format!("hello-renderer-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("input.txt"),
            "the quick brown fox jumps over the lazy dog\n",
        )
    }) {
        eprintln!("cannot prepare the input: {e}");
        std::process::exit(1);
    }
    let run = || -> Result<(), String> {
        let mut broker =
            Broker::new(BrokerConfig::default(), Publisher).map_err(|e| e.to_string())?;
        let spec = RendererSpec::current_exe()
            .map_err(|e| e.to_string())?
            .env("INPUT_DIR", dir.display().to_string())
            .grant(Grant::new(&dir, Access::ReadOnly))
            .deadline(Duration::from_secs(10));
        broker.spawn(spec).map_err(|e| e.to_string())?;
        let start = std::time::Instant::now();
        while !broker.is_empty() && start.elapsed() < Duration::from_secs(15) {
            for event in broker.poll(Duration::from_millis(100)) {
                match event {
                    Event::Ready { id, status } => {
                        println!("broker: {id} is locked down and verified:\n{status}")
                    }
                    Event::Log { id, line, .. } => println!("broker: {id} logs: {line}"),
                    Event::Ended { id, reason, .. } => println!("broker: {id} ended: {reason:?}"),
                }
            }
        }
        Ok(())
    };
    let result = run();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("hello_renderer: {e}");
        std::process::exit(1);
    }
}

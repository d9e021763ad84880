//! A small sandboxed browser: one renderer per site (Chromium's site isolation, in
//! small). Each renderer locks itself down, then parses its site's untrusted Markdown
//! pages, reads their images and stylesheet with plain `std::fs` calls (answered by the
//! broker beneath that site's folder only), decodes and draws them, and hands the
//! pixels back in a sealed memfd. The broker writes `out/<site>/<page>.png`, a "sad
//! tab" for every page whose renderer had to be stopped, and `out/overview.png`; it
//! prints a table and exits non-zero unless every normal page rendered and every
//! hostile one was contained.
//!
//! ```sh
//! cargo run --release -p broker --example browser
//! ```
//!
//! The pages are in `examples/pages/<site>/`; the hostile ones are the `evil-*` sites
//! (a `<!-- demo: ... -->` comment makes their renderer misbehave on purpose).

mod paint;
mod render;

use broker::services::files::{Access, Grant};
use broker::{Broker, BrokerConfig, EndReason, Event, RendererId, RendererSpec, Service};
use sandbox::ipc::blob::SealedBlob;
use sandbox::ipc::Message;
use sandbox::lockdown::Rlimits;
use sandbox::renderer::{self, Protocol, RendererClient};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Renderers built from this binary report failed allocations.
#[global_allocator]
static ALLOC: renderer::ReportingAllocator = renderer::ReportingAllocator;

/// What a renderer asks.
#[derive(Debug, Serialize, Deserialize)]
enum Req {
    /// The next page of its site to render.
    Next,
    /// Nothing (what a flooding page sends).
    Ping,
    /// A page drawn: its pixels (premultiplied RGBA) come in a sealed memfd.
    Done(Done),
}

#[derive(Debug, Serialize, Deserialize)]
struct Done {
    page: String,
    width: u32,
    height: u32,
    /// What the renderer says went wrong (resources refused or broken).
    notes: Vec<String>,
}

impl Message for Req {
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, Req::Done(_)))
    }
    const MAX_FDS: usize = 1;
    fn validate(&self) -> Result<(), String> {
        let Req::Done(d) = self else { return Ok(()) };
        let notes_ok = d.notes.len() <= 16 && d.notes.iter().all(|n| n.len() <= 300);
        if d.page.len() > 64 || !notes_ok {
            return Err("oversized page name or notes".into());
        }
        if d.width != render::WIDTH || d.height == 0 || d.height > render::MAX_HEIGHT {
            return Err(format!("bad page size {}x{}", d.width, d.height));
        }
        Ok(())
    }
}

/// What the broker answers.
#[derive(Debug, Serialize, Deserialize)]
enum Resp {
    Page(Option<String>),
    Ok,
}
impl Message for Resp {}

struct Browser;
impl Protocol for Browser {
    type Req = Req;
    type Resp = Resp;
    type Note = ();
}

// ------------------------------------------------------------------------------------
// The renderer.

fn renderer_main(client: &mut RendererClient<Browser>) -> i32 {
    let site = std::env::var("SITE").unwrap_or_default();
    let fonts = paint::fonts();
    let t = Duration::from_secs(10);
    loop {
        let page = match client.call(Req::Next, t) {
            Ok(Resp::Page(Some(page))) => page,
            Ok(_) => return 0,
            Err(_) => return 1,
        };
        // A plain file call, answered by the broker beneath this site's folder.
        let markdown = std::fs::read_to_string(format!("{site}/{page}")).unwrap_or_default();
        misbehave(&markdown, client);
        let (pixmap, notes) = render::render(&fonts, &site, &markdown);
        let Ok(blob) = SealedBlob::from_bytes("page", pixmap.data()) else {
            return 2;
        };
        let done = Done {
            page,
            width: pixmap.width(),
            height: pixmap.height(),
            notes,
        };
        let fd = blob.into_fd();
        if client
            .call_with_fds(Req::Done(done), &[fd.as_fd()], t)
            .is_err()
        {
            return 3;
        }
    }
}

/// What the hostile pages make their renderer do (a demo-only directive).
fn misbehave(markdown: &str, client: &mut RendererClient<Browser>) {
    let wants = |what: &str| markdown.contains(&format!("<!-- demo: {what} -->"));
    if wants("syscall") {
        // Not in the renderer preset: the kernel stops the call, the broker ends it.
        let _ = nix::unistd::getppid();
    }
    if wants("loop") {
        loop {
            std::hint::black_box(0u64);
        }
    }
    if wants("alloc") {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 64 << 20]);
        }
    }
    if wants("flood") {
        for _ in 0..1_000_000 {
            let _ = client.call(Req::Ping, Duration::from_secs(1));
        }
    }
}

// ------------------------------------------------------------------------------------
// The broker.

/// What the demo expects of a site's pages.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Drawn, nothing refused.
    Rendered,
    /// Drawn, with a resource refused or broken (said in the notes).
    Refused,
    /// Its renderer stopped, for a reason whose words include this.
    Stopped(&'static str),
}

const EXPECT: &[(&str, Expect)] = &[
    ("bank", Expect::Rendered),
    ("blog", Expect::Rendered),
    ("gallery", Expect::Rendered),
    ("news", Expect::Rendered),
    ("evil-alloc", Expect::Stopped("out of memory")),
    ("evil-bomb", Expect::Refused),
    ("evil-flood", Expect::Stopped("rate")),
    ("evil-image", Expect::Refused),
    ("evil-loop", Expect::Stopped("deadline")),
    ("evil-syscall", Expect::Stopped("seccomp violation")),
    ("evil-traversal", Expect::Refused),
];

/// One page's result.
struct Outcome {
    pid: i32,
    layers: String,
    millis: u128,
    /// The pixels, or `None` for a sad tab.
    picture: tiny_skia::Pixmap,
    words: String,
    good: bool,
}

/// A renderer at work.
struct Working {
    site: String,
    pid: i32,
    layers: String,
    page: Option<(String, Instant)>,
}

/// The broker's service: pages handed out site by site, pictures taken back.
struct Pages {
    root: PathBuf,
    out: PathBuf,
    queues: HashMap<String, VecDeque<String>>,
    working: HashMap<RendererId, Working>,
    results: BTreeMap<(String, String), Outcome>,
}

impl Service for Pages {
    type Proto = Browser;
    fn handle(
        &mut self,
        from: RendererId,
        req: Req,
        mut fds: Vec<OwnedFd>,
    ) -> Result<(Resp, Vec<OwnedFd>), String> {
        let w = self.working.get_mut(&from).ok_or("unknown renderer")?;
        match req {
            Req::Ping => Ok((Resp::Ok, Vec::new())),
            Req::Next => {
                let next = self.queues.get_mut(&w.site).and_then(VecDeque::pop_front);
                if let Some(page) = &next {
                    println!("  {}/{page}: rendering in renderer pid {}", w.site, w.pid);
                    w.page = Some((page.clone(), Instant::now()));
                }
                Ok((Resp::Page(next), Vec::new()))
            }
            Req::Done(done) => {
                let (page, started) = w.page.take().ok_or("a page nobody asked for")?;
                if page != done.page {
                    return Err(format!("answered {} for {page}", done.page));
                }
                let len = (done.width * done.height * 4) as usize;
                let blob = SealedBlob::receive(fds.pop().ok_or("no pixels")?, len)
                    .map_err(|e| e.to_string())?;
                let data = blob.read_to_vec().map_err(|e| e.to_string())?;
                let size = tiny_skia::IntSize::from_wh(done.width, done.height).ok_or("size")?;
                let picture =
                    tiny_skia::Pixmap::from_vec(data, size).ok_or("pixels do not fill the page")?;
                let site = w.site.clone();
                let expect = expectation(&site);
                let words = match done.notes.first() {
                    None => "rendered".to_string(),
                    Some(n) => format!("rendered; refused {n}"),
                };
                let good = match expect {
                    Expect::Rendered => done.notes.is_empty(),
                    Expect::Refused => !done.notes.is_empty(),
                    Expect::Stopped(_) => false,
                };
                let outcome = Outcome {
                    pid: w.pid,
                    layers: w.layers.clone(),
                    millis: started.elapsed().as_millis(),
                    picture,
                    words,
                    good,
                };
                self.save(&site, &page, &outcome)?;
                self.results.insert((site, page), outcome);
                Ok((Resp::Ok, Vec::new()))
            }
        }
    }
}

impl Pages {
    fn save(&self, site: &str, page: &str, o: &Outcome) -> Result<(), String> {
        let dir = self.out.join(site);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let png = o.picture.encode_png().map_err(|e| e.to_string())?;
        let name = page.trim_end_matches(".md");
        std::fs::write(dir.join(format!("{name}.png")), png).map_err(|e| e.to_string())
    }

    /// The renderer of `site`: its folder granted read-only, nothing else.
    fn spec(&self, site: &str) -> std::io::Result<RendererSpec> {
        let dir = self.root.join(site);
        Ok(RendererSpec::current_exe()?
            .env("SITE", dir.display().to_string())
            .grant(Grant::new(&dir, Access::ReadOnly).recursive())
            // Its page goes back in a memfd: a file it may grow to a page's size.
            .rlimits(Rlimits {
                file_size: 16 << 20,
                ..Rlimits::default()
            })
            .memory_limit(512 << 20)
            .deadline(Duration::from_secs(5))
            .inherit_stderr(false))
    }
}

fn expectation(site: &str) -> Expect {
    EXPECT
        .iter()
        .find(|(s, _)| *s == site)
        .map_or(Expect::Rendered, |(_, e)| *e)
}

/// An end reason in words.
fn words(reason: &EndReason) -> String {
    match reason {
        EndReason::SeccompViolation { name, nr, .. } => {
            format!(
                "seccomp violation: {} (the kernel stopped the call)",
                name.unwrap_or("?")
            ) + &if name.is_none() {
                format!(" nr {nr}")
            } else {
                String::new()
            }
        }
        EndReason::DeadlineExceeded => "deadline exceeded: stopped after 5 s".into(),
        EndReason::OutOfMemory { requested } => {
            format!("out of memory: asked for {} MiB more", requested >> 20)
        }
        EndReason::RateLimited => "flooded the broker: rate limited".into(),
        other => format!("{other:?}"),
    }
}

fn main() {
    if std::env::args().any(|a| a == renderer::ROLE_ARG) {
        renderer::run::<Browser>(|_locked, client| renderer_main(client));
    }
    std::process::exit(match browse() {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("browser: {e}");
            2
        }
    })
}

fn browse() -> Result<bool, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pages");
    let root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let out = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join("out");
    let mut queues = HashMap::new();
    for entry in std::fs::read_dir(&root)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let site = entry.file_name().to_string_lossy().into_owned();
        let mut pages: Vec<String> = std::fs::read_dir(entry.path())
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|p| p.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .collect();
        pages.sort();
        queues.insert(site, pages.into());
    }
    let config = BrokerConfig {
        max_requests_per_sec: 1000,
        ..BrokerConfig::default()
    };
    let pages = Pages {
        root,
        out: out.clone(),
        queues,
        working: HashMap::new(),
        results: BTreeMap::new(),
    };
    let mut broker = Broker::new(config, pages).map_err(|e| e.to_string())?;
    let mut sites: Vec<String> = broker.service().queues.keys().cloned().collect();
    sites.sort();
    println!(
        "browser: {} sites, one sandboxed renderer each",
        sites.len()
    );
    for site in &sites {
        start(&mut broker, site)?;
    }
    let fonts = paint::fonts();
    while !broker.is_empty() {
        for event in broker.poll(Duration::from_millis(100)) {
            on_event(&mut broker, &fonts, event)?;
        }
    }
    report(broker.service(), &fonts, &out)
}

fn start(broker: &mut Broker<Pages>, site: &str) -> Result<(), String> {
    let spec = broker.service().spec(site).map_err(|e| e.to_string())?;
    let id = broker.spawn(spec).map_err(|e| format!("{site}: {e}"))?;
    broker.service().working.insert(
        id,
        Working {
            site: site.to_string(),
            pid: 0,
            layers: String::new(),
            page: None,
        },
    );
    Ok(())
}

fn on_event(broker: &mut Broker<Pages>, fonts: &paint::Fonts, event: Event) -> Result<(), String> {
    match event {
        Event::Ready { id, status } => {
            let pid = broker.pid(id).unwrap_or(0);
            let verified = status.layers.iter().filter(|l| l.verified).count();
            if let Some(w) = broker.service().working.get_mut(&id) {
                w.pid = pid;
                w.layers = format!("{verified}/{}", status.layers.len());
                println!(
                    "{}: renderer pid {pid} locked down, {} layers verified",
                    w.site, w.layers
                );
            }
        }
        Event::Ended { id, reason, .. } => {
            let Some(w) = broker.service().working.remove(&id) else {
                return Ok(());
            };
            if let Some((page, started)) = w.page {
                let why = words(&reason);
                println!("  {}/{page}: stopped: {why}", w.site);
                let good = matches!(expectation(&w.site), Expect::Stopped(k) if why.contains(k));
                let outcome = Outcome {
                    pid: w.pid,
                    layers: w.layers.clone(),
                    millis: started.elapsed().as_millis(),
                    picture: paint::sad_tab(fonts, &format!("{}/{page}", w.site), &why),
                    words: format!("stopped: {why}"),
                    good,
                };
                broker.service().save(&w.site, &page, &outcome)?;
                broker
                    .service()
                    .results
                    .insert((w.site.clone(), page), outcome);
            }
            // The site's other pages get a fresh renderer.
            if broker
                .service()
                .queues
                .get(&w.site)
                .is_some_and(|q| !q.is_empty())
            {
                start(broker, &w.site)?;
            }
        }
        Event::Log { .. } => {}
    }
    Ok(())
}

fn report(pages: &Pages, fonts: &paint::Fonts, out: &Path) -> Result<bool, String> {
    println!();
    println!("| page | renderer pid | layers verified | time | outcome |");
    println!("|---|---:|---:|---:|---|");
    let mut all_good = true;
    let mut cells = Vec::new();
    for ((site, page), o) in &pages.results {
        all_good &= o.good;
        let mark = if o.good { "ok" } else { "UNEXPECTED" };
        println!(
            "| {site}/{page} | {} | {} | {} ms | {} ({mark}) |",
            o.pid, o.layers, o.millis, o.words
        );
        cells.push(paint::Cell {
            picture: Some(&o.picture),
            title: format!("{site}/{page}"),
            outcome: o.words.clone(),
            good: o.good,
        });
    }
    // Every page of every site must have an outcome.
    let expected: usize = EXPECT.len();
    let sites_seen: std::collections::BTreeSet<&String> =
        pages.results.keys().map(|(s, _)| s).collect();
    if sites_seen.len() < expected {
        println!(
            "missing sites: expected {expected}, got {}",
            sites_seen.len()
        );
        all_good = false;
    }
    let sheet = paint::overview(fonts, &cells);
    let png = sheet.encode_png().map_err(|e| e.to_string())?;
    std::fs::write(out.join("overview.png"), png).map_err(|e| e.to_string())?;
    println!();
    println!(
        "pages in {}/<site>/, every page at a glance in {}/overview.png",
        out.display(),
        out.display()
    );
    if all_good {
        println!("every normal page rendered; every hostile page contained");
    } else {
        println!("SOMETHING UNEXPECTED happened (see the table)");
    }
    Ok(all_good)
}

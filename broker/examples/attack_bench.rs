//! A good renderer's round trips through the broker — alone, while one renderer of
//! each hostile class attacks (respawned as soon as the broker ends it), and at 256
//! renderers — with the broker's memory, descriptors and zombies before and after.
//!
//! ```sh
//! cargo run --release -p broker --example attack_bench            # alone + attacks
//! cargo run --release -p broker --example attack_bench -- scale   # 256 renderers too
//! ```
//!
//! Each good renderer makes `CALLS` calls, times each one itself, checks every answer
//! (its own token and call number echoed: a lost or misrouted reply is counted), asks
//! for a descriptor on every 25th call, and reports p50/p99 in its last request.

use broker::{Broker, BrokerConfig, EndReason, Event, RendererId, RendererSpec, Service};
use sandbox::ipc::{codec, Message, VERSION};
use sandbox::renderer::{self, Protocol, RendererClient};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

const CALLS: u64 = 10_000;

#[derive(Debug, Serialize, Deserialize)]
enum Req {
    Echo {
        token: u64,
        n: u64,
    },
    /// An answer with a descriptor.
    Fd {
        token: u64,
        n: u64,
    },
    Report {
        p50_ns: u64,
        p99_ns: u64,
        bad: u64,
    },
    /// What to do (renderers from one zygote share one `main`).
    Role,
}

impl Message for Req {}

#[derive(Debug, Serialize, Deserialize)]
enum Resp {
    Echo { token: u64, n: u64 },
    Fd { token: u64, n: u64 },
    Done,
    Role(String),
}

impl Message for Resp {
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, Resp::Fd { .. }))
    }
    const MAX_FDS: usize = 1;
}

struct Bench;
impl Protocol for Bench {
    type Req = Req;
    type Resp = Resp;
    type Note = ();
}

/// What each good renderer reported: (p50, p99, bad answers).
#[derive(Default)]
struct Echo {
    reports: HashMap<RendererId, (u64, u64, u64)>,
    null: Option<std::fs::File>,
    roles: HashMap<RendererId, String>,
}

impl Service for Echo {
    type Proto = Bench;
    fn handle(
        &mut self,
        from: RendererId,
        req: Req,
        _fds: Vec<OwnedFd>,
    ) -> Result<(Resp, Vec<OwnedFd>), String> {
        Ok(match req {
            Req::Echo { token, n } => (Resp::Echo { token, n }, Vec::new()),
            Req::Fd { token, n } => {
                let null = self.null.as_ref().ok_or("no file")?;
                let fd = null
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| e.to_string())?;
                (Resp::Fd { token, n }, vec![fd])
            }
            Req::Role => (
                Resp::Role(
                    self.roles
                        .get(&from)
                        .cloned()
                        .unwrap_or_else(|| "good".into()),
                ),
                Vec::new(),
            ),
            Req::Report {
                p50_ns,
                p99_ns,
                bad,
            } => {
                self.reports.insert(from, (p50_ns, p99_ns, bad));
                (Resp::Done, Vec::new())
            }
        })
    }
}

// ------------------------------------------------------------------------------------
// Renderers.

fn good(client: &mut RendererClient<Bench>) -> i32 {
    let token = u64::from(std::process::id()) << 32 | 0x5a5a;
    let t = Duration::from_secs(30);
    let mut took = Vec::with_capacity(CALLS as usize);
    let mut bad = 0;
    for n in 0..CALLS {
        let start = Instant::now();
        let ok = if n % 25 == 24 {
            matches!(client.call_with_fds(Req::Fd { token, n }, &[], t),
                Ok((Resp::Fd { token: k, n: m }, fds)) if k == token && m == n && fds.len() == 1)
        } else {
            matches!(client.call(Req::Echo { token, n }, t),
                Ok(Resp::Echo { token: k, n: m }) if k == token && m == n)
        };
        took.push(start.elapsed().as_nanos() as u64);
        if !ok {
            bad += 1;
        }
    }
    took.sort_unstable();
    let at = |q: usize| took.get(took.len() * q / 100).copied().unwrap_or(0);
    let report = Req::Report {
        p50_ns: at(50),
        p99_ns: at(99),
        bad,
    };
    i32::from(client.call(report, t).is_err())
}

fn frame(value: &impl Serialize) -> Vec<u8> {
    let mut v = vec![VERSION];
    v.extend(codec::encode(value).unwrap_or_default());
    v
}

type UpFrame =
    sandbox::ipc::rpc::Up<sandbox::protocol::Request<Req>, sandbox::protocol::RendererNote>;

fn hostile(mode: &str, client: &mut RendererClient<Bench>) -> i32 {
    let send = |c: &mut RendererClient<Bench>, bytes: &[u8]| c.raw().channel().send_raw(bytes, &[]);
    let echo = |id: u64| {
        frame(&UpFrame::Request {
            id,
            body: sandbox::protocol::Request::Embedder(Req::Echo { token: 0, n: id }),
        })
    };
    match mode {
        "garbage" => {
            let _ = send(client, &[VERSION, 0xff, 0xfe]);
        }
        "oversize" => {
            let _ = send(client, &vec![VERSION; 70_000]);
        }
        "request_flood" => {
            for id in 0.. {
                if send(client, &echo(id)).is_err() {
                    std::thread::yield_now();
                }
            }
        }
        "note_flood" => {
            for id in 0.. {
                if send(client, &frame(&UpFrame::Cancel { id })).is_err() {
                    std::thread::yield_now();
                }
            }
        }
        "fd_hoard" => {
            for id in 0..100_000u64 {
                let f = frame(&UpFrame::Request {
                    id,
                    body: sandbox::protocol::Request::Embedder(Req::Fd { token: 0, n: id }),
                });
                let _ = send(client, &f);
            }
        }
        "never_read" => {
            for id in 0..100_000u64 {
                let _ = send(client, &echo(id));
            }
        }
        "spin" => {
            // No attack: the same CPU load as a flooding attacker (the baseline).
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                std::hint::black_box(0u64);
            }
        }
        "die_mid_burst" => {
            for id in 0..200u64 {
                let _ = send(client, &echo(id));
            }
            return 3;
        }
        _ => return 99,
    }
    std::thread::sleep(Duration::from_secs(60));
    0
}

// ------------------------------------------------------------------------------------
// The broker side.

fn spec(mode: &str) -> RendererSpec {
    RendererSpec::current_exe()
        .expect("own path")
        .arg(mode)
        .inherit_stderr(false)
}

fn broker() -> Broker<Echo> {
    let config = BrokerConfig {
        // A good renderer makes ~100k calls a second here; a flood is several times that.
        max_requests_per_sec: 300_000,
        ..BrokerConfig::default()
    };
    let service = Echo {
        null: std::fs::File::open("/dev/null").ok(),
        ..Echo::default()
    };
    Broker::new(config, service).expect("broker")
}

/// Open descriptors, and zombie children, of this process.
fn fds_and_zombies() -> (usize, usize) {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let me = std::process::id();
    let zombies = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|t| t.trim_start().starts_with('Z'))
            })
        })
        .count();
    (fds, zombies)
}

fn kib(field: &str, file: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What one phase gives: each good renderer's (p50, p99, bad answers), how often the
/// attacker was ended, its first reason, and one good renderer's PSS in KiB.
type Phase = (Vec<(u64, u64, u64)>, usize, Option<EndReason>, u64);

/// `goods` good renderers (and `attacker`, respawned whenever it ends, if any) until
/// every good one has reported. Returns the reports and how often the attacker was
/// ended, with its first reason.
fn run(goods: usize, attacker: Option<&str>) -> Phase {
    let mut b = broker();
    // Renderers come from a zygote: a respawned attacker does not stall the loop.
    b.start_zygote(&spec("good")).expect("zygote");
    let ids: Vec<RendererId> = (0..goods)
        .map(|_| b.spawn(spec("good")).expect("spawn"))
        .collect();
    let spawn_attacker = |b: &mut Broker<Echo>, mode: &str| {
        let id = b.spawn(spec(mode)).expect("spawn");
        b.service().roles.insert(id, mode.to_string());
        id
    };
    let mut hostile = attacker.map(|m| spawn_attacker(&mut b, m));
    let (mut ended, mut first, mut ready, mut pss_sample) = (0, None, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(600);
    while ids.iter().any(|id| !b.service().reports.contains_key(id)) && Instant::now() < deadline {
        for e in b.poll(Duration::from_millis(20)) {
            match e {
                Event::Ended { id, reason, .. } if Some(id) == hostile => {
                    ended += 1;
                    first.get_or_insert(reason);
                    hostile = attacker.map(|m| spawn_attacker(&mut b, m));
                }
                Event::Ready { id, .. } if ids.contains(&id) => {
                    ready += 1;
                    if ready == goods {
                        // Every good renderer is up: the memory of one of them.
                        pss_sample = b
                            .pid(id)
                            .map_or(0, |p| kib("Pss:", &format!("/proc/{p}/smaps_rollup")));
                    }
                }
                _ => {}
            }
        }
    }
    let reports = ids
        .iter()
        .filter_map(|id| b.service().reports.get(id).copied())
        .collect();
    let _ = b.shutdown(Duration::from_secs(2));
    (reports, ended, first, pss_sample)
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == renderer::ROLE_ARG) {
        let mode = args.last().cloned().unwrap_or_default();
        renderer::run::<Bench>(move |_locked, client| match mode.as_str() {
            "good" => good(client),
            m => hostile(m, client),
        });
    }
    if args.iter().any(|a| a == renderer::ZYGOTE_ARG) {
        renderer::run_zygote::<Bench>(|_locked, client| {
            match client.call(Req::Role, Duration::from_secs(10)) {
                Ok(Resp::Role(mode)) if mode != "good" => hostile(&mode, client),
                _ => good(client),
            }
        });
    }
    let (fds0, _) = fds_and_zombies();
    let (alone, _, _, pss) = run(1, None);
    let (p50, p99) = alone.first().map_or((0, 0), |r| (r.0, r.1));
    println!("good renderer alone: p50 {:.1} µs, p99 {:.1} µs ({CALLS} calls, a descriptor every 25th; renderer PSS {pss} KiB)", us(p50), us(p99));
    println!("\n| attacker | ended (times) | first reason | good p50 µs | good p99 µs | p99 vs alone | bad answers |");
    println!("|---|---:|---|---:|---:|---:|---:|");
    for attacker in [
        "spin",
        "garbage",
        "oversize",
        "request_flood",
        "note_flood",
        "fd_hoard",
        "never_read",
        "die_mid_burst",
    ] {
        let (reports, ended, first, _) = run(1, Some(attacker));
        let (q50, q99, bad) = reports.first().copied().unwrap_or((0, 0, u64::MAX));
        let why = first.map_or("—".into(), |r| {
            let s = format!("{r:?}");
            s.chars().take(40).collect::<String>()
        });
        println!(
            "| {attacker} | {ended} | `{why}` | {:.1} | {:.1} | {:.2}× | {bad} |",
            us(q50),
            us(q99),
            q99 as f64 / p99.max(1) as f64
        );
    }
    let (fds1, zombies1) = fds_and_zombies();
    println!("\nbroker descriptors before {fds0}, after {fds1}; zombies after {zombies1}; broker RSS {} KiB", kib("VmRSS:", "/proc/self/status"));
    if args.iter().any(|a| a == "scale") {
        let n = 256;
        let start = Instant::now();
        let (reports, _, _, pss) = run(n, None);
        let took = start.elapsed();
        let bad: u64 = reports.iter().map(|r| r.2).sum();
        let p50s = median(reports.iter().map(|r| r.0).collect());
        let p99s = median(reports.iter().map(|r| r.1).collect());
        let worst = reports.iter().map(|r| r.1).max().unwrap_or(0);
        let (fds2, zombies2) = fds_and_zombies();
        println!(
            "\n{n} renderers × {CALLS} calls: {} reported, {bad} lost or misrouted answers, \
             {:.1} s; median p50 {:.1} µs, median p99 {:.1} µs ({:.2}× the single renderer's p99), \
             worst p99 {:.1} µs; renderer PSS {pss} KiB; broker RSS {} KiB (peak {}); \
             descriptors after {fds2}, zombies {zombies2}",
            reports.len(),
            took.as_secs_f64(),
            us(p50s),
            us(p99s),
            p99s as f64 / p99.max(1) as f64,
            us(worst),
            kib("VmRSS:", "/proc/self/status"),
            kib("VmHWM:", "/proc/self/status"),
        );
    }
}

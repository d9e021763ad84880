//! Faults, measured: (1) the broker SIGKILLed with 8 renderers alive — how long until
//! every one is gone (PR_SET_PDEATHSIG); (2) 10,000 spawns through the zygote, each
//! renderer ended — descriptors and zombies left in the broker afterwards.
//!
//! ```sh
//! cargo run --release -p broker --example fault_bench
//! ```
//!
//! (1) re-executes this binary as the broker (`--broker`), which prints its renderers'
//! pids and waits; this process, a child subreaper (so the orphaned renderers become its
//! children), kills the broker with SIGKILL and times until it has reaped every
//! renderer. 10 rounds; the median and the worst are printed.

use broker::{Broker, BrokerConfig, EndReason, Event, RendererId, RendererSpec, Service};
use sandbox::renderer::{self, Protocol};
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Nothing;
impl Protocol for Nothing {
    type Req = ();
    type Resp = ();
    type Note = ();
}
impl Service for Nothing {
    type Proto = Nothing;
    fn handle(
        &mut self,
        _: RendererId,
        _: (),
        _: Vec<OwnedFd>,
    ) -> Result<((), Vec<OwnedFd>), String> {
        Ok(((), Vec::new()))
    }
}

const RENDERERS: usize = 8;
const SPAWNS: usize = 10_000;

/// The broker of (1): 8 renderers that sleep, their pids on stdout, then wait.
fn broker_with_renderers() -> ! {
    let mut broker = Broker::new(BrokerConfig::default(), Nothing).expect("broker");
    let mut ready = 0;
    for _ in 0..RENDERERS {
        broker
            .spawn(RendererSpec::current_exe().expect("exe").arg("sleep"))
            .expect("spawn");
    }
    while ready < RENDERERS {
        for e in broker.poll(Duration::from_millis(100)) {
            if let Event::Ready { id, .. } = e {
                println!("PID {}", broker.pid(id).unwrap_or(0));
                ready += 1;
            }
        }
    }
    println!("READY");
    loop {
        let _ = broker.poll(Duration::from_secs(1));
    }
}

/// (1), one round: µs from SIGKILL of the broker until its last renderer is gone.
fn broker_death_round() -> f64 {
    let exe = std::env::current_exe().expect("exe");
    let mut child = Command::new(exe)
        .arg("--broker")
        .stdout(Stdio::piped())
        .spawn()
        .expect("broker");
    let out = child.stdout.take().expect("stdout");
    let mut pids = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("line");
        if let Some(pid) = line.strip_prefix("PID ") {
            pids.push(nix::unistd::Pid::from_raw(pid.trim().parse().expect("pid")));
        }
        if line == "READY" {
            break;
        }
    }
    let start = Instant::now();
    child.kill().expect("kill broker");
    let _ = child.wait();
    // Orphaned, they are this subreaper's children now: reaped as they die.
    for pid in &pids {
        let _ = nix::sys::wait::waitpid(*pid, None);
    }
    start.elapsed().as_secs_f64() * 1e6
}

/// (2): descriptors before and after, zombies after, and the spawns' wall time.
fn many_spawns() -> (usize, usize, usize, Duration) {
    let mut broker = Broker::new(BrokerConfig::default(), Nothing).expect("broker");
    let spec = RendererSpec::current_exe()
        .expect("exe")
        .inherit_stderr(false);
    broker.start_zygote(&spec).expect("zygote");
    // One round first, so the zygote's and epoll's own descriptors are in the baseline.
    let _ = broker.spawn(spec.clone());
    let _ = broker.run_until_idle(Duration::from_secs(10));
    let before = sandbox::probe::open_descriptors();
    let start = Instant::now();
    let mut ended = 0;
    for _ in 0..SPAWNS / 20 {
        for _ in 0..20 {
            broker.spawn(spec.clone()).expect("spawn");
        }
        for e in broker.run_until_idle(Duration::from_secs(30)) {
            if matches!(
                e,
                Event::Ended {
                    reason: EndReason::Exited(0),
                    ..
                }
            ) {
                ended += 1;
            }
        }
    }
    let took = start.elapsed();
    assert_eq!(ended, SPAWNS, "every renderer ends with Exited(0)");
    (
        before,
        sandbox::probe::open_descriptors(),
        sandbox::probe::zombie_children(),
        took,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == renderer::ZYGOTE_ARG) {
        renderer::run_zygote::<Nothing>(|_, _| 0);
    }
    if args.iter().any(|a| a == renderer::ROLE_ARG) {
        let sleep = args.iter().any(|a| a == "sleep");
        renderer::run::<Nothing>(move |_, _| {
            if sleep {
                std::thread::sleep(Duration::from_secs(60));
            }
            0
        });
    }
    if args.iter().any(|a| a == "--broker") {
        broker_with_renderers();
    }
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    let rounds: Vec<f64> = (0..10).map(|_| broker_death_round()).collect();
    let worst = rounds.iter().copied().fold(0.0, f64::max);
    println!("| fault | figure |");
    println!("|---|---|");
    println!(
        "| broker SIGKILLed, {RENDERERS} renderers alive: until the last is gone (10 rounds) | median {:.0} µs, worst {worst:.0} µs |",
        median(rounds)
    );
    let (before, after, zombies, took) = many_spawns();
    println!(
        "| {SPAWNS} spawns through the zygote, each ended | descriptors {before} before, {after} after; zombies {zombies}; {:.2} s ({:.0} µs a renderer) |",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / SPAWNS as f64
    );
}

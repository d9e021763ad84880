//! Spawn latency: from `spawn` to a renderer that is locked down and verified from
//! outside, against the same spawn with no layers, and against
//! `bwrap --unshare-all --ro-bind / / true`, in one run.
//!
//! ```sh
//! cargo run --release -p sandbox --example spawn_bench [-- ROUNDS]
//! ```
//!
//! The renderer is this binary re-executed with `--renderer`: it locks down with every
//! layer (net namespace shared: a fresh one is measured separately), writes its status
//! report to stdout, and waits for one byte on stdin before exiting. The timed span ends
//! when the spawner has decoded the report and verified it from /proc; the reap is
//! timed too, separately.

use sandbox::launch::{spawn, EmptyNetwork, Namespaces, NetMode, SpawnSpec};
use sandbox::launch::{verify_from_outside, Asked};
use sandbox::lockdown::{lock_down, Config, Layer, Status};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

fn renderer(layers: bool) -> ! {
    let mut out = std::io::stdout().lock();
    let t0 = Instant::now();
    let report = if layers {
        match lock_down(&Config::default()) {
            Ok(l) => {
                if std::env::args().any(|a| a == "--time") {
                    eprint!("{}", l.status());
                }
                l.status().encode()
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(e.exit_code());
            }
        }
    } else {
        Vec::new()
    };
    if std::env::args().any(|a| a == "--time") {
        eprintln!("lock_down took {:?}", t0.elapsed());
    }
    let _ = out.write_all(&(report.len() as u32).to_le_bytes());
    let _ = out.write_all(&report);
    let _ = out.flush();
    let mut b = [0u8];
    let _ = std::io::stdin().read_exact(&mut b);
    std::process::exit(0)
}

/// One spawn: (time to verified, time to reaped after release, per-layer µs).
fn one(layers: bool, net: NetMode) -> (Duration, Duration, Vec<u32>) {
    let exe = std::env::current_exe().expect("own path");
    let arg = if layers { "--renderer" } else { "--plain" };
    let (in_r, in_w) = nix::unistd::pipe().expect("pipe");
    let (out_r, out_w) = nix::unistd::pipe().expect("pipe");
    let mut spec = SpawnSpec::new(exe, &[arg]);
    spec.fds = vec![(in_r.as_raw_fd(), 0), (out_w.as_raw_fd(), 1), (2, 2)];
    spec.namespaces = if layers {
        Namespaces {
            net,
            ..Namespaces::default()
        }
    } else {
        Namespaces::none()
    };
    let start = Instant::now();
    let mut child = spawn(&spec).expect("spawn");
    drop(in_r);
    drop(out_w);
    let mut from = std::fs::File::from(out_r);
    let mut len = [0u8; 4];
    from.read_exact(&mut len).expect("report length");
    let mut report = vec![0u8; u32::from_le_bytes(len) as usize];
    from.read_exact(&mut report).expect("report");
    let mut micros = Vec::new();
    if layers {
        let status = Status::decode(&report).expect("decodable report");
        let asked = Asked {
            opt_outs: &[],
            new_namespaces: &spec.namespaces.expected_new(),
        };
        verify_from_outside(child.pid(), &status, &asked).expect("verified from outside");
        micros = status.layers.iter().map(|l| l.micros).collect();
    }
    let verified = start.elapsed();
    let release = Instant::now();
    std::fs::File::from(in_w).write_all(&[1]).expect("release");
    child.wait().expect("reap");
    (verified, release.elapsed(), micros)
}

/// The namespace floor: clone with every namespace but net, child exits, reap.
fn ns_floor() -> Duration {
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWCGROUP;
    let start = Instant::now();
    sandbox::launch::check::clone_in_namespaces(flags).expect("clone in namespaces");
    start.elapsed()
}

/// The floor: fork + exec + wait of /bin/true through std.
fn true_floor() -> Duration {
    let start = Instant::now();
    let s = Command::new("/bin/true").status().expect("/bin/true");
    assert!(s.success());
    start.elapsed()
}

fn bwrap() -> Duration {
    let start = Instant::now();
    let s = Command::new("bwrap")
        .args(["--unshare-all", "--ro-bind", "/", "/", "true"])
        .status()
        .expect("bwrap (apt-get install bubblewrap)");
    assert!(s.success(), "bwrap failed: {s:?}");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--renderer") {
        renderer(true);
    }
    if args.iter().any(|a| a == "--plain") {
        renderer(false);
    }
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    // Warm up the page cache and the kernel's namespace caches.
    for _ in 0..10 {
        one(true, NetMode::Shared);
        one(false, NetMode::Shared);
        bwrap();
        true_floor();
    }
    let mut locked = Vec::new();
    let mut locked_reap = Vec::new();
    let mut plain = Vec::new();
    let mut plain_reap = Vec::new();
    let mut fresh = Vec::new();
    let mut reused = Vec::new();
    let empty_net = EmptyNetwork::create().expect("pre-made empty network namespace");
    let mut bw = Vec::new();
    let mut floor = Vec::new();
    let mut nsfloor = Vec::new();
    let mut per_layer: Vec<Vec<u32>> = vec![Vec::new(); Layer::ALL.len()];
    for _ in 0..rounds {
        let (a, b, micros) = one(true, NetMode::Shared);
        locked.push(a);
        locked_reap.push(b);
        for (slot, m) in per_layer.iter_mut().zip(micros) {
            slot.push(m);
        }
        let (a, b, _) = one(false, NetMode::Shared);
        plain.push(a);
        plain_reap.push(b);
        fresh.push(one(true, NetMode::Fresh).0);
        reused.push(one(true, NetMode::Reuse(empty_net.clone())).0);
        bw.push(bwrap());
        floor.push(true_floor());
        nsfloor.push(ns_floor());
    }
    let b = median(bw);
    let faster = |d: Duration| b.as_secs_f64() / d.as_secs_f64();
    println!("rounds: {rounds} (interleaved), medians");
    println!();
    println!("| spawn | to ready (median) | reap after release (median) | bwrap's time / this |");
    println!("|---|---:|---:|---:|");
    let l = median(locked);
    println!(
        "| all layers, verified from outside (net namespace shared) | {} | {} | {:.1}× |",
        us(l),
        us(median(locked_reap)),
        faster(l)
    );
    let r = median(reused);
    println!(
        "| all layers, pre-made empty net namespace reused | {} | – | {:.1}× |",
        us(r),
        faster(r)
    );
    let f = median(fresh);
    println!(
        "| all layers, fresh net namespace | {} | – | {:.1}× |",
        us(f),
        faster(f)
    );
    let p = median(plain);
    println!(
        "| same spawn, no layers (no namespaces, no lockdown) | {} | {} | {:.1}× |",
        us(p),
        us(median(plain_reap)),
        faster(p)
    );
    println!(
        "| `bwrap --unshare-all --ro-bind / / true` (spawn to exit) | {} | – | 1.0× |",
        us(b)
    );
    let fl = median(floor);
    println!(
        "| floor: `Command::new(\"/bin/true\").status()` (fork, exec, exit, wait) | {} | – | {:.1}× |",
        us(fl),
        faster(fl)
    );
    let nf = median(nsfloor);
    println!(
        "| floor: clone with user, pid, mount, ipc, uts, cgroup namespaces; child exits; reap (no exec) | {} | – | {:.1}× |",
        us(nf),
        faster(nf)
    );
    println!();
    println!("Inside the renderer, per layer (median µs, from its status report):");
    println!();
    println!("| layer | µs |");
    println!("|---|---:|");
    for (layer, mut v) in Layer::ALL.iter().zip(per_layer) {
        v.sort_unstable();
        println!("| {layer} | {} |", v.get(v.len() / 2).copied().unwrap_or(0));
    }
}

//! `sandbox run -- /bin/true` against `bwrap --unshare-all --ro-bind / / /bin/true` and
//! `/bin/true` itself, interleaved, one run.
//!
//! ```sh
//! cargo build --release --bin sandbox && cargo run --release -p broker --example run_bench
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let s = cmd.status().expect("runs");
    assert!(s.success(), "{cmd:?} failed: {s:?}");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    // target/release/examples/run_bench → target/release/sandbox
    let exe = std::env::current_exe().expect("own path");
    let sandbox = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("sandbox"))
        .expect("target dir");
    assert!(
        sandbox.exists(),
        "build it first: cargo build --release --bin sandbox"
    );
    let ours = || {
        let mut c = Command::new(&sandbox);
        c.args([
            "run",
            "--ro",
            "/usr",
            "--ro",
            "/lib",
            "--ro",
            "/lib64",
            "--ro",
            "/bin",
            "--",
            "/bin/true",
        ]);
        c
    };
    let bwrap = || {
        let mut c = Command::new("bwrap");
        c.args(["--unshare-all", "--ro-bind", "/", "/", "/bin/true"]);
        c
    };
    let direct = || Command::new("/bin/true");
    for _ in 0..5 {
        time(&mut ours());
        time(&mut bwrap());
        time(&mut direct());
    }
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..100 {
        a.push(time(&mut ours()));
        b.push(time(&mut bwrap()));
        c.push(time(&mut direct()));
    }
    let (a, b, c) = (median(a), median(b), median(c));
    println!("| command (median of 100, interleaved) | ms | vs bwrap |");
    println!("|---|---:|---:|");
    println!("| `sandbox run --ro /usr --ro /lib --ro /lib64 --ro /bin -- /bin/true` | {a:.2} | {:.2}× |", a / b);
    println!("| `bwrap --unshare-all --ro-bind / / /bin/true` | {b:.2} | 1.00× |");
    println!("| `/bin/true` | {c:.2} | {:.2}× |", c / b);
}

//! `sandbox run -- /bin/true` against `bwrap --unshare-all --ro-bind / / /bin/true` and
//! `/bin/true` itself, interleaved, one run; with util-linux `unshare` making the same
//! namespaces and nothing else as the floor, and `sandbox run --share-net`.
//!
//! ```sh
//! cargo build --release --bin sandbox && cargo run --release -p sandbox-cli --example run_bench
//! # A/B against another build, e.g. of an earlier commit, in the same interleaved run:
//! cargo run --release -p sandbox-cli --example run_bench -- /path/to/other/sandbox
//! # Back to back, without the 20 ms pause after each command:
//! RUN_BENCH_PAUSE_MS=0 cargo run --release -p sandbox-cli --example run_bench
//! ```

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let s = cmd.status().expect("runs");
    assert!(s.success(), "{cmd:?} failed: {s:?}");
    start.elapsed()
}

/// The label prefix of the rows run as uid 65534 (compared with bwrap as uid 65534).
const AS_NOBODY: &str = "as uid 65534: ";

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let sandbox = common::sandbox_binary();
    // RUN_BENCH_PAUSE_MS: the pause after each command (default 20; 0 = back to back).
    let pause = Duration::from_millis(
        std::env::var("RUN_BENCH_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    // Optional: another build of the CLI (e.g. of an earlier commit) for an A/B.
    let other = std::env::args().nth(1).map(std::path::PathBuf::from);
    // Every binary is measured from a fresh copy in one directory. A file the linker
    // has just written starts ~0.5 ms slower per `sandbox run` here than a copy of it
    // (the same bytes, in page-cache pages laid out differently: exec maps them at a
    // different cost) until the page cache drops it; comparing a just-built binary
    // with a copied one measures that, not the code.
    let copies = std::env::temp_dir().join(format!("run_bench-{}", std::process::id()));
    std::fs::create_dir_all(&copies).expect("temp dir");
    let copy = |from: &std::path::Path, name: &str| {
        let to = copies.join(name);
        std::fs::copy(from, &to).expect("copy the binary");
        to
    };
    let sandbox = copy(&sandbox, "sandbox");
    // Two private folders, as `mktemp -d` makes them.
    let private = |name: &str| {
        use std::os::unix::fs::PermissionsExt;
        let d = copies.join(name);
        std::fs::create_dir_all(&d).expect("folder");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        d.display().to_string()
    };
    let (input, output) = (private("in"), private("out"));
    let other = other.map(|o| (o.display().to_string(), copy(&o, "other")));
    let run_with = |exe: &std::path::Path, net: &[&str]| {
        let mut c = Command::new(exe);
        c.arg("run")
            .args(net)
            .args(common::SYSTEM_BINDS)
            .args(["--", "/bin/true"]);
        c
    };
    let bwrap = || {
        let mut c = Command::new("bwrap");
        c.args(["--unshare-all", "--ro-bind", "/", "/", "/bin/true"]);
        c
    };
    let direct = || Command::new("/bin/true");
    // The floor for any tool that makes these namespaces and execs a program in them:
    // util-linux `unshare` creates the same seven and does nothing else (no root, no
    // lockdown, no verification).
    let unshare = || {
        let mut c = Command::new("unshare");
        c.args([
            "--user",
            "--pid",
            "--fork",
            "--net",
            "--mount",
            "--ipc",
            "--uts",
            "--cgroup",
            "/bin/true",
        ]);
        c
    };
    let mut commands: Vec<(String, Box<dyn Fn() -> Command>)> = vec![
        (
            "`sandbox run --ro /usr --ro /lib --ro /lib64 --ro /bin -- /bin/true`".into(),
            Box::new(|| run_with(&sandbox, &[])),
        ),
        (
            "`sandbox run -- /bin/true` (binds found for the program: itself, loader, libc, ld.so.cache)".into(),
            Box::new(|| {
                let mut c = Command::new(&sandbox);
                c.args(["run", "--", "/bin/true"]);
                c
            }),
        ),
        (
            "`bwrap --unshare-all --ro-bind / / /bin/true`".into(),
            Box::new(bwrap),
        ),
        ("`/bin/true`".into(), Box::new(direct)),
        (
            "`unshare --user --pid --fork --net --mount --ipc --uts --cgroup /bin/true`".into(),
            Box::new(unshare),
        ),
        (
            "`sandbox run --share-net ...` (no new network namespace)".into(),
            Box::new(|| run_with(&sandbox, &["--share-net"])),
        ),
        (
            "`sandbox run ... --ro IN --rw OUT ...` (two 0700 folders of the caller's: idmapped as root)".into(),
            Box::new(|| run_with(&sandbox, &["--ro", &input, "--rw", &output])),
        ),
    ];
    if let Some(other) = other {
        let (name, other) = other;
        let label = format!("the same with `{name}`");
        commands.push((label, Box::new(move || run_with(&other, &[]))));
    }
    // As root, the same two commands as uid 65534 (an unprivileged caller: no
    // cgroups, no idmapped grants; std drops the supplementary groups), each against
    // bwrap as uid 65534.
    let root = nix::unistd::geteuid().is_root();
    if root {
        let nobody = |mut c: Command| {
            use std::os::unix::process::CommandExt;
            c.uid(65534).gid(65534);
            c
        };
        commands.push((
            format!(
                "{AS_NOBODY}`sandbox run --ro /usr --ro /lib --ro /lib64 --ro /bin -- /bin/true`"
            ),
            Box::new({
                let sandbox = sandbox.clone();
                move || nobody(run_with(&sandbox, &[]))
            }),
        ));
        commands.push((
            format!("{AS_NOBODY}`bwrap --unshare-all --ro-bind / / /bin/true`"),
            Box::new(move || nobody(bwrap())),
        ));
    }
    for _ in 0..5 {
        for (_, cmd) in &commands {
            time(&mut cmd());
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); commands.len()];
    for _ in 0..100 {
        for (i, (_, cmd)) in commands.iter().enumerate() {
            times[i].push(time(&mut cmd()));
            // Neither bwrap nor `sandbox run` waits for the kernel to tear its
            // namespaces down; let that finish so it does not slow the next command.
            std::thread::sleep(pause);
        }
    }
    let _ = std::fs::remove_dir_all(&copies);
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    // Each row against bwrap run by the same user.
    let bwrap_ms = |prefix: &str| {
        commands
            .iter()
            .position(|(label, _)| label.starts_with(&format!("{prefix}`bwrap")))
            .and_then(|i| medians.get(i).copied())
            .expect("a bwrap row")
    };
    println!("| command (median of 100, interleaved) | ms | vs bwrap |");
    println!("|---|---:|---:|");
    for ((label, _), ms) in commands.iter().zip(&medians) {
        let base = if label.starts_with(AS_NOBODY) {
            bwrap_ms(AS_NOBODY)
        } else {
            bwrap_ms("")
        };
        println!("| {label} | {ms:.2} | {:.2}× |", ms / base);
    }
}

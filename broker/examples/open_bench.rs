//! What the file service's checks and scoped resolution cost: `FileService::open`
//! against a native `File::open` of the same file.
//!
//! ```text
//! cargo run --release -p broker --example open_bench
//! ```
//!
//! Every configuration opens and closes its file 100,000 times (10 rounds of 10,000,
//! the configurations rotated within each round after 2,000 warm-up opens each);
//! each open+close is timed on its own. Prints a markdown table of the median, the
//! 10th and 99th percentiles, and the median's difference from native `File::open`
//! of the same path.

use broker::services::files::{Access, FileService, Grant, OpenMode, OpenRequest};
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, Mode};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

const ROUNDS: usize = 10;
const PER_ROUND: usize = 10_000;
const WARMUP: usize = 2_000;

/// One way of opening one file.
struct Config {
    name: &'static str,
    /// The native row this one is compared with (an index into the list).
    baseline: usize,
    open: Box<dyn Fn() -> Result<OwnedFd, String>>,
}

fn main() -> Result<(), String> {
    let tmp = std::env::temp_dir().join(format!("broker-open-bench-{}", std::process::id()));
    let result = run(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn run(tmp: &Path) -> Result<(), String> {
    let e = |what: &str| {
        let what = what.to_owned();
        move |err: std::io::Error| format!("{what}: {err}")
    };
    let shallow = tmp.join("g/file");
    let deep = tmp.join("g/a/b/c/d/file");
    std::fs::create_dir_all(tmp.join("g/a/b/c/d")).map_err(e("mkdir"))?;
    std::fs::write(&shallow, b"x").map_err(e("write"))?;
    std::fs::write(&deep, b"x").map_err(e("write"))?;
    let g = tmp.join("g");

    let service = |grant: Grant| -> Result<FileService, String> {
        FileService::new(vec![grant]).map_err(|err| format!("FileService::new: {err}"))
    };
    let flat = service(Grant::new(&g, Access::ReadOnly))?;
    let tree = service(Grant::new(&g, Access::ReadOnly).recursive())?;
    let tree_follow = service(
        Grant::new(&g, Access::ReadOnly)
            .recursive()
            .follow_symlinks(),
    )?;
    let dir: OwnedFd = fcntl::open(
        &g,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("open dir: {err}"))?;
    let dir2 = dir.try_clone().map_err(e("dup dir"))?;
    let dir3 = dir.try_clone().map_err(e("dup dir"))?;

    let native = |p: PathBuf| -> Box<dyn Fn() -> Result<OwnedFd, String>> {
        Box::new(move || {
            File::open(&p)
                .map(OwnedFd::from)
                .map_err(|err| err.to_string())
        })
    };
    let brokered =
        |svc: FileService, p: &Path| -> Result<Box<dyn Fn() -> Result<OwnedFd, String>>, String> {
            let req = OpenRequest {
                path: p.to_str().ok_or("non-UTF-8 temp path")?.to_owned(),
                mode: OpenMode::Read,
            };
            Ok(Box::new(move || {
                svc.open(&req).map_err(|err| err.to_string())
            }))
        };
    let configs = vec![
        Config {
            name: "native `File::open`, depth 1",
            baseline: 0,
            open: native(shallow.clone()),
        },
        Config {
            name: "native `File::open`, depth 5",
            baseline: 1,
            open: native(deep.clone()),
        },
        Config {
            name: "native `openat(dirfd, rel)` + `fstat`, depth 5",
            baseline: 1,
            open: Box::new(move || {
                let fd = fcntl::openat(
                    dir.as_fd(),
                    "a/b/c/d/file",
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|err| err.to_string())?;
                stat::fstat(&fd).map_err(|err| err.to_string())?;
                Ok(fd)
            }),
        },
        Config {
            name: "native `openat(dirfd, rel, O_NONBLOCK)` + `fstat` + `F_SETFL`, depth 5",
            baseline: 1,
            open: Box::new(move || {
                let fd = fcntl::openat(
                    dir2.as_fd(),
                    "a/b/c/d/file",
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
                    Mode::empty(),
                )
                .map_err(|err| err.to_string())?;
                stat::fstat(&fd).map_err(|err| err.to_string())?;
                fcntl::fcntl(&fd, fcntl::FcntlArg::F_SETFL(OFlag::empty()))
                    .map_err(|err| err.to_string())?;
                Ok(fd)
            }),
        },
        Config {
            name: "native `openat2(dirfd, rel, O_NONBLOCK, BENEATH\\|NO_MAGICLINKS\\|NO_SYMLINKS)` + `fstat` + `F_SETFL`, depth 5",
            baseline: 1,
            open: Box::new(move || {
                let how = fcntl::OpenHow::new()
                    .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
                    .resolve(
                        fcntl::ResolveFlag::RESOLVE_BENEATH
                            | fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS
                            | fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS,
                    );
                let fd = fcntl::openat2(dir3.as_fd(), "a/b/c/d/file", how)
                    .map_err(|err| err.to_string())?;
                stat::fstat(&fd).map_err(|err| err.to_string())?;
                fcntl::fcntl(&fd, fcntl::FcntlArg::F_SETFL(OFlag::empty()))
                    .map_err(|err| err.to_string())?;
                Ok(fd)
            }),
        },
        Config {
            name: "`FileService::open`, depth 1, non-recursive",
            baseline: 0,
            open: brokered(flat, &shallow)?,
        },
        Config {
            name: "`FileService::open`, depth 5, recursive",
            baseline: 1,
            open: brokered(tree, &deep)?,
        },
        Config {
            name: "`FileService::open`, depth 5, recursive, follow_symlinks",
            baseline: 1,
            open: brokered(tree_follow, &deep)?,
        },
    ];

    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(ROUNDS * PER_ROUND); configs.len()];
    for c in &configs {
        for _ in 0..WARMUP {
            drop((c.open)()?);
        }
    }
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        for k in 0..configs.len() {
            let i = (k + round) % configs.len();
            let c = &configs[i];
            for _ in 0..PER_ROUND {
                let t = Instant::now();
                let fd = (c.open)()?;
                drop(fd);
                let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
                samples[i].push(ns);
            }
        }
    }

    let pct = |v: &[u64], p: usize| v[(v.len() - 1) * p / 100];
    let medians: Vec<u64> = samples
        .iter_mut()
        .map(|v| {
            v.sort_unstable();
            pct(v, 50)
        })
        .collect();
    println!("| configuration | median | p10 | p99 | vs native (same depth) |");
    println!("|---|---|---|---|---|");
    for (i, c) in configs.iter().enumerate() {
        let v = &samples[i];
        let base = medians[c.baseline];
        let vs = if c.baseline == i {
            "—".to_owned()
        } else {
            format!(
                "{:+} ns ({:.2}×)",
                medians[i] as i64 - base as i64,
                medians[i] as f64 / base as f64
            )
        };
        println!(
            "| {} | {} ns | {} ns | {} ns | {} |",
            c.name,
            medians[i],
            pct(v, 10),
            pct(v, 99),
            vs
        );
    }
    Ok(())
}

//! Spawning, seen from outside the child: what the child holds while it waits for its
//! parent's "go". Each case runs in a fresh process (this binary with `--helper CASE`),
//! which may install filters on itself; the test asserts what it prints.

use sandbox_tests::{run_cases, Case};

use sandbox::ipc::{Channel, Limits, Message};
use sandbox::launch::{spawn, spawn_in_place, InPlace, SpawnSpec};
use sandbox::lockdown::SingleThreaded;
use sandbox::policy::arch::Arch;
use sandbox::policy::{Action, Policy};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::process::Command;
use std::time::Duration;

/// The pipes a process holds by both ends (`pipe:[inode]` listed by a readable and a
/// writable descriptor): a child that holds the write end of the pipe it waits on
/// never sees its end of file.
fn pipes_held_by_both_ends(pid: i32) -> Result<Vec<String>, String> {
    let dir = format!("/proc/{pid}/fd");
    let mut ends: Vec<(String, bool)> = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = std::fs::read_link(entry.path()).map_err(|e| e.to_string())?;
        let target = target.display().to_string();
        if !target.starts_with("pipe:") {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            entry.file_name().to_string_lossy()
        ))
        .map_err(|e| e.to_string())?;
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| i32::from_str_radix(f.trim(), 8).ok())
            .ok_or("no flags in fdinfo")?;
        ends.push((target, flags & libc::O_ACCMODE == libc::O_WRONLY));
    }
    let mut both: Vec<String> = ends
        .iter()
        .filter(|(p, w)| !*w && ends.iter().any(|(q, v)| q == p && *v))
        .map(|(p, _)| p.clone())
        .collect();
    both.dedup();
    Ok(both)
}

/// The spawner's seccomp listener, sent to the checker.
#[derive(serde::Serialize, serde::Deserialize)]
struct Listener;

impl Message for Listener {
    fn fd_count(&self) -> usize {
        1
    }
    const MAX_FDS: usize = 1;
}

/// The checker: receives the spawner's listener, waits for the spawner's first
/// `openat` (writing the child's id maps, while the child waits for "go"), looks at the
/// child's descriptors, prints what it found, and ends the spawner.
fn checker(mut ctl: Channel<(), Listener>) -> ! {
    let (Listener, mut fds) = ctl.recv_timeout(Duration::from_secs(10)).expect("listener");
    let listener = fds.pop().expect("a listener");
    let (spawner, _nr, _arch, _args) =
        sandbox::seccomp::receive_notification(listener.as_fd()).expect("a notification");
    let children = std::fs::read_to_string(format!("/proc/{spawner}/task/{spawner}/children"))
        .expect("children");
    // The spawner's children: this checker, and the child being spawned.
    let child: i32 = children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find(|&c: &i32| c != std::process::id() as i32)
        .expect("the spawned child");
    match pipes_held_by_both_ends(child) {
        Ok(both) => println!("both ends held: {} {both:?}", both.len()),
        Err(e) => println!("cannot look: {e}"),
    }
    let _ = std::io::stdout().flush();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spawner as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    std::process::exit(0)
}

fn go_pipe_helper() -> ! {
    let (ours, theirs) = sandbox::ipc::pair::<Listener, ()>(Limits::default()).expect("pair");
    let one = SingleThreaded::check().expect("one thread");
    if one.fork().expect("fork") == 0 {
        drop(ours);
        checker(theirs);
    }
    drop(theirs);
    // Every openat of this process now waits for the checker.
    let policy = Policy::new(Action::Allow)
        .and_then(|p| p.with_action("openat", Action::UserNotify))
        .expect("policy");
    let program = sandbox::bpf::compile(&policy, Arch::native()).expect("compile");
    sandbox::seccomp::set_no_new_privs().expect("nnp");
    let listener = sandbox::seccomp::install_with_listener(&program).expect("listener");
    ours.send(&Listener, &[listener.as_fd()]).expect("send");
    drop(listener);
    // Blocks in the id-map write until the checker ends this process.
    let _ = spawn(&SpawnSpec::new("/bin/true", &[]));
    println!("spawn returned");
    std::process::exit(1)
}

fn run_helper(case: &str) -> String {
    let o = Command::new(std::env::current_exe().expect("own path"))
        .args(["--helper", case])
        .output()
        .expect("helper");
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    s
}

/// While a spawned child waits for its parent's "go", it holds no pipe by both ends:
/// if the parent dies before the child has armed its parent-death signal, the child
/// sees the end of the "go" pipe and exits, instead of waiting forever with a copy of
/// every descriptor the parent had.
fn the_child_does_not_hold_its_own_go_pipe() -> Result<(), String> {
    let out = run_helper("go_pipe");
    if out.contains("both ends held: 0") {
        Ok(())
    } else {
        Err(out)
    }
}

const CASES: &[Case] = &[
    (
        "the_child_does_not_hold_its_own_go_pipe",
        the_child_does_not_hold_its_own_go_pipe,
    ),
    (
        "an_in_place_child_holds_only_its_fds_and_makes_its_network",
        an_in_place_child_holds_only_its_fds_and_makes_its_network,
    ),
];

/// The parent's network namespace, for the in-place child (a copy of this memory).
static PARENT_NET: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// The in-place child: whether its deferred network was made, then what it holds, to
/// fd 3.
fn in_place_entry(start: InPlace) -> ! {
    let made = start.namespaces();
    let fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let net = std::fs::read_link("/proc/self/ns/net").ok();
    let line = format!(
        "made {:?} fds {} new-net {}\n",
        made.map_err(|e| e.raw_os_error()),
        fds.len(),
        net.as_ref() != PARENT_NET.get()
    );
    // Fd 3 is the pipe's write end the parent placed there.
    let Ok(mut out) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/3")
    else {
        std::process::exit(3)
    };
    let _ = out.write_all(line.as_bytes());
    std::process::exit(0)
}

/// Spawn in place with stdio and one pipe, a close-on-exec and an inheritable
/// descriptor besides; print what the child reports.
fn in_place_helper() -> ! {
    let _ = PARENT_NET.set(std::fs::read_link("/proc/self/ns/net").expect("ns"));
    let _cloexec = std::fs::File::open("/proc/self/status").expect("open");
    let inheritable = nix::unistd::dup(std::io::stdin()).expect("dup");
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let one = SingleThreaded::check().expect("one thread");
    let mut spec = SpawnSpec::new("", &[]);
    spec.fds = vec![(0, 0), (1, 1), (2, 2), (w.as_raw_fd(), 3)];
    let mut child = spawn_in_place(&spec, one, in_place_entry).expect("spawn in place");
    child.started().expect("placed its descriptors");
    drop(w);
    drop(inheritable);
    let mut report = String::new();
    let _ = std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut report);
    let _ = child.wait();
    print!("{report}");
    // The proof is refused with a second thread.
    let _t = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(5)));
    println!("two threads: {}", SingleThreaded::check().is_err());
    std::process::exit(0)
}

/// A child spawned in place holds stdio and the descriptor it was given (the read
/// end of the listing, 4 with /proc's own), none of the parent's others — not even
/// close-on-exec ones, which nothing execs to close; it makes its deferred network
/// namespace itself; and the single-thread proof is refused with two threads.
fn an_in_place_child_holds_only_its_fds_and_makes_its_network() -> Result<(), String> {
    let out = run_helper("in_place");
    if out.contains("made Ok(()) fds 5 new-net true") && out.contains("two threads: true") {
        Ok(())
    } else {
        Err(out)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--helper") {
        match args.get(i + 1).map_or("", String::as_str) {
            "go_pipe" => go_pipe_helper(),
            "in_place" => in_place_helper(),
            other => {
                eprintln!("unknown helper {other}");
                std::process::exit(2)
            }
        }
    }
    run_cases(CASES, &args)
}

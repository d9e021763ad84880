//! `sandbox::cgroup` against the kernel: run as root on a machine with a `pids`
//! hierarchy (cgroup v1 here; a delegated v2 subtree elsewhere). Fails where no pids
//! cgroup can be made — the feature is then missing, not skipped.

use sandbox::launch::cgroup::{MemoryCgroup, PidsCgroup, Places};
use std::process::{Command, Stdio};
use std::time::Duration;

fn name(what: &str) -> String {
    format!("sandbox-test-{what}-{}", std::process::id())
}

/// A process moves itself in (`0` written to the descriptor `open_self_join` made —
/// what `sandbox::launch::cgroup::join_self` does in `sandbox run`'s stage), then starts five
/// children under `pids.max` 3: two start, three forks are refused and counted; the
/// cgroup cannot be removed while they run and can once they are gone.
#[test]
fn a_process_that_joins_itself_is_held_and_its_refused_forks_counted() {
    let cg = PidsCgroup::create(&Places::read(), &name("held"), 3)
        .expect("a pids cgroup (root, pids hierarchy)");
    assert_eq!(cg.max(), 3);
    assert_eq!(cg.current(), Some(0));
    assert_eq!(cg.refused(), Some(0));
    let join = cg.open_self_join().expect("open the join file");
    // The child gets the descriptor as its stdin (write-only), writes `0` to it itself
    // and lets go of it, then tries five forks.
    let script = "import os, time\n\
                  os.write(0, b'0')\n\
                  os.close(0)\n\
                  made = 0\n\
                  for i in range(5):\n    \
                      try:\n        \
                          if os.fork() == 0:\n            \
                              time.sleep(2)\n            \
                              os._exit(0)\n        \
                          made += 1\n    \
                      except OSError:\n        \
                          pass\n\
                  print('started', made, flush=True)\n\
                  while True:\n    \
                      try:\n        \
                          os.wait()\n    \
                      except ChildProcessError:\n        \
                          break\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::from(join))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    // Two start: with the child itself, three tasks.
    assert_eq!(line, "started 2\n");
    let pid = i32::try_from(child.id()).expect("pid");
    assert!(cg.holds(pid).expect("/proc/PID/cgroup"), "the child joined");
    assert!(!cg.holds(std::process::id() as i32).expect("own cgroup"));
    assert_eq!(cg.current(), Some(3), "the child and two of its own");
    assert_eq!(cg.refused(), Some(3), "three forks refused");
    assert_eq!(
        cg.remove().map_err(|e| e.raw_os_error()),
        Err(Some(libc::EBUSY)),
        "not removable while in use"
    );
    assert!(child.wait().expect("wait").success());
    let removed = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        cg.remove().is_ok()
    });
    assert!(removed, "removable once empty");
}

/// A sibling named after a dead pid is removed; one of a live pid stays.
#[test]
fn stale_siblings_are_removed() {
    let prefix = format!("sandbox-stale-{}-", std::process::id());
    let ours = PidsCgroup::create(
        &Places::read(),
        &format!("{prefix}{}", std::process::id()),
        5,
    )
    .expect("cgroup");
    // A pid that is not running: a child that has been reaped.
    let dead = {
        let mut c = Command::new("/bin/true").spawn().expect("true");
        let id = c.id();
        c.wait().expect("wait");
        id
    };
    let stale = PidsCgroup::create(&Places::read(), &format!("{prefix}{dead}"), 5).expect("cgroup");
    let stale_path = stale.path().to_path_buf();
    assert_eq!(ours.remove_stale_siblings(&prefix), 1);
    assert!(!stale_path.exists());
    assert!(ours.path().exists(), "a live owner's cgroup stays");
    ours.remove().expect("remove");
}

/// A cgroup of the same name left behind empty (a reused pid) is taken over.
#[test]
fn an_empty_leftover_of_the_same_name_is_taken_over() {
    let n = name("again");
    let first = PidsCgroup::create(&Places::read(), &n, 4).expect("cgroup");
    let second = PidsCgroup::create(&Places::read(), &n, 6).expect("the leftover is replaced");
    assert_eq!(second.path(), first.path());
    assert_eq!(second.max(), 6);
    let max = std::fs::read_to_string(second.path().join("pids.max")).expect("pids.max");
    assert_eq!(max.trim(), "6");
    second.remove().expect("remove");
}

/// A process that joins a memory cgroup of 64 MiB and touches 256 MiB is ended by the
/// out-of-memory killer, which the cgroup counts; its peak use is at the limit.
#[test]
fn the_memory_limit_ends_a_process_that_uses_more_and_counts_it() {
    let limit = 64u64 << 20;
    let cg =
        MemoryCgroup::create(&Places::read(), &name("mem"), limit).expect("a memory cgroup (root)");
    assert_eq!(cg.limit(), limit);
    assert_eq!(cg.oom_kills(), Some(0));
    let join = cg.open_self_join().expect("open the join file");
    let script = "import os\n\
                  os.write(0, b'0')\n\
                  os.close(0)\n\
                  x = bytearray(256 << 20)\n\
                  print('survived')\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::from(join))
        .output()
        .expect("python3");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
    assert_eq!(cg.oom_kills(), Some(1));
    let peak = cg.peak().expect("peak");
    assert!(
        peak > limit / 2 && peak <= limit,
        "peak {peak} against a limit of {limit}"
    );
    let removed = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        cg.remove().is_ok()
    });
    assert!(removed, "removable once empty");
}

/// The cgroup v2 paths, in a delegated subtree described to `Places` (this machine's
/// pids and memory controllers are bound to v1, so no cgroup2 mount here can have
/// them): the v2 subtree is chosen when its `cgroup.subtree_control` enables the
/// controller, and v2's files are written and read (`pids.max`, `memory.max`,
/// `memory.events`, `memory.peak`, `0::` membership); without the controller enabled
/// and no v1 hierarchy, the error says so.
#[test]
fn cgroup_v2_files_in_a_delegated_subtree() {
    use sandbox::launch::cgroup::{CgroupError, Hierarchy};
    let root = std::env::temp_dir().join(name("v2"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("cgroup.subtree_control"), "memory pids\n").expect("subtree");
    let mountinfo = format!(
        "30 25 0:26 / {} rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n",
        root.display()
    );
    let places = Places::from_text(&mountinfo, "0::/\n");
    let pids = PidsCgroup::create(&places, "t-pids", 64).expect("v2 pids cgroup");
    assert_eq!(pids.hierarchy(), Hierarchy::V2);
    assert_eq!(
        std::fs::read_to_string(root.join("t-pids/pids.max"))
            .ok()
            .as_deref(),
        Some("64")
    );
    assert!(pids.listed_in("0::/t-pids\n"));
    assert!(!pids.listed_in("0::/other\n"));
    let mem = MemoryCgroup::create(&places, "t-mem", 1 << 30).expect("v2 memory cgroup");
    assert_eq!(
        std::fs::read_to_string(root.join("t-mem/memory.max"))
            .ok()
            .as_deref(),
        Some("1073741824")
    );
    std::fs::write(
        root.join("t-mem/memory.events"),
        "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
    )
    .expect("events");
    std::fs::write(root.join("t-mem/memory.peak"), "4096\n").expect("peak");
    assert_eq!(mem.oom_kills(), Some(1));
    assert_eq!(mem.peak(), Some(4096));
    // The controller not enabled in the subtree, and no v1 hierarchy: refused, saying so.
    std::fs::write(root.join("cgroup.subtree_control"), "memory\n").expect("subtree");
    match PidsCgroup::create(&places, "t-none", 64) {
        Err(CgroupError::Unavailable(what, why)) => {
            assert_eq!(what, "pids");
            assert!(
                why.contains("no cgroup v2 subtree with pids enabled"),
                "{why}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&root);
}

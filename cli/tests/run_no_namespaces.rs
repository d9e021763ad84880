//! `sandbox run --no-namespaces`: the degraded mode of a caller without privilege on a
//! host without user namespaces, run as uid 65534 (on this host it needs no
//! simulation: it makes no namespace). What the namespaces held is held by the other
//! layers or refused — files (Landlock), signals (Landlock's scopes), sockets, System V
//! IPC, leaving the process group, acting on other processes (the filter) — and no
//! process of the run outlives it, however it ends.

mod common;
use common::{caller_file, private_dir, sandbox_exe, text};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `sandbox run --no-namespaces ARGS` as uid 65534. (The tests' background processes
/// write nowhere: one that outlived the run would otherwise hold the output pipe, and
/// the test would hang instead of failing.)
fn run_nobody(args: &[&str]) -> Command {
    let mut c = Command::new(sandbox_exe(true));
    c.args(["run", "--no-namespaces"])
        .args(args)
        .current_dir("/")
        .uid(65534)
        .gid(65534);
    c
}

/// `program` run by python3 under `--profile python3`.
fn python(program: &str) -> Output {
    output(run_nobody(&[
        "--profile",
        "python3",
        "--",
        "python3",
        "-c",
        program,
    ]))
}

fn output(mut c: Command) -> Output {
    c.output().expect("sandbox runs")
}

/// Whether a process of uid 65534 runs with exactly this command line.
fn running(argv: &[&str]) -> bool {
    pid_of(argv).is_some()
}

/// The pid of a process of uid 65534 with exactly this command line.
fn pid_of(argv: &[&str]) -> Option<String> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| {
            use std::os::unix::fs::MetadataExt;
            e.metadata().is_ok_and(|m| m.uid() == 65534)
        })
        .find(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want))
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

/// The scratch folder a status report names.
fn scratch_of(json: &str) -> String {
    json.split("\"scratch_dir\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the scratch folder in the report")
        .to_string()
}

/// Up to 10 s for `f` to hold (the test's bound, not a timing claim).
fn eventually(f: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A shell with an input and an output folder (0700, the caller's, as `mktemp -d`
/// makes them): the grants work and outputs are the caller's; nothing else of the file
/// system can be read or listed; HOME is a private scratch folder, removed after the
/// run (modes cannot be changed in it: chmod is refused); the status report names the
/// opt-out; a process left in the background is ended with the run.
#[test]
fn a_shell_gets_its_grants_and_a_scratch_folder_and_leaves_nothing_running() {
    let input = private_dir("nons-in", true);
    let out = private_dir("nons-out", true);
    caller_file(&input.join("in.txt"), "hello\n", 0o600, true);
    let status = out.join("status.json");
    let script = format!(
        "cat {i}/in.txt > {o}/copy.txt; echo x > $HOME/h && cat $HOME/h; \
         cat /etc/hostname; ls /; mkdir -p $HOME/a/b; chmod 0 $HOME/a; \
         sleep 771 >/dev/null 2>&1 & echo started",
        i = input.display(),
        o = out.display()
    );
    let status_arg = status.display().to_string();
    let (ro, rw) = (input.display().to_string(), out.display().to_string());
    let r = output(run_nobody(&[
        "--profile",
        "shell",
        "--ro",
        &ro,
        "--rw",
        &rw,
        "--status-json",
        &status_arg,
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]));
    let (stdout, err) = (text(&r.stdout), text(&r.stderr));
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert_eq!(stdout, "x\nstarted\n", "{err}");
    assert!(
        err.contains("sandbox: degraded mode: --no-namespaces"),
        "{err}"
    );
    assert!(
        err.contains("cat: /etc/hostname: Permission denied"),
        "{err}"
    );
    assert!(
        err.contains("ls: cannot open directory '/': Permission denied"),
        "{err}"
    );
    let copy = out.join("copy.txt");
    assert_eq!(std::fs::read_to_string(&copy).expect("output"), "hello\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&copy).expect("output").uid(), 65534);
    let json = std::fs::read_to_string(&status).expect("status");
    assert!(json.contains("\"NoNamespaces\""), "{json}");
    let scratch = scratch_of(&json);
    assert!(
        !std::path::Path::new(&scratch).exists(),
        "{scratch} is left"
    );
    assert!(
        !running(&["sleep", "771"]),
        "a background process outlived the run"
    );
    let _ = std::fs::remove_dir_all(&input);
    let _ = std::fs::remove_dir_all(&out);
}

/// Each thing the namespaces held, tried from python3: the errno the guard gives.
#[test]
fn what_the_namespaces_held_is_refused_with_its_errno() {
    let program = "import ctypes, os, socket\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        def tried(name, f):\n\
        \x20   try:\n\
        \x20       f(); print(name, 'ok', flush=True)\n\
        \x20   except OSError as e:\n\
        \x20       print(name, e.errno, flush=True)\n\
        tried('socket', lambda: socket.socket(socket.AF_UNIX))\n\
        tried('socket6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))\n\
        print('shmget', libc.shmget(0, 4096, 0o1600), ctypes.get_errno())\n\
        tried('kill', lambda: os.kill(os.getppid(), 0))\n\
        tried('affinity', lambda: os.sched_setaffinity(os.getppid(), {0}))\n\
        tried('own-affinity', lambda: os.sched_setaffinity(0, os.sched_getaffinity(0)))\n\
        pid = os.fork()\n\
        if pid == 0:\n\
        \x20   tried('setsid', os.setsid)\n\
        \x20   tried('setpgid', lambda: os.setpgid(0, 0))\n\
        \x20   os._exit(0)\n\
        os.waitpid(pid, 0)\n\
        tried('socketpair', lambda: socket.socketpair())\n\
        tried('dgram-pair', lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))\n\
        a, b = socket.socketpair()\n\
        tried('connect', lambda: a.connect('/x'))\n\
        tried('chmod', lambda: os.chmod(os.environ['HOME'], 0o777))\n\
        ino = libc.inotify_init1(0)\n\
        print('watch', libc.inotify_add_watch(ino, b'/tmp', 2), ctypes.get_errno())\n";
    let r = python(program);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert_eq!(
        text(&r.stdout),
        "socket 13\nsocket6 13\nshmget -1 38\nkill 1\naffinity 1\nown-affinity ok\n\
         setsid 1\nsetpgid 1\nsocketpair ok\ndgram-pair 13\nconnect 13\nchmod 1\n\
         watch -1 13\n",
        "{err}"
    );
}

/// A violation still ends the run (exit 159) — and with it every process of the
/// group, as does the wall clock.
#[test]
fn a_violation_or_the_wall_clock_ends_the_whole_group() {
    let r = output(run_nobody(&[
        "--profile",
        "python3",
        "--",
        "/bin/sh",
        "-c",
        "sleep 772 >/dev/null 2>&1 & python3 -c 'import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)'",
    ]));
    assert_eq!(r.status.code(), Some(159), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("seccomp violation: ptrace"));
    assert!(
        !running(&["sleep", "772"]),
        "a process outlived the violation"
    );
    let r = output(run_nobody(&[
        "--profile",
        "shell",
        "--wall",
        "1",
        "--",
        "/bin/sh",
        "-c",
        "sleep 773 >/dev/null 2>&1 & sleep 774 >/dev/null 2>&1",
    ]));
    assert_eq!(r.status.code(), Some(124), "{}", text(&r.stderr));
    assert!(
        !running(&["sleep", "773"]),
        "a process outlived the wall clock"
    );
    assert!(
        !running(&["sleep", "774"]),
        "the program outlived the wall clock"
    );
}

/// The supervisor killed outright: the stage, told by its parent-death signal, ends
/// the group and removes the scratch folder.
#[test]
fn a_killed_supervisor_takes_the_group_with_it() {
    let dir = private_dir("nons-killed", true);
    let status = dir.join("status.json").display().to_string();
    let mut c = run_nobody(&[
        "--profile",
        "shell",
        "--status-json",
        &status,
        "--",
        "/bin/sh",
        "-c",
        "sleep 775 & sleep 776",
    ]);
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(
        eventually(|| running(&["sleep", "776"])),
        "the program never ran"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        eventually(|| !running(&["sleep", "775"]) && !running(&["sleep", "776"])),
        "the group outlived its supervisor"
    );
    // And the stage removed the scratch folder.
    let json = std::fs::read_to_string(&status).expect("status");
    let scratch = scratch_of(&json);
    assert!(
        eventually(|| !std::path::Path::new(&scratch).exists()),
        "{scratch} is left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--pids` without a cgroup: RLIMIT_NPROC, set above the caller's own count of
/// tasks, refuses the forks past it (the program sees EAGAIN, and ends as it
/// chooses).
#[test]
fn pids_refuses_forks_past_the_limit() {
    let r = output(run_nobody(&[
        "--profile",
        "shell",
        "--pids",
        "4",
        "--",
        "/bin/sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 777 >/dev/null 2>&1 & done; echo done",
    ]));
    let err = text(&r.stderr);
    // dash stops at the refused fork, with its own exit status.
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert_eq!(text(&r.stdout), "");
    assert!(err.contains("Cannot fork"), "{err}");
    assert!(!running(&["sleep", "777"]), "a process outlived the run");
}

/// A scratch folder 1,500 folders deep (more than the supervisor's descriptors allow
/// one per level) is removed all the same.
#[test]
fn a_deep_scratch_tree_is_removed() {
    let program = "import os\n\
        home = os.environ['HOME']\n\
        print(home)\n\
        os.chdir(home)\n\
        for i in range(1500):\n\
        \x20   os.mkdir('d'); os.chdir('d')\n";
    let r = python(program);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{err}");
    let home = text(&r.stdout);
    assert!(home.starts_with("/tmp/sandbox-run."), "{home}");
    assert!(
        !std::path::Path::new(home.trim()).exists(),
        "{home} is left: {err}"
    );
}

/// The stage killed outright (here by root; the OOM killer would pick the program's
/// processes first): the supervisor, a subreaper, ends what is left of the group.
#[test]
fn a_killed_stage_leaves_nothing_running() {
    let mut c = run_nobody(&[
        "--profile",
        "shell",
        "--",
        "/bin/sh",
        "-c",
        "sleep 783 >/dev/null 2>&1 & sleep 784 >/dev/null 2>&1",
    ]);
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(
        eventually(|| running(&["sleep", "784"])),
        "the program never ran"
    );
    // The program's processes go before the stage, for the OOM killer.
    let pid = pid_of(&["sleep", "784"]).expect("the program");
    let adj = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).expect("readable");
    assert_eq!(adj.trim(), "1000");
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
        .expect("the supervisor's children");
    let stage: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the stage");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(stage),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the stage");
    let r = child.wait_with_output().expect("the supervisor ends");
    assert_eq!(r.status.code(), Some(125), "{}", text(&r.stderr));
    assert!(!running(&["sleep", "783"]), "an orphan outlived the stage");
    assert!(
        !running(&["sleep", "784"]),
        "the program outlived the stage"
    );
}

/// Not for root; and what needs a namespace is refused with the reason.
#[test]
fn root_and_options_that_need_a_namespace_are_refused() {
    let r = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(["run", "--no-namespaces", "--", "/bin/true"])
        .output()
        .expect("runs");
    assert_eq!(r.status.code(), Some(125));
    assert!(
        text(&r.stderr).contains("--no-namespaces: not for root"),
        "{}",
        text(&r.stderr)
    );
    for (extra, why) in [
        ("--proc", "no /proc of its own without a pid namespace"),
        ("--share-net", "every socket is refused"),
        ("--ro=/usr:/opt", "can be granted only at its own path"),
    ] {
        let r = output(run_nobody(&[extra, "--", "/bin/true"]));
        assert_eq!(r.status.code(), Some(125), "{extra}");
        assert!(
            text(&r.stderr).contains(why),
            "{extra}: {}",
            text(&r.stderr)
        );
    }
}

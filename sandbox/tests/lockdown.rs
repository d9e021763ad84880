//! Lockdown effect tests. Each case runs in a fresh *spawner* process (this binary
//! with `--spawner CASE`), which may first drop to uid 65534 or break something on
//! purpose, then spawns a *renderer* (this binary with `--renderer CASE`) in new
//! namespaces. The renderer locks down and sends its status report; the spawner
//! verifies it from outside (/proc/PID/status, /proc/PID/ns/*), lets the renderer run
//! its probes, and prints everything; the test asserts exact outcomes.

use sandbox_tests::{run_cases, Case};

use sandbox::launch::{spawn, NetMode, SpawnSpec};
use sandbox::launch::{verify_from_outside, Asked};
use sandbox::lockdown::{lock_down, Config, Layer, OptOut, SeccompChoice, Status};
use sandbox::policy::presets::Preset;
use sandbox::probe;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::Command;

// ------------------------------------------------------------------------------------
// Renderer side.

fn errno_of<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(-1)),
    }
}

/// The opt-outs the renderer of `case` runs with (what the spawner asked for).
fn opt_outs_of(case: &str) -> Vec<OptOut> {
    match case {
        "keep_root" => vec![OptOut::KeepRoot],
        "thread" => vec![OptOut::LandlockCallingThreadOnly],
        _ => Vec::new(),
    }
}

fn renderer(case: &str) -> ! {
    let mut out = std::io::stdout().lock();
    // A thread that exists before lockdown: it must be filtered too.
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (res_tx, res_rx) = std::sync::mpsc::channel::<String>();
    let early_thread = case.starts_with("thread").then(|| {
        std::thread::spawn(move || {
            let _ = go_rx.recv();
            let s = errno_of(std::net::TcpListener::bind("127.0.0.1:0"));
            let o = errno_of(std::fs::File::open("/etc/passwd"));
            let _ = res_tx.send(format!("thread socket={s} open={o}"));
        })
    });
    let _ = probe::install_sigsys_recorder();
    let mut config = Config {
        opt_outs: opt_outs_of(case),
        ..Config::default()
    };
    match case {
        "full" | "full_nobody" | "full_no_close_range" => {}
        c if c.starts_with("landlock_abi") && c.ends_with("_min_4") => {
            config.landlock_min_abi = 4;
        }
        "layers" | "layers_nobody" => config.seccomp = SeccompChoice::Preset(Preset::Exec),
        "keep_root" => config.seccomp = SeccompChoice::Preset(Preset::Exec),
        "grants_swapped" => {
            // The spawner checked another file than the one now at the path.
            let base = std::env::var("GRANT_BASE").unwrap_or_default();
            let mut g = sandbox::lockdown::Bind::read_only(format!("{base}/ro"));
            g.identity = Some((0, 1));
            config.binds = vec![g];
        }
        "grants" | "grants_fsize0" => {
            config.seccomp = SeccompChoice::Preset(Preset::Exec);
            // The default RLIMIT_FSIZE of 0 refuses the write (EFBIG): `grants_fsize0`
            // shows it.
            if case == "grants" {
                config.rlimits.file_size = 1 << 20;
            }
            let base = std::env::var("GRANT_BASE").unwrap_or_default();
            config.binds = vec![
                sandbox::lockdown::Bind::read_only(format!("{base}/ro")),
                sandbox::lockdown::Bind::read_write(format!("{base}/rw")),
            ];
        }
        "scope" | "scope_nobody" | "chroot" | "chroot_nobody" => {
            config.seccomp = SeccompChoice::Preset(Preset::Exec)
        }
        "thread_strict" => {}
        "landlock_too_new" => config.landlock_min_abi = 99,
        _ => {}
    }
    let locked = match lock_down(&config) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(
                out,
                "LOCKDOWN-ERROR layer={} errno={:?} {e}",
                e.layer,
                e.errno()
            );
            let _ = out.flush();
            std::process::exit(e.exit_code());
        }
    };
    let report = locked.status().encode();
    let _ = out.write_all(&(report.len() as u32).to_le_bytes());
    let _ = out.write_all(&report);
    let _ = out.flush();
    // Wait until the spawner has looked at us from outside.
    let mut byte = [0u8];
    let _ = std::io::stdin().read_exact(&mut byte);

    let trapped = || probe::last_trap().map_or(-1, |t| t.syscall);
    let mut say = |s: String| {
        let _ = writeln!(out, "{s}");
    };
    say(format!("pid={}", std::process::id()));
    say(format!(
        "open /etc/passwd: {}",
        errno_of(std::fs::File::open("/etc/passwd"))
    ));
    say(format!(
        "readdir /: {}",
        errno_of(std::fs::read_dir("/").map(|d| d.count()))
    ));
    say(format!(
        "socket inet: {}",
        errno_of(std::net::TcpListener::bind("127.0.0.1:0"))
    ));
    say(format!(
        "connect inet: {}",
        errno_of(std::net::TcpStream::connect("127.0.0.1:9"))
    ));
    say(format!(
        "spawn: {}",
        errno_of(Command::new("/bin/true").spawn())
    ));
    if case.starts_with("full") || case.starts_with("thread") {
        // getppid() is 0 in a new pid namespace (the parent is outside it), so this is
        // kill(0, 0): the process group. Either way, not the renderer itself.
        let _ = nix::sys::signal::kill(nix::unistd::getppid(), None);
        say(format!("kill parent trapped: {}", trapped()));
        let _ = nix::unistd::execv(c"/bin/true", &[c"/bin/true"]);
        say(format!("execve trapped: {}", trapped()));
    }
    if case.starts_with("grants") {
        let base = std::env::var("GRANT_BASE").unwrap_or_default();
        say(format!(
            "read ro: {:?}",
            std::fs::read_to_string(format!("{base}/ro/hello")).map_err(|e| e.raw_os_error())
        ));
        say(format!(
            "write ro: {}",
            errno_of(std::fs::write(format!("{base}/ro/new"), "x"))
        ));
        say(format!(
            "write rw: {}",
            errno_of(std::fs::write(format!("{base}/rw/new"), "x"))
        ));
        say(format!(
            "list /: {:?}",
            std::fs::read_dir("/")
                .map(|d| d.count())
                .map_err(|e| e.raw_os_error())
        ));
    }
    if case.starts_with("scope") {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
        let abstract_addr = |name: &str| SocketAddr::from_abstract_name(name.as_bytes());
        // A listener outside, in the same network namespace (the spawner's).
        let outside = std::env::var("SCOPE_NAME").unwrap_or_default();
        say(format!(
            "connect outside abstract: {}",
            errno_of(abstract_addr(&outside).and_then(|a| UnixStream::connect_addr(&a)))
        ));
        // Control: one made inside the same Landlock domain is reachable, so the
        // refusal above is the scope, not the filter or a missing name.
        let inside = format!("{outside}-inside");
        let listener = abstract_addr(&inside).and_then(|a| UnixListener::bind_addr(&a));
        say(format!(
            "connect inside abstract: {}",
            errno_of(
                listener.and_then(
                    |_l| abstract_addr(&inside).and_then(|a| UnixStream::connect_addr(&a))
                )
            )
        ));
    }
    if case.starts_with("chroot") {
        // The classic way out of a chroot needs CAP_SYS_CHROOT, which is gone.
        say(format!(
            "chroot again: {}",
            errno_of(nix::unistd::chroot("/").map_err(std::io::Error::from))
        ));
        say(format!(
            "old root by name: {}",
            errno_of(std::fs::metadata("/.old-root"))
        ));
    }
    if let Some(t) = early_thread {
        let _ = go_tx.send(());
        say(res_rx.recv().unwrap_or_default());
        let _ = t.join();
    }
    let _ = out.flush();
    std::process::exit(0)
}

// ------------------------------------------------------------------------------------
// Spawner side.

/// Spawn, or print the error as the cases expect it and end the spawner.
fn spawn_or_report(spec: &SpawnSpec) -> sandbox::launch::Spawned {
    spawn(spec).unwrap_or_else(|e| {
        println!("SPAWN-ERROR call={} errno={:?}", e.call, e.errno());
        std::process::exit(0)
    })
}

/// Break the spawner on purpose with a filter of our own (inherited by the renderer).
fn install_spawner_filter(name: &str, text: &str) {
    sandbox::probe::install_policy_text(name, text, false).expect("spawner filter");
}

fn forbid_user_namespaces() {
    install_spawner_filter(
        "forbid",
        "@default allow\nclone: flags & CLONE_NEWUSER => errno EPERM\nunshare: flags & CLONE_NEWUSER => errno EPERM\nclone3: errno ENOSYS",
    );
}

/// Make pivot_root fail as it does on an initramfs root (EINVAL), so that the empty
/// root falls back to chroot.
fn refuse_pivot_root() {
    install_spawner_filter("no-pivot-root", "@default allow\npivot_root: errno EINVAL");
}

/// Make the kernel look like Landlock ABI `abi` to the renderer (inherited): its
/// `landlock_create_ruleset` is handed to a thread of this process, which answers the
/// version query with `abi` and lets every other call run (this is a test's
/// supervisor: CONTINUE is fine here).
fn pretend_landlock_abi(abi: i64) {
    const VERSION: u64 = 1; // LANDLOCK_CREATE_RULESET_VERSION
    let listener = sandbox::probe::install_policy_text(
        "old-landlock",
        "@default allow\nlandlock_create_ruleset: user-notify",
        true,
    )
    .expect("install")
    .expect("listener");
    sandbox::probe::supervise(listener, move |n| {
        if n.args[2] & VERSION != 0 {
            sandbox::probe::Reply::Value(abi)
        } else {
            sandbox::probe::Reply::Continue
        }
    });
}

fn exhaust_user_namespaces() {
    // Enter a user namespace of our own, become root in it, and set its limit on
    // nested user namespaces to 0.
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).expect("unshare(CLONE_NEWUSER)");
    std::fs::write("/proc/self/setgroups", "deny").expect("setgroups");
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).expect("uid_map");
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).expect("gid_map");
    std::fs::write("/proc/sys/user/max_user_namespaces", "0").expect("max_user_namespaces");
}

fn spawner(case: &str) -> ! {
    let renderer_case = case.trim_end_matches("_spawn");
    if case.ends_with("_nobody") {
        sandbox_tests::reachable::drop_to_nobody();
    }
    match case {
        "unshare_forbidden" => forbid_user_namespaces(),
        c if c.starts_with("landlock_abi_") => {
            let n = c.trim_start_matches("landlock_abi_").split('_').next();
            pretend_landlock_abi(n.and_then(|n| n.parse().ok()).unwrap_or(1));
        }
        // A kernel without close_range (before 5.9), as a filter in front of it says.
        "full_no_close_range" => install_spawner_filter(
            "no-close-range",
            "@default allow\nclose_range: errno ENOSYS",
        ),
        "userns_exhausted" => exhaust_user_namespaces(),
        "chroot" | "chroot_nobody" => refuse_pivot_root(),
        _ => {}
    }
    if case.starts_with("reuse") {
        reuse_spawner();
    }
    let (in_r, in_w) = nix::unistd::pipe().expect("pipe");
    let (out_r, out_w) = nix::unistd::pipe().expect("pipe");
    let exe = std::env::current_exe().expect("own path");
    let mut spec = SpawnSpec::new(exe, &["--renderer", renderer_case]);
    spec.fds = vec![(in_r.as_raw_fd(), 0), (out_w.as_raw_fd(), 1), (2, 2)];
    let grant_dir = std::env::temp_dir().join(format!("lockdown-grants-{}", std::process::id()));
    if case.starts_with("grants") {
        std::fs::create_dir_all(grant_dir.join("ro")).expect("ro dir");
        std::fs::create_dir_all(grant_dir.join("rw")).expect("rw dir");
        std::fs::write(grant_dir.join("ro/hello"), "hello").expect("file");
        spec.env
            .push(("GRANT_BASE".into(), grant_dir.display().to_string()));
    }
    // Held until the spawner exits: the renderer must not reach it.
    let mut _scope_listener = None;
    if case.starts_with("scope") {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("lockdown-scope-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract name");
        let l = std::os::unix::net::UnixListener::bind_addr(&addr).expect("bind outside");
        // The name is live in this network namespace: the spawner itself reaches it.
        std::os::unix::net::UnixStream::connect_addr(&addr).expect("outside control connect");
        _scope_listener = Some(l);
        spec.env.push(("SCOPE_NAME".into(), name));
    }
    spec.namespaces.net = NetMode::Shared;
    if case.starts_with("layers") {
        spec.namespaces.net = NetMode::Fresh;
    }
    let mut child = spawn_or_report(&spec);
    drop(in_r);
    drop(out_w);
    let mut from = std::fs::File::from(out_r);
    let mut len = [0u8; 4];
    if from.read_exact(&mut len).is_ok() && &len != b"LOCK" {
        let n = u32::from_le_bytes(len) as usize;
        let mut report = vec![0u8; n.min(sandbox::lockdown::status::MAX_REPORT + 1)];
        from.read_exact(&mut report).expect("report");
        match Status::decode(&report) {
            Ok(status) => {
                print!("{status}");
                let expected = spec.namespaces.expected_new();
                let asked = Asked {
                    opt_outs: &opt_outs_of(renderer_case),
                    new_namespaces: &expected,
                };
                match verify_from_outside(child.pid(), &status, &asked) {
                    Ok(view) => println!(
                        "OUTSIDE-OK caps={:x?} new-ns={:?} seccomp={}",
                        view.caps, view.new_namespaces, view.seccomp_mode
                    ),
                    Err(p) => println!("OUTSIDE-MISMATCH {p:?}"),
                }
            }
            Err(e) => println!("BAD-REPORT {e}"),
        }
        let _ = std::fs::File::from(in_w).write_all(&[1]);
    }
    let mut rest = String::new();
    if &len == b"LOCK" {
        // Not a report: the renderer's error line, which starts with "LOCKDOWN-ERROR".
        rest.push_str("LOCK");
    }
    let _ = from.read_to_string(&mut rest);
    for line in rest.lines() {
        println!("R: {line}");
    }
    println!("EXIT {:?}", child.wait());
    if case.starts_with("grants") {
        println!(
            "outside rw/new: {:?}",
            std::fs::read_to_string(grant_dir.join("rw/new")).ok()
        );
        let _ = std::fs::remove_dir_all(&grant_dir);
    }
    std::process::exit(0)
}

/// Two renderers in one pre-made empty network namespace.
fn reuse_spawner() -> ! {
    use sandbox::launch::EmptyNetwork;
    let net = match EmptyNetwork::create() {
        Ok(n) => n,
        Err(e) => {
            println!("EMPTYNET-ERROR {e}");
            std::process::exit(0);
        }
    };
    println!(
        "OWN-NETNS={:?}",
        std::fs::read_link("/proc/self/ns/net").ok()
    );
    for i in 0..2 {
        let (in_r, in_w) = nix::unistd::pipe().expect("pipe");
        let (out_r, out_w) = nix::unistd::pipe().expect("pipe");
        let exe = std::env::current_exe().expect("own path");
        let mut spec = SpawnSpec::new(exe, &["--renderer", "full"]);
        spec.fds = vec![(in_r.as_raw_fd(), 0), (out_w.as_raw_fd(), 1), (2, 2)];
        spec.namespaces.net = NetMode::Reuse(net.clone());
        let mut child = spawn_or_report(&spec);
        drop(in_r);
        drop(out_w);
        let mut from = std::fs::File::from(out_r);
        let mut len = [0u8; 4];
        from.read_exact(&mut len).expect("report length");
        let mut report = vec![0u8; (u32::from_le_bytes(len) as usize).min(9000)];
        from.read_exact(&mut report).expect("report");
        let status = Status::decode(&report).expect("report");
        let asked = Asked {
            opt_outs: &[],
            new_namespaces: &spec.namespaces.expected_new(),
        };
        match verify_from_outside(child.pid(), &status, &asked) {
            Ok(view) => println!("RENDERER{i} OUTSIDE-OK new-ns={:?}", view.new_namespaces),
            Err(p) => println!("RENDERER{i} OUTSIDE-MISMATCH {p:?}"),
        }
        println!(
            "RENDERER{i}-NETNS={:?}",
            std::fs::read_link(format!("/proc/{}/ns/net", child.pid())).ok()
        );
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.pid()));
        let uid = status.ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().next().map(str::to_string))
        });
        println!("RENDERER{i}-UID={}", uid.unwrap_or_default());
        let _ = std::fs::File::from(in_w).write_all(&[1]);
        let mut rest = String::new();
        let _ = from.read_to_string(&mut rest);
        for line in rest.lines() {
            println!("R{i}: {line}");
        }
        println!("EXIT{i} {:?}", child.wait());
    }
    std::process::exit(0)
}

fn reuse_case(case: &str) -> Result<(), String> {
    let out = run(case);
    expect(
        &out,
        &[
            "RENDERER0 OUTSIDE-OK".into(),
            "RENDERER1 OUTSIDE-OK".into(),
            format!("R0: socket inet: errno {}", libc::EPERM),
            "EXIT1 Ok(Exited(".into(),
        ],
    )?;
    let value = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_string)
    };
    // A root spawner's renderers are not root outside (the shared network's user
    // namespace maps a range of ids of their own); an unprivileged one's are that user.
    let want_uid = if case.ends_with("_nobody") {
        "65534".to_string()
    } else {
        sandbox::launch::OWN_ID_BASE.to_string()
    };
    for i in 0..2 {
        if value(&format!("RENDERER{i}-UID=")).as_deref() != Some(want_uid.as_str()) {
            return Err(format!(
                "renderer {i}'s uid outside, want {want_uid}:\n{out}"
            ));
        }
    }
    let own = value("OWN-NETNS=");
    let first = value("RENDERER0-NETNS=");
    let second = value("RENDERER1-NETNS=");
    if first.is_none() || first != second || first == own {
        return Err(format!(
            "net namespaces: own {own:?}, renderers {first:?} and {second:?}\n{out}"
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------
// Test runner.

fn run(case: &str) -> String {
    // A copy uid 65534 can run: the `_nobody` spawners drop to it, then re-execute
    // themselves as the renderer.
    let exe = sandbox_tests::reachable::current_exe();
    let o = Command::new(exe)
        .args(["--spawner", case])
        .output()
        .expect("spawner");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.code() != Some(0) {
        return format!("SPAWNER FAILED {:?}\n{text}", o.status);
    }
    text
}

fn expect(out: &str, wants: &[String]) -> Result<(), String> {
    for w in wants {
        if !out.contains(w.as_str()) {
            return Err(format!("missing `{w}` in:\n{out}"));
        }
    }
    Ok(())
}

fn nr(name: &str) -> i64 {
    sandbox::policy::arch::Arch::native()
        .syscall_number(name)
        .map_or(-1, i64::from)
}

fn full_case(case: &str) -> Result<(), String> {
    let out = run(case);
    expect(
        &out,
        &[
            "OUTSIDE-OK caps=[0, 0, 0, 0, 0]".into(),
            "\"user\", \"pid\", \"mnt\", \"ipc\", \"uts\", \"cgroup\"".into(),
            "seccomp=2".into(),
            "R: pid=1".into(),
            // The renderer preset answers file access with EACCES before the path is looked up.
            format!("R: open /etc/passwd: errno {}", libc::EACCES),
            format!("R: socket inet: errno {}", libc::EPERM),
            format!("R: spawn: errno {}", libc::EPERM),
            format!("R: kill parent trapped: {}", nr("kill")),
            format!("R: execve trapped: {}", nr("execve")),
            "EXIT Ok(Exited(".into(),
        ],
    )?;
    // Every layer requested, applied, verified.
    for layer in Layer::ALL {
        let line = format!("{:<14} yes       yes     yes", layer.to_string());
        expect(&out, &[line])?;
    }
    Ok(())
}

fn layers_case(case: &str) -> Result<(), String> {
    let out = run(case);
    expect(
        &out,
        &[
            "OUTSIDE-OK".into(),
            "\"net\"".into(),
            // The path does not exist in the empty root.
            format!("R: open /etc/passwd: errno {}", libc::ENOENT),
            // Landlock handles READ_DIR with no rule: the root cannot even be listed.
            format!("R: readdir /: errno {}", libc::EACCES),
            // Landlock denies TCP connect before any routing.
            format!("R: connect inet: errno {}", libc::EACCES),
            "EXIT Ok(Exited(".into(),
        ],
    )
}

/// The renderer shares the spawner's network namespace, so the spawner's abstract
/// socket name is visible to it; only Landlock's scope (ABI 6) stands in the way.
fn scope_case(case: &str) -> Result<(), String> {
    let out = run(case);
    expect(
        &out,
        &[
            "OUTSIDE-OK".into(),
            "abstract unix sockets and signals scoped".into(),
            format!("R: connect outside abstract: errno {}", libc::EPERM),
            "R: connect inside abstract: ok".into(),
            "EXIT Ok(Exited(".into(),
        ],
    )
}

/// pivot_root answers EINVAL (a filter in the spawner stands in for an initramfs
/// root): the root layer falls back to chroot, says so, and still holds.
fn chroot_case(case: &str) -> Result<(), String> {
    let out = run(case);
    expect(
        &out,
        &[
            "OUTSIDE-OK".into(),
            "empty-root     yes       yes     yes      Chroot".into(),
            // The old root is still mounted in this mount namespace, but not reachable.
            format!("R: open /etc/passwd: errno {}", libc::ENOENT),
            format!("R: readdir /: errno {}", libc::EACCES),
            format!("R: chroot again: errno {}", libc::EPERM),
            format!("R: old root by name: errno {}", libc::ENOENT),
            "EXIT Ok(Exited(".into(),
        ],
    )
}

const CASES: &[Case] = &[
    ("all_layers_with_renderer_preset", || full_case("full")),
    ("all_layers_without_close_range", || {
        full_case("full_no_close_range")
    }),
    ("each_landlock_abi_from_1_applies_what_it_has", || {
        // ABI: the file access rights it handles (1: 13; REFER in 2, TRUNCATE in 3,
        // IOCTL_DEV in 5), TCP from 4, scopes from 6.
        for (abi, rights) in [(1, 13), (2, 14), (3, 15), (4, 15), (5, 16), (6, 16)] {
            let out = run(&format!("landlock_abi_{abi}"));
            let mut want = vec![
                format!("ABI {abi}: all {rights} file access rights handled"),
                "OUTSIDE-OK".into(),
                "EXIT Ok(Exited(".into(),
            ];
            if abi >= 4 {
                want.push("tcp bind/connect denied".into());
            }
            if abi >= 6 {
                want.push("abstract unix sockets and signals scoped".into());
            }
            expect(&out, &want)?;
            if abi < 4 && out.contains("tcp bind/connect denied") {
                return Err(format!("ABI {abi} claims TCP rules:\n{out}"));
            }
        }
        Ok(())
    }),
    (
        "an_older_landlock_than_required_is_an_error_naming_it",
        || {
            let out = run("landlock_abi_3_min_4");
            expect(
                &out,
                &["the kernel has Landlock ABI 3; ABI 4 was required".into()],
            )
        },
    ),
    ("all_layers_with_renderer_preset_as_nobody", || {
        full_case("full_nobody")
    }),
    ("each_layer_has_its_own_effect", || layers_case("layers")),
    ("each_layer_has_its_own_effect_as_nobody", || {
        layers_case("layers_nobody")
    }),
    ("empty_root_was_listed_empty_before_landlock", || {
        let out = run("layers");
        expect(
            &out,
            &["empty-root     yes       yes     yes      PivotRoot".into()],
        )
    }),
    ("landlock_scopes_abstract_unix_sockets", || {
        scope_case("scope")
    }),
    ("landlock_scopes_abstract_unix_sockets_as_nobody", || {
        scope_case("scope_nobody")
    }),
    ("where_pivot_root_cannot_work_chroot_holds", || {
        chroot_case("chroot")
    }),
    (
        "where_pivot_root_cannot_work_chroot_holds_as_nobody",
        || chroot_case("chroot_nobody"),
    ),
    ("with_the_root_kept_landlock_alone_refuses", || {
        let out = run("keep_root");
        expect(
            &out,
            &[
                "empty-root     no        no      no       opted out".into(),
                "opt-outs: [KeepRoot]".into(),
                format!("R: open /etc/passwd: errno {}", libc::EACCES),
            ],
        )
    }),
    ("a_thread_made_before_lockdown_is_filtered", || {
        let out = run("thread");
        expect(
            &out,
            &[
                "opt-outs: [LandlockCallingThreadOnly]".into(),
                format!(
                    "R: thread socket=errno {} open=errno {}",
                    libc::EPERM,
                    libc::EACCES
                ),
            ],
        )
    }),
    ("threads_without_landlock_tsync_are_refused", || {
        let out = run("thread_strict");
        expect(
            &out,
            &[
                "LOCKDOWN-ERROR layer=landlock".into(),
                "restricts only the calling thread".into(),
                format!("EXIT Ok(Exited(Pid({}), {}))", "", 106).replace("Pid(), ", ""),
            ],
        )
        .or_else(|_| {
            expect(
                &out,
                &["LOCKDOWN-ERROR layer=landlock".into(), ", 106))".into()],
            )
        })
    }),
    ("read_only_and_read_write_grants", || {
        let out = run("grants");
        expect(
            &out,
            &[
                "OUTSIDE-OK".into(),
                "R: read ro: Ok(\"hello\")".into(),
                // Read-only bind mount: the kernel refuses before Landlock is asked.
                format!("R: write ro: errno {}", libc::EROFS),
                "R: write rw: ok".into(),
                // Landlock: the root itself is not granted, so it cannot be listed.
                format!("R: list /: Err(Some({}))", libc::EACCES),
                "outside rw/new: Some(\"x\")".into(),
            ],
        )
    }),
    ("file_size_limit_zero_refuses_growing_a_file", || {
        let out = run("grants_fsize0");
        expect(
            &out,
            &[
                format!("R: write rw: errno {}", libc::EFBIG),
                "outside rw/new: Some(\"\")".into(),
            ],
        )
    }),
    (
        "renderers_share_one_premade_empty_network_namespace",
        || reuse_case("reuse"),
    ),
    (
        "renderers_share_one_premade_empty_network_namespace_as_nobody",
        || reuse_case("reuse_nobody"),
    ),
    ("a_grant_that_changed_after_its_check_is_not_bound", || {
        let out = run("grants_swapped");
        expect(
            &out,
            &[
                "LOCKDOWN-ERROR layer=empty-root".into(),
                "not the file that was checked".into(),
            ],
        )
    }),
    ("landlock_beyond_the_kernel_abi_is_an_error", || {
        let out = run("landlock_too_new");
        expect(
            &out,
            &[
                "LOCKDOWN-ERROR layer=landlock".into(),
                "ABI 99 was required".into(),
                ", 106))".into(),
            ],
        )
    }),
    ("forbidden_unshare_is_an_error_naming_the_layer", || {
        let out = run("unshare_forbidden");
        expect(
            &out,
            &[format!(
                "SPAWN-ERROR call=clone errno=Some({})",
                libc::EPERM
            )],
        )
    }),
    (
        "exhausted_user_namespaces_are_an_error_naming_the_layer",
        || {
            let out = run("userns_exhausted");
            expect(
                &out,
                &[format!(
                    "SPAWN-ERROR call=clone errno=Some({})",
                    libc::ENOSPC
                )],
            )
        },
    ),
    (
        "a_spawned_program_does_not_inherit_an_ignored_sigpipe",
        || {
            // This (Rust) process ignores SIGPIPE; the program must not inherit that (it
            // would see EPIPE where a C program expects to die quietly).
            let (out_r, out_w) = nix::unistd::pipe().map_err(|e| e.to_string())?;
            let mut spec = SpawnSpec::new("/bin/grep", &["^SigIgn", "/proc/self/status"]);
            spec.fds = vec![(out_w.as_raw_fd(), 1), (2, 2)];
            let mut child = spawn(&spec).map_err(|e| e.to_string())?;
            drop(out_w);
            let mut out = String::new();
            std::fs::File::from(out_r)
                .read_to_string(&mut out)
                .map_err(|e| e.to_string())?;
            let _ = child.wait();
            let ignored = out
                .trim()
                .strip_prefix("SigIgn:")
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
                .ok_or(format!("no SigIgn line: {out:?}"))?;
            // Other dispositions are the caller's to pass on (as std's Command does).
            match ignored & (1 << (libc::SIGPIPE - 1)) {
                0 => Ok(()),
                _ => Err(format!("SIGPIPE still ignored: {out:?}")),
            }
        },
    ),
    ("an_unlocked_process_fails_outside_verification", || {
        // A plain child: nothing applied. The outside check must list the gaps.
        let mut child = Command::new("sleep")
            .arg("5")
            .spawn()
            .map_err(|e| e.to_string())?;
        // What a lying renderer might report: everything done.
        let fake = Status {
            layers: Layer::ALL
                .iter()
                .map(|l| sandbox::lockdown::LayerStatus {
                    layer: *l,
                    requested: true,
                    applied: true,
                    verified: true,
                    detail: String::new(),
                    micros: 0,
                })
                .collect(),
            opt_outs: Vec::new(),
            landlock_abi: 7,
            root_method: None,
        };
        let asked = Asked {
            opt_outs: &[],
            new_namespaces: &["user", "pid"],
        };
        let r = verify_from_outside(child.id() as i32, &fake, &asked);
        let _ = child.kill();
        let _ = child.wait();
        match r {
            Ok(v) => Err(format!("accepted {v:?}")),
            Err(p) => {
                let all = p.join("; ");
                expect(
                    &all,
                    &[
                        "NoNewPrivs is not 1".into(),
                        "Seccomp is 0".into(),
                        "capabilities not empty".into(),
                        "namespace user is the caller's".into(),
                    ],
                )
            }
        }
    }),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--renderer") {
        renderer(args.get(i + 1).map_or("", String::as_str));
    }
    if let Some(i) = args.iter().position(|a| a == "--spawner") {
        spawner(args.get(i + 1).map_or("", String::as_str));
    }
    run_cases(CASES, &args)
}

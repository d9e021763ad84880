//! A renderer's own file calls — plain `std::fs` and libc, no `client.open` — answered
//! by the broker beneath the renderer's grants. Each case runs a broker in a fresh
//! process (this binary with `--case NAME`, as root or dropped to uid 65534) that
//! makes its own grant tree, spawns this binary again as the renderer
//! (`--type=renderer MODE`), and prints what the renderer reported and how it ended.

use broker::services::files::{Access, Grant};
use broker::spec::RendererSpec;
use broker::supervisor::{Broker, BrokerConfig, Event};
use sandbox::renderer::{self, RendererClient};
use sandbox_tests::plain::{Nothing, Plain};
use sandbox_tests::{reachable, run_cases, Case};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

// ------------------------------------------------------------------------------------
// Renderers: they report every check that failed as a log line `FAIL ...`, and
// `PASS n` at the end.

/// The errno of an io::Result, or 0 for success.
fn errno<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn fs_checks(ro: &str, rw: &str) -> Vec<String> {
    let fails = std::cell::RefCell::new(Vec::new());
    let fail = |s: String| fails.borrow_mut().push(s);
    let check = |what: &str, got: i32, want: i32| {
        if got != want {
            fails
                .borrow_mut()
                .push(format!("{what}: errno {got}, expected {want}"));
        }
    };
    // Reading through plain std::fs.
    let content = std::fs::read_to_string(format!("{ro}/hello"));
    if content.as_deref().ok() != Some("hi") {
        fail(format!("read_to_string {ro}/hello: {content:?}"));
    }
    let mut buf = String::new();
    let read =
        std::fs::File::open(format!("{ro}/sub/deep")).and_then(|mut f| f.read_to_string(&mut buf));
    check("File::open sub/deep", errno(read), 0);
    if buf != "deep" {
        fail(format!("sub/deep read {buf:?}"));
    }
    match std::fs::metadata(format!("{ro}/hello")) {
        Ok(m) if m.len() == 2 && m.is_file() => {}
        other => fail(format!("metadata hello: {other:?}")),
    }
    match std::fs::metadata(format!("{ro}/sub")) {
        Ok(m) if m.is_dir() => {}
        other => fail(format!("metadata sub: {other:?}")),
    }
    match std::fs::symlink_metadata(format!("{ro}/link")) {
        Ok(m) if m.file_type().is_symlink() => {}
        other => fail(format!("symlink_metadata link: {other:?}")),
    }
    match std::fs::read_link(format!("{ro}/link")) {
        Ok(t) if t == Path::new("hello") => {}
        other => fail(format!("read_link link: {other:?}")),
    }
    match std::fs::read_to_string(format!("{ro}/link")) {
        Ok(s) if s == "hi" => {}
        other => fail(format!("read through link: {other:?}")),
    }
    if !Path::new(&format!("{ro}/hello")).exists() || Path::new(&format!("{ro}/nope")).exists() {
        fail("exists() wrong".into());
    }
    // Writes through the read-only grant: EROFS, as a read-only mount answers.
    check(
        "create in ro",
        errno(std::fs::File::create(format!("{ro}/new"))),
        libc::EROFS,
    );
    check(
        "open ro file for writing",
        errno(
            std::fs::OpenOptions::new()
                .append(true)
                .open(format!("{ro}/hello")),
        ),
        libc::EROFS,
    );
    // Out of the grants: the errno of a missing file.
    for p in [
        "/etc/passwd".to_string(),
        format!("{ro}/../secret"),
        format!("{ro}/escape"),
        format!("{ro}/abs"),
        format!("{ro}/sub/../../secret"),
        "/proc/self/status".to_string(),
        "relative".to_string(),
    ] {
        check(
            &format!("open {p}"),
            errno(std::fs::File::open(&p)),
            libc::ENOENT,
        );
        check(
            &format!("metadata {p}"),
            errno(std::fs::metadata(&p)),
            libc::ENOENT,
        );
    }
    check(
        "open missing",
        errno(std::fs::File::open(format!("{ro}/nope"))),
        libc::ENOENT,
    );
    // The read-write grant: overwrite an existing file (no creation there).
    check(
        "write rw/out",
        errno(std::fs::write(format!("{rw}/out"), b"written")),
        0,
    );
    check(
        "create in rw",
        errno(std::fs::File::create_new(format!("{rw}/other"))),
        libc::EACCES,
    );
    // libc directly: access(2) and readlink(2).
    let access = |p: String, mode| match nix::unistd::access(p.as_str(), mode) {
        Ok(()) => 0,
        Err(e) => e as i32,
    };
    use nix::unistd::AccessFlags;
    check(
        "access R_OK",
        access(format!("{ro}/hello"), AccessFlags::R_OK),
        0,
    );
    check(
        "access W_OK ro",
        access(format!("{ro}/hello"), AccessFlags::W_OK),
        libc::EROFS,
    );
    check(
        "access W_OK rw",
        access(format!("{rw}/out"), AccessFlags::W_OK),
        0,
    );
    check(
        "access outside",
        access("/etc/passwd".into(), AccessFlags::F_OK),
        libc::ENOENT,
    );
    // A directory is described, not opened.
    check("open dir", errno(std::fs::File::open(ro)), libc::EACCES);
    fails.into_inner()
}

/// 8 threads × 1,000 opens of each thread's own file: every descriptor must read
/// that thread's content.
fn thread_checks(ro: &str) -> Vec<String> {
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let path = format!("{ro}/t{t}");
            std::thread::spawn(move || {
                let mut wrong = 0u32;
                for _ in 0..1000 {
                    let mut s = String::new();
                    let ok = std::fs::File::open(&path)
                        .and_then(|mut f| f.read_to_string(&mut s))
                        .is_ok();
                    if !ok || s != format!("thread {t}") {
                        wrong += 1;
                    }
                }
                wrong
            })
        })
        .collect();
    let mut fails = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(0) => {}
            Ok(n) => fails.push(format!("thread {t}: {n} wrong opens")),
            Err(_) => fails.push(format!("thread {t} panicked")),
        }
    }
    fails
}

fn renderer_main(mode: &str, client: &mut RendererClient<Plain>) -> i32 {
    let ro = std::env::var("RO").unwrap_or_default();
    let rw = std::env::var("RW").unwrap_or_default();
    let fails = match mode {
        "fs" => fs_checks(&ro, &rw),
        "threads" => thread_checks(&ro),
        "forbidden" => {
            // A violation still ends it, attested, with its file calls handed over.
            let _ = nix::unistd::getppid();
            vec!["getppid returned".into()]
        }
        _ => vec![format!("unknown mode {mode}")],
    };
    for f in &fails {
        let _ = client.log(3, &format!("FAIL {f}"));
    }
    let _ = client.log(3, &format!("PASS {}", fails.is_empty()));
    i32::from(!fails.is_empty())
}

// ------------------------------------------------------------------------------------
// Cases (each in its own process).

/// The grant tree, made by the case's own user: `ro/` (hello, sub/deep, t0..t7,
/// link -> hello, escape -> ../secret, abs -> /etc/passwd), `rw/out`, and `secret`
/// beside them.
fn make_tree(root: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root.join("ro/sub"))?;
    std::fs::create_dir_all(root.join("rw"))?;
    std::fs::write(root.join("ro/hello"), "hi")?;
    std::fs::write(root.join("ro/sub/deep"), "deep")?;
    for t in 0..8 {
        std::fs::write(root.join(format!("ro/t{t}")), format!("thread {t}"))?;
    }
    std::os::unix::fs::symlink("hello", root.join("ro/link"))?;
    std::os::unix::fs::symlink("../secret", root.join("ro/escape"))?;
    std::os::unix::fs::symlink("/etc/passwd", root.join("ro/abs"))?;
    std::fs::write(root.join("rw/out"), "old")?;
    std::fs::write(root.join("secret"), "secret")
}

fn run_case(mode: &str) -> Result<String, String> {
    let root: PathBuf =
        std::env::temp_dir().join(format!("file-calls-{mode}-{}", std::process::id()));
    make_tree(&root).map_err(|e| format!("tree: {e}"))?;
    let mut broker = Broker::new(BrokerConfig::default(), Nothing).map_err(|e| e.to_string())?;
    // "many": four renderers at once, each with 8 threads making 1,000 opens.
    let (renderers, renderer_mode) = if mode == "many" {
        (4, "threads")
    } else {
        (1, mode)
    };
    let spec = RendererSpec::current_exe()
        .map_err(|e| e.to_string())?
        .arg(renderer_mode)
        .grant(
            Grant::new(root.join("ro"), Access::ReadOnly)
                .recursive()
                .follow_symlinks(),
        )
        .grant(Grant::new(root.join("rw"), Access::ReadWrite))
        // A renderer grows no file by default (RLIMIT_FSIZE 0): this one writes one.
        .rlimits(sandbox::lockdown::Rlimits {
            file_size: 1 << 20,
            ..Default::default()
        })
        .env("RO", root.join("ro").display().to_string())
        .env("RW", root.join("rw").display().to_string());
    for _ in 0..renderers {
        broker.spawn(spec.clone()).map_err(|e| e.to_string())?;
    }
    let events = broker.run_until_idle(Duration::from_secs(120));
    let mut out = String::new();
    for e in &events {
        match e {
            Event::Log { line, .. } => out.push_str(&format!("LOG {line}\n")),
            Event::Ended { reason, .. } => out.push_str(&format!("ENDED {reason:?}\n")),
            Event::Ready { .. } => out.push_str("READY\n"),
        }
    }
    if mode == "fs" {
        let written = std::fs::read_to_string(root.join("rw/out")).unwrap_or_default();
        out.push_str(&format!("RW OUT {written}\n"));
        let created = root.join("ro/new").exists() || root.join("rw/other").exists();
        out.push_str(&format!("CREATED {created}\n"));
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(out)
}

/// This binary as a case's broker, as root or as uid 65534; what it printed.
fn case(mode: &str, nobody: bool) -> String {
    reachable::run_self(&["--case", mode], nobody)
}

fn expect_pass(mode: &str, nobody: bool, also: &[&str]) -> Result<(), String> {
    let out = case(mode, nobody);
    let ok = out.contains("LOG PASS true")
        && out.contains("ENDED Exited(0)")
        && !out.contains("LOG FAIL")
        && also.iter().all(|a| out.contains(a));
    if ok {
        Ok(())
    } else {
        Err(out)
    }
}

fn fs_root() -> Result<(), String> {
    expect_pass("fs", false, &["RW OUT written", "CREATED false"])
}
fn fs_nobody() -> Result<(), String> {
    expect_pass("fs", true, &["RW OUT written", "CREATED false"])
}
fn threads_root() -> Result<(), String> {
    expect_pass("threads", false, &[])
}
fn threads_nobody() -> Result<(), String> {
    expect_pass("threads", true, &[])
}
/// Four renderers at once, each with 8 threads × 1,000 opens: every one answered right
/// (each renderer's calls are answered by a thread of its own).
fn many_renderers() -> Result<(), String> {
    let out = case("many", false);
    let passed = out.matches("LOG PASS true").count() == 4
        && out.matches("ENDED Exited(0)").count() == 4
        && !out.contains("LOG FAIL");
    if passed {
        Ok(())
    } else {
        Err(out)
    }
}
fn violation_still_attested() -> Result<(), String> {
    let out = case("forbidden", false);
    if out.contains("ENDED SeccompViolation")
        && out.contains("getppid")
        && out.contains("attested: true")
    {
        Ok(())
    } else {
        Err(out)
    }
}

/// Without its own pid namespace, a spec with grants is refused with the opt-out named.
fn needs_pid_namespace() -> Result<(), String> {
    let mut broker = Broker::new(BrokerConfig::default(), Nothing).map_err(|e| e.to_string())?;
    let spec = RendererSpec::current_exe()
        .map_err(|e| e.to_string())?
        .namespaces(sandbox::launch::Namespaces {
            pid: false,
            ..Default::default()
        })
        .grant(Grant::new(std::env::temp_dir(), Access::ReadOnly));
    match broker.spawn(spec) {
        Err(e) if e.to_string().contains("file_calls(false)") => Ok(()),
        other => Err(format!(
            "expected a refusal naming the opt-out, got {other:?}"
        )),
    }
}

/// A kernel without `openat2` (before 5.6), as a filter in front of it says: grants
/// cannot be resolved safely, so a spec with grants is refused, saying why. (In a fresh
/// process: the filter cannot be removed.)
fn no_openat2_refused() -> Result<(), String> {
    let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .arg("--no-openat2")
        .output()
        .map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.contains("REFUSED") && out.contains("openat2 with RESOLVE_BENEATH is not available") {
        Ok(())
    } else {
        Err(out)
    }
}

fn without_openat2() -> ! {
    let installed = sandbox::probe::install_policy_text(
        "no-openat2",
        "@default allow\nopenat2: errno ENOSYS",
        false,
    );
    if let Err(e) = installed {
        println!("SETUP {e}");
        std::process::exit(0);
    }
    let spawned = Broker::new(BrokerConfig::default(), Nothing)
        .map_err(|e| e.to_string())
        .and_then(|mut b| {
            let spec = RendererSpec::current_exe()
                .map_err(|e| e.to_string())?
                .grant(Grant::new(std::env::temp_dir(), Access::ReadOnly));
            b.spawn(spec).map_err(|e| e.to_string())
        });
    match spawned {
        Err(e) => println!("REFUSED {e}"),
        Ok(_) => println!("SPAWNED"),
    }
    std::process::exit(0)
}

const CASES: &[Case] = &[
    ("file_calls_plain_std_fs_as_root", fs_root),
    ("file_calls_plain_std_fs_as_nobody", fs_nobody),
    ("file_calls_8_threads_x_1000_opens_as_root", threads_root),
    (
        "file_calls_8_threads_x_1000_opens_as_nobody",
        threads_nobody,
    ),
    (
        "file_calls_4_renderers_at_once_x_8_threads_x_1000_opens",
        many_renderers,
    ),
    (
        "file_calls_violation_still_attested",
        violation_still_attested,
    ),
    ("file_calls_need_the_pid_namespace", needs_pid_namespace),
    ("grants_without_openat2_are_refused", no_openat2_refused),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == renderer::ROLE_ARG) {
        let mode = args.last().cloned().unwrap_or_default();
        renderer::run::<Plain>(move |_locked, client| renderer_main(&mode, client));
    }
    if args.iter().any(|a| a == "--no-openat2") {
        without_openat2();
    }
    if let Some(i) = args.iter().position(|a| a == "--case") {
        match run_case(args.get(i + 1).map_or("", String::as_str)) {
            Ok(out) => print!("{out}"),
            Err(e) => println!("CASE ERROR {e}"),
        }
        std::process::exit(0);
    }
    run_cases(CASES, &args)
}

//! Kernel tests: each case installs a real filter in a fresh child process (this test
//! binary re-executed with `--child NAME`) and the parent asserts the exact outcome:
//! the errno, the SIGSYS details, or death by SIGSYS.
//!
//! Runs as root (CI does); the `*_as_nobody` cases drop to uid/gid 65534 first, to show
//! the unprivileged path (no_new_privs instead of CAP_SYS_ADMIN).

use sandbox_tests::{run_cases, Case};

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{getppid, getuid};
use sandbox::bpf;
use sandbox::policy::arch::Arch;
use sandbox::policy::presets::Preset;
use sandbox::policy::text::{parse_str, EmbeddedSources, Options};
use sandbox::probe;
use sandbox::seccomp::{self, InstallOptions};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

// ------------------------------------------------------------------------------------
// Child side.

fn install_text(text: &str, options: InstallOptions) {
    let policy = parse_str(
        "test.policy",
        text,
        &Options::new(Arch::native()),
        &EmbeddedSources(&[]),
    )
    .unwrap_or_else(|e| fail(&format!("policy: {e}")));
    let program =
        bpf::compile(&policy, Arch::native()).unwrap_or_else(|e| fail(&format!("compile: {e}")));
    seccomp::install(&program, options).unwrap_or_else(|e| fail(&format!("install: {e}")));
}

/// A SIGSYS recorder, then `preset` (SELF_PID bound to this process) on every thread.
fn install_preset_recording_traps(preset: Preset) {
    probe::install_sigsys_recorder().unwrap_or_else(|e| fail(&format!("sigaction: {e}")));
    let policy = preset
        .policy_for_self()
        .unwrap_or_else(|e| fail(&format!("preset: {e}")));
    let program =
        bpf::compile(&policy, Arch::native()).unwrap_or_else(|e| fail(&format!("compile: {e}")));
    seccomp::install(&program, InstallOptions::default())
        .unwrap_or_else(|e| fail(&format!("install: {e}")));
}

fn fail(msg: &str) -> ! {
    eprintln!("child setup failed: {msg}");
    std::process::exit(3)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn child(name: &str) {
    // No core files from the SIGSYS deaths below.
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    seccomp::set_no_new_privs().unwrap_or_else(|e| fail(&format!("no_new_privs: {e}")));
    match name {
        "allowed" => {
            let before = getppid();
            install_text(
                "@default errno EPERM\n{getppid, write, exit_group, exit}: allow",
                InstallOptions::default(),
            );
            say(&format!("same-ppid={}", getppid() == before));
        }
        "errno" => {
            install_text(
                "@default allow\ngetppid: errno ENOTTY",
                InstallOptions::default(),
            );
            let r = getppid().as_raw();
            say(&format!("ret={r}"));
        }
        "trap" | "trap_as_nobody" => {
            if name == "trap_as_nobody" {
                sandbox_tests::reachable::drop_to_nobody();
            }
            probe::install_sigsys_recorder().unwrap_or_else(|e| fail(&format!("sigaction: {e}")));
            install_text("@default allow\ngetppid: trap 7", InstallOptions::default());
            let _ = getppid();
            match probe::last_trap() {
                Some(t) => say(&format!(
                    "count={} syscall={} arch={:#x} data={} code={}",
                    t.count, t.syscall, t.arch, t.data, t.code
                )),
                None => say("no trap"),
            }
        }
        "kill_process" => {
            install_text(
                "@default allow\ngetppid: kill-process",
                InstallOptions::default(),
            );
            say("before");
            let _ = getppid();
            say("after");
        }
        "tsync" | "no_tsync" => {
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let (res_tx, res_rx) = std::sync::mpsc::channel::<(i32, i32)>();
            let t = std::thread::spawn(move || {
                let _ = go_rx.recv();
                let r = getppid().as_raw();
                let _ = res_tx.send((r, 0));
            });
            let options = InstallOptions {
                all_threads: name == "tsync",
                log: false,
            };
            install_text("@default allow\ngetppid: errno EADDRNOTAVAIL", options);
            let _ = go_tx.send(());
            let (r, e) = res_rx.recv().unwrap_or((0, 0));
            let _ = t.join();
            say(&format!("thread-ret={r} thread-errno={e}"));
        }
        "stacked" => {
            install_text(
                "@default allow\ngetppid: errno EPERM",
                InstallOptions::default(),
            );
            install_text(
                "@default allow\ngetppid: allow\ngetuid: errno ENOENT",
                InstallOptions::default(),
            );
            let p = getppid().as_raw();
            let u = getuid().as_raw() as i32;
            say(&format!("getppid={p} getuid={u}"));
        }
        #[cfg(target_arch = "x86_64")]
        "i386_entry" => {
            say(&format!("unfiltered={}", probe::i386_getpid()));
            install_text("@default allow\ngetpid: allow", InstallOptions::default());
            say("installed");
            say(&format!("filtered={}", probe::i386_getpid()));
        }
        #[cfg(target_arch = "x86_64")]
        "x32_entry" => {
            say(&format!(
                "unfiltered={:?}",
                probe::x32_getpid().map_err(|e| e.raw_os_error())
            ));
            install_text("@default allow\ngetpid: allow", InstallOptions::default());
            say("installed");
            say(&format!("filtered={:?}", probe::x32_getpid()));
        }
        "junk_high_half" => {
            let (r, _w) = nix::unistd::pipe().unwrap_or_else(|e| fail(&format!("pipe: {e}")));
            use std::os::fd::AsRawFd;
            let fd = r.as_raw_fd();
            // A blocklist: FIONREAD is refused. With a 64-bit compare, FIONREAD | 1 << 32
            // would not equal FIONREAD and the kernel would run FIONREAD.
            install_text(
                "@default allow\nioctl: cmd == FIONREAD => errno EPERM",
                InstallOptions::default(),
            );
            say(&format!(
                "clean={:?}",
                probe::fionread_with_high_bits(fd, 0).map_err(|e| e.raw_os_error())
            ));
            say(&format!(
                "junk={:?}",
                probe::fionread_with_high_bits(fd, 1).map_err(|e| e.raw_os_error())
            ));
        }
        "renderer" | "renderer_as_nobody" => {
            if name == "renderer_as_nobody" {
                sandbox_tests::reachable::drop_to_nobody();
            }
            probe::install_sigsys_recorder().unwrap_or_else(|e| fail(&format!("sigaction: {e}")));
            let parent = getppid();
            let policy = Preset::Renderer
                .policy_for_self()
                .unwrap_or_else(|e| fail(&format!("preset: {e}")));
            let program = bpf::compile(&policy, Arch::native())
                .unwrap_or_else(|e| fail(&format!("compile: {e}")));
            seccomp::install(&program, InstallOptions::default())
                .unwrap_or_else(|e| fail(&format!("install: {e}")));
            let trap_nr = || probe::last_trap().map_or(-1, |t| t.syscall);
            let t = std::thread::Builder::new()
                .name("worker".into())
                .spawn(|| 6 * 7)
                .map(|h| h.join().unwrap_or(0));
            say(&format!("thread={t:?}"));
            say(&format!(
                "open={:?}",
                std::fs::File::open("/etc/passwd").map_err(|e| e.raw_os_error())
            ));
            say(&format!(
                "socket={:?}",
                std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.raw_os_error())
            ));
            say(&format!(
                "spawn={:?}",
                Command::new("/bin/true")
                    .spawn()
                    .map(|_| ())
                    .map_err(|e| e.raw_os_error())
            ));
            let _ = nix::sys::signal::kill(parent, None);
            say(&format!("kill-parent-trapped={}", trap_nr()));
            let _ = nix::sys::ptrace::attach(parent);
            say(&format!("ptrace-trapped={}", trap_nr()));
            say(&format!(
                "kill-self={:?}",
                nix::sys::signal::kill(nix::unistd::getpid(), None)
            ));
        }
        "plugin" | "renderer_exec_map" => {
            install_preset_recording_traps(if name == "plugin" {
                Preset::Plugin
            } else {
                Preset::Renderer
            });
            let trap_nr = || probe::last_trap().map_or(-1, |t| t.syscall);
            say(&format!(
                "rw={:?}",
                probe::mmap_anonymous_page(libc::PROT_READ | libc::PROT_WRITE).is_ok()
            ));
            let _ = probe::mmap_anonymous_page(libc::PROT_READ | libc::PROT_EXEC);
            say(&format!("rx-trapped={}", trap_nr()));
            let _ =
                probe::mmap_anonymous_page(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC);
            say(&format!("wx-trapped={}", trap_nr()));
            say(&format!(
                "traps={}",
                probe::last_trap().map_or(0, |t| t.count)
            ));
        }
        "oob_renderer" | "oob_plugin" => {
            use nix::sys::socket::{
                recv, send, sendmsg, socketpair, AddressFamily, MsgFlags, SockFlag, SockType,
            };
            // A stream pair made before the filter (as an embedder might hand one in).
            let (a, b) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .unwrap_or_else(|e| fail(&format!("socketpair: {e}")));
            install_preset_recording_traps(if name == "oob_plugin" {
                Preset::Plugin
            } else {
                Preset::Renderer
            });
            let trap_nr = || probe::last_trap().map_or(-1, |t| t.syscall);
            use std::os::fd::AsRawFd;
            say(&format!(
                "plain-send={:?}",
                send(a.as_raw_fd(), b"x", MsgFlags::empty())
            ));
            let _ = send(a.as_raw_fd(), b"y", MsgFlags::MSG_OOB);
            say(&format!("oob-send-trapped={}", trap_nr()));
            let _ = sendmsg::<()>(
                a.as_raw_fd(),
                &[std::io::IoSlice::new(b"z")],
                &[],
                MsgFlags::MSG_OOB,
                None,
            );
            say(&format!("oob-sendmsg-trapped={}", trap_nr()));
            let mut buf = [0u8; 4];
            let _ = recv(b.as_raw_fd(), &mut buf, MsgFlags::MSG_OOB);
            say(&format!("oob-recv-trapped={}", trap_nr()));
            say(&format!(
                "plain-recv={:?}",
                recv(b.as_raw_fd(), &mut buf, MsgFlags::empty())
            ));
            say(&format!(
                "seqpacket-pair={:?}",
                socketpair(
                    AddressFamily::Unix,
                    SockType::SeqPacket,
                    None,
                    SockFlag::SOCK_CLOEXEC
                )
                .is_ok()
            ));
            // A trapped call returns garbage: std then holds made-up descriptors,
            // which are left alone.
            let pair = std::os::unix::net::UnixStream::pair();
            say(&format!("stream-pair-trapped={}", trap_nr()));
            std::mem::forget(pair);
        }
        other => fail(&format!("no child case `{other}`")),
    }
    std::process::exit(0);
}

// ------------------------------------------------------------------------------------
// Parent side.

fn run_child(name: &str) -> Output {
    let exe = std::env::current_exe().expect("own path");
    Command::new(exe)
        .args(["--child", name])
        .output()
        .expect("re-execute the test binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn expect_exit0(o: &Output) -> Result<String, String> {
    if o.status.code() == Some(0) {
        Ok(stdout(o))
    } else {
        Err(format!(
            "child ended with {:?}; stdout: {} stderr: {}",
            o.status,
            stdout(o),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

fn expect_sigsys(o: &Output) -> Result<String, String> {
    if o.status.signal() == Some(libc::SIGSYS) {
        Ok(stdout(o))
    } else {
        Err(format!(
            "expected death by SIGSYS, got {:?}; stdout: {} stderr: {}",
            o.status,
            stdout(o),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

fn check(cond: bool, what: &str, out: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}; child said:\n{out}"))
    }
}

fn nr(name: &str) -> i32 {
    Arch::native().syscall_number(name).map_or(-1, |n| n as i32)
}

const CASES: &[Case] = &[
    ("allowed_syscall_works", || {
        let out = expect_exit0(&run_child("allowed"))?;
        check(
            out.contains("same-ppid=true"),
            "getppid under an allow rule",
            &out,
        )
    }),
    ("errno_action_returns_that_errno", || {
        let out = expect_exit0(&run_child("errno"))?;
        // nix makes the raw syscall: the result is -errno.
        check(
            out.contains(&format!("ret=-{}", libc::ENOTTY)),
            "ENOTTY",
            &out,
        )
    }),
    ("trap_delivers_sigsys_with_syscall_and_data", || {
        let out = expect_exit0(&run_child("trap"))?;
        let want = format!(
            "count=1 syscall={} arch={:#x} data=7 code=1",
            nr("getppid"),
            Arch::native().audit_arch()
        );
        check(out.contains(&want), &format!("want `{want}`"), &out)
    }),
    ("trap_as_nobody", || {
        let out = expect_exit0(&run_child("trap_as_nobody"))?;
        let want = format!("count=1 syscall={} ", nr("getppid"));
        check(out.contains(&want), &format!("want `{want}`"), &out)
    }),
    ("kill_process_ends_the_process_by_sigsys", || {
        let out = expect_sigsys(&run_child("kill_process"))?;
        check(
            out.contains("before") && !out.contains("after"),
            "died at the call",
            &out,
        )
    }),
    ("tsync_covers_a_thread_created_before_install", || {
        let out = expect_exit0(&run_child("tsync"))?;
        check(
            out.contains(&format!("thread-ret=-{}", libc::EADDRNOTAVAIL)),
            "thread filtered",
            &out,
        )?;
        // Control: without TSYNC the earlier thread is not filtered, so the flag is
        // what made the difference above.
        let out = expect_exit0(&run_child("no_tsync"))?;
        check(
            !out.contains("thread-ret=-"),
            "without TSYNC the thread is unfiltered",
            &out,
        )
    }),
    ("a_stacked_policy_can_only_narrow", || {
        let out = expect_exit0(&run_child("stacked"))?;
        let want = format!(
            "getppid=-{} getuid={}",
            libc::EPERM,
            (-libc::ENOENT) as u32 as i32
        );
        check(out.contains(&want), &format!("want `{want}`"), &out)
    }),
    #[cfg(target_arch = "x86_64")]
    ("i386_entry_is_killed_by_the_arch_check", || {
        let out = expect_sigsys(&run_child("i386_entry"))?;
        check(
            out.contains("installed") && !out.contains("\nfiltered="),
            "killed at int 0x80",
            &out,
        )
    }),
    #[cfg(target_arch = "x86_64")]
    ("x32_numbers_are_killed", || {
        let out = expect_sigsys(&run_child("x32_entry"))?;
        check(
            out.contains("installed") && !out.contains("\nfiltered="),
            "killed at the x32 call",
            &out,
        )
    }),
    ("junk_in_a_32bit_high_half_never_passes_a_rule", || {
        let out = expect_sigsys(&run_child("junk_high_half"))?;
        check(
            out.contains(&format!("clean=Err(Some({}))", libc::EPERM)) && !out.contains("junk="),
            "clean FIONREAD refused, junk one killed",
            &out,
        )
    }),
    ("renderer_preset_effects", renderer_case),
    ("plugin_preset_allows_rx_never_wx_renderer_neither", || {
        let mmap = nr("mmap");
        let out = expect_exit0(&run_child("plugin"))?;
        // plugin: read+exec allowed (no trap), write+exec trapped.
        check(
            out.contains("rw=true")
                && out.contains("rx-trapped=-1")
                && out.contains(&format!("wx-trapped={mmap}"))
                && out.contains("traps=1"),
            "plugin",
            &out,
        )?;
        let out = expect_exit0(&run_child("renderer_exec_map"))?;
        // renderer: any executable mapping is trapped.
        check(
            out.contains("rw=true")
                && out.contains(&format!("rx-trapped={mmap}"))
                && out.contains("traps=2"),
            "renderer",
            &out,
        )
    }),
    (
        "renderer_and_plugin_refuse_out_of_band_data_and_stream_pairs",
        || {
            for case in ["oob_renderer", "oob_plugin"] {
                let out = expect_exit0(&run_child(case))?;
                for want in [
                    "plain-send=Ok(1)".to_string(),
                    format!("oob-send-trapped={}", nr("sendto")),
                    format!("oob-sendmsg-trapped={}", nr("sendmsg")),
                    format!("oob-recv-trapped={}", nr("recvfrom")),
                    "plain-recv=Ok(1)".to_string(),
                    "seqpacket-pair=true".to_string(),
                    format!("stream-pair-trapped={}", nr("socketpair")),
                ] {
                    check(out.contains(&want), &format!("{case}: want `{want}`"), &out)?;
                }
            }
            Ok(())
        },
    ),
    ("renderer_preset_effects_as_nobody", || {
        let out = expect_exit0(&run_child("renderer_as_nobody"))?;
        check(
            out.contains("thread=Ok(42)")
                && out.contains(&format!("open=Err(Some({}))", libc::EACCES)),
            "as nobody",
            &out,
        )
    }),
];

fn renderer_case() -> Result<(), String> {
    let out = expect_exit0(&run_child("renderer"))?;
    for want in [
        "thread=Ok(42)".to_string(),
        format!("open=Err(Some({}))", libc::EACCES),
        format!("socket=Err(Some({}))", libc::EPERM),
        format!("spawn=Err(Some({}))", libc::EPERM),
        format!("kill-parent-trapped={}", nr("kill")),
        format!("ptrace-trapped={}", nr("ptrace")),
        "kill-self=Ok(())".to_string(),
    ] {
        check(out.contains(&want), &format!("want `{want}`"), &out)?;
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(args.get(i + 1).map_or("", String::as_str));
        return;
    }
    // Accept libtest's flags; plain words filter the cases by name.
    run_cases(CASES, &args)
}

//! The escape battery: a renderer locked down with the `renderer` preset attempts every
//! vector of `escape.c` — the ones of `../shared/escape-vectors.md`, of
//! `cli/tests/hostile.c`, and the bypass classes in the kernel's seccomp and Landlock
//! docs and the peers' trackers — each in a fresh renderer, and each outcome is
//! asserted exactly: the errno the call returned, or the violation the broker read from
//! the kernel, by syscall name. Run as root and as uid 65534 (this binary re-executed
//! with `--battery PRESET`, then as the renderers), with the `renderer` preset and with
//! the `plugin` preset (whose differences are listed in `PLUGIN_DIFFERS`).

use broker::services::files::{Access, Grant};
use broker::spec::RendererSpec;
use broker::supervisor::{Broker, BrokerConfig, EndReason, Event};
use sandbox::policy::presets::Preset;
use sandbox::renderer;
use sandbox_tests::escape::{attempt, Attempt};
use sandbox_tests::plain::{Nothing, Plain};
use sandbox_tests::{reachable, run_cases, Case};
use std::collections::HashMap;
use std::time::Duration;

/// What each vector must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// The call returned this errno (the preset's answer, or the kernel's in the empty
    /// sandbox, or the broker's for a file call).
    Errno(i32),
    /// The renderer was ended for a violation of this syscall, attested by the kernel.
    Violation(&'static str),
    /// The call succeeded: what the preset is for (executable code, for `plugin`).
    Allowed,
    /// The filter killed it outright, before any notification: another architecture's
    /// entry, or junk in the high half of a 32-bit argument (a value no rule looked at).
    KilledByFilter,
}

use Want::{Errno, Violation};

const EACCES: Want = Errno(libc::EACCES);
const ENOENT: Want = Errno(libc::ENOENT);
const EPERM: Want = Errno(libc::EPERM);

/// Every vector with its outcome under the `renderer` preset, with file grants (so the
/// file calls are the broker's). Why each one is what it is: `docs/security-testing.md`.
const VECTORS: &[(&str, Want)] = &[
    // Files: answered by the broker beneath the grant only.
    ("read_passwd", ENOENT),
    ("read_shadow", ENOENT),
    ("read_proc_1_environ", ENOENT),
    ("read_proc_self_environ", ENOENT),
    ("write_proc_self_mem", ENOENT),
    ("read_sys", ENOENT),
    ("create_tmp", ENOENT),
    ("create_dev_shm", ENOENT),
    ("create_root", ENOENT),
    ("list_root", ENOENT),
    ("getdents", EACCES),
    ("chdir_up", EACCES),
    ("grant_dotdot", ENOENT),
    ("grant_symlink_out", ENOENT),
    ("grant_write", Errno(libc::EROFS)),
    ("grant_create", Errno(libc::EROFS)),
    ("grant_directory", EACCES),
    ("grant_opath", EACCES),
    ("grant_long_path", Errno(libc::ENAMETOOLONG)),
    ("mkdir", EACCES),
    ("unlink", EACCES),
    ("rename", EACCES),
    ("link", EACCES),
    ("symlink", EACCES),
    ("mknod", EACCES),
    ("open_by_handle_at", Violation("open_by_handle_at")),
    ("name_to_handle_at", Violation("name_to_handle_at")),
    // Processes and signals.
    ("fork", EPERM),
    ("vfork_like_clone", EPERM),
    ("clone_process", EPERM),
    ("clone_newuser", EPERM),
    ("clone3", Errno(libc::ENOSYS)),
    ("execve", Violation("execve")),
    ("execveat", Violation("execveat")),
    ("kill_other", Violation("kill")),
    ("kill_all", Violation("kill")),
    ("tgkill_other", Violation("tgkill")),
    ("sigqueue_other", Violation("rt_sigqueueinfo")),
    ("getppid", Violation("getppid")),
    ("ptrace_traceme", Violation("ptrace")),
    ("ptrace_attach", Violation("ptrace")),
    ("process_vm_readv", Violation("process_vm_readv")),
    ("process_vm_writev", Violation("process_vm_writev")),
    ("kcmp", Violation("kcmp")),
    ("pidfd_open", Violation("pidfd_open")),
    ("pidfd_getfd", Violation("pidfd_getfd")),
    ("setpgid", Violation("setpgid")),
    ("setsid", Violation("setsid")),
    ("setpriority_other", Violation("setpriority")),
    ("sched_setaffinity_other", Violation("sched_setaffinity")),
    // Network.
    ("socket_inet", EPERM),
    ("socket_inet6", EPERM),
    ("socket_netlink", EPERM),
    ("socket_packet", EPERM),
    ("connect_path_unix", EPERM),
    ("connect_abstract_unix", EPERM),
    ("socketpair_stream", Violation("socketpair")),
    ("socketpair_inet", Violation("socketpair")),
    ("msg_oob", Violation("sendto")),
    ("sendto_fastopen", Violation("sendto")),
    ("sendto_address", Violation("sendto")),
    ("sendmsg_other_fd", Violation("sendmsg")),
    // Privilege, namespaces, mounts.
    ("unshare_user", Violation("unshare")),
    ("unshare_net", Violation("unshare")),
    ("setns", Violation("setns")),
    ("mount", Violation("mount")),
    ("umount", Violation("umount2")),
    ("pivot_root", Violation("pivot_root")),
    ("chroot", Violation("chroot")),
    ("fsopen", Violation("fsopen")),
    ("open_tree", Violation("open_tree")),
    ("move_mount", Violation("move_mount")),
    ("mount_setattr", Violation("mount_setattr")),
    ("setuid0", Violation("setuid")),
    ("setresuid0", Violation("setresuid")),
    ("setgroups", Violation("setgroups")),
    ("capset", Violation("capset")),
    ("prctl_dumpable", Violation("prctl")),
    ("prctl_ptracer", EPERM),
    ("prctl_seccomp", Violation("prctl")),
    ("seccomp_second_filter", EPERM),
    ("personality", Violation("personality")),
    // Kernel interfaces.
    ("bpf", Violation("bpf")),
    ("perf_event_open", Violation("perf_event_open")),
    ("keyctl", Violation("keyctl")),
    ("add_key", Violation("add_key")),
    ("request_key", Violation("request_key")),
    ("init_module", Violation("init_module")),
    ("finit_module", Violation("finit_module")),
    ("kexec_load", Violation("kexec_load")),
    ("reboot", Violation("reboot")),
    ("swapon", Violation("swapon")),
    ("acct", Violation("acct")),
    ("syslog", Violation("syslog")),
    ("settimeofday", Violation("settimeofday")),
    ("clock_settime", Violation("clock_settime")),
    ("sethostname", Violation("sethostname")),
    ("iopl", Violation("iopl")),
    ("ioperm", Violation("ioperm")),
    ("io_uring_setup", Violation("io_uring_setup")),
    ("io_uring_enter", Violation("io_uring_enter")),
    ("userfaultfd", Violation("userfaultfd")),
    ("timer_create", Violation("timer_create")),
    ("timerfd_create", Violation("timerfd_create")),
    ("quotactl", Violation("quotactl")),
    ("vhangup", Violation("vhangup")),
    // Terminals and ioctls.
    ("tiocsti", Violation("ioctl")),
    ("tiocsti_high_bits", Want::KilledByFilter),
    ("tioclinux", Violation("ioctl")),
    ("fionread_high_bits", Want::KilledByFilter),
    // Memory.
    ("mmap_exec", Violation("mmap")),
    ("mmap_write_exec", Violation("mmap")),
    ("mprotect_exec", Violation("mprotect")),
    ("memfd_exec", Violation("memfd_create")),
    ("madvise_hwpoison", EPERM),
    // Entry points.
    ("x32", Want::KilledByFilter),
    ("int80", Want::KilledByFilter),
    // Resources: bounded by RLIMIT_NOFILE, not an escape.
    ("fd_exhaustion", Errno(libc::EMFILE)),
];

/// Where the `plugin` preset answers otherwise: it exists to run code loaded at run
/// time, so read+execute mappings are allowed (never writable and executable at once).
const PLUGIN_DIFFERS: &[(&str, Want)] = &[
    ("mmap_exec", Want::Allowed),
    ("mprotect_exec", Want::Allowed),
];

/// What `name` must come to under `preset`.
fn want(name: &str, preset: Preset) -> Option<Want> {
    let plugin = (preset == Preset::Plugin)
        .then(|| PLUGIN_DIFFERS.iter().find(|(n, _)| *n == name))
        .flatten();
    plugin
        .or_else(|| VECTORS.iter().find(|(n, _)| *n == name))
        .map(|(_, w)| *w)
}

/// The outcome in words, as the table says it.
fn words(result: Option<&str>, end: Option<&EndReason>) -> String {
    match (result, end) {
        (Some(r), _) => r.to_string(),
        (
            None,
            Some(EndReason::SeccompViolation {
                name: Some(n),
                attested: true,
                ..
            }),
        ) => {
            format!("violation {n}")
        }
        (
            None,
            Some(EndReason::SeccompViolation {
                nr: -1,
                attested: true,
                ..
            }),
        ) => "killed by the filter".into(),
        (None, other) => format!("{other:?}"),
    }
}

fn wanted(w: Want) -> String {
    match w {
        Errno(e) => format!("errno {e}"),
        Violation(n) => format!("violation {n}"),
        Want::KilledByFilter => "killed by the filter".into(),
        Want::Allowed => "ok".into(),
    }
}

/// The battery, in this process as the broker: every vector's outcome, as
/// `VECTOR name: got | want` lines, `MISMATCH` where they differ.
fn battery(preset: Preset) -> Result<String, String> {
    let root = std::env::temp_dir().join(format!("escape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let grant = root.join("grant");
    std::fs::create_dir_all(&grant).map_err(|e| e.to_string())?;
    std::fs::write(grant.join("file"), "granted").map_err(|e| e.to_string())?;
    std::fs::write(root.join("secret"), "secret").map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("/etc/passwd", grant.join("out")).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for chunk in VECTORS.chunks(16) {
        let mut broker =
            Broker::new(BrokerConfig::default(), Nothing).map_err(|e| e.to_string())?;
        let mut ids = HashMap::new();
        for (name, _) in chunk {
            let spec = RendererSpec::current_exe()
                .map_err(|e| e.to_string())?
                .arg(*name)
                .preset(preset)
                .env("GRANT", grant.display().to_string())
                .grant(Grant::new(&grant, Access::ReadOnly).recursive())
                .inherit_stderr(false)
                .deadline(Duration::from_secs(20));
            ids.insert(broker.spawn(spec).map_err(|e| e.to_string())?, *name);
        }
        let (mut results, mut ends) = (HashMap::new(), HashMap::new());
        for e in broker.run_until_idle(Duration::from_secs(60)) {
            match e {
                Event::Log { id, line, .. } => {
                    results.insert(id, line);
                }
                Event::Ended { id, reason, .. } => {
                    ends.insert(id, reason);
                }
                Event::Ready { .. } => {}
            }
        }
        for (id, name) in &ids {
            let got = words(results.get(id).map(String::as_str), ends.get(id));
            let want = want(name, preset).map(wanted).unwrap_or_default();
            let mark = if got == want { "" } else { " MISMATCH" };
            out.push_str(&format!("VECTOR {name}: {got} | {want}{mark}\n"));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(out)
}

fn run_battery(preset: Preset, nobody: bool) -> Result<(), String> {
    let out = reachable::run_self(&["--battery", preset.name()], nobody);
    let count = out.lines().filter(|l| l.starts_with("VECTOR ")).count();
    if count == VECTORS.len() && !out.contains("MISMATCH") {
        Ok(())
    } else {
        Err(format!(
            "{count} of {} vectors reported\n{out}",
            VECTORS.len()
        ))
    }
}

const CASES: &[Case] = &[
    ("escape_battery_renderer_preset_as_root", || {
        run_battery(Preset::Renderer, false)
    }),
    ("escape_battery_renderer_preset_as_nobody", || {
        run_battery(Preset::Renderer, true)
    }),
    ("escape_battery_plugin_preset_as_root", || {
        run_battery(Preset::Plugin, false)
    }),
    ("escape_battery_plugin_preset_as_nobody", || {
        run_battery(Preset::Plugin, true)
    }),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == renderer::ROLE_ARG) {
        let vector = args.last().cloned().unwrap_or_default();
        renderer::run::<Plain>(move |_locked, client| {
            let grant = std::env::var("GRANT").unwrap_or_default();
            let line = match attempt(&vector, &grant) {
                Attempt::Ok(_) => "ok".to_string(),
                Attempt::Errno(e) => format!("errno {e}"),
                Attempt::Unknown => "unknown vector".to_string(),
            };
            let _ = client.log(3, &line);
            0
        });
    }
    if let Some(i) = args.iter().position(|a| a == "--battery") {
        let preset = args
            .get(i + 1)
            .and_then(|p| p.parse::<Preset>().ok())
            .unwrap_or(Preset::Renderer);
        match battery(preset) {
            Ok(out) => print!("{out}"),
            Err(e) => println!("BATTERY ERROR {e}"),
        }
        std::process::exit(0);
    }
    run_cases(CASES, &args)
}

//! The renderer escape battery (`tests/escape.c`, 118 vectors) through `sandbox run`
//! with the `exec` preset, as root and as uid 65534: each vector in a fresh sandbox,
//! each outcome asserted exactly. The `exec` preset runs ordinary programs, so where it
//! differs from the renderer battery the difference is the policy's, and listed in
//! `EXEC` with the reason in `docs/security-testing.md`.

mod common;
use common::{both, compile, run, text, tmp};

const MAIN: &str = r#"
#include <stdio.h>
long escape_attempt(const char *v, const char *grant, int *err);
int main(int argc, char **argv) {
    int err = 0;
    long r;
    if (argc < 3) return 2;
    r = escape_attempt(argv[1], argv[2], &err);
    if (err == -1 && r == -2) { printf("unknown\n"); return 2; }
    if (err) printf("errno %d\n", err); else printf("ok\n");
    return 0;
}
"#;

/// What each vector comes to under `sandbox run` with the `exec` preset (policy-
/// dependent ones with a reason in docs/security-testing.md).
const EXEC: &[(&str, &str)] = &[
    ("read_passwd", "errno 2"),
    ("read_shadow", "errno 2"),
    ("read_proc_1_environ", "errno 2"),
    ("read_proc_self_environ", "errno 2"),
    ("write_proc_self_mem", "errno 2"),
    ("read_sys", "errno 2"),
    ("create_tmp", "ok"),
    ("create_dev_shm", "errno 2"),
    ("create_root", "errno 30"),
    ("list_root", "errno 13"),
    ("getdents", "errno 20"),
    ("chdir_up", "ok"),
    ("grant_dotdot", "errno 2"),
    ("grant_symlink_out", "errno 2"),
    ("grant_write", "errno 30"),
    ("grant_create", "errno 30"),
    ("grant_directory", "ok"),
    ("grant_opath", "ok"),
    ("grant_long_path", "errno 36"),
    ("mkdir", "errno 30"),
    ("unlink", "errno 30"),
    ("rename", "errno 30"),
    ("link", "errno 2"),
    ("symlink", "errno 30"),
    ("mknod", "errno 30"),
    ("open_by_handle_at", "violation open_by_handle_at"),
    ("name_to_handle_at", "violation name_to_handle_at"),
    ("fork", "ok"),
    ("vfork_like_clone", "ok"),
    ("clone_process", "ok"),
    ("clone_newuser", "errno 1"),
    ("clone3", "errno 38"),
    ("execve", "exec'd"),
    ("execveat", "errno 9"),
    ("kill_other", "ok"),
    ("kill_all", "errno 3"),
    ("tgkill_other", "ok"),
    ("sigqueue_other", "ok"),
    ("getppid", "ok"),
    ("ptrace_traceme", "violation ptrace"),
    ("ptrace_attach", "violation ptrace"),
    ("process_vm_readv", "violation process_vm_readv"),
    ("process_vm_writev", "violation process_vm_writev"),
    ("kcmp", "violation kcmp"),
    ("pidfd_open", "ok"),
    ("pidfd_getfd", "violation pidfd_getfd"),
    ("setpgid", "errno 1"),
    ("setsid", "errno 1"),
    ("setpriority_other", "ok"),
    ("sched_setaffinity_other", "ok"),
    ("socket_inet", "ok"),
    ("socket_inet6", "ok"),
    ("socket_netlink", "ok"),
    ("socket_packet", "errno 97"),
    ("connect_path_unix", "errno 2"),
    ("connect_abstract_unix", "errno 111"),
    ("socketpair_stream", "ok"),
    ("socketpair_inet", "errno 95"),
    ("msg_oob", "errno 95"),
    ("sendto_fastopen", "ok"),
    ("sendto_address", "errno 111"),
    ("sendmsg_other_fd", "ok"),
    ("unshare_user", "errno 1"),
    ("unshare_net", "errno 1"),
    ("setns", "errno 1"),
    ("mount", "errno 1"),
    ("umount", "errno 1"),
    ("pivot_root", "errno 1"),
    ("chroot", "errno 1"),
    ("fsopen", "violation fsopen"),
    ("open_tree", "violation open_tree"),
    ("move_mount", "violation move_mount"),
    ("mount_setattr", "violation mount_setattr"),
    ("setuid0", "errno 1"),
    ("setresuid0", "errno 1"),
    ("setgroups", "errno 1"),
    ("capset", "errno 1"),
    ("prctl_dumpable", "ok"),
    ("prctl_ptracer", "errno 1"),
    ("prctl_seccomp", "errno 14"),
    ("seccomp_second_filter", "ok"),
    ("personality", "errno 1"),
    ("bpf", "violation bpf"),
    ("perf_event_open", "violation perf_event_open"),
    ("keyctl", "violation keyctl"),
    ("add_key", "violation add_key"),
    ("request_key", "violation request_key"),
    ("init_module", "violation init_module"),
    ("finit_module", "violation finit_module"),
    ("kexec_load", "violation kexec_load"),
    ("reboot", "violation reboot"),
    ("swapon", "violation swapon"),
    ("acct", "violation acct"),
    ("syslog", "violation syslog"),
    ("settimeofday", "violation settimeofday"),
    ("clock_settime", "violation clock_settime"),
    ("sethostname", "violation sethostname"),
    ("iopl", "violation iopl"),
    ("ioperm", "violation ioperm"),
    ("io_uring_setup", "violation io_uring_setup"),
    ("io_uring_enter", "violation io_uring_enter"),
    ("userfaultfd", "violation userfaultfd"),
    ("timer_create", "errno 14"),
    ("timerfd_create", "ok"),
    ("quotactl", "violation quotactl"),
    ("vhangup", "violation vhangup"),
    ("tiocsti", "errno 1"),
    ("tiocsti_high_bits", "killed by the filter"),
    ("tioclinux", "errno 1"),
    ("fionread_high_bits", "killed by the filter"),
    ("mmap_exec", "ok"),
    ("mmap_write_exec", "ok"),
    ("mprotect_exec", "ok"),
    ("memfd_exec", "errno 13"),
    ("madvise_hwpoison", "errno 22"),
    ("x32", "killed by the filter"),
    ("int80", "killed by the filter"),
    ("fd_exhaustion", "errno 24"),
];

/// One vector in a fresh sandbox: "errno N", "ok", or "violation NAME".
fn outcome(prog: &str, grant: &str, vector: &str, nobody: bool) -> String {
    let r = run(&["--ro", grant, "--", prog, vector, grant], nobody);
    let out = text(&r.stdout);
    let err = text(&r.stderr);
    if let Some(line) = out.lines().next() {
        return line.to_string();
    }
    if err.contains("seccomp violation without a notification") {
        return "killed by the filter".into();
    }
    if let Some(at) = err.find("seccomp violation: ") {
        let name: String = err[at + 19..].chars().take_while(|c| *c != '(').collect();
        return format!("violation {name}");
    }
    if r.status.code() == Some(0) {
        // Replaced by the program it exec'd, which printed nothing.
        return "exec'd".into();
    }
    format!("status {:?}: {err}", r.status.code())
}

#[test]
fn the_renderer_battery_under_the_exec_preset() {
    let dir = tmp("escape");
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/escape.c"))
        .expect("escape.c");
    let prog = compile(&dir, "escape", &format!("{src}\n{MAIN}"));
    let grant = dir.join("grant");
    std::fs::create_dir_all(&grant).expect("grant");
    std::fs::write(grant.join("file"), "granted").expect("file");
    common::open_to_all(&grant);
    common::open_to_all(&grant.join("file"));
    std::os::unix::fs::symlink("/etc/passwd", grant.join("out")).expect("symlink");
    let vectors: Vec<String> = src
        .lines()
        .filter_map(|l| l.split("IS(\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    assert!(vectors.len() >= 100, "{} vectors", vectors.len());
    let (p, g) = (
        prog.to_str().expect("utf-8"),
        grant.to_str().expect("utf-8"),
    );
    both(|nobody| {
        let mut wrong = Vec::new();
        for v in &vectors {
            let got = outcome(p, g, v, nobody);
            let want = EXEC.iter().find(|(n, _)| n == v).map(|(_, w)| *w);
            if want != Some(got.as_str()) {
                wrong.push(format!("{v}: got {got}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "nobody={nobody}:\n{}", wrong.join("\n"));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

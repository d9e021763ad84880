//! Where user namespaces are unavailable, `sandbox run` says why and what to do — as
//! root and as uid 65534: the sysctl (user.max_user_namespaces set to 0 in a user
//! namespace of the test's own, where it may be changed) and a container's seccomp
//! filter (refusing clone and unshare with CLONE_NEWUSER, loaded with `bwrap
//! --seccomp`, as Docker's default profile does).

mod common;
use common::{both, sandbox_exe, text, tmp};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

fn as_user(mut c: Command, nobody: bool) -> Output {
    c.current_dir("/");
    if nobody {
        c.uid(65534).gid(65534);
    }
    c.output().expect("run")
}

/// A container's seccomp filter refusing user namespaces (as Docker's default profile
/// does), compiled into `dir` for `bwrap --seccomp`.
fn container_filter(dir: &std::path::Path) -> std::path::PathBuf {
    let policy = dir.join("container.policy");
    std::fs::write(
        &policy,
        "@default allow\nclone: flags & CLONE_NEWUSER => errno EPERM\n\
         unshare: flags & CLONE_NEWUSER => errno EPERM\nclone3: errno ENOSYS\n",
    )
    .expect("policy");
    let bpf = dir.join("container.bpf");
    let r = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([
            "policy",
            "compile",
            policy.to_str().expect("utf-8"),
            "--output",
        ])
        .arg(&bpf)
        .output()
        .expect("compile");
    assert!(r.status.success(), "{}", text(&r.stderr));
    common::open_to_all(&bpf);
    bpf
}

/// `sandbox ARGS` in a user namespace of the test's own (mapped to the caller) whose
/// sysctl `user.LIMIT` is set to 0 first.
fn with_limit_zero(limit: &str, args: &str, nobody: bool) -> Output {
    let exe = sandbox_exe(nobody);
    let mut c = Command::new("unshare");
    c.args(["--user", "--map-root-user", "/bin/sh", "-c"])
        .arg(format!(
            "echo 0 > /proc/sys/user/{limit} && {} {args}",
            exe.display()
        ));
    as_user(c, nobody)
}

/// The network namespace, which the stage makes itself (while the supervisor prepares
/// the plan), refused by its limit: the run stops, and the one message says which
/// namespace and which limit — not the broken pipe the supervisor's next send meets.
#[test]
fn max_net_namespaces_zero_stops_the_run_naming_the_limit() {
    both(|nobody| {
        let r = with_limit_zero("max_net_namespaces", "run --uid 0 -- /bin/true", nobody);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(125), "{err}");
        assert_eq!(
            err.trim(),
            "sandbox: lockdown failed at namespaces: cannot make the network namespace \
             (unshare): No space left on device (ENOSPC) — the limit \
             user.max_net_namespaces is reached"
        );
    });
}

#[test]
fn max_user_namespaces_zero_is_named_with_its_remedy() {
    both(|nobody| {
        let r = with_limit_zero("max_user_namespaces", "run -- /bin/true", nobody);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(125), "{err}");
        assert!(err.contains("(clone): No space left on device"), "{err}");
        assert!(
            err.contains("the sysctl user.max_user_namespaces is 0, which switches them off. Remedy: sysctl -w user.max_user_namespaces="),
            "{err}"
        );
    });
}

#[test]
fn a_containers_filter_is_named_with_its_remedy() {
    let d = tmp("userns");
    let bpf = container_filter(&d);
    both(|nobody| {
        let exe = sandbox_exe(nobody);
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(format!(
            "bwrap --dev-bind / / --seccomp 3 -- {} run -- /bin/true 3<{}",
            exe.display(),
            bpf.display()
        ));
        let r = as_user(c, nobody);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(125), "{err}");
        assert!(err.contains("(clone): Operation not permitted"), "{err}");
        assert!(err.contains("a container's seccomp filter"), "{err}");
        assert!(err.contains("--security-opt seccomp="), "{err}");
        // The degraded mode each caller has, named.
        let mode = if nobody {
            "`sandbox run --no-namespaces` runs"
        } else {
            "`sandbox run --no-userns` runs"
        };
        assert!(err.contains(mode), "{err}");
    });
}

/// The degraded mode, where a container's filter refuses user namespaces: as root,
/// `--no-userns` runs the program in the other namespaces, as a user id of its own,
/// under the filter (a violation still ends it), says so on stderr and in the status
/// report (the namespaces layer opted out), binds grants as they are; as uid 65534 it
/// is refused with the reason.
#[test]
fn the_degraded_mode_is_explicit_and_keeps_the_other_layers() {
    let d = tmp("degraded");
    let bpf = container_filter(&d);
    let status = d.join("status.json");
    let in_bwrap = |args: &str| {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(format!(
            "bwrap --dev-bind / / --seccomp 3 -- {} run --no-userns --profile shell {args} 3<{}",
            env!("CARGO_BIN_EXE_sandbox"),
            bpf.display()
        ));
        as_user(c, false)
    };
    let r = in_bwrap(&format!(
        "--status-json {} -- /bin/sh -c 'id -u; echo x > /tmp/x && cat /tmp/x'",
        status.display()
    ));
    let (out, err) = (text(&r.stdout), text(&r.stderr));
    assert_eq!(r.status.code(), Some(0), "{err}");
    let uid: u64 = out
        .lines()
        .next()
        .and_then(|l| l.parse().ok())
        .expect("a uid");
    assert!(
        uid >= 0x7ff0_0000,
        "the program has a user id of its own: {out}"
    );
    assert!(out.ends_with("x\n"), "{out}");
    assert!(
        err.contains("sandbox: degraded mode: --no-userns: no user namespace"),
        "{err}"
    );
    let json = std::fs::read_to_string(&status).expect("status");
    assert!(json.contains("\"NoUserNamespace\""), "{json}");
    assert!(json.contains("\"degraded\""), "{json}");
    // The filter still holds.
    let r =
        in_bwrap("-- /usr/bin/python3 -c 'import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)'");
    assert_eq!(r.status.code(), Some(159), "{}", text(&r.stderr));
    // Unprivileged: refused, with the reason and the mode there is.
    let mut c = Command::new(sandbox_exe(true));
    c.args(["run", "--no-userns", "--", "/bin/true"]);
    let r = as_user(c, true);
    assert_eq!(r.status.code(), Some(125));
    assert!(
        text(&r.stderr).contains("--no-userns needs a root caller")
            && text(&r.stderr).contains("its degraded mode is --no-namespaces"),
        "{}",
        text(&r.stderr)
    );
    // Which, under the container's filter, runs (see run_no_namespaces.rs for what it
    // holds).
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(format!(
        "bwrap --dev-bind / / --seccomp 3 -- {} run --no-namespaces --profile shell \
         -- /bin/sh -c 'echo in' 3<{}",
        sandbox_exe(true).display(),
        bpf.display()
    ));
    let r = as_user(c, true);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert_eq!(text(&r.stdout), "in\n");
}

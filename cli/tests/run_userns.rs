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

#[test]
fn max_user_namespaces_zero_is_named_with_its_remedy() {
    both(|nobody| {
        let exe = sandbox_exe(nobody);
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", "/bin/sh", "-c"])
            .arg(format!(
                "echo 0 > /proc/sys/user/max_user_namespaces && {} run -- /bin/true",
                exe.display()
            ));
        let r = as_user(c, nobody);
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
    let policy = d.join("container.policy");
    std::fs::write(
        &policy,
        "@default allow\nclone: flags & CLONE_NEWUSER => errno EPERM\n\
         unshare: flags & CLONE_NEWUSER => errno EPERM\nclone3: errno ENOSYS\n",
    )
    .expect("policy");
    let bpf = d.join("container.bpf");
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
    });
}

//! User namespaces that are made but cannot be mapped — what Ubuntu's AppArmor
//! restriction does (the namespace gets no capabilities, so writing its uid map fails
//! with EPERM) — simulated: this binary, re-executed with `--deny-uid-map`, hands every
//! `openat` to a thread of its own (seccomp user notification) that refuses a path
//! ending in `/uid_map` with EPERM and lets the rest run, then runs `sandbox run` under
//! that. `sandbox run` must fail with the step, the cause and the remedies — never run
//! weaker. As root and as uid 65534.

use std::process::Command;

fn deny_uid_map_then_run(sandbox: &str) -> ! {
    let listener = sandbox::probe::install_policy_text(
        "deny-uid-map",
        "@default allow\nopenat: user-notify",
        true,
    )
    .expect("install")
    .expect("listener");
    sandbox::probe::supervise(listener, |n| {
        let path = sandbox::seccomp::read_callers_string(n.pid, n.args[1], 4096);
        if path.is_ok_and(|p| p.ends_with(b"/uid_map")) {
            sandbox::probe::Reply::Error(libc::EPERM)
        } else {
            sandbox::probe::Reply::Continue
        }
    });
    let out = Command::new(sandbox)
        .args(["run", "--", "/bin/true"])
        .current_dir("/")
        .output()
        .expect("run sandbox");
    print!(
        "STATUS {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::process::exit(0)
}

fn case(nobody: bool) -> Result<(), String> {
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_sandbox"));
    let (me, sandbox) = if nobody {
        (
            sandbox_tests::reachable::current_exe(),
            sandbox_tests::reachable::copy_of(built),
        )
    } else {
        (
            std::env::current_exe().map_err(|e| e.to_string())?,
            built.to_path_buf(),
        )
    };
    let mut cmd = Command::new(me);
    cmd.args(["--deny-uid-map", &sandbox.display().to_string()]);
    if nobody {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let failed = !out.contains("STATUS Some(0)") && out.contains("STATUS Some(");
    let says = out.contains("uid_map") && out.contains("Operation not permitted");
    // The opt-out that fits the caller: root can keep the other namespaces.
    let opt_out = if nobody {
        "--no-namespaces"
    } else {
        "--no-userns"
    };
    let remedies = out.contains("Remedy") && out.contains(opt_out);
    if failed && says && remedies {
        Ok(())
    } else {
        Err(out)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--deny-uid-map") {
        deny_uid_map_then_run(args.get(i + 1).map_or("", String::as_str));
    }
    sandbox_tests::run_cases(
        &[
            ("uid_map_refused_as_apparmor_does_as_root", || case(false)),
            ("uid_map_refused_as_apparmor_does_as_nobody", || case(true)),
        ],
        &args,
    )
}

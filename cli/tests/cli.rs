//! `sandbox policy ...` end to end: exit codes, error format, disassembly, raw output
//! loaded by bubblewrap, eval, and the crosvm corpus.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn sandbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(args)
        .output()
        .expect("run sandbox")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sandbox-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write tmp file");
    p
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/crosvm-x86_64")
}

fn eval(file: &str, extra: &[&str]) -> String {
    let mut args = vec!["policy", "eval", file];
    args.extend_from_slice(extra);
    let o = sandbox(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "eval {extra:?}: {}",
        text(&o.stderr)
    );
    text(&o.stdout).trim().to_string()
}

fn action_of(line: &str) -> &str {
    line.rsplit_once(" instructions=").map_or(line, |(a, _)| a)
}

#[test]
fn check_reports_errors_with_position_and_caret_and_exits_2() {
    let p = tmp(
        "bad.policy",
        "read: allow\nwrite: arg0 == NOPE\nfrob: allow\n",
    );
    let o = sandbox(&["policy", "check", p.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    let path = p.display().to_string();
    assert!(
        err.contains(&format!("{path}:2:16: error: unknown constant `NOPE`")),
        "{err}"
    );
    assert!(
        err.contains("    write: arg0 == NOPE\n                   ^"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:3:1: error: unknown syscall `frob`")),
        "{err}"
    );
}

#[test]
fn check_accepts_a_good_policy() {
    let p = tmp(
        "good.policy",
        "@default errno EPERM\n{read, write}: allow\n",
    );
    let o = sandbox(&["policy", "check", p.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn empty_policy_is_an_error() {
    let p = tmp("empty.policy", "# nothing\n@default allow\n");
    let o = sandbox(&["policy", "check", p.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("empty policy"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn compile_prints_a_listing_and_writes_raw_instructions() {
    let p = tmp(
        "c.policy",
        "@default trap\nread: allow\nioctl: cmd == TCGETS; errno ENOTTY\n",
    );
    let out = tmp("c.bpf", "");
    let o = sandbox(&[
        "policy",
        "compile",
        p.to_str().expect("utf-8"),
        "--output",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let listing = text(&o.stdout);
    assert!(listing.contains("ld   [4]"), "{listing}");
    assert!(listing.contains("; arch"), "{listing}");
    assert!(listing.contains("ret  errno 25"), "{listing}");
    assert!(listing.contains("ioctl"), "{listing}");
    let bytes = std::fs::read(&out).expect("raw output");
    let n: usize = listing
        .lines()
        .next()
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("instruction count in the header");
    assert_eq!(bytes.len(), 8 * n);
    let prog = sandbox::bpf::from_bytes(&bytes).expect("whole instructions");
    sandbox::bpf::validate(&prog).expect("the kernel would accept it");
}

#[test]
fn eval_spells_actions_and_counts_instructions() {
    let p = tmp(
        "e.policy",
        "@default trap\nread: allow\ngetppid: errno EPERM\nptrace: kill-process\n\
         write: fd == 1 || fd == 2\nkill: log\ntgkill: user-notify\ngetpid: kill-thread\ngettid: trace 3\n",
    );
    let f = p.to_str().expect("utf-8");
    assert!(eval(f, &["--syscall", "read", "--arch", "x86_64"]).starts_with("allow instructions="));
    assert_eq!(
        action_of(&eval(f, &["--syscall", "getppid", "--arch", "x86_64"])),
        "errno 1"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "ptrace", "--arch", "x86_64"])),
        "kill-process"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "kill", "--arch", "x86_64"])),
        "log"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "tgkill", "--arch", "x86_64"])),
        "user-notify"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "getpid", "--arch", "x86_64"])),
        "kill-thread"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "gettid", "--arch", "x86_64"])),
        "trace 3"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "uname", "--arch", "x86_64"])),
        "trap"
    );
    assert_eq!(
        action_of(&eval(
            f,
            &["--syscall", "write", "--arg0", "2", "--arch", "x86_64"]
        )),
        "allow"
    );
    assert_eq!(
        action_of(&eval(
            f,
            &["--syscall", "write", "--arg0", "3", "--arch", "x86_64"]
        )),
        "trap"
    );
    // A negative value as a separate argument: -1 is a sign-extended 32-bit fd,
    // compared by its low half (0xffffffff), so it is neither 1 nor 2.
    let neg = eval(
        f,
        &["--syscall", "write", "--arg0", "-1", "--arch", "x86_64"],
    );
    assert_eq!(action_of(&neg), "trap");
    // Junk in the high half of the 32-bit fd: the default (trap), never the rule.
    assert_eq!(
        action_of(&eval(
            f,
            &[
                "--syscall",
                "write",
                "--arg0",
                "0x100000001",
                "--arch",
                "x86_64"
            ]
        )),
        "trap"
    );
    // By number, on aarch64, the i386 arch value, an x32 number.
    assert_eq!(
        action_of(&eval(f, &["--syscall", "63", "--arch", "aarch64"])),
        "allow"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "0", "--arch", "0x40000003"])),
        "kill-process"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "0x40000000", "--arch", "x86_64"])),
        "kill-process"
    );
}

#[test]
fn show_prints_presets_and_presets_work_as_files() {
    let o = sandbox(&["policy", "show", "renderer"]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o.stdout);
    assert!(
        t.contains("@default trap") && t.contains("runtime.policy"),
        "{t}"
    );
    let o = sandbox(&["policy", "check", "renderer"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--define SELF_PID="),
        "{}",
        text(&o.stderr)
    );
    let line = eval(
        "renderer",
        &[
            "--define",
            "SELF_PID=7",
            "--syscall",
            "kill",
            "--arg0",
            "7",
            "--arch",
            "x86_64",
        ],
    );
    assert_eq!(action_of(&line), "allow");
    let line = eval(
        "renderer",
        &[
            "--define",
            "SELF_PID=7",
            "--syscall",
            "kill",
            "--arg0",
            "8",
            "--arch",
            "x86_64",
        ],
    );
    assert_eq!(action_of(&line), "trap");
    let line = eval(
        "exec",
        &["--syscall", "ioctl", "--arg1", "0x5412", "--arch", "x86_64"],
    );
    assert_eq!(action_of(&line), "errno 1");
    let line = eval(
        "exec",
        &[
            "--syscall",
            "ioctl",
            "--arg1",
            "0x100005412",
            "--arch",
            "x86_64",
        ],
    );
    assert_eq!(action_of(&line), "kill-process", "TIOCSTI | 1 << 32");
}

/// A program written by `sandbox policy compile --output` loads through
/// `bwrap --seccomp FD` and does what `eval` says.
#[test]
fn compiled_program_loads_in_bubblewrap_and_enforces_the_same_outcomes() {
    let p = tmp(
        "bwrap.policy",
        "@default allow\nuname: kill-process\n{mkdir, mkdirat}: errno EACCES\n",
    );
    let f = p.to_str().expect("utf-8");
    let out = tmp("bwrap.bpf", "");
    let o = sandbox(&[
        "policy",
        "compile",
        f,
        "--output",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let arch = sandbox::policy::arch::Arch::native().name();
    assert_eq!(
        action_of(&eval(f, &["--syscall", "mkdirat", "--arch", arch])),
        "errno 13"
    );
    assert_eq!(
        action_of(&eval(f, &["--syscall", "uname", "--arch", arch])),
        "kill-process"
    );

    let run = |script: &str| {
        // The shell opens the program at fd 9 for bwrap, as bwrap's manual shows.
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec bwrap --ro-bind / / --tmpfs /tmp --die-with-parent --seccomp 9 sh -c '{script}' 9< '{}'",
                out.display()
            ))
            .stdin(Stdio::null())
            .output()
            .expect("sh")
    };
    let o = run("mkdir /tmp/x; echo mkdir=$?");
    assert!(
        text(&o.stdout).contains("mkdir=1"),
        "{} {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stderr).contains("Permission denied"),
        "{}",
        text(&o.stderr)
    );
    let o = run("echo before; exec uname");
    assert!(text(&o.stdout).contains("before"), "{}", text(&o.stderr));
    // bwrap passes on the status of its child: 128 + SIGSYS.
    assert_eq!(
        o.status.code(),
        Some(128 + libc::SIGSYS),
        "{:?} {}",
        o.status,
        text(&o.stderr)
    );
    assert_eq!(o.status.signal(), None);
}

#[test]
fn every_corpus_policy_checks_and_compiles_on_both_arches() {
    let dir = corpus();
    let d = dir.to_str().expect("utf-8");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("../shared/corpus is beside the project") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("policy") {
            continue;
        }
        n += 1;
        let f = path.to_str().expect("utf-8");
        for arch in ["x86_64", "aarch64"] {
            let o = sandbox(&["policy", "compile", f, "--include-dir", d, "--arch", arch]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{f} on {arch}: {}",
                text(&o.stderr)
            );
        }
    }
    assert_eq!(n, 9, "the corpus has nine policies");
}

/// Statements of the corpus, evaluated: each says what its text says.
#[test]
fn corpus_policies_evaluate_as_their_text_says() {
    let dir = corpus();
    let d = dir.to_str().expect("utf-8");
    let f = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    let ev = |file: &str, args: &[&str]| {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--include-dir", d, "--arch", "x86_64"]);
        action_of(&eval(file, &a)).to_string()
    };
    let fs = f("fs_device.policy");
    // From common_device.policy (included by absolute path, found through --include-dir).
    assert_eq!(ev(&fs, &["--syscall", "brk"]), "allow");
    assert_eq!(
        ev(&fs, &["--syscall", "clone", "--arg0", "0x10000"]),
        "allow"
    );
    assert_eq!(
        ev(&fs, &["--syscall", "clone", "--arg0", "0x11"]),
        "kill-process"
    );
    assert_eq!(ev(&fs, &["--syscall", "mmap", "--arg2", "3"]), "allow");
    assert_eq!(
        ev(&fs, &["--syscall", "mmap", "--arg2", "7"]),
        "kill-process"
    );
    assert_eq!(ev(&fs, &["--syscall", "tgkill", "--arg2", "6"]), "allow");
    assert_eq!(
        ev(&fs, &["--syscall", "tgkill", "--arg2", "9"]),
        "kill-process"
    );
    // prctl: PR_SET_VMA from common_device and PR_SET_NAME from fs_device combine.
    assert_eq!(
        ev(&fs, &["--syscall", "prctl", "--arg0", "0x53564d41"]),
        "allow"
    );
    assert_eq!(ev(&fs, &["--syscall", "prctl", "--arg0", "15"]), "allow");
    assert_eq!(
        ev(&fs, &["--syscall", "prctl", "--arg0", "22"]),
        "kill-process"
    );
    // ioctl from both files; named FS_IOC_* constants.
    assert_eq!(
        ev(&fs, &["--syscall", "ioctl", "--arg1", "0x801c581f"]),
        "allow"
    );
    assert_eq!(
        ev(&fs, &["--syscall", "ioctl", "--arg1", "0xc0096616"]),
        "allow"
    );
    assert_eq!(
        ev(&fs, &["--syscall", "ioctl", "--arg1", "0xaa00"]),
        "allow"
    );
    assert_eq!(
        ev(&fs, &["--syscall", "ioctl", "--arg1", "0x5412"]),
        "kill-process"
    );
    assert_eq!(ev(&fs, &["--syscall", "open"]), "errno 2");
    assert_eq!(ev(&fs, &["--syscall", "openat"]), "allow");
    assert_eq!(ev(&fs, &["--syscall", "ptrace"]), "kill-process");

    let gpu = f("gpu_device.policy");
    // `arg1 & 0x6400` in gpu_common.policy.
    assert_eq!(
        ev(&gpu, &["--syscall", "ioctl", "--arg1", "0x400"]),
        "allow"
    );
    assert_eq!(
        ev(&gpu, &["--syscall", "ioctl", "--arg1", "0x1000"]),
        "kill-process"
    );
    assert_eq!(
        ev(
            &gpu,
            &[
                "--syscall",
                "socket",
                "--arg0",
                "1",
                "--arg1",
                "0x80001",
                "--arg2",
                "0"
            ]
        ),
        "allow"
    );
    assert_eq!(
        ev(
            &gpu,
            &[
                "--syscall",
                "socket",
                "--arg0",
                "1",
                "--arg1",
                "2",
                "--arg2",
                "0"
            ]
        ),
        "kill-process"
    );
    assert_eq!(
        ev(
            &gpu,
            &[
                "--syscall",
                "socket",
                "--arg0",
                "2",
                "--arg1",
                "1",
                "--arg2",
                "0"
            ]
        ),
        "kill-process"
    );
    assert_eq!(
        ev(&gpu, &["--syscall", "memfd_create", "--arg1", "3"]),
        "allow"
    );
    assert_eq!(
        ev(&gpu, &["--syscall", "memfd_create", "--arg1", "2"]),
        "kill-process"
    );
    assert_eq!(ev(&gpu, &["--syscall", "fcntl", "--arg1", "1033"]), "allow");

    let net = f("net_device.policy");
    assert_eq!(
        ev(&net, &["--syscall", "ioctl", "--arg1", "0x400454d0"]),
        "allow"
    );
    assert_eq!(
        ev(&net, &["--syscall", "ioctl", "--arg1", "0xc018aa3f"]),
        "allow"
    );
    assert_eq!(ev(&net, &["--syscall", "openat"]), "errno 2");
    assert_eq!(ev(&net, &["--syscall", "prctl", "--arg0", "1"]), "allow");

    let xhci = f("xhci_device.policy");
    assert_eq!(ev(&xhci, &["--syscall", "socket", "--arg0", "16"]), "allow");
    assert_eq!(
        ev(&xhci, &["--syscall", "socket", "--arg0", "2"]),
        "kill-process"
    );
    assert_eq!(
        ev(&xhci, &["--syscall", "ioctl", "--arg1", "0x90044802"]),
        "allow"
    );
}

#[test]
fn every_unconditional_corpus_statement_evaluates_as_written() {
    // `name: 1` is allow and `name: return ERRNO` is that errno, in every file, as
    // long as no other statement of the same policy names the syscall conditionally.
    let dir = corpus();
    let d = dir.to_str().expect("utf-8");
    for file in [
        "block.policy",
        "common_device.policy",
        "swap_monitor.policy",
        "gpu_common.policy",
    ] {
        let path = dir.join(file);
        let f = path.to_str().expect("utf-8");
        let body = std::fs::read_to_string(&path).expect("read corpus");
        for line in body.lines() {
            let Some((name, rhs)) = line.split_once(':') else {
                continue;
            };
            if name.starts_with('#') || name.starts_with('@') || name.contains(' ') {
                continue;
            }
            let want = match rhs.trim() {
                "1" => "allow".to_string(),
                "return ENOENT" => "errno 2".to_string(),
                _ => continue,
            };
            let got = action_of(&eval(
                f,
                &["--syscall", name, "--include-dir", d, "--arch", "x86_64"],
            ))
            .to_string();
            assert_eq!(got, want, "{file}: {line}");
        }
    }
}

#[test]
fn check_reports_the_kernel_and_exits_0_when_the_default_configuration_applies() {
    // This machine class (Linux 6.18, Landlock ABI 7, user namespaces on) has everything.
    let o = sandbox(&["check"]);
    let t = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{t}");
    for row in [
        "user namespaces",
        "cgroup namespace",
        "seccomp TSYNC",
        "close_range",
        "openat2",
        "pidfd",
    ] {
        assert!(
            t.lines().any(|l| l.starts_with(row) && l.contains(" yes ")),
            "{row}: {t}"
        );
    }
    assert!(t.contains("landlock") && t.contains("ABI "), "{t}");
    assert!(t.contains("can be applied in full"), "{t}");
}

#[test]
fn check_exits_1_when_user_namespaces_are_forbidden() {
    let p = tmp(
        "no-userns.policy",
        "@default allow\nclone: flags & CLONE_NEWUSER => errno EPERM\nunshare: flags & CLONE_NEWUSER => errno EPERM\nclone3: errno ENOSYS\n",
    );
    let out = tmp("no-userns.bpf", "");
    let o = sandbox(&[
        "policy",
        "compile",
        p.to_str().expect("utf-8"),
        "--output",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec bwrap --ro-bind / / --dev /dev --proc /proc --die-with-parent --seccomp 9 {} check 9< '{}'",
            env!("CARGO_BIN_EXE_sandbox"),
            out.display()
        ))
        .output()
        .expect("sh");
    let t = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{t}{}", text(&o.stderr));
    assert!(
        t.lines().any(|l| l.starts_with("user namespaces")
            && l.contains(" NO ")
            && l.contains("Operation not permitted")),
        "{t}"
    );
    assert!(t.contains("CANNOT be applied in full"), "{t}");
}

/// A preset name is never looked up in the file system: a file called `exec` (or
/// `renderer`) in the working directory — which an untrusted project can ship — does not
/// replace the built-in preset; a file is named with a `/` (`./exec`); a bare word that
/// is no preset is an error that says so.
#[test]
fn a_file_in_the_working_directory_never_replaces_a_preset() {
    let dir = std::env::temp_dir().join(format!("sandbox-cli-preset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // Allows everything (and so unshare): what a hostile project would ship.
    std::fs::write(dir.join("exec"), "@default allow\nread: allow\n").expect("write");
    std::fs::write(dir.join("renderer"), "@default allow\nread: allow\n").expect("write");
    std::fs::write(dir.join("mine"), "@default allow\nread: allow\n").expect("write");
    let in_dir = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sandbox"))
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("run sandbox")
    };
    let unshare = ["--syscall", "unshare", "--arch", "x86_64"];
    let mut args = vec!["policy", "eval", "exec"];
    args.extend(unshare);
    let o = in_dir(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(action_of(text(&o.stdout).trim()), "errno 1", "the preset");
    let mut args = vec!["policy", "eval", "./exec"];
    args.extend(unshare);
    let o = in_dir(&args);
    assert_eq!(action_of(text(&o.stdout).trim()), "allow", "the file");
    let o = in_dir(&["policy", "check", "renderer"]);
    assert!(
        text(&o.stderr).contains("--define SELF_PID="),
        "the preset, not the file: {}",
        text(&o.stderr)
    );
    let o = in_dir(&["policy", "check", "mine"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not a preset") && text(&o.stderr).contains("./mine"),
        "{}",
        text(&o.stderr)
    );
    // `sandbox run`: the program cannot make a user namespace under the preset.
    let o = in_dir(&[
        "run",
        "--ro",
        "/usr",
        "--ro",
        "/lib",
        "--ro",
        "/lib64",
        "--ro",
        "/bin",
        "--",
        "/usr/bin/unshare",
        "--user",
        "/bin/true",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("Operation not permitted"),
        "{}",
        text(&o.stderr)
    );
    let o = in_dir(&["run", "--policy", "mine", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o.stderr).contains("./mine"), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `policy eval` names what decided: the rule and where it was written, a fallback,
/// or the default.
#[test]
fn eval_names_the_deciding_line() {
    let p = tmp(
        "decide.policy",
        "@default errno EPERM\nread: allow\nioctl: cmd == 1; errno ENOTTY\n",
    );
    let f = p.to_str().expect("utf-8");
    let out = eval(f, &["--syscall", "read"]);
    assert!(
        out.ends_with(&format!("(decided by the rule for `read` at {f}:2:1)")),
        "{out}"
    );
    let out = eval(f, &["--syscall", "ioctl", "--arg1", "2"]);
    assert!(
        out.contains(&format!("the fallback of `ioctl` at {f}:3:1")),
        "{out}"
    );
    let out = eval(f, &["--syscall", "ptrace"]);
    assert!(
        out.contains(&format!(
            "the default (@default at {f}:1:1): no rule names `ptrace`"
        )),
        "{out}"
    );
}

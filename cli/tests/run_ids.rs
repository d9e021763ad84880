//! Who the program is, outside and in: a root caller's program holds none of root's
//! groups.

mod common;
use common::{text, SYSTEM};
use std::process::Command;

/// `setpriv SETPRIV -- sandbox run SYSTEM --proc -- /bin/sh -c SCRIPT`, from /.
fn under_setpriv(setpriv: &[&str], script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args(setpriv)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_sandbox"))
        .arg("run")
        .args(SYSTEM)
        .args(["--proc", "--", "/bin/sh", "-c", script])
        .current_dir("/")
        .output()
        .expect("setpriv")
}

/// A root caller in groups 0 and 4 (as a login shell often is): the program runs as
/// a user id of its own with no supplementary groups — before, it kept both, and
/// group 0 appeared inside as root's group, opening every group-root file in a bind.
#[test]
fn a_root_callers_program_has_no_supplementary_groups() {
    let o = under_setpriv(
        &["--groups", "0,4"],
        "grep -E '^(Uid|Groups)' /proc/self/status",
    );
    let out = text(&o.stdout);
    assert!(out.contains("Uid:\t1000\t"), "{out}{}", text(&o.stderr));
    let groups = out
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .expect("a Groups line");
    assert_eq!(groups.trim(), "", "{out}");
}

/// Root without CAP_SYS_PTRACE (as a container's default set leaves it), like an
/// unprivileged caller, cannot read a non-dumpable copy of itself's /proc/PID/ns/*:
/// the program's process stays dumpable until its exec, and the run is verified all
/// the same. The stage is a copy of the supervisor either way, which shows none of the
/// caller's arguments (no permission check guards /proc/PID/cmdline), only
/// `sandbox-stage`.
#[test]
fn a_root_caller_without_cap_sys_ptrace_is_verified_all_the_same() {
    for drop in [true, false] {
        let setpriv: &[&str] = if drop {
            &["--bounding-set", "-sys_ptrace"]
        } else {
            &[]
        };
        let o = under_setpriv(setpriv, "tr '\\0' ' ' < /proc/1/cmdline");
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let cmdline = text(&o.stdout);
        let words: Vec<&str> = cmdline.split_whitespace().collect();
        assert_eq!(words, ["sandbox-stage"], "drop={drop}: {cmdline}");
    }
}

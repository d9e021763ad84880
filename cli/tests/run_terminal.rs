//! `sandbox run` and the terminal the program inherits: it runs in a session of its
//! own, and cannot change the terminal's settings unless `--tty` asks for it — as root
//! and as uid 65534.

mod common;
use common::{both, compile, text, tmp, SYSTEM};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// `sandbox run ARGS -- hostile VECTOR` with standard input on a fresh pseudo-terminal;
/// returns what the program printed and the terminal's echo flag and size after.
fn on_a_terminal(
    extra: &[&str],
    dir: &str,
    prog: &str,
    vector: &str,
    nobody: bool,
) -> (String, bool, (u16, u16)) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let before = nix::sys::termios::tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
    let mut c = Command::new(common::sandbox_exe(nobody));
    c.arg("run")
        .args(SYSTEM)
        .args(extra)
        .args(["--ro", dir, "--", prog, vector])
        .current_dir("/")
        .stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if nobody {
        // The terminal is root's: let uid 65534 open it too, as a login would.
        c.uid(65534).gid(65534);
    }
    let o = c.output().expect("run sandbox");
    let after = nix::sys::termios::tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
    let echo = after
        .local_flags
        .contains(nix::sys::termios::LocalFlags::ECHO);
    assert!(
        before
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ECHO),
        "a fresh terminal echoes"
    );
    let size = winsize(&pty.slave);
    (
        format!("{}{}", text(&o.stdout), text(&o.stderr)),
        echo,
        size,
    )
}

fn winsize(fd: &std::os::fd::OwnedFd) -> (u16, u16) {
    let out = Command::new("stty")
        .arg("size")
        .stdin(Stdio::from(fd.try_clone().expect("dup")))
        .output()
        .expect("stty");
    let t = text(&out.stdout);
    let mut it = t.split_whitespace().map(|n| n.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The program is in a session of its own (so TIOCSTI could not inject into the
/// caller's terminal even if the filter let it), and its terminal's modes, size and
/// line discipline cannot be changed (EPERM), so nothing of the run stays changed
/// afterwards; reading them works. With `--tty`, modes and size may be changed.
#[test]
fn the_program_cannot_change_the_terminal_it_inherits() {
    let d = tmp("tty");
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile.c"))
        .expect("source");
    let prog = compile(&d, "hostile", &src);
    let (ds, p) = (d.display().to_string(), prog.display().to_string());
    both(|nobody| {
        let eperm = libc::EPERM;
        for (vector, want) in [
            ("own_session", "own_session: ok\n".to_string()),
            ("tcgets", "tcgets: ok\n".to_string()),
            ("tcsets", format!("tcsets: errno {eperm}\n")),
            ("tiocswinsz", format!("tiocswinsz: errno {eperm}\n")),
            ("tiocsetd", format!("tiocsetd: errno {eperm}\n")),
        ] {
            let (out, echo, size) = on_a_terminal(&[], &ds, &p, vector, nobody);
            assert!(out.starts_with(&want), "{vector} nobody={nobody}: {out}");
            assert!(echo, "{vector}: the terminal's echo was turned off");
            assert_eq!(size, (0, 0), "{vector}: the terminal's size changed");
        }
        let (out, echo, _) = on_a_terminal(&["--tty"], &ds, &p, "tcsets", nobody);
        assert!(
            out.starts_with("tcsets: ok\n"),
            "--tty nobody={nobody}: {out}"
        );
        assert!(!echo, "--tty: the program turned echo off");
        let (out, _, size) = on_a_terminal(&["--tty"], &ds, &p, "tiocswinsz", nobody);
        assert!(out.starts_with("tiocswinsz: ok\n"), "--tty: {out}");
        assert_eq!(size, (99, 77));
        let (out, _, _) = on_a_terminal(&["--tty"], &ds, &p, "own_session", nobody);
        assert!(out.starts_with("own_session: ok\n"), "--tty: {out}");
    });
    let _ = std::fs::remove_dir_all(&d);
}

/// `--tty` changes the `exec` preset's terminal rule; with a policy file it is an error
/// (the file's own ioctl rule decides), not silently ignored.
#[test]
fn tty_with_a_policy_file_is_an_error() {
    let d = tmp("tty-policy");
    let f = d.join("p.policy");
    std::fs::write(&f, "@default allow\nread: allow\n").expect("write");
    let fs = f.display().to_string();
    let o = common::run(&["--tty", "--policy", &fs, "--", "/bin/true"], false);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o.stderr).contains("--tty"), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(&d);
}

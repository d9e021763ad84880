//! The supervisor's handling of seccomp notifications (`sandbox_cli::notify`) against
//! a real kernel. Each case runs in a fresh single-threaded helper (this binary with
//! `--helper CASE`) that installs a filter with a listener and plays both sides.

use sandbox::lockdown::SingleThreaded;
use sandbox::policy::arch::Arch;
use sandbox::policy::{Action, Policy};
use sandbox_cli::notify::handle;
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

/// Whether `listener` has a notification waiting within `ms`.
fn readable(listener: std::os::fd::BorrowedFd<'_>, ms: u16) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(listener, PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) > 0
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// A child makes a forbidden call (getppid → user-notify); once the supervisor side
/// has seen it waiting, SIGSTOP interrupts it, so the call is withdrawn: the read then
/// fails with ENOENT — which must be a retry, not the end of supervision (before, the
/// supervisor dropped its listener here, and every later violation got ENOSYS and went
/// on). On SIGCONT the call is restarted, comes again, and is a violation.
fn withdrawn_call_helper() -> ! {
    let policy = Policy::new(Action::Allow)
        .and_then(|p| p.with_action("getppid", Action::UserNotify))
        .expect("policy");
    let program = sandbox::bpf::compile(&policy, Arch::native()).expect("compile");
    sandbox::seccomp::set_no_new_privs().expect("nnp");
    let listener = sandbox::seccomp::install_with_listener(&program).expect("listener");
    let one = SingleThreaded::check().expect("one thread");
    let child = one.fork().expect("fork");
    if child == 0 {
        drop(listener);
        let _ = nix::unistd::getppid();
        std::process::exit(0);
    }
    let l = listener.as_fd();
    assert!(readable(l, 5000), "the call is waiting");
    let pid = nix::unistd::Pid::from_raw(child);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stop");
    std::thread::sleep(Duration::from_millis(100));
    println!("after the signal: {:?}", handle(l, Arch::native()));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("continue");
    assert!(readable(l, 5000), "the call came again");
    println!("when it came again: {:?}", handle(l, Arch::native()));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    std::process::exit(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--helper") {
        withdrawn_call_helper();
    }
    let filters: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let name = "a_withdrawn_notification_is_retried_and_the_call_stays_a_violation";
    if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
        println!("\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n");
        return;
    }
    let o = Command::new(std::env::current_exe().expect("own path"))
        .arg("--helper")
        .output()
        .expect("helper");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let ok = o.status.success()
        && out.contains("after the signal: Retry")
        && out.contains("when it came again: Violation")
        && out.contains("call: \"getppid(");
    println!("\nrunning 1 test");
    if ok {
        println!("test {name} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n");
    } else {
        println!(
            "test {name} ... FAILED\n{out}{}\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n",
            String::from_utf8_lossy(&o.stderr)
        );
        std::process::exit(101);
    }
}

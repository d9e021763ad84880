//! Rules put in front of a whole policy, whatever it says.
//!
//! [`refuse_setid_modes`]: no set-user-ID or set-group-ID file. A program that can
//! write into a granted folder must not leave a set-ID program there: outside, where
//! the folder's file system may not be `nosuid`, anyone who can reach it would run
//! that program as its owner — the caller (as root, through an idmapped grant: root).

use super::{arg, Action, Expr, Policy, PolicyError};

/// Where reports say a guard rule was written.
pub const GUARD_ORIGIN: &str = "sandbox run's set-ID guard";

/// The set-ID mode bits (S_ISUID | S_ISGID).
pub const SETID_BITS: u64 = 0o6000;

/// The calls that take a mode for a file, and the index of that parameter.
pub const MODE_CALLS: &[(&str, u8)] = &[
    ("chmod", 1),
    ("fchmod", 1),
    ("fchmodat", 2),
    ("fchmodat2", 2),
    ("open", 2),
    ("openat", 3),
    ("creat", 1),
    ("mknod", 1),
    ("mknodat", 2),
];

/// Put in front of `policy`'s own rules: a mode call whose mode has a set-ID bit gets
/// EPERM (as it would for a user who may not set it); `openat2`, whose mode is in
/// memory a filter cannot read, gets ENOSYS (libc and runtimes fall back to `openat`).
/// The call's other rules (and its fallback) follow unchanged; a call the policy does
/// not name keeps the default for every other mode. (`open` and `openat` are refused
/// for such a mode even without O_CREAT, where the kernel would ignore it.)
pub fn refuse_setid_modes(policy: &mut Policy) -> Result<(), PolicyError> {
    for (call, mode) in MODE_CALLS {
        prepend(
            policy,
            call,
            arg(*mode).any_bits(SETID_BITS),
            Action::Errno(libc::EPERM as u16),
            GUARD_ORIGIN,
        )?;
    }
    policy.remove("openat2");
    policy.add_action("openat2", Action::Errno(libc::ENOSYS as u16))?;
    if let Some(rule) = policy
        .syscalls
        .get_mut(&super::Syscall::new("openat2")?)
        .and_then(|r| r.rules.first_mut())
    {
        rule.origin = super::Origin::at(GUARD_ORIGIN.into());
    }
    Ok(())
}

/// With sockets connected outside the sandbox in place (`sandbox run --connect`): no
/// `MSG_FASTOPEN` on any send (EACCES). With it, a TCP send connects the socket to the
/// address it carries — bypassing `connect`, which the supervisor decides — and a
/// socket connected outside could be pointed anywhere from the host's network.
pub fn no_fast_open(policy: &mut Policy) -> Result<(), PolicyError> {
    let fast_open = libc::MSG_FASTOPEN as u64;
    for (call, flags) in [("sendto", 3u8), ("sendmsg", 2), ("sendmmsg", 3)] {
        prepend(
            policy,
            call,
            arg(flags).any_bits(fast_open),
            Action::Errno(libc::EACCES as u16),
            GUARD_ORIGIN,
        )?;
    }
    Ok(())
}

/// `when` → `action` as `syscall`'s first rule, written at `origin`.
fn prepend(
    policy: &mut Policy,
    syscall: &str,
    when: Expr,
    action: Action,
    origin: &str,
) -> Result<(), PolicyError> {
    let old = policy.remove(syscall);
    policy.add_rule(syscall, when, action)?;
    if let Some(old) = &old {
        for r in old.rules() {
            policy.add_rule(syscall, r.when.clone(), r.action)?;
        }
        if let Some(otherwise) = old.otherwise() {
            policy.set_otherwise(syscall, otherwise)?;
        }
    }
    // Where each rule was written, for reports: the guard's, then the old ones'.
    let s = super::Syscall::new(syscall)?;
    if let Some(now) = policy.syscalls.get_mut(&s) {
        let mut origins = vec![super::Origin::at(origin.into())];
        if let Some(old) = old {
            origins.extend(old.rules.into_iter().map(|r| r.origin));
            now.otherwise_origin = old.otherwise_origin;
        }
        for (rule, origin) in now.rules.iter_mut().zip(origins) {
            rule.origin = origin;
        }
    }
    Ok(())
}

/// Where reports say a rule of [`without_namespaces`] was written.
pub const NO_NAMESPACES_ORIGIN: &str = "sandbox run's no-namespace guard";

/// Calls refused outright without namespaces, with the answer:
/// - every `socket`, `connect` and `bind` (no network namespace, and Landlock covers
///   only TCP; no mount namespace, and a pathname unix socket — a container daemon's,
///   syslog's — is reached by name, which no Landlock right covers);
/// - `setsid` and `setpgid` (the process group that stands in for the pid namespace
///   must hold every process);
/// - System V IPC and POSIX message queues (the host's; ENOSYS, as from a kernel built
///   without them);
/// - changes of modes, owners, extended attributes (ACLs among them) and times, by
///   path or descriptor: Landlock does not cover them, and without read-only bind
///   mounts they would reach files outside the grants and inside read-only ones;
/// - `inotify_add_watch`, which Landlock does not cover either (it would list and
///   watch any folder).
pub const NO_NAMESPACES_REFUSED: &[(&[&str], i32)] = &[
    (&["socket", "connect", "bind"], libc::EACCES),
    (&["setsid", "setpgid"], libc::EPERM),
    (
        &[
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "chown",
            "fchown",
            "fchownat",
            "lchown",
            "setxattr",
            "lsetxattr",
            "fsetxattr",
            "removexattr",
            "lremovexattr",
            "fremovexattr",
            "utime",
            "utimes",
            "utimensat",
            "futimesat",
        ],
        libc::EPERM,
    ),
    (&["inotify_add_watch"], libc::EACCES),
    (
        &[
            "shmget",
            "shmat",
            "shmdt",
            "shmctl",
            "semget",
            "semop",
            "semtimedop",
            "semctl",
            "msgget",
            "msgsnd",
            "msgrcv",
            "msgctl",
            "mq_open",
            "mq_unlink",
            "mq_timedsend",
            "mq_timedreceive",
            "mq_notify",
            "mq_getsetattr",
        ],
        libc::ENOSYS,
    ),
];

/// Calls that may act on another process of the same user, and their pid (or `who`)
/// parameter: allowed (as the policy says) only on the caller itself (0); otherwise
/// EPERM. `setpriority` also only for PRIO_PROCESS (PRIO_USER would renice every
/// process of the user).
pub const NO_NAMESPACES_SELF_ONLY: &[(&str, u8)] = &[
    ("sched_setaffinity", 0),
    ("sched_setparam", 0),
    ("sched_setscheduler", 0),
    ("sched_setattr", 0),
    ("prlimit64", 0),
    ("setpriority", 1),
];

/// Put in front of `policy`, for a program run without namespaces (`sandbox run
/// --no-namespaces`): what a pid, network, IPC and mount namespace would have kept
/// to the sandbox and the other layers do not ([`NO_NAMESPACES_REFUSED`],
/// [`NO_NAMESPACES_SELF_ONLY`]). It only narrows: every other decision is the
/// policy's. (Signals and ptrace are Landlock's: its scopes, and its rule that a
/// domain traces only what it encloses.)
pub fn without_namespaces(policy: &mut Policy) -> Result<(), PolicyError> {
    for (calls, errno) in NO_NAMESPACES_REFUSED {
        for call in *calls {
            policy.remove(call);
            policy.add_action(call, Action::Errno(*errno as u16))?;
            if let Some(rule) = policy
                .syscalls
                .get_mut(&super::Syscall::new(call)?)
                .and_then(|r| r.rules.first_mut())
            {
                rule.origin = super::Origin::at(NO_NAMESPACES_ORIGIN.into());
            }
        }
    }
    // socketpair: stream and seqpacket pairs only (connected for good); a datagram
    // socket could be pointed at any pathname socket by sendto.
    let kind = arg(1)
        .masked_eq(0xf, libc::SOCK_STREAM as u64)
        .not()
        .and(arg(1).masked_eq(0xf, libc::SOCK_SEQPACKET as u64).not());
    prepend(
        policy,
        "socketpair",
        kind,
        Action::Errno(libc::EACCES as u16),
        NO_NAMESPACES_ORIGIN,
    )?;
    let eperm = Action::Errno(libc::EPERM as u16);
    for (call, at) in NO_NAMESPACES_SELF_ONLY {
        let mut other = arg(*at).ne(0);
        if *call == "setpriority" {
            other = other.or(arg(0).ne(libc::PRIO_PROCESS as u64));
        }
        prepend(policy, call, other, eperm, NO_NAMESPACES_ORIGIN)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::arch::Arch;
    use crate::policy::presets::Preset;
    use crate::policy::text::Options;

    fn exec() -> Policy {
        Preset::Exec
            .policy(&Options::new(Arch::native()))
            .expect("exec parses")
    }

    fn eval(p: &Policy, call: &str, args: [u64; 6]) -> Action {
        let arch = Arch::native();
        let nr = arch.syscall_number(call).expect("a syscall");
        p.evaluate(
            arch,
            &crate::policy::arch::SeccompData {
                nr,
                arch: arch.audit_arch(),
                instruction_pointer: 0,
                args,
            },
        )
    }

    #[test]
    fn set_id_modes_are_refused_and_every_other_decision_is_kept() {
        let mut p = exec();
        refuse_setid_modes(&mut p).expect("guards apply");
        let eperm = Action::Errno(libc::EPERM as u16);
        assert_eq!(eval(&p, "chmod", [0, 0o4755, 0, 0, 0, 0]), eperm);
        assert_eq!(eval(&p, "fchmodat", [0, 0, 0o2755, 0, 0, 0]), eperm);
        assert_eq!(eval(&p, "openat", [0, 0, 0o100, 0o6755, 0, 0]), eperm);
        assert_eq!(eval(&p, "chmod", [0, 0o755, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(
            eval(&p, "openat", [0, 0, 0o100, 0o644, 0, 0]),
            Action::Allow
        );
        assert_eq!(
            eval(&p, "openat2", [0; 6]),
            Action::Errno(libc::ENOSYS as u16)
        );
        // The rest of the preset is as it was.
        let before = exec();
        for (call, args) in [("ioctl", [1, 0x5412, 0, 0, 0, 0]), ("ptrace", [0; 6])] {
            assert_eq!(eval(&p, call, args), eval(&before, call, args), "{call}");
        }
    }

    #[test]
    fn without_namespaces_refuses_what_the_namespaces_held_and_keeps_the_rest() {
        let mut p = exec();
        without_namespaces(&mut p).expect("guard applies");
        let errno = |e: i32| Action::Errno(e as u16);
        for domain in [libc::AF_UNIX, libc::AF_INET, libc::AF_NETLINK] {
            let args = [domain as u64, 1, 0, 0, 0, 0];
            assert_eq!(eval(&p, "socket", args), errno(libc::EACCES));
        }
        assert_eq!(eval(&p, "socketpair", [1, 1, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(
            eval(&p, "socketpair", [1, 0o2000005, 0, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(
            eval(&p, "socketpair", [1, 2, 0, 0, 0, 0]),
            errno(libc::EACCES)
        );
        assert_eq!(
            eval(&p, "connect", [3, 0, 16, 0, 0, 0]),
            errno(libc::EACCES)
        );
        assert_eq!(
            eval(&p, "fchmod", [3, 0o644, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            eval(&p, "fsetxattr", [3, 0, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            eval(&p, "inotify_add_watch", [3, 0, 0, 0, 0, 0]),
            errno(libc::EACCES)
        );
        assert_eq!(eval(&p, "setsid", [0; 6]), errno(libc::EPERM));
        assert_eq!(eval(&p, "setpgid", [0; 6]), errno(libc::EPERM));
        assert_eq!(eval(&p, "shmget", [0; 6]), errno(libc::ENOSYS));
        assert_eq!(eval(&p, "mq_open", [0; 6]), errno(libc::ENOSYS));
        assert_eq!(eval(&p, "sched_setaffinity", [0; 6]), Action::Allow);
        assert_eq!(
            eval(&p, "sched_setaffinity", [7, 0, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(
            eval(&p, "prlimit64", [7, 0, 0, 0, 0, 0]),
            errno(libc::EPERM)
        );
        assert_eq!(eval(&p, "setpriority", [0, 0, 5, 0, 0, 0]), Action::Allow);
        let prio_user = libc::PRIO_USER as u64;
        assert_eq!(
            eval(&p, "setpriority", [prio_user, 0, 5, 0, 0, 0]),
            errno(libc::EPERM)
        );
        // The rest of the preset is as it was.
        let before = exec();
        for (call, args) in [
            ("read", [0; 6]),
            ("ptrace", [0; 6]),
            ("kill", [1, 9, 0, 0, 0, 0]),
        ] {
            assert_eq!(eval(&p, call, args), eval(&before, call, args), "{call}");
        }
        // A call the policy kills for stays killed for other processes.
        let mut narrow = Policy::new(Action::KillProcess).expect("policy");
        without_namespaces(&mut narrow).expect("guard applies");
        assert_eq!(eval(&narrow, "prlimit64", [0; 6]), Action::KillProcess);
    }

    #[test]
    fn a_policy_that_does_not_name_a_mode_call_keeps_its_default_for_it() {
        let mut p = Policy::new(Action::KillProcess)
            .and_then(|p| p.with_allowed(&["read"]))
            .expect("policy");
        refuse_setid_modes(&mut p).expect("guards apply");
        assert_eq!(
            eval(&p, "chmod", [0, 0o644, 0, 0, 0, 0]),
            Action::KillProcess
        );
        assert_eq!(
            eval(&p, "chmod", [0, 0o4644, 0, 0, 0, 0]),
            Action::Errno(libc::EPERM as u16)
        );
    }
}

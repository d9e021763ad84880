use super::*;
use crate::policy::arch::SeccompData;
use crate::policy::arg;

struct Mem(Vec<(&'static str, &'static str)>);
impl Sources for Mem {
    fn load(&self, _from: Option<&str>, path: &str) -> Result<(String, String, String), String> {
        self.0
            .iter()
            .find(|(n, _)| *n == path)
            .map(|(n, t)| (n.to_string(), n.to_string(), t.to_string()))
            .ok_or_else(|| format!("cannot find `{path}`"))
    }
}

fn parse(text: &str) -> Result<Policy, ParseErrors> {
    parse_str("t.policy", text, &Options::new(Arch::X86_64), &Mem(vec![]))
}

fn err(text: &str) -> ParseError {
    match parse(text) {
        Err(ParseErrors(mut v)) => v.remove(0),
        Ok(p) => panic!("expected an error, got {p:?}"),
    }
}

#[test]
fn the_issue_example() {
    let text = "\
# comment; a trailing backslash continues a line
@default trap
read: allow
{close, exit_group}: allow
write: arg0 == 1 || \\
       arg0 == 2
ioctl: arg1 == TCGETS || arg1 == FIONREAD; errno ENOTTY
mprotect: arg2 in PROT_READ|PROT_WRITE
socketpair: domain == AF_UNIX
getppid: errno EPERM
ptrace: kill-process
";
    let p = parse(text).expect("parses");
    assert_eq!(p.default_action(), Action::Trap(0));
    let a = Arch::X86_64;
    let call = |name: &str, args: [u64; 6]| {
        p.evaluate(
            a,
            &SeccompData::new(a, a.syscall_number(name).expect("nr"), args),
        )
    };
    assert_eq!(call("read", [0; 6]), Action::Allow);
    assert_eq!(call("exit_group", [0; 6]), Action::Allow);
    assert_eq!(call("write", [2, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(call("write", [3, 0, 0, 0, 0, 0]), Action::Trap(0));
    assert_eq!(call("ioctl", [0, 0x5401, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(call("ioctl", [0, 0x5412, 0, 0, 0, 0]), Action::Errno(25));
    assert_eq!(call("mprotect", [0, 0, 3, 0, 0, 0]), Action::Allow);
    assert_eq!(call("mprotect", [0, 0, 4, 0, 0, 0]), Action::Trap(0));
    assert_eq!(call("socketpair", [1, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(call("socketpair", [2, 0, 0, 0, 0, 0]), Action::Trap(0));
    assert_eq!(call("getppid", [0; 6]), Action::Errno(1));
    assert_eq!(call("ptrace", [0; 6]), Action::KillProcess);
    assert_eq!(call("getpid", [0; 6]), Action::Trap(0));
}

#[test]
fn overlong_lines_are_errors() {
    let long = format!("read: arg0 == {}", "1".repeat(70_000));
    assert!(err(&long).message.contains("longer than"));
    let continued = format!(
        "read: arg0 == 1 {}\n|| arg0 == 2",
        "|| arg0 == 1 ".repeat(6_000)
    );
    let continued = continued.replace("\n", "\\\n");
    assert!(err(&continued).message.contains("longer than"));
}

#[test]
fn default_without_directive_is_kill_process() {
    assert_eq!(
        parse("read: 1").expect("parses").default_action(),
        Action::KillProcess
    );
}

#[test]
fn constants() {
    let p = parse(
        "kill: sig == -1 || sig == 0x10 || sig == 017 || sig == (SIGUSR1|SIGUSR2)\n\
                       mmap: prot in ~PROT_EXEC",
    )
    .expect("parses");
    let r = p.rules_for("kill").expect("kill");
    let Expr::Or(v) = &r.rules()[0].when else {
        panic!("or")
    };
    let values: Vec<u64> = v
        .iter()
        .map(|e| match e {
            Expr::Cond(c) => c.value,
            _ => 0,
        })
        .collect();
    assert_eq!(values, vec![u64::MAX, 16, 15, 10 | 12]);
    let m = p.rules_for("mmap").expect("mmap");
    assert_eq!(m.rules()[0].when, arg(2).in_mask(!4));
}

#[test]
fn errors_carry_position_and_caret() {
    let e = err("read: allow\nwrite: arg0 == NOPE\n");
    assert_eq!((e.line, e.column), (2, 16));
    assert!(
        e.message.contains("unknown constant `NOPE`"),
        "{}",
        e.message
    );
    let shown = e.to_string();
    assert!(shown.starts_with("t.policy:2:16: error:"), "{shown}");
    assert!(
        shown.ends_with("    write: arg0 == NOPE\n                   ^"),
        "{shown:?}"
    );

    let e = err("frobnicate: allow");
    assert_eq!((e.line, e.column), (1, 1));
    assert!(e.message.contains("unknown syscall"));

    let e = err("read: allow\nread: allow");
    assert_eq!(e.line, 2);
    assert!(
        e.message
            .contains("already has an unconditional rule (at t.policy:1:1)"),
        "{}",
        e.message
    );

    let e = err("ioctl: cmd == 0x100005412");
    assert!(
        e.message.contains("does not fit 32-bit parameter cmd"),
        "{}",
        e.message
    );

    let e = err("read: fd == 0xffffffffffffffffff");
    assert!(e.message.contains("overflows 64 bits"), "{}", e.message);
    assert_eq!(e.column, 13);

    let e = err("write: arg0 == 1 ||\\\n   arg9 == 2");
    assert_eq!((e.line, e.column), (2, 4));

    let e = err("@default errno 5000");
    assert!(e.message.contains("out of range"));
    let e = err("socket: proto == 0");
    assert!(
        e.message.contains(
            "`socket` has no parameter `proto` (its parameters are domain, type, protocol"
        ),
        "{}",
        e.message
    );
}

#[test]
fn masked_equality_and_defines() {
    let opts = Options::new(Arch::X86_64).define("SELF_PID", 42);
    let p = parse_str(
        "t",
        "futex: op & FUTEX_CMD_MASK == FUTEX_WAIT || op & 0x7f != 6\nkill: pid == SELF_PID",
        &opts,
        &Mem(vec![]),
    )
    .expect("parses");
    let a = Arch::X86_64;
    let futex = a.syscall_number("futex").expect("futex");
    let kill = a.syscall_number("kill").expect("kill");
    let call = |nr, args| p.evaluate(a, &SeccompData::new(a, nr, args));
    assert_eq!(call(futex, [0, 128, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(call(futex, [0, 6, 0, 0, 0, 0]), Action::KillProcess);
    assert_eq!(call(futex, [0, 134, 0, 0, 0, 0]), Action::KillProcess);
    assert_eq!(call(kill, [42, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(call(kill, [43, 0, 0, 0, 0, 0]), Action::KillProcess);
    let e = err("futex: op & 1 == 2");
    assert!(e.message.contains("can never hold"), "{}", e.message);
}

#[test]
fn review_findings_stay_fixed() {
    // A fallback that a later unconditional rule would make dead is an error.
    let e = err("read: fd == 0; errno 1\nread: allow");
    assert!(e.message.contains("could never apply"), "{}", e.message);
    let e = err("read: allow\nread: fd == 0; errno 1");
    assert!(e.message.contains("unconditional rule"), "{}", e.message);
    // Masked equality on a 32-bit parameter is judged on the low halves.
    parse("futex: op & 0xffffffff == -1").expect("holds for op == -1");
    // clone's flags and mmap's fd are read as 32 bits by the kernel.
    let e = err("clone: flags == 0x100000000");
    assert!(
        e.message.contains("does not fit 32-bit parameter flags"),
        "{}",
        e.message
    );
    // A mask too wide for a 32-bit parameter is named as the mask.
    let e = err("futex: op & 0x1ffffffff == 1");
    assert!(
        e.message.starts_with("mask 0x1ffffffff does not fit"),
        "{}",
        e.message
    );
    // The caret of an @include error points at the path.
    let e = err("@include   missing.policy");
    assert_eq!(e.column, 12);
    // prctl's later arguments are argN only.
    let e = err("prctl: arg2x == 1");
    assert!(e.message.contains("no parameter"), "{}", e.message);
    parse("prctl: option == PR_SET_NAME && arg1 == 0").expect("arg1 is prctl's second argument");
}

#[test]
fn conditional_statements_combine_in_order() {
    let p = parse(
        "prctl: arg0 == PR_SET_NAME\nprctl: arg0 == PR_GET_NAME\nprctl: arg0 == 4 => errno 1",
    )
    .expect("parses");
    assert_eq!(p.rules_for("prctl").expect("prctl").rules().len(), 3);
}

#[test]
fn includes() {
    let sources = Mem(vec![
        ("a.policy", "@include b.policy\nread: 1"),
        ("b.policy", "write: 1"),
        ("loop1", "@include loop2"),
        ("loop2", "@include loop1"),
    ]);
    let p = parse_with(&sources, "a.policy", &Options::new(Arch::X86_64)).expect("parses");
    assert!(p.rules_for("write").is_some());
    let e = parse_with(&sources, "loop1", &Options::new(Arch::X86_64)).expect_err("cycle");
    assert!(
        e.0[0]
            .message
            .contains("include cycle: loop1 -> loop2 -> loop1"),
        "{}",
        e
    );
    let e = parse_with(&sources, "nope", &Options::new(Arch::X86_64)).expect_err("missing");
    assert!(e.0[0].message.contains("cannot find"));
}

#[test]
fn rejects_garbage_without_panicking() {
    for text in [
        "",
        ":",
        "{",
        "{}",
        "{read",
        "read",
        "read:",
        "read: (",
        "read: arg0 ==",
        "read: ~",
        "read: arg0 == (1",
        "@",
        "@include",
        "read: !!!!",
        "read: arg0 in",
        "\\",
        "é: allow",
        "read: arg0 == - ",
        "read: arg0 == -99999999999999999999",
        "read: errno",
        "read: allow allow",
        "read: arg0 == 1; ",
        "read: arg0 == 1 =>",
        "read: trap 70000",
    ] {
        let _ = parse(text);
    }
}

/// The 2011 proposal's example: `sys_` names the syscall without the prefix, and a
/// parenthesised condition reads.
#[test]
fn the_2011_proposals_example_reads_unchanged() {
    let p = parse("sys_read: (fd == 0)\n").expect("parses");
    let rules = p.rules_for("read").expect("read named");
    assert_eq!(rules.rules().len(), 1);
    assert!(
        matches!(err("sys_frobnicate: allow\n").message.as_str(), m if m.contains("unknown syscall `sys_frobnicate`"))
    );
    let e = err("@dev\n");
    assert!(e.message.contains("is a profile line"), "{}", e.message);
}

/// Each decision names what made it: a rule, a fallback or the default, with the
/// place it was written.
#[test]
fn a_decision_names_the_rule_and_its_line() {
    use crate::policy::DecidedBy;
    let p = parse("@default errno EPERM\nread: allow\nioctl: cmd == 1; errno ENOTTY\n")
        .expect("parses");
    let call = |name: &str, a1: u64| SeccompData {
        nr: Arch::X86_64.syscall_number(name).expect("nr"),
        arch: Arch::X86_64.audit_arch(),
        instruction_pointer: 0,
        args: [0, a1, 0, 0, 0, 0],
    };
    let (a, by) = p.explain(Arch::X86_64, &call("read", 0));
    assert_eq!(a, Action::Allow);
    assert_eq!(by.to_string(), "the rule for `read` at t.policy:2:1");
    let (_, by) = p.explain(Arch::X86_64, &call("ioctl", 1));
    assert!(
        matches!(by, DecidedBy::Rule { origin: Some(ref o), .. } if o == "t.policy:3:1"),
        "{by}"
    );
    let (a, by) = p.explain(Arch::X86_64, &call("ioctl", 2));
    assert_eq!(a, Action::Errno(libc::ENOTTY as u16));
    assert_eq!(
        by.to_string(),
        "the fallback of `ioctl` at t.policy:3:1 (no rule of it held)"
    );
    let (_, by) = p.explain(Arch::X86_64, &call("ptrace", 0));
    assert_eq!(
        by.to_string(),
        "the default (@default at t.policy:1:1): no rule names `ptrace`"
    );
}

use super::*;

fn native() -> Arch {
    Arch::native()
}

#[test]
fn every_built_in_profile_parses_with_its_settings() {
    for (name, _) in BUILT_IN {
        let p = load(name, native()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(p.settings.ro.iter().any(|r| r == "/usr"), "{name}");
        assert!(p.settings.dev, "{name}");
        assert!(p.policy.rules_for("execve").is_some(), "{name}");
    }
}

#[test]
fn profile_lines_are_read_and_the_rest_is_the_policy() {
    let text = "# a comment\n@include exec.policy\n@ro /usr\n@ro-if-exists /nope:/x\n\
                @rw /tmp/out\n@env A=b=c\n@limit mem 256M\n@limit cpu 5\n@dev # /dev\n\
                @proc\n@net shared\n";
    let p = parse("t.profile", text, native(), false).expect("parses");
    let s = &p.settings;
    assert_eq!(s.ro, ["/usr"]);
    assert_eq!(s.ro_if_exists, ["/nope:/x"]);
    assert_eq!(s.rw, ["/tmp/out"]);
    assert_eq!(s.env, ["A=b=c"]);
    assert_eq!(s.limits.mem, Some(256 << 20));
    assert_eq!(s.limits.cpu, Some(5));
    assert!(s.dev && s.proc && s.share_net);
}

/// Errors name the file, line and column, one line each; every bad line is reported.
#[test]
fn bad_profile_lines_are_errors_with_their_place() {
    let text = "@include exec.policy\n@ro usr\n  @limit mem lots\n@limit speed 3\n@env X\n\
                @dev now\n@limit pids 3\n@limit pids 4\n";
    let e = parse("t.profile", text, native(), false).expect_err("errors");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 6, "{e}");
    assert!(
        lines[0].starts_with("t.profile:2:1: usr: a profile names absolute paths"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("t.profile:3:3: @limit mem lots: expected a whole number"),
        "{e}"
    );
    assert!(lines[2].contains("t.profile:4:1: @limit speed"), "{e}");
    assert!(
        lines[3].contains("t.profile:5:1: @env X: expected NAME=VALUE"),
        "{e}"
    );
    assert!(
        lines[4].contains("t.profile:6:1: @dev takes no value"),
        "{e}"
    );
    assert!(
        lines[5].contains("t.profile:8:1: @limit pids is given twice"),
        "{e}"
    );
}

/// The policy's own errors keep the file's line numbers (profile lines are blanked,
/// not removed).
#[test]
fn policy_errors_keep_the_files_line_numbers() {
    let text = "@ro /usr\n@dev\nread: allow\nnosuchcall: allow\n";
    let e = parse("t.profile", text, native(), false).expect_err("errors");
    assert!(e.contains("t.profile:4:1"), "{e}");
    assert!(e.contains("unknown syscall `nosuchcall`"), "{e}");
}

#[test]
fn a_profile_without_a_policy_is_an_error() {
    let e = parse("t.profile", "# nothing\n@ro /usr\n", native(), false).expect_err("empty");
    assert!(e.contains("has no seccomp part"), "{e}");
}

/// A built-in profile includes only built-in files; a name is never a file in the
/// working directory.
#[test]
fn built_in_names_are_never_files() {
    let e = parse("x", "@include ./evil.policy\n", native(), false).expect_err("no files");
    assert!(e.contains("is not a built-in policy file"), "{e}");
    let e = load("no-such-profile", native()).expect_err("unknown");
    assert!(e.contains("not a built-in profile"), "{e}");
}

/// A profile line inside a continued policy statement belongs to the statement.
#[test]
fn a_continued_statement_is_not_cut() {
    let text = "@include exec.policy\n{getuid, \\\n @dev}: allow\n";
    let e = parse("t.profile", text, native(), false).expect_err("policy error");
    assert!(e.contains("t.profile:"), "{e}");
}

/// The 2011 seccomp-filter proposal's example line reads unchanged.
#[test]
fn the_2011_proposals_syntax_reads() {
    let p = parse("t.profile", "sys_read: (fd == 0)\n", native(), false).expect("parses");
    assert!(p.policy.rules_for("read").is_some());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, .. proptest::prelude::ProptestConfig::default() })]

    /// Any text: a profile or errors, never a panic (profile lines mixed with policy
    /// lines, continuations, junk).
    #[test]
    fn any_text_parses_or_errors_without_panicking(
        lines in proptest::collection::vec(
            proptest::prop_oneof![
                "@(ro|rw|ro-if-exists|env|limit|dev|proc|net)[ a-zA-Z0-9/=:._#\\\\-]{0,30}",
                "[a-z_]{1,12}: [a-z0-9 =|&!()]{0,30}",
                "\\PC{0,40}",
            ],
            0..12,
        )
    ) {
        let text = lines.join("\n");
        let _ = parse("p.profile", &text, Arch::X86_64, false);
    }
}

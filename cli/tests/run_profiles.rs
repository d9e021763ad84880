//! The shipped profiles run real programs with nothing but `--profile NAME` and the
//! input and output grants — 0700 folders of the caller, as `mktemp -d` makes them —
//! as root and as uid 65534; and a profile file's settings reach the run.

mod common;
use common::{both, caller_file, minimal_pdf, private_dir, run_bare, text};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `sandbox run --profile NAME --ro IN --rw OUT -- COMMAND...`.
fn with_profile(
    name: &str,
    i: &str,
    o: &str,
    command: &[&str],
    nobody: bool,
) -> std::process::Output {
    let mut args = vec!["--profile", name, "--ro", i, "--rw", o, "--"];
    args.extend(command);
    run_bare(&args, nobody)
}

#[test]
fn the_shipped_profiles_run_real_programs_with_only_the_io_grants() {
    both(|nobody| {
        let input = private_dir(&format!("pin-{nobody}"), nobody);
        let out = private_dir(&format!("pout-{nobody}"), nobody);
        caller_file(
            &input.join("data.json"),
            "{\"a\": [1, 2, 3, 4]}\n",
            0o600,
            nobody,
        );
        caller_file(
            &input.join("img.ppm"),
            "P3\n2 2\n255\n255 0 0  0 255 0\n0 0 255  255 255 255\n",
            0o600,
            nobody,
        );
        caller_file(&input.join("words"), "pear\napple\npear\n", 0o600, nobody);
        std::fs::write(input.join("doc.pdf"), minimal_pdf()).expect("pdf");
        if nobody {
            std::os::unix::fs::chown(input.join("doc.pdf"), Some(65534), Some(65534))
                .expect("chown");
        }
        let (i, o) = (s(&input), s(&out));
        let py = format!(
            "import json; d = json.load(open('{i}/data.json')); open('{o}/py.txt', 'w').write(str(sum(d['a'])))"
        );
        let sh = format!("sort {i}/words | uniq -c | tr -s ' ' > {o}/sh.txt");
        let cases: Vec<(&str, Vec<String>, &str, Option<&str>)> = vec![
            (
                "shell",
                vec!["/bin/sh".into(), "-c".into(), sh],
                "sh.txt",
                Some(" 1 apple\n 2 pear\n"),
            ),
            (
                "python3",
                vec!["python3".into(), "-c".into(), py],
                "py.txt",
                Some("10"),
            ),
            (
                "sqlite3",
                vec![
                    "sqlite3".into(),
                    format!("{o}/db.sqlite"),
                    "create table t(x); insert into t values (42); select x from t;".into(),
                ],
                "db.sqlite",
                None,
            ),
            (
                "jq",
                vec![
                    "jq".into(),
                    "-c".into(),
                    ".a | add".into(),
                    format!("{i}/data.json"),
                ],
                "",
                None,
            ),
            (
                "imagemagick",
                vec![
                    "/usr/bin/convert".into(),
                    format!("{i}/img.ppm"),
                    format!("{o}/img.png"),
                ],
                "img.png",
                None,
            ),
            (
                "poppler",
                vec![
                    "/usr/bin/pdftoppm".into(),
                    "-png".into(),
                    format!("{i}/doc.pdf"),
                    format!("{o}/page"),
                ],
                "page-1.png",
                None,
            ),
        ];
        for (profile, command, made, content) in cases {
            let command: Vec<&str> = command.iter().map(String::as_str).collect();
            let r = with_profile(profile, &i, &o, &command, nobody);
            let (stdout, stderr) = (text(&r.stdout), text(&r.stderr));
            assert_eq!(
                r.status.code(),
                Some(0),
                "{profile} nobody={nobody}: {stdout}{stderr}"
            );
            match profile {
                "sqlite3" => assert_eq!(stdout, "42\n", "{stderr}"),
                "jq" => assert_eq!(stdout, "10\n", "{stderr}"),
                _ => {}
            }
            if !made.is_empty() {
                let file = out.join(made);
                let m = std::fs::metadata(&file)
                    .unwrap_or_else(|_| panic!("{profile}: no {made}: {stderr}"));
                let caller = if nobody { 65534 } else { 0 };
                assert_eq!(m.uid(), caller, "{profile}: {made} belongs to the caller");
                assert!(m.len() > 0, "{profile}: {made} is empty");
                if let Some(want) = content {
                    assert_eq!(
                        std::fs::read_to_string(&file).expect("text"),
                        want,
                        "{profile}"
                    );
                }
            }
        }
        let png = std::fs::read(out.join("img.png")).expect("png");
        assert!(png.starts_with(b"\x89PNG"), "convert wrote a PNG");
        let _ = std::fs::remove_dir_all(&input);
        let _ = std::fs::remove_dir_all(&out);
    });
}

/// A profile file: its policy (a rule of its own before the exec preset's: EACCES for
/// the personality `setarch -R` asks, which the preset refuses with EPERM), its environment, limits and binds reach the program; the
/// command line adds to and replaces them; its errors name the line.
#[test]
fn a_profile_files_settings_reach_the_run_and_the_command_line_wins() {
    let d = private_dir("pfile", false);
    let profile = d.join("t.profile");
    std::fs::write(
        &profile,
        "# a test profile\npersonality: personality == 0x0040000 => errno EACCES\n@include exec.policy\n@ro /usr\n@ro /bin\n\
         @ro /lib\n@ro-if-exists /lib64\n@ro-if-exists /no/such/dir\n@env GREETING=hi\n\
         @env LANG=C\n@limit nofile 100\n@limit tmp 1M\n",
    )
    .expect("profile");
    let p = s(&profile);
    let script = "echo $GREETING $LANG; ulimit -n; stat -f -c %b /tmp; setarch -R true 2>&1";
    let r = run_bare(&["--profile", &p, "--", "/bin/sh", "-c", script], false);
    let out = text(&r.stdout);
    assert!(out.ends_with(": Permission denied\n"), "{out}");
    assert!(
        out.starts_with("hi C\n100\n256\nsetarch: failed to set personality"),
        "{out}{}",
        text(&r.stderr)
    );
    let r = run_bare(
        &[
            "--profile",
            &p,
            "--env",
            "LANG=de",
            "--nofile",
            "50",
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
        false,
    );
    assert!(
        text(&r.stdout).starts_with("hi de\n50\n"),
        "{}",
        text(&r.stdout)
    );
    // --policy and --profile together: the profile holds the policy.
    let r = run_bare(
        &["--profile", &p, "--policy", "exec", "--", "/bin/true"],
        false,
    );
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    std::fs::write(&profile, "@include exec.policy\n@limit mem lots\n").expect("profile");
    let r = run_bare(&["--profile", &p, "--", "/bin/true"], false);
    assert_eq!(r.status.code(), Some(125));
    assert!(
        text(&r.stderr).contains(&format!(
            "{p}:2:1: @limit mem lots: expected a whole number"
        )),
        "{}",
        text(&r.stderr)
    );
    let r = run_bare(&["--profile", "nosuch", "--", "/bin/true"], false);
    assert!(
        text(&r.stderr).contains("not a built-in profile"),
        "{}",
        text(&r.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A violation report names the rule that decided (here the exec preset's default,
/// with its line) and the line that would allow the call.
#[test]
fn a_violation_report_names_the_deciding_rule_and_the_allowing_line() {
    both(|nobody| {
        let r = run_bare(
            &[
                "--profile",
                "python3",
                "--",
                "python3",
                "-c",
                "import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)",
            ],
            nobody,
        );
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(159), "{err}");
        assert!(
            err.contains("seccomp violation: ptrace(16, 1, 0, 0)"),
            "{err}"
        );
        assert!(
            err.contains("decided by the default (@default at exec.policy:")
                && err.contains("): no rule names `ptrace`"),
            "{err}"
        );
        assert!(
            err.contains("a policy or profile line: `ptrace: allow`"),
            "{err}"
        );
    });
}

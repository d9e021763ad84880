//! Learn → enforce → explain: `sandbox learn` records what a program does and writes a
//! profile; `sandbox run --profile` with it runs the same command, and refuses a
//! different behaviour with a report naming the deciding line — for python3 and a
//! shell pipeline, as root and as uid 65534, with 0700 folders of the caller.

mod common;
use common::{both, caller_file, private_dir, sandbox_exe, text};
use std::path::Path;
use std::process::{Command, Output};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `sandbox VERB ARGS` from `/`, as uid 65534 if `nobody`.
fn sandbox(args: &[&str], nobody: bool) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(sandbox_exe(nobody));
    c.args(args).current_dir("/");
    if nobody {
        c.uid(65534).gid(65534);
    }
    c.output().expect("sandbox")
}

/// Learn `command` with the grants into `profile`, enforce it (the same command works
/// and writes `made`), then run `other` under it: refused with a report.
fn round_trip(
    profile: &str,
    grants: &[&str],
    command: &[&str],
    made: &Path,
    other: &[&str],
    nobody: bool,
) {
    let mut learn = vec!["learn", "--output", profile];
    learn.extend(grants);
    learn.push("--");
    learn.extend(command);
    let r = sandbox(&learn, nobody);
    assert_eq!(r.status.code(), Some(0), "learn: {}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("profile written to"),
        "{}",
        text(&r.stderr)
    );
    let _ = std::fs::remove_file(made);
    let mut enforce = vec!["run", "--profile", profile];
    enforce.extend(grants);
    enforce.push("--");
    enforce.extend(command);
    let r = sandbox(&enforce, nobody);
    assert_eq!(
        r.status.code(),
        Some(0),
        "enforce nobody={nobody}: {}",
        text(&r.stderr)
    );
    assert!(made.exists(), "the enforced run wrote its output");
    let mut refused = vec!["run", "--profile", profile];
    refused.extend(grants);
    refused.push("--");
    refused.extend(other);
    let r = sandbox(&refused, nobody);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(159), "a different behaviour: {err}");
    assert!(
        err.contains(&format!("decided by the default (@default at {profile}:")),
        "{err}"
    );
    assert!(
        err.contains("to allow it, a policy or profile line: `"),
        "{err}"
    );
}

#[test]
fn learn_then_enforce_python3_and_a_shell_pipeline() {
    both(|nobody| {
        let input = private_dir(&format!("lin-{nobody}"), nobody);
        let out = private_dir(&format!("lout-{nobody}"), nobody);
        caller_file(
            &input.join("data.json"),
            "{\"a\": [1, 2, 3]}\n",
            0o600,
            nobody,
        );
        caller_file(&input.join("words"), "b\na\nb\n", 0o600, nobody);
        let (i, o) = (s(&input), s(&out));
        let grants = ["--ro", &i, "--rw", &o];
        let profile = s(&out.join("py.profile"));
        let py = format!(
            "import json; d = json.load(open('{i}/data.json')); open('{o}/py.txt', 'w').write(str(sum(d['a'])))"
        );
        round_trip(
            &profile,
            &grants,
            &["python3", "-c", &py],
            &out.join("py.txt"),
            &["python3", "-c", "import socket; socket.socket()"],
            nobody,
        );
        assert_eq!(
            std::fs::read_to_string(out.join("py.txt")).expect("out"),
            "6"
        );
        let learned = std::fs::read_to_string(&profile).expect("profile");
        assert!(learned.contains("\n@ro /usr\n"), "{learned}");
        assert!(
            !learned
                .lines()
                .any(|l| l.starts_with('@') && l.contains(&i)),
            "the grants are not in the profile's binds: {learned}"
        );

        let profile = s(&out.join("sh.profile"));
        let sh = format!("sort {i}/words | uniq -c > {o}/sh.txt");
        round_trip(
            &profile,
            &grants,
            &["/bin/sh", "-c", &sh],
            &out.join("sh.txt"),
            &["/bin/sh", "-c", "sleep 0.01"],
            nobody,
        );
        let _ = std::fs::remove_dir_all(&input);
        let _ = std::fs::remove_dir_all(&out);
    });
}

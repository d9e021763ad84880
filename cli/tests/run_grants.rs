//! Grants as the caller sees them: folders only the caller may enter (what `mktemp -d`
//! makes), outputs owned by the caller and overwritten by the next run — as root (an
//! idmapped mount per grant, the program keeping a user id of its own) and as uid
//! 65534 (the program runs as the caller).

mod common;
use common::{both, caller_file, private_dir, run, run_bare, text};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A program in a 0700 input folder (a copy of `cat`, dynamically linked: its loader
/// and libraries are bound for it though a grant holds the program) reads its input;
/// a shell writes into a 0700 output folder; the files it made, a folder included,
/// belong to the caller on disk; a second run overwrites them.
#[test]
fn private_folders_of_the_caller_work_and_outputs_are_the_callers() {
    both(|nobody| {
        let caller = if nobody { 65534 } else { 0 };
        let input = private_dir(&format!("in-{nobody}"), nobody);
        let out = private_dir(&format!("out-{nobody}"), nobody);
        caller_file(&input.join("in.txt"), "hello\n", 0o600, nobody);
        let prog = input.join("prog");
        std::fs::copy("/bin/cat", &prog).expect("copy cat");
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        if nobody {
            std::os::unix::fs::chown(&prog, Some(65534), Some(65534)).expect("chown");
        }
        let (i, o) = (s(&input), s(&out));

        let r = run_bare(
            &["--ro", &i, "--", &s(&prog), &format!("{i}/in.txt")],
            nobody,
        );
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
        assert_eq!(text(&r.stdout), "hello\n");

        let script = format!("cat {i}/in.txt > {o}/out.txt && mkdir {o}/sub && echo x > {o}/sub/f");
        let r = run(
            &["--ro", &i, "--rw", &o, "--", "/bin/sh", "-c", &script],
            nobody,
        );
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
        for made in ["out.txt", "sub", "sub/f"] {
            let m = std::fs::metadata(out.join(made)).expect("made");
            assert_eq!(
                (m.uid(), m.gid()),
                (caller, caller),
                "{made} nobody={nobody}"
            );
        }

        let again = format!("echo again > {o}/out.txt && echo y > {o}/sub/f && rm {o}/sub/f");
        let r = run(&["--rw", &o, "--", "/bin/sh", "-c", &again], nobody);
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
        assert_eq!(
            std::fs::read_to_string(out.join("out.txt")).expect("out"),
            "again\n"
        );
        assert!(!out.join("sub/f").exists());
        let _ = std::fs::remove_dir_all(&input);
        let _ = std::fs::remove_dir_all(&out);
    });
}

/// As root, the program is not root: in a granted folder, another user's private file
/// stays closed to it (it sees the owner as the overflow id), and the status report
/// says each grant is idmapped. As uid 65534, grants are plain (the program is the
/// caller already).
#[test]
fn the_program_sees_other_users_files_as_others_and_the_report_says_how() {
    both(|nobody| {
        let d = private_dir(&format!("others-{nobody}"), nobody);
        let other = d.join("other");
        caller_file(&other, "secret\n", 0o600, false);
        std::os::unix::fs::chown(&other, Some(1234), Some(1234)).expect("chown");
        let status = std::env::temp_dir().join(format!(
            "sandbox-grants-{}-status-{nobody}.json",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&status);
        std::fs::create_dir_all(status.parent().expect("parent")).expect("tmp");
        let st = s(&status);
        let script = format!("stat -c %u {0}/other; cat {0}/other", s(&d));
        let r = run(
            &[
                "--status-json",
                &st,
                "--rw",
                &s(&d),
                "--",
                "/bin/sh",
                "-c",
                &script,
            ],
            nobody,
        );
        let (out, err) = (text(&r.stdout), text(&r.stderr));
        assert_eq!(out, "65534\n", "{err}");
        assert!(err.contains("Permission denied"), "{err}");
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&status).unwrap_or_else(|_| panic!("no status: {err}")),
        )
        .expect("json");
        let grant = &json["grants"][4];
        assert_eq!(grant["path"], s(&d), "{json}");
        let want = if nobody { "plain" } else { "idmapped" };
        assert_eq!(grant["mapping"], want, "{json}");
        let _ = std::fs::remove_file(&status);
        let _ = std::fs::remove_dir_all(&d);
    });
}

/// On a file system without idmapped mounts (ramfs, mounted in a private mount
/// namespace of this test), a root caller's grant is bound as it is, said on stderr and
/// in the report: the program then runs as its own id and a 0700 folder stays closed.
#[test]
fn a_file_system_without_idmapped_mounts_is_bound_as_it_is_and_said() {
    let d = private_dir("ramfs", false);
    let exe = env!("CARGO_BIN_EXE_sandbox");
    let script = format!(
        "mount -t ramfs none {d} && chmod 700 {d} && echo hi > {d}/f && \
         {exe} run --status-json {d}.json --ro {d} -- /bin/cat {d}/f",
        d = s(&d)
    );
    let r = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "/bin/sh", "-c", &script])
        .output()
        .expect("unshare");
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("does not support idmapped mounts"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    let json = std::fs::read_to_string(format!("{}.json", s(&d))).expect("status");
    assert!(json.contains("\"plain\""), "{json}");
    let _ = std::fs::remove_file(format!("{}.json", s(&d)));
    let _ = std::fs::remove_dir_all(&d);
}

/// A program that can write into a grant cannot leave a set-user-ID or set-group-ID
/// file there (outside, it would run as the caller — as root, root): chmod, open with
/// O_CREAT and mknod with such a mode get EPERM, whatever the policy; the file system
/// keeps no such bit.
#[test]
fn a_program_cannot_make_set_id_files_in_a_grant() {
    both(|nobody| {
        let out = private_dir(&format!("setid-{nobody}"), nobody);
        let o = s(&out);
        let script = format!(
            "cd {o} && echo x > f && chmod 4755 f; echo chmod=$?; chmod 2755 f; echo chmodg=$?; \
             chmod 755 f; echo plain=$?; \
             python3 -c 'import os\ntry:\n os.open(\"g\", os.O_CREAT|os.O_WRONLY, 0o4755)\n print(\"open=0\")\nexcept OSError as e:\n print(\"open=\", e.errno)'"
        );
        let r = run(&["--rw", &o, "--", "/bin/sh", "-c", &script], nobody);
        let out_text = text(&r.stdout);
        assert!(
            out_text.contains("chmod=1\n") && out_text.contains("chmodg=1\n"),
            "nobody={nobody}: {out_text}{}",
            text(&r.stderr)
        );
        assert!(out_text.contains("plain=0\n"), "{out_text}");
        assert!(
            out_text.contains("open= 1\n"),
            "{out_text}{}",
            text(&r.stderr)
        );
        let mode = std::fs::metadata(out.join("f")).expect("f").mode();
        assert_eq!(mode & 0o6000, 0, "{mode:o}");
        assert!(!out.join("g").exists());
        let _ = std::fs::remove_dir_all(&out);
    });
}

/// The program gets a writable, empty /tmp of --tmp-size bytes (its own tmpfs: nothing
/// of the host's /tmp), with grants beneath /tmp mounted on it; --tmp-size 0 gives none.
#[test]
fn the_program_gets_a_scratch_tmp_of_its_own() {
    both(|nobody| {
        let out = private_dir(&format!("scratch-{nobody}"), nobody);
        let o = s(&out);
        let script = format!(
            "echo x > /tmp/a && cat /tmp/a && ls -a /tmp | grep -c . && \
             stat -f -c '%t %b %S' /tmp && echo y > {o}/b && cat {o}/b"
        );
        let r = run(
            &[
                "--tmp-size",
                "1048576",
                "--rw",
                &o,
                "--",
                "/bin/sh",
                "-c",
                &script,
            ],
            nobody,
        );
        let got = text(&r.stdout);
        // tmpfs (0x1021994), 256 blocks of 4 KiB; ".", "..", "a" and the grant's folder.
        assert_eq!(got, "x\n4\n1021994 256 4096\ny\n", "{}", text(&r.stderr));
        assert!(!Path::new("/tmp/a").exists() || nobody);
        let r = run(
            &["--tmp-size", "0", "--", "/bin/sh", "-c", "echo x > /tmp/a"],
            nobody,
        );
        assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
        let _ = std::fs::remove_dir_all(&out);
    });
}

//! `sandbox run`'s binds as a hostile program or project meets them: grants nested
//! inside each other, files that must not be touched on the host, execution from
//! writable places — as root and as uid 65534.

mod common;
use common::{both, open_to_all, run, text, tmp};
use std::path::Path;

fn write(p: &Path, s: &str) {
    std::fs::write(p, s).expect("write");
    open_to_all(p);
}

/// `mkdir -p`, every level open to all.
fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).expect("mkdir");
    let mut at = p;
    while at.starts_with(std::env::temp_dir()) && at != std::env::temp_dir() {
        open_to_all(at);
        at = at.parent().unwrap_or(Path::new("/"));
    }
}

/// `--rw proj --ro proj/.git`, in either order on the command line: the read-only grant
/// is mounted over the writable one (parents before children), so `.git` stays
/// read-only — a program cannot plant a hook that the host's git runs later — while the
/// rest of `proj` is writable. And the other way round (`--ro proj --rw proj/out`).
#[test]
fn a_read_only_grant_inside_a_writable_one_stays_read_only() {
    let d = tmp("nested");
    let proj = d.join("proj");
    mkdir(&proj.join(".git/hooks"));
    write(&proj.join(".git/config"), "orig\n");
    let (p, git) = (
        proj.display().to_string(),
        proj.join(".git").display().to_string(),
    );
    let script = format!(
        "echo x > {p}/new; echo new=$?; echo evil > {p}/.git/hooks/post-checkout; \
         echo hook=$?; echo y >> {p}/.git/config; echo cfg=$?; rm -f {p}/.git/config; \
         echo rm=$?"
    );
    both(|nobody| {
        for grants in [["--rw", &p, "--ro", &git], ["--ro", &git, "--rw", &p]] {
            let mut args: Vec<&str> = grants.to_vec();
            args.extend(["--", "/bin/sh", "-c", &script]);
            let o = run(&args, nobody);
            let out = text(&o.stdout);
            assert!(
                out.contains("new=0\n") && out.contains("hook=2\n") && out.contains("cfg=2\n"),
                "{grants:?} nobody={nobody}: {out}{}",
                text(&o.stderr)
            );
            assert!(!out.contains("rm=0"), "{out}");
            assert!(
                text(&o.stderr).contains("Read-only file system"),
                "{}",
                text(&o.stderr)
            );
            assert!(!proj.join(".git/hooks/post-checkout").exists());
            assert_eq!(
                std::fs::read_to_string(proj.join(".git/config")).expect("config"),
                "orig\n"
            );
            assert!(proj.join("new").exists());
            let _ = std::fs::remove_file(proj.join("new"));
        }
    });
    let out_dir = proj.join("out");
    mkdir(&out_dir);
    let o_s = out_dir.display().to_string();
    let script = format!("echo a > {o_s}/a; echo out=$?; echo b > {p}/b; echo proj=$?");
    both(|nobody| {
        for grants in [["--ro", &p, "--rw", &o_s], ["--rw", &o_s, "--ro", &p]] {
            let mut args: Vec<&str> = grants.to_vec();
            args.extend(["--", "/bin/sh", "-c", &script]);
            let o = run(&args, nobody);
            let out = text(&o.stdout);
            assert!(
                out.contains("out=0\n") && out.contains("proj=2\n"),
                "{grants:?} nobody={nobody}: {out}{}",
                text(&o.stderr)
            );
            assert!(out_dir.join("a").exists() && !proj.join("b").exists());
            let _ = std::fs::remove_file(out_dir.join("a"));
        }
    });
    let _ = std::fs::remove_dir_all(&d);
}

/// A file granted inside a writable folder is bound over the file that is there: the
/// host's file is neither truncated nor replaced, and stays read-only inside.
#[test]
fn a_file_granted_inside_a_writable_folder_is_left_as_it_is() {
    let d = tmp("nested-file");
    let proj = d.join("proj");
    mkdir(&proj);
    let config = proj.join("config.json");
    write(&config, "{\"keep\": true}\n");
    let (p, c) = (proj.display().to_string(), config.display().to_string());
    both(|nobody| {
        let script = format!("cat {c}; echo x >> {c}; echo append=$?");
        let o = run(
            &["--rw", &p, "--ro", &c, "--", "/bin/sh", "-c", &script],
            nobody,
        );
        let out = text(&o.stdout);
        assert!(
            out.contains("{\"keep\": true}\n") && out.contains("append=2\n"),
            "nobody={nobody}: {out}{}",
            text(&o.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(&config).expect("config"),
            "{\"keep\": true}\n"
        );
    });
    let _ = std::fs::remove_dir_all(&d);
}

/// Code runs only from read-only binds: a program that copies itself into an `--rw`
/// folder cannot run the copy (no execute right there in Landlock, and the bind is
/// `noexec`), nor run code from a memfd — a file in no folder at all — which the
/// sandbox makes non-executable and sealed so (as `vm.memfd_noexec=2` would), while
/// ordinary memfds still work.
#[test]
fn code_runs_only_from_read_only_binds() {
    let d = tmp("exec-rw");
    let bin = d.join("bin");
    let rw = d.join("rw");
    mkdir(&bin);
    mkdir(&rw);
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile.c"))
        .expect("source");
    let prog = common::compile(&bin, "hostile", &src);
    let (b, w, p) = (
        bin.display().to_string(),
        rw.display().to_string(),
        prog.display().to_string(),
    );
    let exec_rw = format!("exec_from_rw={w}");
    both(|nobody| {
        let cases = [
            (
                exec_rw.as_str(),
                format!("exec_from_rw: errno {}\n", libc::EACCES),
            ),
            (
                "memfd_exec",
                format!("memfd_exec: errno {}\n", libc::EACCES),
            ),
            (
                "memfd_chmod_exec",
                format!("memfd_chmod_exec: errno {}\n", libc::EPERM),
            ),
            (
                "memfd_mfd_exec",
                format!("memfd_mfd_exec: errno {}\n", libc::EACCES),
            ),
            ("memfd_works", "memfd_works: ok\n".to_string()),
            ("ran", "ran: ok\n".to_string()),
        ];
        for (vector, want) in cases {
            let o = run(&["--ro", &b, "--rw", &w, "--", &p, vector], nobody);
            assert_eq!(
                text(&o.stdout),
                want,
                "{vector} nobody={nobody}: {}",
                text(&o.stderr)
            );
        }
    });
    let _ = std::fs::remove_dir_all(&d);
}

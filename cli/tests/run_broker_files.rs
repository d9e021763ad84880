//! `sandbox run --broker-ro/--broker-rw`, as root and as uid 65534, with folders made
//! as `mktemp -d` makes them (0700, the caller's): real programs (sh, cat, python3)
//! read and write files beneath a folder that is not mounted in the sandbox, and
//! cannot leave it.

mod common;
use common::{both, caller_file, private_dir, run, text};

#[test]
fn folders_offered_without_mounting_them() {
    both(|nobody| {
        let dir = private_dir(if nobody { "bf-nobody" } else { "bf-root" }, nobody);
        let data = dir.join("data");
        let out = dir.join("out");
        for d in [&data, &out] {
            std::fs::create_dir(d).expect("mkdir");
            if nobody {
                std::os::unix::fs::chown(d, Some(65534), Some(65534)).expect("chown");
            }
        }
        caller_file(&data.join("in.txt"), "hello", 0o600, nobody);
        caller_file(&dir.join("secret"), "secret", 0o600, nobody);
        std::os::unix::fs::symlink("../secret", data.join("escape")).expect("symlink");
        let (d, o) = (data.display(), out.display());
        let script = format!(
            "cat {d}/in.txt; echo; \
             cat {d}/escape 2>/dev/null || echo escape refused; \
             cat {d}/../secret 2>/dev/null || echo dotdot refused; \
             echo x > {d}/new 2>/dev/null || echo ro refused; \
             python3 -c 'import os; print(os.path.getsize(\"{d}/in.txt\"))'; \
             tr a-z A-Z < {d}/in.txt > {o}/result && echo written; \
             cat {o}/result; echo"
        );
        let r = run(
            &[
                "--broker-ro",
                data.to_str().expect("utf-8"),
                "--broker-rw",
                out.to_str().expect("utf-8"),
                "--",
                "/bin/sh",
                "-c",
                &script,
            ],
            nobody,
        );
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(0), "nobody={nobody}: {err}");
        assert_eq!(
            text(&r.stdout),
            "hello\nescape refused\ndotdot refused\nro refused\n5\nwritten\nHELLO\n",
            "nobody={nobody}: {err}"
        );
        // Written by the supervisor, as the caller: the caller's file.
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(out.join("result")).expect("result");
        assert_eq!(meta.uid(), if nobody { 65534 } else { 0 });
        assert!(!data.join("new").exists());
        let _ = std::fs::remove_dir_all(&dir);
    });
}

//! The files `sandbox run` finds and binds for a program it has no grant for — named by
//! the program itself, which may be hostile: no host file the program's own user could
//! not read is bound, and nothing is opened before its type is known.

mod common;
use common::{run_bare, text, tmp};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cc(args: &[&str]) {
    let s = Command::new("cc").args(args).status().expect("cc");
    assert!(s.success(), "cc {args:?}");
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A shared library `dir/name` (no soname, so a program linked with its path records
/// that path as its `DT_NEEDED`) whose function returns 42.
fn library(dir: &Path, name: &str) -> PathBuf {
    let c = dir.join("lib.c");
    std::fs::write(&c, "int answer(void) { return 42; }\n").expect("write");
    let lib = dir.join(name);
    cc(&[
        "-shared",
        "-fPIC",
        "-o",
        lib.to_str().expect("utf-8"),
        c.to_str().expect("utf-8"),
    ]);
    chmod(&lib, 0o644);
    lib
}

/// A program `dir/p` that exits with the library's answer; `link` are cc's arguments
/// naming the library.
fn program(dir: &Path, link: &[&str]) -> PathBuf {
    let c = dir.join("p.c");
    std::fs::write(
        &c,
        "int answer(void);\nint main(void) { return answer(); }\n",
    )
    .expect("write");
    let p = dir.join("p");
    let mut args = vec!["-o", p.to_str().expect("utf-8"), c.to_str().expect("utf-8")];
    args.extend(link);
    cc(&args);
    chmod(&p, 0o755);
    p
}

/// A library kept in a folder only root may enter (mode 0700, as `mktemp -d` makes
/// them), named by a program through an absolute `DT_NEEDED` or through its
/// `DT_RUNPATH`: a root caller's `sandbox run` (whose program runs as a user id of its
/// own) refuses to bind it — it is in none of the system's library folders and not
/// readable by others — instead of making it readable in the sandbox. A library under
/// folders everyone may read is bound, and the program runs.
#[test]
fn a_library_in_a_private_folder_is_not_bound() {
    let d = tmp("deps-private");
    let secret = d.join("secret");
    std::fs::create_dir(&secret).expect("mkdir");
    let lib = library(&secret, "libsecret.so");
    let bin = d.join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    chmod(&bin, 0o755);
    let absolute = program(&bin, &[lib.to_str().expect("utf-8")]);
    let via_runpath = {
        let other = d.join("bin2");
        std::fs::create_dir(&other).expect("mkdir");
        chmod(&other, 0o755);
        let named = library(&secret, "libviarunpath.so");
        let _ = named;
        let rpath = format!("-Wl,-rpath,{},--enable-new-dtags", secret.display());
        let l = format!("-L{}", secret.display());
        program(&other, &[&l, "-lviarunpath", &rpath])
    };
    // Readable by others: bound, and the program runs.
    chmod(&secret, 0o755);
    for prog in [&absolute, &via_runpath] {
        let o = run_bare(&["--", prog.to_str().expect("utf-8")], false);
        assert_eq!(o.status.code(), Some(42), "{}", text(&o.stderr));
    }
    // Only root may enter: refused, nothing runs.
    chmod(&secret, 0o700);
    for prog in [&absolute, &via_runpath] {
        let o = run_bare(&["--", prog.to_str().expect("utf-8")], false);
        assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("not readable by others: refused"),
            "{}",
            text(&o.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A program whose `DT_NEEDED` names a device node: `sandbox run` learns its type
/// without opening it (a device's open can act — `/dev/watchdog` arms a hardware
/// watchdog) and refuses it. An inotify watch on the node sees no open.
#[test]
fn a_device_named_as_a_library_is_never_opened() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let d = tmp("deps-device");
    let libs = d.join("n");
    std::fs::create_dir(&libs).expect("mkdir");
    chmod(&libs, 0o755);
    let lib = library(&libs, "libdev.so");
    let prog = program(&d, &[lib.to_str().expect("utf-8")]);
    // The library's place now holds a character device (the null device's numbers).
    std::fs::remove_file(&lib).expect("rm");
    let made = Command::new("mknod")
        .arg(&lib)
        .args(["c", "1", "3"])
        .status()
        .expect("mknod");
    assert!(made.success());
    chmod(&lib, 0o666);
    let watch = Inotify::init(InitFlags::IN_NONBLOCK).expect("inotify");
    watch
        .add_watch(&lib, AddWatchFlags::IN_OPEN)
        .expect("watch");
    let o = run_bare(&["--", prog.to_str().expect("utf-8")], false);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("not a regular file: refused"),
        "{}",
        text(&o.stderr)
    );
    let opened = watch.read_events().map(|e| e.len()).unwrap_or(0);
    assert_eq!(opened, 0, "the device was opened");
    let _ = std::fs::remove_dir_all(&d);
}

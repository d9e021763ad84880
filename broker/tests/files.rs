//! The file service against the real kernel: every grant kind, every path check, the
//! escapes of `shared/escape-vectors.md` (`..`, NUL, too long, symlinks out, magic
//! links, a path swapped for a symlink while it is being opened), and the descriptor
//! that comes back. Every assertion names the exact error variant (and errno).

use broker::services::files::{
    Access, Creation, FileService, FileServiceError, Grant, OpenError, OpenMode, OpenRequest,
    OpenResponse, PathProblem, CREATE_MODE, MAX_PATH_LEN,
};
use nix::fcntl::{self, FcntlArg, FdFlag, OFlag, RenameFlags, AT_FDCWD};
use nix::sys::stat::{self, Mode, SFlag};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fresh directory under the temp dir, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("broker-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        Tmp(p)
    }

    /// `self/rel`, with its parent directories, holding `contents`.
    fn file(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, contents).expect("write file");
        p
    }

    fn dir(&self, rel: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(&p).expect("create dir");
        p
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const READ: OpenMode = OpenMode::Read;
const WRITE: OpenMode = OpenMode::Write {
    create: Creation::Existing,
    truncate: false,
};
const WRITE_TRUNC: OpenMode = OpenMode::Write {
    create: Creation::Existing,
    truncate: true,
};
const READ_WRITE: OpenMode = OpenMode::ReadWrite {
    create: Creation::Existing,
    truncate: false,
};
const APPEND: OpenMode = OpenMode::Append {
    create: Creation::Existing,
};
const OR_CREATE: OpenMode = OpenMode::Write {
    create: Creation::OrCreate,
    truncate: false,
};
const NEW: OpenMode = OpenMode::ReadWrite {
    create: Creation::New,
    truncate: false,
};

fn s(p: &Path) -> String {
    p.to_str().expect("temp paths are UTF-8").to_owned()
}

fn open(svc: &FileService, path: &str, mode: OpenMode) -> Result<OwnedFd, OpenError> {
    svc.open(&OpenRequest {
        path: path.to_owned(),
        mode,
    })
}

fn open_p(svc: &FileService, path: &Path, mode: OpenMode) -> Result<OwnedFd, OpenError> {
    open(svc, &s(path), mode)
}

fn service(grants: Vec<Grant>) -> FileService {
    FileService::new(grants).expect("FileService::new")
}

fn read_all(fd: OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    let mut out = String::new();
    f.read_to_string(&mut out).expect("read");
    out
}

fn err(r: Result<OwnedFd, OpenError>) -> OpenError {
    match r {
        Ok(fd) => panic!(
            "expected an error, got fd {} ({:?})",
            fd.as_raw_fd(),
            ident(&fd)
        ),
        Err(e) => e,
    }
}

/// (st_dev, st_ino) of an open descriptor.
fn ident(fd: &OwnedFd) -> (u64, u64) {
    let st = stat::fstat(fd).expect("fstat");
    (st.st_dev, st.st_ino)
}

fn ident_of(p: &Path) -> (u64, u64) {
    let m = std::fs::metadata(p).expect("stat");
    (m.dev(), m.ino())
}

const fn escapes(errno: i32) -> OpenError {
    OpenError::Escapes { errno }
}

const fn invalid(reason: PathProblem) -> OpenError {
    OpenError::InvalidPath { reason }
}

#[test]
fn read_only_grant_reads_but_never_writes_or_creates() {
    let t = Tmp::new("ro");
    let f = t.file("g/f", "hello");
    let svc = service(vec![Grant::new(t.0.join("g"), Access::ReadOnly)]);

    assert_eq!(read_all(open_p(&svc, &f, READ).expect("read")), "hello");
    for mode in [WRITE, WRITE_TRUNC, READ_WRITE, APPEND, OR_CREATE, NEW] {
        assert_eq!(err(open_p(&svc, &f, mode)), OpenError::Denied, "{mode:?}");
    }
    let missing = t.0.join("g/new");
    assert_eq!(err(open_p(&svc, &missing, OR_CREATE)), OpenError::Denied);
    assert_eq!(err(open_p(&svc, &missing, NEW)), OpenError::Denied);
    assert!(!missing.exists(), "nothing was created");
    assert_eq!(std::fs::read_to_string(&f).expect("read back"), "hello");
    assert_eq!(err(open_p(&svc, &missing, READ)), OpenError::NotFound);
}

#[test]
fn read_write_grant_writes_truncates_appends_but_never_creates() {
    let t = Tmp::new("rw");
    let f = t.file("g/f", "hello");
    let svc = service(vec![Grant::new(t.0.join("g"), Access::ReadWrite)]);

    let mut w = std::fs::File::from(open_p(&svc, &f, WRITE).expect("write"));
    w.write_all(b"J").expect("write");
    drop(w);
    assert_eq!(std::fs::read_to_string(&f).expect("read back"), "Jello");

    let mut a = std::fs::File::from(open_p(&svc, &f, APPEND).expect("append"));
    a.write_all(b"!").expect("append");
    drop(a);
    assert_eq!(std::fs::read_to_string(&f).expect("read back"), "Jello!");

    let mut rw = std::fs::File::from(open_p(&svc, &f, READ_WRITE).expect("read-write"));
    let mut got = String::new();
    rw.read_to_string(&mut got).expect("read");
    assert_eq!(got, "Jello!");
    rw.seek(SeekFrom::Start(0)).expect("seek");
    rw.write_all(b"Y").expect("write");
    drop(rw);
    assert_eq!(std::fs::read_to_string(&f).expect("read back"), "Yello!");

    drop(open_p(&svc, &f, WRITE_TRUNC).expect("truncate"));
    assert_eq!(std::fs::metadata(&f).expect("stat").len(), 0);

    let missing = t.0.join("g/new");
    assert_eq!(err(open_p(&svc, &missing, OR_CREATE)), OpenError::Denied);
    assert_eq!(err(open_p(&svc, &missing, NEW)), OpenError::Denied);
    // Creation is refused by the mode check even when the file already exists.
    assert_eq!(err(open_p(&svc, &f, OR_CREATE)), OpenError::Denied);
    assert!(!missing.exists(), "nothing was created");
    assert_eq!(err(open_p(&svc, &missing, WRITE)), OpenError::NotFound);
}

#[test]
fn create_grant_creates_0600_and_exclusive_means_exclusive() {
    let t = Tmp::new("create");
    t.dir("g");
    let existing = t.file("g/existing", "keep");
    let svc = service(vec![Grant::new(t.0.join("g"), Access::Create)]);

    let made = t.0.join("g/made");
    let fd = open_p(&svc, &made, OR_CREATE).expect("create");
    let st = stat::fstat(&fd).expect("fstat");
    assert_eq!(st.st_mode & SFlag::S_IFMT.bits(), SFlag::S_IFREG.bits());
    assert_eq!(st.st_mode & 0o7777, CREATE_MODE);
    assert_eq!(CREATE_MODE, 0o600);
    assert_eq!(
        std::fs::metadata(&made).expect("stat").permissions().mode() & 0o7777,
        0o600
    );

    // OrCreate on an existing file opens it as it is (no truncation).
    drop(open_p(&svc, &existing, OR_CREATE).expect("open existing"));
    assert_eq!(std::fs::read_to_string(&existing).expect("read"), "keep");

    // New: fails on an existing file, creates a missing one.
    assert_eq!(err(open_p(&svc, &existing, NEW)), OpenError::AlreadyExists);
    assert_eq!(err(open_p(&svc, &made, NEW)), OpenError::AlreadyExists);
    let fresh = t.0.join("g/fresh");
    let mut f = std::fs::File::from(open_p(&svc, &fresh, NEW).expect("create new"));
    f.write_all(b"x").expect("write");
    assert_eq!(std::fs::read_to_string(&fresh).expect("read"), "x");

    // New never follows a symlink in the last component, even when it dangles inside.
    let dangling = t.0.join("g/dangling");
    symlink("nothing-here", &dangling).expect("symlink");
    assert_eq!(err(open_p(&svc, &dangling, NEW)), OpenError::AlreadyExists);
    // OrCreate without follow_symlinks refuses the symlink.
    assert_eq!(
        err(open_p(&svc, &dangling, OR_CREATE)),
        escapes(libc::ELOOP)
    );
    assert!(!t.0.join("g/nothing-here").exists());
}

#[test]
fn non_recursive_grant_covers_only_direct_children() {
    let t = Tmp::new("recursive");
    let top = t.file("g/top", "top");
    let deep = t.file("g/sub/deep", "deep");
    let deeper = t.file("g/sub/more/deeper", "deeper");

    let flat = service(vec![Grant::new(t.0.join("g"), Access::ReadOnly)]);
    assert_eq!(read_all(open_p(&flat, &top, READ).expect("top")), "top");
    assert_eq!(err(open_p(&flat, &deep, READ)), OpenError::NotGranted);
    assert_eq!(err(open_p(&flat, &deeper, READ)), OpenError::NotGranted);

    let tree = service(vec![Grant::new(t.0.join("g"), Access::ReadOnly).recursive()]);
    assert_eq!(read_all(open_p(&tree, &top, READ).expect("top")), "top");
    assert_eq!(read_all(open_p(&tree, &deep, READ).expect("deep")), "deep");
    assert_eq!(
        read_all(open_p(&tree, &deeper, READ).expect("deeper")),
        "deeper"
    );
}

#[test]
fn the_most_specific_covering_grant_decides() {
    let t = Tmp::new("prefix");
    let outer = t.file("g/f", "outer");
    let inner = t.file("g/ro/f", "inner");
    let below_inner = t.file("g/ro/sub/f", "below");
    let svc = service(vec![
        Grant::new(t.0.join("g"), Access::Create).recursive(),
        // Narrower: read-only, direct children only.
        Grant::new(t.0.join("g/ro"), Access::ReadOnly),
    ]);
    drop(open_p(&svc, &outer, WRITE).expect("write under the outer grant"));
    assert_eq!(err(open_p(&svc, &inner, WRITE)), OpenError::Denied);
    assert_eq!(read_all(open_p(&svc, &inner, READ).expect("read")), "inner");
    // The inner grant does not cover g/ro/sub/f (not a direct child); the outer does.
    drop(open_p(&svc, &below_inner, WRITE).expect("write below the inner grant"));

    // Prefixes are compared by component, not by text: g-other is not under g.
    let other = t.file("g-other/f", "other");
    assert_eq!(err(open_p(&svc, &other, READ)), OpenError::NotGranted);
    // A grant's own directory is not a file a request may open.
    assert_eq!(
        err(open_p(&svc, &t.0.join("g"), READ)),
        OpenError::NotGranted
    );
}

#[test]
fn path_text_is_checked_before_anything_else() {
    let t = Tmp::new("text");
    t.file("g/f", "f");
    let g = s(&t.0.join("g"));
    let svc = service(vec![Grant::new(&g, Access::Create).recursive()]);

    let cases: Vec<(String, PathProblem)> = vec![
        (format!("{g}/../../../etc/passwd"), PathProblem::DotDot),
        (format!("{g}/.."), PathProblem::DotDot),
        (format!("{g}/./f"), PathProblem::Dot),
        (format!("{g}/f\0/../../etc/passwd"), PathProblem::Nul),
        (format!("{g}/f\0"), PathProblem::Nul),
        (format!("{g}/f/"), PathProblem::TrailingSlash),
        (format!("{g}/"), PathProblem::TrailingSlash),
        ("/".to_owned(), PathProblem::TrailingSlash),
        (format!("{g}//f"), PathProblem::EmptyComponent),
        (format!("/{g}"), PathProblem::EmptyComponent),
        ("g/f".to_owned(), PathProblem::NotAbsolute),
        (String::new(), PathProblem::NotAbsolute),
        (format!("{g}/{}", "n".repeat(256)), PathProblem::NameTooLong),
    ];
    for (path, reason) in cases {
        for mode in [READ, OR_CREATE] {
            assert_eq!(err(open(&svc, &path, mode)), invalid(reason), "{path:?}");
        }
    }

    // Length: MAX_PATH_LEN bytes pass the text check, one more does not.
    assert_eq!(MAX_PATH_LEN, 4096);
    let mut at_cap = format!("{g}/");
    while at_cap.len() < MAX_PATH_LEN {
        let room = MAX_PATH_LEN - at_cap.len();
        if room <= 200 {
            at_cap.push_str(&"x".repeat(room));
        } else {
            at_cap.push_str(&"y".repeat(100));
            at_cap.push('/');
        }
    }
    assert_eq!(at_cap.len(), 4096);
    assert_eq!(err(open(&svc, &at_cap, READ)), OpenError::NotFound);
    let over = format!("{at_cap}z");
    assert_eq!(over.len(), 4097);
    assert_eq!(err(open(&svc, &over, READ)), invalid(PathProblem::TooLong));
    // Even a 1 MiB path is refused by its length, first.
    let huge = format!("/{}", "a/".repeat(1 << 19));
    assert_eq!(err(open(&svc, &huge, READ)), invalid(PathProblem::TooLong));
    assert!(!t.0.join("g/f\0").exists());
}

#[test]
fn symlinks_pointing_out_of_the_grant_escape() {
    let t = Tmp::new("out");
    t.file("g/f", "inside");
    let secret = t.file("outside/secret", "secret");
    let g = t.0.join("g");
    symlink("/etc/passwd", g.join("passwd")).expect("symlink");
    symlink("/etc", g.join("etc")).expect("symlink");
    symlink("../outside/secret", g.join("rel")).expect("symlink");
    symlink(&secret, g.join("abs")).expect("symlink");
    t.dir("g/sub");
    symlink("../../outside", g.join("sub/up")).expect("symlink");

    let follow = service(vec![Grant::new(&g, Access::Create)
        .recursive()
        .follow_symlinks()]);
    let nofollow = service(vec![Grant::new(&g, Access::Create).recursive()]);
    let cases = [
        g.join("passwd"),     // absolute, to a file
        g.join("etc/passwd"), // absolute, to a directory, then a file below it
        g.join("etc/shadow"),
        g.join("rel"),           // relative, `..` above the grant
        g.join("abs"),           // absolute
        g.join("sub/up/secret"), // relative, from a subdirectory
    ];
    for p in &cases {
        for mode in [READ, WRITE, OR_CREATE] {
            // RESOLVE_BENEATH: an absolute symlink, or `..` at the grant's root: EXDEV.
            assert_eq!(err(open_p(&follow, p, mode)), escapes(libc::EXDEV), "{p:?}");
            // RESOLVE_NO_SYMLINKS: any symlink at all: ELOOP.
            assert_eq!(
                err(open_p(&nofollow, p, mode)),
                escapes(libc::ELOOP),
                "{p:?}"
            );
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).expect("read"), "secret");
}

#[test]
fn symlinks_inside_the_grant_only_with_follow_symlinks() {
    let t = Tmp::new("inside");
    let target = t.file("g/dir/target", "target");
    let g = t.0.join("g");
    symlink("dir/target", g.join("link")).expect("symlink");
    symlink("dir", g.join("dirlink")).expect("symlink");
    symlink("../dir/target", g.join("up")).expect("symlink");
    t.dir("g/a");
    symlink("../dir/target", g.join("a/sibling")).expect("symlink");
    // Absolute, although it names a file inside: RESOLVE_BENEATH refuses it anyway.
    symlink(&target, g.join("abs-inside")).expect("symlink");
    symlink("loop2", g.join("loop1")).expect("symlink");
    symlink("loop1", g.join("loop2")).expect("symlink");

    let follow = service(vec![Grant::new(&g, Access::ReadOnly)
        .recursive()
        .follow_symlinks()]);
    let nofollow = service(vec![Grant::new(&g, Access::ReadOnly).recursive()]);
    let want = ident_of(&target);
    for rel in ["link", "dirlink/target", "a/sibling"] {
        let fd = open_p(&follow, &g.join(rel), READ).expect(rel);
        assert_eq!(ident(&fd), want, "{rel}");
        assert_eq!(
            err(open_p(&nofollow, &g.join(rel), READ)),
            escapes(libc::ELOOP),
            "{rel}"
        );
    }
    // `g/up` -> `../dir/target`: the `..` leaves the grant even though the walk
    // would come back into it.
    assert_eq!(
        err(open_p(&follow, &g.join("up"), READ)),
        escapes(libc::EXDEV)
    );
    assert_eq!(
        err(open_p(&follow, &g.join("abs-inside"), READ)),
        escapes(libc::EXDEV)
    );
    assert_eq!(
        err(open_p(&follow, &g.join("loop1"), READ)),
        escapes(libc::ELOOP)
    );
}

#[test]
fn magic_links_escape() {
    let t = Tmp::new("magic");
    let secret = t.file("outside/secret", "secret");
    let held = std::fs::File::open(&secret).expect("open secret");
    let n = held.as_raw_fd();
    let g = t.dir("g");
    symlink("/proc/self/root", g.join("root")).expect("symlink");
    symlink(format!("/proc/self/fd/{n}"), g.join("fd")).expect("symlink");
    symlink("/proc/self/cwd", g.join("cwd")).expect("symlink");
    let svc = service(vec![
        Grant::new(&g, Access::ReadOnly)
            .recursive()
            .follow_symlinks(),
        // A grant over procfs itself: now the magic links are beneath the grant, and
        // only RESOLVE_NO_MAGICLINKS stops them.
        Grant::new("/proc", Access::ReadOnly)
            .recursive()
            .follow_symlinks(),
    ]);
    // From inside a plain grant, the link to /proc is absolute: EXDEV.
    for rel in ["root/etc/passwd", "fd", "cwd/Cargo.toml"] {
        assert_eq!(
            err(open_p(&svc, &g.join(rel), READ)),
            escapes(libc::EXDEV),
            "{rel}"
        );
    }
    // Beneath a procfs grant: ELOOP from RESOLVE_NO_MAGICLINKS.
    let me = std::process::id();
    for p in [
        "/proc/self/root/etc/passwd".to_owned(),
        format!("/proc/self/fd/{n}"),
        format!("/proc/{me}/fd/{n}"),
        format!("/proc/thread-self/fd/{n}"),
        "/proc/self/cwd/Cargo.toml".to_owned(),
        "/proc/self/exe".to_owned(),
    ] {
        assert_eq!(err(open(&svc, &p, READ)), escapes(libc::ELOOP), "{p}");
    }
    // Another process's magic link: procfs checks ptrace access *before* the
    // magic-link rule, so where this process may not read pid 1's links the kernel
    // says EACCES (as plain readlink does); otherwise ELOOP. Never the file.
    let pid1 = match std::fs::read_link("/proc/1/root") {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => OpenError::Io {
            errno: libc::EACCES,
        },
        _ => escapes(libc::ELOOP),
    };
    assert_eq!(err(open(&svc, "/proc/1/root/etc/passwd", READ)), pid1);
    // Plain symlinks in procfs (`self` -> `<pid>`) and regular files still work.
    let status = read_all(open(&svc, "/proc/self/status", READ).expect("status"));
    assert!(status.contains(&format!("Pid:\t{me}\n")), "{status}");
    assert_eq!(std::fs::read_to_string(&secret).expect("read"), "secret");
}

#[test]
fn only_regular_files_are_opened() {
    let t = Tmp::new("types");
    let g = t.dir("g");
    t.dir("g/sub");
    nix::unistd::mkfifo(&g.join("fifo"), Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let svc = service(vec![Grant::new(&g, Access::Create).recursive()]);

    for mode in [READ, WRITE, READ_WRITE, OR_CREATE] {
        assert_eq!(
            err(open_p(&svc, &g.join("sub"), mode)),
            OpenError::NotAFile,
            "{mode:?}"
        );
    }
    // A FIFO with no writer would block a plain open(O_RDONLY) forever: here it is
    // opened without blocking and then refused.
    assert_eq!(
        err(open_p(&svc, &g.join("fifo"), READ)),
        OpenError::NotAFile
    );
    // Opening a FIFO for writing without a reader fails in the kernel: ENXIO.
    assert_eq!(
        err(open_p(&svc, &g.join("fifo"), WRITE)),
        OpenError::Io { errno: libc::ENXIO }
    );
    // Through a regular file as if it were a directory.
    t.file("g/file", "f");
    assert_eq!(
        err(open_p(&svc, &g.join("file/x"), READ)),
        OpenError::Io {
            errno: libc::ENOTDIR
        }
    );
}

#[test]
fn returned_descriptor_is_cloexec_blocking_and_not_o_path() {
    let t = Tmp::new("fdflags");
    let f = t.file("g/f", "data");
    let svc = service(vec![Grant::new(t.0.join("g"), Access::Create)]);
    let cases = [
        (READ, OFlag::O_RDONLY),
        (WRITE, OFlag::O_WRONLY),
        (READ_WRITE, OFlag::O_RDWR),
        (APPEND, OFlag::O_WRONLY),
        (OR_CREATE, OFlag::O_WRONLY),
    ];
    for (mode, acc) in cases {
        let fd = open_p(&svc, &f, mode).expect("open");
        let fdflags = FdFlag::from_bits_truncate(
            fcntl::fcntl(fd.as_fd(), FcntlArg::F_GETFD).expect("F_GETFD"),
        );
        assert_eq!(fdflags, FdFlag::FD_CLOEXEC, "{mode:?}");
        let fl = OFlag::from_bits_truncate(
            fcntl::fcntl(fd.as_fd(), FcntlArg::F_GETFL).expect("F_GETFL"),
        );
        assert_eq!(fl & OFlag::O_ACCMODE, acc, "{mode:?}");
        assert!(!fl.contains(OFlag::O_PATH), "{mode:?}: {fl:?}");
        assert!(!fl.contains(OFlag::O_NONBLOCK), "{mode:?}: {fl:?}");
        assert_eq!(
            fl.contains(OFlag::O_APPEND),
            mode == APPEND,
            "{mode:?}: {fl:?}"
        );
    }
    let (resp, fd) = svc.serve(&OpenRequest {
        path: s(&f),
        mode: READ,
    });
    assert_eq!(resp, OpenResponse::Opened);
    assert_eq!(read_all(fd.expect("an fd with Opened")), "data");
    let (resp, fd) = svc.serve(&OpenRequest {
        path: "/etc/passwd".to_owned(),
        mode: READ,
    });
    assert_eq!(resp, OpenResponse::Failed(OpenError::NotGranted));
    assert!(fd.is_none());
}

#[test]
fn paths_outside_every_grant_are_not_granted() {
    let t = Tmp::new("notgranted");
    t.file("g/f", "f");
    let svc = service(vec![Grant::new(t.0.join("g"), Access::Create).recursive()]);
    for p in [
        "/etc/passwd".to_owned(),
        "/etc/shadow".to_owned(),
        "/proc/1/environ".to_owned(),
        "/proc/self/environ".to_owned(),
        "/sys/kernel/notes".to_owned(),
        "/tmp/x".to_owned(),
        s(&t.0.join("x")),
        s(&t.0),
    ] {
        for mode in [READ, OR_CREATE] {
            assert_eq!(err(open(&svc, &p, mode)), OpenError::NotGranted, "{p}");
        }
    }
}

#[test]
fn grant_is_the_directory_held_at_start() {
    let t = Tmp::new("held");
    t.file("g/f", "original");
    let svc = service(vec![Grant::new(t.0.join("g"), Access::ReadOnly)]);
    // Replace the granted path after the service started: a symlink to /etc.
    std::fs::rename(t.0.join("g"), t.0.join("moved")).expect("rename");
    symlink("/etc", t.0.join("g")).expect("symlink");
    // The request still resolves in the directory opened at start.
    let fd = open_p(&svc, &t.0.join("g/f"), READ).expect("open");
    assert_eq!(read_all(fd), "original");
    assert_eq!(
        err(open_p(&svc, &t.0.join("g/passwd"), READ)),
        OpenError::NotFound
    );
}

#[test]
fn bad_grants_are_refused() {
    let t = Tmp::new("badgrants");
    let file = t.file("file", "f");
    let g = t.dir("g");
    let refuse = |grants: Vec<Grant>| match FileService::new(grants) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    };
    assert!(matches!(refuse(vec![]), FileServiceError::NoGrants));
    assert!(matches!(
        refuse(vec![Grant::new("relative/dir", Access::ReadOnly)]),
        FileServiceError::NotAbsolute(_)
    ));
    assert!(matches!(
        refuse(vec![Grant::new(g.join("../g"), Access::ReadOnly)]),
        FileServiceError::DotDot(_)
    ));
    assert!(matches!(
        refuse(vec![
            Grant::new(&g, Access::ReadOnly),
            Grant::new(format!("{}/", s(&g)), Access::Create),
        ]),
        FileServiceError::Duplicate(_)
    ));
    assert!(matches!(
        refuse(vec![Grant::new(&g, Access::ReadOnly).follow_symlinks()]),
        FileServiceError::SymlinksNeedRecursive(_)
    ));
    match refuse(vec![Grant::new(t.0.join("missing"), Access::ReadOnly)]) {
        FileServiceError::OpenGrant { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT))
        }
        e => panic!("{e:?}"),
    }
    match refuse(vec![Grant::new(&file, Access::ReadOnly)]) {
        FileServiceError::OpenGrant { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOTDIR))
        }
        e => panic!("{e:?}"),
    }
}

/// Counts of what the racing opens returned.
#[derive(Debug, Default)]
struct Tally {
    opened: u64,
    not_found: u64,
    exdev: u64,
    eloop: u64,
    other: Vec<OpenError>,
}

/// A thread swaps `grant/sub` (a real directory) for a symlink out of the grant and
/// back, as fast as it can, for 300 ms; meanwhile this thread keeps opening paths
/// through `sub`. Every descriptor that comes back must be the file inside the grant.
fn race(follow_symlinks: bool) -> Tally {
    let t = Tmp::new(if follow_symlinks {
        "race-follow"
    } else {
        "race-nofollow"
    });
    let inside_passwd = t.file("grant/sub/etc/passwd", "inside");
    let inside_only = t.file("grant/sub/only-inside", "inside only");
    let outside_passwd = t.file("outside/etc/passwd", "outside");
    let grant = t.0.join("grant");
    symlink("/", grant.join("evil-abs")).expect("symlink");
    symlink("../outside", grant.join("evil-rel")).expect("symlink");
    let mut g = Grant::new(&grant, Access::ReadOnly).recursive();
    g.follow_symlinks = follow_symlinks;
    let svc = service(vec![g]);

    let inside = [ident_of(&inside_passwd), ident_of(&inside_only)];
    let outside = [
        ident_of(&outside_passwd),
        ident_of(Path::new("/etc/passwd")),
    ];

    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let stop = Arc::clone(&stop);
        let grant = grant.clone();
        std::thread::spawn(move || -> u64 {
            let sub = grant.join("sub");
            let away = grant.join("sub.away");
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Atomic swaps: `sub` always exists, either as the directory or as
                // a symlink out (absolute, then relative).
                for evil in ["evil-abs", "evil-rel"] {
                    let evil = grant.join(evil);
                    for _ in 0..2 {
                        fcntl::renameat2(
                            AT_FDCWD,
                            &sub,
                            AT_FDCWD,
                            &evil,
                            RenameFlags::RENAME_EXCHANGE,
                        )
                        .expect("exchange");
                        swaps += 1;
                    }
                }
                // Rename away, put a symlink to `/` in its place, and back.
                std::fs::rename(&sub, &away).expect("rename away");
                symlink("/", &sub).expect("symlink in place");
                std::fs::remove_file(&sub).expect("remove symlink");
                std::fs::rename(&away, &sub).expect("rename back");
                swaps += 1;
            }
            swaps
        })
    };

    let mut tally = Tally::default();
    let paths = [
        (s(&grant.join("sub/etc/passwd")), inside[0]),
        (s(&grant.join("sub/only-inside")), inside[1]),
    ];
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        for (p, want) in &paths {
            match open(&svc, p, READ) {
                Ok(fd) => {
                    let got = ident(&fd);
                    assert!(
                        !outside.contains(&got),
                        "{p} opened a file outside the grant"
                    );
                    assert_eq!(got, *want, "{p} opened something else");
                    tally.opened += 1;
                }
                Err(OpenError::NotFound) => tally.not_found += 1,
                Err(OpenError::Escapes { errno }) if errno == libc::EXDEV => tally.exdev += 1,
                Err(OpenError::Escapes { errno }) if errno == libc::ELOOP => tally.eloop += 1,
                Err(e) => tally.other.push(e),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().expect("racer thread");
    eprintln!("race (follow_symlinks = {follow_symlinks}): {swaps} swaps, {tally:?}");
    assert!(swaps > 0);
    tally
}

#[test]
fn race_swapping_a_directory_for_a_symlink_never_escapes() {
    // Following symlinks: the swapped-in symlink is absolute or climbs out: EXDEV.
    let follow = race(true);
    assert!(follow.opened > 0, "{follow:?}");
    assert!(follow.exdev > 0, "the race never hit: {follow:?}");
    assert_eq!(follow.eloop, 0, "{follow:?}");
    assert!(follow.other.is_empty(), "{follow:?}");
    // Not following symlinks: any symlink met is ELOOP.
    let nofollow = race(false);
    assert!(nofollow.opened > 0, "{nofollow:?}");
    assert!(nofollow.eloop > 0, "the race never hit: {nofollow:?}");
    assert_eq!(nofollow.exdev, 0, "{nofollow:?}");
    assert!(nofollow.other.is_empty(), "{nofollow:?}");
}

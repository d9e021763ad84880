//! The answers of the brokered file calls, against a caller made of a few strings (the
//! notification path itself is tested with real renderers in `tests/file_calls.rs`).

use super::*;
use crate::services::files::Grant;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A caller whose memory holds one path (at `PATH`) and takes writes at any address.
struct Fake {
    path: Vec<u8>,
    written: RefCell<HashMap<u64, Vec<u8>>>,
}

const PATH: u64 = 0x1000;
const BUF: u64 = 0x2000;

impl Caller for Fake {
    fn path(&self, at: u64) -> Result<Vec<u8>, i32> {
        if at != PATH {
            return Err(libc::EFAULT);
        }
        if self.path.len() > MAX_CALL_PATH {
            return Err(libc::ENAMETOOLONG);
        }
        Ok(self.path.clone())
    }
    fn write(&self, at: u64, bytes: &[u8]) -> Result<(), i32> {
        self.written.borrow_mut().insert(at, bytes.to_vec());
        Ok(())
    }
}

fn caller(path: impl AsRef<[u8]>) -> Fake {
    Fake {
        path: path.as_ref().to_vec(),
        written: RefCell::new(HashMap::new()),
    }
}

/// A tree: `ro/` (file `a`, dir `sub/` with `b`, symlinks `in -> a`, `out -> /etc/passwd`,
/// `up -> ../rw/c`) granted read-only and recursive; `rw/` (file `c`) read-write;
/// `flat/` (file `d`, dir `deep/` with `e`) read-only, not recursive; `secret` outside.
struct Tree {
    root: PathBuf,
    files: FileService,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn tree(name: &str) -> Tree {
    let root = std::env::temp_dir().join(format!("file-calls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mk = |p: &str| std::fs::create_dir_all(root.join(p)).expect("mkdir");
    let put = |p: &str| std::fs::write(root.join(p), p).expect("write");
    mk("ro/sub");
    mk("rw");
    mk("flat/deep");
    put("ro/a");
    put("ro/sub/b");
    put("rw/c");
    put("flat/d");
    put("flat/deep/e");
    put("secret");
    std::os::unix::fs::symlink("a", root.join("ro/in")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", root.join("ro/out")).expect("symlink");
    std::os::unix::fs::symlink("../rw/c", root.join("ro/up")).expect("symlink");
    let files = FileService::new(vec![
        Grant::new(root.join("ro"), Access::ReadOnly)
            .recursive()
            .follow_symlinks(),
        Grant::new(root.join("rw"), Access::ReadWrite).recursive(),
        Grant::new(root.join("flat"), Access::ReadOnly),
    ])
    .expect("service");
    Tree { root, files }
}

impl Tree {
    fn p(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root.display())
    }

    fn open(&self, rel: &str, flags: i32) -> Result<OwnedFd, i32> {
        let call = FileCall::Open {
            dirfd: AT_FDCWD,
            path: PATH,
            flags,
            mode: 0o644,
        };
        match answer(&self.files, call, &caller(self.p(rel))) {
            Answer::Fd { fd, .. } => Ok(fd),
            Answer::Error(e) => Err(e),
            Answer::Value(v) => panic!("open answered a value {v}"),
        }
    }

    fn call(&self, call: FileCall, path: &str) -> (Result<i64, i32>, Fake) {
        let c = caller(path);
        let r = match answer(&self.files, call, &c) {
            Answer::Value(v) => Ok(v),
            Answer::Error(e) => Err(e),
            Answer::Fd { .. } => panic!("answered a descriptor"),
        };
        (r, c)
    }
}

fn read_all(fd: OwnedFd) -> String {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut s)
        .expect("read");
    s
}

#[test]
fn opens_beneath_grants_as_the_kernel_would() {
    let t = tree("open");
    let r = libc::O_RDONLY | libc::O_CLOEXEC;
    assert_eq!(t.open("ro/a", r).map(read_all), Ok("ro/a".into()));
    assert_eq!(t.open("ro/sub/b", r).map(read_all), Ok("ro/sub/b".into()));
    // `//`, `/./` and a `..` that stays inside are resolved as the kernel does.
    assert_eq!(t.open("ro//sub/./../a", r).map(read_all), Ok("ro/a".into()));
    assert_eq!(t.open("ro/in", r).map(read_all), Ok("ro/a".into()));
    assert_eq!(t.open("flat/d", r).map(read_all), Ok("flat/d".into()));
    // Out of the grant: a missing file.
    assert_eq!(t.open("secret", r).err(), Some(libc::ENOENT));
    assert_eq!(t.open("ro/../secret", r).err(), Some(libc::ENOENT));
    assert_eq!(t.open("ro/out", r).err(), Some(libc::ENOENT));
    assert_eq!(t.open("ro/up", r).err(), Some(libc::ENOENT));
    assert_eq!(t.open("flat/deep/e", r).err(), Some(libc::ENOENT));
    assert_eq!(t.open("ro/missing", r).err(), Some(libc::ENOENT));
    // Directories are not handed out.
    assert_eq!(t.open("ro/sub", r).err(), Some(libc::EACCES));
    assert_eq!(t.open("ro", r).err(), Some(libc::EACCES));
    assert_eq!(
        t.open("ro/a", r | libc::O_DIRECTORY).err(),
        Some(libc::ENOTDIR)
    );
    assert_eq!(t.open("ro/a/", r).err(), Some(libc::ENOTDIR));
    assert_eq!(t.open("ro/a", libc::O_PATH).err(), Some(libc::EACCES));
    assert_eq!(t.open("ro/a", libc::O_ACCMODE).err(), Some(libc::EINVAL));
    assert_eq!(
        t.open("ro/in", r | libc::O_NOFOLLOW).err(),
        Some(libc::ELOOP)
    );
}

#[test]
fn writes_follow_the_grants_access() {
    let t = tree("write");
    for flags in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_RDONLY | libc::O_TRUNC,
        libc::O_WRONLY | libc::O_APPEND,
        libc::O_WRONLY | libc::O_CREAT,
    ] {
        assert_eq!(t.open("ro/a", flags).err(), Some(libc::EROFS), "{flags:#x}");
        assert_eq!(
            t.open("ro/new", flags).err(),
            Some(libc::EROFS),
            "{flags:#x}"
        );
    }
    let fd = t
        .open("rw/c", libc::O_WRONLY | libc::O_TRUNC)
        .expect("rw open");
    std::fs::File::from(fd)
        .set_len(1)
        .expect("write through rw");
    assert_eq!(
        t.open("rw/new", libc::O_WRONLY | libc::O_CREAT).err(),
        Some(libc::EACCES)
    );
    // An existing file asked for with O_CREAT is opened (std::fs::write over it).
    let creat = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    assert!(t.open("rw/c", creat).is_ok());
    assert_eq!(
        t.open("rw/c", creat | libc::O_EXCL).err(),
        Some(libc::EACCES)
    );
    assert!(!Path::new(&t.p("rw/new")).exists());
}

#[test]
fn stat_access_and_readlink() {
    let t = tree("stat");
    let stat = FileCall::Stat {
        dirfd: AT_FDCWD,
        path: PATH,
        buf: BUF,
        flags: 0,
    };
    let (r, c) = t.call(stat, &t.p("ro/a"));
    assert_eq!(r, Ok(0));
    let bytes = c.written.borrow().get(&BUF).cloned().expect("written");
    assert_eq!(bytes.len(), std::mem::size_of::<libc::stat>());
    let want = std::fs::metadata(t.p("ro/a")).expect("metadata");
    use std::os::unix::fs::MetadataExt;
    // st_ino is the second field on x86_64 and aarch64 (after st_dev).
    assert_eq!(bytes.get(8..16), Some(&want.ino().to_ne_bytes()[..]));
    // The grant's directory itself can be described; what is outside cannot.
    assert_eq!(t.call(stat, &t.p("ro")).0, Ok(0));
    assert_eq!(t.call(stat, &t.p("secret")).0, Err(libc::ENOENT));
    assert_eq!(t.call(stat, "relative").0, Err(libc::ENOENT));
    assert_eq!(t.call(stat, "").0, Err(libc::ENOENT));

    let access = |mode| FileCall::Access {
        dirfd: AT_FDCWD,
        path: PATH,
        mode,
        flags: 0,
    };
    assert_eq!(t.call(access(libc::F_OK), &t.p("ro/a")).0, Ok(0));
    assert_eq!(t.call(access(libc::R_OK), &t.p("ro/a")).0, Ok(0));
    assert_eq!(t.call(access(libc::W_OK), &t.p("ro/a")).0, Err(libc::EROFS));
    assert_eq!(
        t.call(access(libc::X_OK), &t.p("ro/a")).0,
        Err(libc::EACCES)
    );
    assert_eq!(t.call(access(libc::W_OK), &t.p("rw/c")).0, Ok(0));
    assert_eq!(
        t.call(access(libc::F_OK), &t.p("secret")).0,
        Err(libc::ENOENT)
    );

    let readlink = |size| FileCall::Readlink {
        dirfd: AT_FDCWD,
        path: PATH,
        buf: BUF,
        size,
    };
    let (r, c) = t.call(readlink(100), &t.p("ro/out"));
    assert_eq!(r, Ok(11));
    assert_eq!(
        c.written.borrow().get(&BUF).cloned(),
        Some(b"/etc/passwd".to_vec())
    );
    let (r, c) = t.call(readlink(4), &t.p("ro/out"));
    assert_eq!(r, Ok(4));
    assert_eq!(
        c.written.borrow().get(&BUF).cloned(),
        Some(b"/etc".to_vec())
    );
    assert_eq!(t.call(readlink(100), &t.p("ro/a")).0, Err(libc::EINVAL));
    assert_eq!(t.call(readlink(0), &t.p("ro/out")).0, Err(libc::EINVAL));
}

#[test]
fn hostile_paths() {
    let t = tree("hostile");
    let r = libc::O_RDONLY;
    let long = format!("{}/ro/{}", t.root.display(), "x/".repeat(3000));
    assert_eq!(t.open_raw(&long, r), Err(libc::ENAMETOOLONG));
    let name = format!("{}/ro/{}", t.root.display(), "n".repeat(256));
    assert_eq!(t.open_raw(&name, r), Err(libc::ENAMETOOLONG));
    assert_eq!(t.open_raw("/", r), Err(libc::ENOENT));
    assert_eq!(
        t.open_raw("/proc/self/root/etc/passwd", r),
        Err(libc::ENOENT)
    );
    let bad = FileCall::Open {
        dirfd: AT_FDCWD,
        path: BUF, // unreadable in the fake
        flags: r,
        mode: 0,
    };
    assert!(matches!(
        answer(&t.files, bad, &caller("x")),
        Answer::Error(libc::EFAULT)
    ));
}

impl Tree {
    fn open_raw(&self, path: &str, flags: i32) -> Result<(), i32> {
        let call = FileCall::Open {
            dirfd: AT_FDCWD,
            path: PATH,
            flags,
            mode: 0,
        };
        match answer(&self.files, call, &caller(path)) {
            Answer::Error(e) => Err(e),
            _ => Ok(()),
        }
    }
}

#[test]
fn decodes_32_bit_arguments_as_the_kernel() {
    let arch = Arch::native();
    let nr = |n: &str| arch.syscall_number(n).map(|n| n as i32).expect("nr");
    // openat(AT_FDCWD with junk above, path, O_RDONLY with junk above, 0)
    let call = FileCall::decode(
        arch,
        nr("openat"),
        [0xdead_0000_ffff_ff9c, 0x1000, 0x1_0000_0000, 0, 0, 0],
    );
    assert_eq!(
        call,
        Some(FileCall::Open {
            dirfd: libc::AT_FDCWD,
            path: 0x1000,
            flags: 0,
            mode: 0
        })
    );
    assert_eq!(FileCall::decode(arch, nr("read"), [0; 6]), None);
    assert_eq!(FileCall::decode(arch, -1, [0; 6]), None);
}

/// Grants inside grants: `..` cannot carry an outer grant's access into an inner one,
/// a non-recursive inner grant does not hide what the outer one covers, and a grant
/// that follows symlinks may not hold a narrower one.
#[test]
fn nested_grants() {
    let root = std::env::temp_dir().join(format!("file-calls-nested-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("outer/inner/deep")).expect("mkdir");
    std::fs::create_dir_all(root.join("outer/x")).expect("mkdir");
    std::fs::write(root.join("outer/inner/f"), "f").expect("write");
    std::fs::write(root.join("outer/inner/deep/g"), "g").expect("write");
    std::fs::write(root.join("outer/h"), "h").expect("write");
    let files = FileService::new(vec![
        Grant::new(root.join("outer"), Access::ReadWrite).recursive(),
        Grant::new(root.join("outer/inner"), Access::ReadOnly),
    ])
    .expect("service");
    let open = |rel: &str, flags: i32| {
        let call = FileCall::Open {
            dirfd: AT_FDCWD,
            path: PATH,
            flags,
            mode: 0,
        };
        match answer(&files, call, &caller(format!("{}/{rel}", root.display()))) {
            Answer::Fd { .. } => Ok(()),
            Answer::Error(e) => Err(e),
            Answer::Value(v) => panic!("value {v}"),
        }
    };
    assert_eq!(open("outer/x/../inner/f", libc::O_RDWR), Err(libc::ENOENT));
    assert_eq!(open("outer/x/../h", libc::O_RDONLY), Err(libc::ENOENT));
    assert_eq!(open("outer/inner/f", libc::O_RDWR), Err(libc::EROFS));
    assert_eq!(open("outer/inner/f", libc::O_RDONLY), Ok(()));
    // Deeper than the non-recursive inner grant: the outer one covers it.
    assert_eq!(open("outer/inner/deep/g", libc::O_RDWR), Ok(()));
    // O_DIRECTORY is decided before anything is opened: no truncation, no creation.
    assert_eq!(
        open("outer/h", libc::O_RDWR | libc::O_TRUNC | libc::O_DIRECTORY),
        Err(libc::ENOTDIR)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("outer/h")).ok(),
        Some("h".into())
    );
    assert_eq!(
        open(
            "outer/new",
            libc::O_RDWR | libc::O_CREAT | libc::O_DIRECTORY
        ),
        Err(libc::EINVAL)
    );
    assert_eq!(
        open("outer/x", libc::O_RDONLY | libc::O_DIRECTORY),
        Err(libc::EACCES)
    );
    let follow = FileService::new(vec![
        Grant::new(root.join("outer"), Access::ReadWrite)
            .recursive()
            .follow_symlinks(),
        Grant::new(root.join("outer/inner"), Access::ReadOnly),
    ]);
    assert!(matches!(
        follow,
        Err(crate::services::files::FileServiceError::SymlinksIntoNarrowerGrant { .. })
    ));
    let _ = std::fs::remove_dir_all(&root);
}

//! The file service: opens a file for a renderer under the grants the broker was
//! configured with, and hands back the descriptor.
//!
//! The renderer has no file system of its own worth the name (an empty root, Landlock,
//! seccomp); every file it reads or writes comes from here. So this module is the
//! privileged code a hostile renderer talks to, and everything in an [`OpenRequest`] is
//! hostile.
//!
//! # Model
//!
//! * A [`Grant`] names a directory (absolute), an [`Access`] (read-only, read-write,
//!   create), whether it covers the whole tree or only the directory's direct entries
//!   (`recursive`), and whether symlinks *inside* the tree may be followed.
//! * [`FileService::new`] opens every grant directory **once**, with
//!   `O_PATH|O_DIRECTORY|O_CLOEXEC`, and keeps the descriptor. From then on the grant
//!   *is* that directory: renaming or replacing the path afterwards changes nothing.
//! * A request names an absolute path and an [`OpenMode`] (a closed set of shapes, not
//!   raw `O_*` flags). [`FileService::open`] checks the path's text, picks the most
//!   specific grant that covers it (the longest component-wise prefix; a
//!   non-recursive grant covers only its direct children), checks the mode against the
//!   grant's access, and then resolves the rest of the path **in the kernel**, with
//!   `openat2(grant_dirfd, rest, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
//!   [| RESOLVE_NO_SYMLINKS])`. The result must be a regular file.
//!
//! # What a hostile renderer tries, and what stops it
//!
//! | attempt | stopped by |
//! |---|---|
//! | `/granted/../etc/passwd` | the text check (no `.`/`..`/empty component, no trailing `/`), and independently `RESOLVE_BENEATH`, which refuses any `..` that would leave the grant directory (`EXDEV`) |
//! | a path with NUL (`/granted/a\0/../../etc/passwd`) | the text check: a NUL anywhere is [`PathProblem::Nul`]; the kernel would otherwise stop reading at the NUL and see a different path than the one checked |
//! | a too-long path | the text check: more than [`MAX_PATH_LEN`] bytes, or a component of more than [`MAX_NAME_LEN`] — bounded work before any syscall |
//! | a symlink inside a grant pointing out (`/granted/x -> /etc/passwd`, `-> ../../etc`) | `RESOLVE_BENEATH`: an absolute symlink, or a `..` above the grant directory, fails with `EXDEV`; with `follow_symlinks == false`, `RESOLVE_NO_SYMLINKS` refuses every symlink (`ELOOP`) |
//! | a path swapped for a symlink between check and use | there is no check-then-use: the broker never looks at the path in the file system itself. The only resolution is the kernel's, done once, by `openat2` from a descriptor taken when the service started, and `RESOLVE_BENEATH` holds at every step of that walk (a concurrent rename that could move a `..` out of the tree makes the kernel fail the walk with `EAGAIN`, which is retried a bounded number of times) |
//! | magic links (`/proc/self/fd/N`, `/proc/self/root`, `/proc/PID/cwd`) | `RESOLVE_NO_MAGICLINKS` (`ELOOP`) where a grant covers a procfs; from anywhere else a symlink to them is absolute, so `RESOLVE_BENEATH` already refuses it (`EXDEV`) |
//! | creating or truncating through a read grant | the mode check: `O_CREAT` needs [`Access::Create`]; `O_TRUNC`, `O_APPEND` and writing need at least [`Access::ReadWrite`]; read-only truncation cannot even be expressed |
//! | opening a directory (then `getdents`, or `openat` from it to walk around) | `O_DIRECTORY` is never passed and the result must be a regular file (checked with `fstat` on the new descriptor, which is closed otherwise); writing to a directory also fails in the kernel (`EISDIR`) |
//! | a FIFO in a grant (to hang the broker in `open`) | `O_NONBLOCK` during the open (cleared before the descriptor is returned), and then the regular-file check |
//! | a directory descriptor to `openat` from (a grant's, say) | never handed out: the grant descriptors are `O_CLOEXEC` and stay in the broker; only regular files go back |
//! | an `O_PATH` descriptor, a descriptor that leaks across `exec`, or a terminal that becomes the broker's controlling tty | the flags are built here: always `O_CLOEXEC | O_NOCTTY`, never `O_PATH` |
//!
//! # What this does not cover (by decision)
//!
//! * **Hard links.** A hard link inside a grant to a file outside is the same inode,
//!   and no path check can tell. The service never creates links; the kernel's
//!   `protected_hardlinks` limits who else can. Do not grant directories that less
//!   trusted users can write to.
//! * **Device nodes.** The type check happens on the opened descriptor, so a device
//!   node inside a grant is opened (non-blocking, without becoming a controlling tty)
//!   before it is refused. Grants should not contain device nodes.
//! * **Mount points** inside a grant are crossed (no `RESOLVE_NO_XDEV`): only root can
//!   put them there, and then they are meant to be part of the tree.
//! * **Non-recursive grants do not follow symlinks** ([`FileService::new`] refuses
//!   `follow_symlinks` without `recursive`): a symlink directly in the directory could
//!   point into a subdirectory, which such a grant does not cover.
//! * **Paths are UTF-8**, as [`OpenRequest::path`] is a `String`; a file whose name is
//!   not UTF-8 cannot be requested. Grant paths are matched as text: a request must
//!   spell the grant's path as it was configured (no resolution of symlinks in it).
//! * **The grant directory itself** is not a file a request may open: a path equal to
//!   a grant's path is matched by no grant ([`OpenError::NotGranted`]).
//! * **Created files** get mode `0600` (minus the broker's umask), owned by the
//!   broker's user.

use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{self, FcntlArg, OFlag};
use nix::sys::stat::{self, Mode, SFlag};
pub use sandbox::protocol::{
    Creation, OpenError, OpenMode, OpenRequest, PathProblem, MAX_NAME_LEN, MAX_PATH_LEN,
};
use serde::{Deserialize, Serialize};
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The mode a created file gets (before the broker's umask).
pub const CREATE_MODE: u32 = 0o600;
/// How many times an `openat2` that fails with `EAGAIN` (a rename or mount raced a
/// scoped lookup) is tried again before the error is returned.
const EAGAIN_RETRIES: usize = 8;

/// What a grant allows. The variants are ordered: each allows everything the ones
/// before it allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Access {
    /// Open existing files for reading.
    ReadOnly,
    /// Open existing files for reading and writing (also truncate and append).
    ReadWrite,
    /// [`Access::ReadWrite`], and create files that do not exist.
    Create,
}

/// A directory the renderer may open files in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The directory, absolute, without `..`. A request must spell it this way.
    pub path: PathBuf,
    /// What may be done with the files.
    pub access: Access,
    /// `false`: only entries directly in the directory; `true`: the whole tree.
    pub recursive: bool,
    /// Whether symlinks inside the tree are followed. Even when they are, resolution
    /// never leaves the tree; when they are not, any symlink on the way (the last
    /// component included) makes the open fail. Needs `recursive`.
    pub follow_symlinks: bool,
}

impl Grant {
    /// A grant of `access` over the files directly in `path`, not following symlinks.
    pub fn new(path: impl Into<PathBuf>, access: Access) -> Grant {
        Grant {
            path: path.into(),
            access,
            recursive: false,
            follow_symlinks: false,
        }
    }

    /// The same grant over the whole tree.
    pub fn recursive(mut self) -> Grant {
        self.recursive = true;
        self
    }

    /// The same grant, following symlinks that stay inside the tree.
    pub fn follow_symlinks(mut self) -> Grant {
        self.follow_symlinks = true;
        self
    }
}

/// The broker's answer to an [`OpenRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpenResponse {
    /// The file is open; its descriptor is attached to this message.
    Opened,
    /// Nothing was opened; no descriptor is attached.
    Failed(OpenError),
}

/// The least access a grant must give for `mode`.
pub fn required_access(mode: OpenMode) -> Access {
    match (mode, mode.creation()) {
        (OpenMode::Read, _) => Access::ReadOnly,
        (_, Creation::Existing) => Access::ReadWrite,
        (_, Creation::OrCreate | Creation::New) => Access::Create,
    }
}

/// Check a request's path text (its mode is valid by construction).
pub fn validate(req: &OpenRequest) -> Result<ValidPath<'_>, OpenError> {
    ValidPath::parse(&req.path)
}

/// A request path whose text passed every check: absolute, at most [`MAX_PATH_LEN`]
/// bytes, no NUL, no trailing `/`, and every component non-empty, not `.` or `..`,
/// at most [`MAX_NAME_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidPath<'a>(&'a str);

impl<'a> ValidPath<'a> {
    /// Checks `path`; the length is checked first, so the work is bounded.
    pub fn parse(path: &'a str) -> Result<ValidPath<'a>, OpenError> {
        let bad = |reason| Err(OpenError::InvalidPath { reason });
        if path.len() > MAX_PATH_LEN {
            return bad(PathProblem::TooLong);
        }
        if path.as_bytes().contains(&0) {
            return bad(PathProblem::Nul);
        }
        let Some(rest) = path.strip_prefix('/') else {
            return bad(PathProblem::NotAbsolute);
        };
        if path.ends_with('/') {
            return bad(PathProblem::TrailingSlash);
        }
        for c in rest.split('/') {
            match c {
                "" => return bad(PathProblem::EmptyComponent),
                "." => return bad(PathProblem::Dot),
                ".." => return bad(PathProblem::DotDot),
                c if c.len() > MAX_NAME_LEN => return bad(PathProblem::NameTooLong),
                _ => {}
            }
        }
        Ok(ValidPath(path))
    }

    /// The path's components, first to last (never empty).
    pub fn components(&self) -> impl Iterator<Item = &'a str> {
        let s: &'a str = self.0;
        s.split('/').skip(1)
    }

    /// The path as text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Why a [`FileService`] could not be built from its grants.
#[derive(Debug, thiserror::Error)]
pub enum FileServiceError {
    /// No grants: a service that refuses everything is almost always a mistake; a
    /// renderer without file access should get no file service.
    #[error("no grants")]
    NoGrants,
    /// A grant path is relative.
    #[error("grant path {0:?} is not absolute")]
    NotAbsolute(PathBuf),
    /// A grant path has a `..` component.
    #[error("grant path {0:?} has a `..` component")]
    DotDot(PathBuf),
    /// Two grants name the same directory.
    #[error("grant path {0:?} is granted twice")]
    Duplicate(PathBuf),
    /// `follow_symlinks` on a non-recursive grant: a symlink could lead into a
    /// subdirectory, which the grant does not cover.
    #[error("grant {0:?}: follow_symlinks needs recursive")]
    SymlinksNeedRecursive(PathBuf),
    /// Opening a grant directory failed.
    #[error("grant {path:?}: open: {source}")]
    OpenGrant {
        /// The grant's directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A grant that follows symlinks holds another grant that gives less: a symlink in
    /// the outer one could reach the inner one's files with the outer one's access.
    #[error("grant {outer:?} follows symlinks and holds {inner:?}, which gives less access")]
    SymlinksIntoNarrowerGrant {
        /// The grant that follows symlinks.
        outer: PathBuf,
        /// The grant inside it.
        inner: PathBuf,
    },
    /// The kernel has no `openat2` (Linux < 5.6) or refuses the `RESOLVE_*` flags;
    /// without it paths cannot be resolved safely, so there is no fallback.
    #[error("openat2 with RESOLVE_BENEATH is not available: {0}")]
    Openat2Unavailable(#[source] io::Error),
}

/// A grant with its directory open.
#[derive(Debug)]
pub(crate) struct HeldGrant {
    pub(crate) grant: Grant,
    /// The grant path's normal components (the root left out).
    pub(crate) components: Vec<OsString>,
    /// `O_PATH|O_DIRECTORY` descriptor of the directory, taken once.
    pub(crate) dir: OwnedFd,
    /// The `RESOLVE_*` flags for opens beneath it.
    pub(crate) resolve: u64,
}

impl HeldGrant {
    /// Whether this grant covers a path with these components: its own components
    /// are a prefix, and what is left is one component (or more, if recursive).
    fn covers(&self, path: &[&str]) -> bool {
        let n = self.components.len();
        let left = path.len().saturating_sub(n);
        let prefix = path.len() > n
            && self
                .components
                .iter()
                .zip(path)
                .all(|(g, p)| g.as_bytes() == p.as_bytes());
        prefix && (left == 1 || self.grant.recursive)
    }
}

/// The file service: the grants, each with its directory held open.
#[derive(Debug)]
pub struct FileService {
    grants: Vec<HeldGrant>,
}

impl FileService {
    /// Opens every grant's directory once (`O_PATH|O_DIRECTORY|O_CLOEXEC`, following
    /// symlinks in the configured path: the configuration is trusted) and checks that
    /// `openat2` with `RESOLVE_BENEATH` works beneath it.
    pub fn new(grants: Vec<Grant>) -> Result<FileService, FileServiceError> {
        if grants.is_empty() {
            return Err(FileServiceError::NoGrants);
        }
        let mut held: Vec<HeldGrant> = Vec::with_capacity(grants.len());
        for grant in grants {
            let components = grant_components(&grant.path)?;
            if held.iter().any(|h| h.components == components) {
                return Err(FileServiceError::Duplicate(grant.path));
            }
            if grant.follow_symlinks && !grant.recursive {
                return Err(FileServiceError::SymlinksNeedRecursive(grant.path));
            }
            let dir = fcntl::open(
                &grant.path,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| FileServiceError::OpenGrant {
                path: grant.path.clone(),
                source: e.into(),
            })?;
            probe_openat2(&dir)?;
            let mut resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
            if !grant.follow_symlinks {
                resolve |= libc::RESOLVE_NO_SYMLINKS;
            }
            held.push(HeldGrant {
                grant,
                components,
                dir,
                resolve,
            });
        }
        for outer in held.iter().filter(|g| g.grant.follow_symlinks) {
            let narrower = held.iter().find(|inner| {
                inner.components.len() > outer.components.len()
                    && inner.components.starts_with(&outer.components)
                    && inner.grant.access < outer.grant.access
            });
            if let Some(inner) = narrower {
                return Err(FileServiceError::SymlinksIntoNarrowerGrant {
                    outer: outer.grant.path.clone(),
                    inner: inner.grant.path.clone(),
                });
            }
        }
        Ok(FileService { grants: held })
    }

    /// The grants with their directories held, for the brokered file calls.
    pub(crate) fn held(&self) -> &[HeldGrant] {
        &self.grants
    }

    /// The grants, as configured.
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter().map(|h| &h.grant)
    }

    /// Opens `req.path` in `req.mode` if a grant allows it; see the module docs for
    /// every check. The descriptor is a regular file, `O_CLOEXEC`, blocking, not
    /// `O_PATH`.
    pub fn open(&self, req: &OpenRequest) -> Result<OwnedFd, OpenError> {
        let path = validate(req)?;
        let components: Vec<&str> = path.components().collect();
        let grant = self
            .grants
            .iter()
            .filter(|g| g.covers(&components))
            .max_by_key(|g| g.components.len())
            .ok_or(OpenError::NotGranted)?;
        if grant.grant.access < required_access(req.mode) {
            return Err(OpenError::Denied);
        }
        // The text after the grant's components and their slashes: "/g/a/b" - "/g/".
        let skip: usize = components
            .iter()
            .take(grant.components.len())
            .map(|c| c.len() + 1)
            .sum::<usize>()
            + 1;
        let rest = path.as_str().get(skip..).ok_or(OpenError::NotGranted)?;
        // `ValidPath` has no NUL, so this cannot fail; refuse rather than panic.
        let rest = CString::new(rest).map_err(|_| OpenError::InvalidPath {
            reason: PathProblem::Nul,
        })?;
        let flags = req.mode.open_flags();
        let mode = match req.mode.creation() {
            Creation::Existing => 0,
            Creation::OrCreate | Creation::New => CREATE_MODE,
        };
        // O_NONBLOCK so that a FIFO cannot hang the broker in open(); cleared below.
        let fd = open_retrying(grant, &rest, flags | libc::O_NONBLOCK, mode)?;
        let st = stat::fstat(&fd).map_err(errno_error)?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            return Err(OpenError::NotAFile);
        }
        let status = OFlag::from_bits_truncate(flags & libc::O_APPEND);
        fcntl::fcntl(&fd, FcntlArg::F_SETFL(status)).map_err(errno_error)?;
        Ok(fd)
    }

    /// [`FileService::open`] as a channel handler: the response, and the descriptor
    /// to attach to it (exactly when the response is [`OpenResponse::Opened`]).
    pub fn serve(&self, req: &OpenRequest) -> (OpenResponse, Option<OwnedFd>) {
        match self.open(req) {
            Ok(fd) => (OpenResponse::Opened, Some(fd)),
            Err(e) => (OpenResponse::Failed(e), None),
        }
    }
}

/// The normal components of a grant path, or why the path is refused.
fn grant_components(path: &Path) -> Result<Vec<OsString>, FileServiceError> {
    if !path.is_absolute() {
        return Err(FileServiceError::NotAbsolute(path.to_path_buf()));
    }
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => return Err(FileServiceError::DotDot(path.to_path_buf())),
            Component::Prefix(_) => return Err(FileServiceError::NotAbsolute(path.to_path_buf())),
        }
    }
    Ok(out)
}

/// One scoped `openat2` beneath `dir`, to report a kernel without it at start-up.
fn probe_openat2(dir: &OwnedFd) -> Result<(), FileServiceError> {
    match sys::openat2(
        dir.as_fd(),
        c".",
        libc::O_PATH | libc::O_CLOEXEC,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_SYMLINKS,
    ) {
        Ok(_) => Ok(()),
        Err(e) => Err(FileServiceError::Openat2Unavailable(e)),
    }
}

/// `openat2` beneath the grant, tried again while the kernel says `EAGAIN` (a rename
/// or mount raced the scoped lookup), at most [`EAGAIN_RETRIES`] more times. (With
/// `O_NONBLOCK`, a file under a lease also says `EWOULDBLOCK` = `EAGAIN`; after the
/// retries that is returned as [`OpenError::Io`].)
pub(crate) fn open_retrying(
    grant: &HeldGrant,
    rest: &CString,
    flags: i32,
    mode: u32,
) -> Result<OwnedFd, OpenError> {
    let mut tries = 0;
    loop {
        match sys::openat2(grant.dir.as_fd(), rest, flags, mode, grant.resolve) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < EAGAIN_RETRIES => {
                tries += 1;
            }
            Err(e) => return Err(io_error(&e)),
        }
    }
}

/// The renderer's view of an `openat2` error.
fn io_error(e: &io::Error) -> OpenError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => OpenError::NotFound,
        Some(libc::EEXIST) => OpenError::AlreadyExists,
        Some(libc::EISDIR) => OpenError::NotAFile,
        Some(errno @ (libc::EXDEV | libc::ELOOP)) => OpenError::Escapes { errno },
        Some(errno) => OpenError::Io { errno },
        None => OpenError::Io { errno: libc::EIO },
    }
}

/// A nix error as [`OpenError::Io`].
fn errno_error(e: Errno) -> OpenError {
    OpenError::Io { errno: e as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(p: &str) -> Option<PathProblem> {
        match ValidPath::parse(p) {
            Ok(_) => None,
            Err(OpenError::InvalidPath { reason }) => Some(reason),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn path_text_checks() {
        assert_eq!(problem("/a/b"), None);
        assert_eq!(problem("a/b"), Some(PathProblem::NotAbsolute));
        assert_eq!(problem(""), Some(PathProblem::NotAbsolute));
        assert_eq!(problem("/"), Some(PathProblem::TrailingSlash));
        assert_eq!(problem("/a/"), Some(PathProblem::TrailingSlash));
        assert_eq!(problem("/a//b"), Some(PathProblem::EmptyComponent));
        assert_eq!(problem("//a"), Some(PathProblem::EmptyComponent));
        assert_eq!(problem("/a/./b"), Some(PathProblem::Dot));
        assert_eq!(problem("/a/../b"), Some(PathProblem::DotDot));
        assert_eq!(problem("/a/.."), Some(PathProblem::DotDot));
        assert_eq!(problem("/a\0b"), Some(PathProblem::Nul));
        assert_eq!(problem("/a/...b"), None);
        let name = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(problem(&format!("/{name}")), Some(PathProblem::NameTooLong));
        let long = "/a".repeat(MAX_PATH_LEN / 2);
        assert_eq!(problem(&long), None);
        assert_eq!(problem(&format!("{long}b")), Some(PathProblem::TooLong));
    }

    #[test]
    fn modes_and_flags() {
        assert_eq!(
            OpenMode::Read.open_flags(),
            libc::O_CLOEXEC | libc::O_NOCTTY
        );
        assert_eq!(required_access(OpenMode::Read), Access::ReadOnly);
        let w = OpenMode::Write {
            create: Creation::Existing,
            truncate: true,
        };
        assert_eq!(required_access(w), Access::ReadWrite);
        assert_eq!(
            w.open_flags(),
            libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_WRONLY | libc::O_TRUNC
        );
        let a = OpenMode::Append {
            create: Creation::New,
        };
        assert_eq!(required_access(a), Access::Create);
        assert_eq!(
            a.open_flags(),
            libc::O_CLOEXEC
                | libc::O_NOCTTY
                | libc::O_WRONLY
                | libc::O_APPEND
                | libc::O_CREAT
                | libc::O_EXCL
        );
        for m in [OpenMode::Read, w, a] {
            assert_eq!(m.open_flags() & (libc::O_PATH | libc::O_DIRECTORY), 0);
        }
    }

    #[test]
    fn grant_paths() {
        assert!(matches!(
            grant_components(Path::new("rel")),
            Err(FileServiceError::NotAbsolute(_))
        ));
        assert!(matches!(
            grant_components(Path::new("/a/../b")),
            Err(FileServiceError::DotDot(_))
        ));
        assert_eq!(
            grant_components(Path::new("/a/./b/")).ok(),
            Some(vec![OsString::from("a"), OsString::from("b")])
        );
        assert_eq!(grant_components(Path::new("/")).ok(), Some(vec![]));
    }
}

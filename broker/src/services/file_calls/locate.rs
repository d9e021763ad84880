//! Where a path a caller wrote lands beneath the grants: the covering grant, what is
//! left to resolve, and that resolution in the kernel (`openat2` beneath the grant's
//! directory) with the errno a caller sees.

use super::{Caller, MAX_COMPONENT};
use crate::services::files::{open_retrying, FileService, HeldGrant};
use sandbox::protocol::OpenError;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

/// A path located beneath a grant: the grant, and what is left to resolve beneath it
/// (`.` for the grant's directory itself).
pub(super) struct Located<'a> {
    pub(super) grant: &'a HeldGrant,
    pub(super) rest: CString,
}

/// Where `path` (as the caller wrote it) lands: among the grants that cover it — their
/// path a prefix of its leading components (`//` and `/./` are `/`, as for the kernel),
/// and what is left one component at most for a non-recursive grant — the one with the
/// longest path, and the rest. A `..` in the rest is resolved by the kernel beneath the
/// grant (`RESOLVE_BENEATH` refuses one that would leave it), and only beneath a grant
/// that holds no other: otherwise `/outer/x/../inner/f` would reach an inner grant
/// with the outer one's access.
pub(super) fn locate<'a>(files: &'a FileService, path: &[u8]) -> Result<Located<'a>, i32> {
    if path.first() != Some(&b'/') {
        return Err(libc::ENOENT);
    }
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if parts.iter().any(|c| c.len() > MAX_COMPONENT) {
        return Err(libc::ENAMETOOLONG);
    }
    let leading = parts.iter().take_while(|c| **c != b"..").count();
    let covers = |g: &HeldGrant| {
        let n = g.components.len();
        let prefix = n <= leading
            && g.components
                .iter()
                .zip(&parts)
                .all(|(a, b)| a.as_bytes() == *b);
        let left = parts.len() - n.min(parts.len());
        prefix && (g.grant.recursive || (left <= 1 && leading == parts.len()))
    };
    let grant = files
        .held()
        .iter()
        .filter(|g| covers(g))
        .max_by_key(|g| g.components.len())
        .ok_or(libc::ENOENT)?;
    let n = grant.components.len();
    if leading < parts.len() && files.held().iter().any(|g| contains(grant, g)) {
        return Err(libc::ENOENT);
    }
    let left = parts.get(n..).unwrap_or_default();
    let mut rest = left.join(&b'/');
    if rest.is_empty() {
        rest.push(b'.');
    } else if path.ends_with(b"/") || path.ends_with(b"/.") {
        // A trailing slash asks for a directory; the kernel checks it.
        rest.push(b'/');
    }
    let rest = CString::new(rest).map_err(|_| libc::ENOENT)?;
    Ok(Located { grant, rest })
}

/// Whether grant `inner` lies strictly beneath grant `outer`.
fn contains(outer: &HeldGrant, inner: &HeldGrant) -> bool {
    inner.components.len() > outer.components.len()
        && outer
            .components
            .iter()
            .zip(&inner.components)
            .all(|(a, b)| a == b)
}

/// Whether `path` (as a caller wrote it) lands beneath one of `files`' grants — the
/// calls [`answer`](super::answer) would serve rather than refuse as missing.
pub fn beneath_a_grant(files: &FileService, path: &[u8]) -> bool {
    locate(files, path).is_ok()
}

/// The caller's path at `at`, located (an empty path is `ENOENT`: `AT_EMPTY_PATH` is
/// handled before this).
pub(super) fn located<'a>(
    files: &'a FileService,
    caller: &impl Caller,
    at: u64,
) -> Result<Located<'a>, i32> {
    let path = caller.path(at)?;
    locate(files, &path)
}

/// The errno a caller sees for a failed resolution beneath a grant: leaving the grant
/// (`EXDEV`) is a missing file; so is a symlink in a grant that follows none (`ELOOP`
/// from `RESOLVE_NO_SYMLINKS`) unless the caller itself asked not to follow one.
pub(super) fn caller_errno(e: OpenError, grant: &HeldGrant, nofollow: bool) -> i32 {
    match e {
        OpenError::NotFound => libc::ENOENT,
        OpenError::AlreadyExists => libc::EEXIST,
        OpenError::NotAFile => libc::EISDIR,
        OpenError::Escapes { errno: libc::EXDEV } => libc::ENOENT,
        OpenError::Escapes { .. } if !grant.grant.follow_symlinks && !nofollow => libc::ENOENT,
        OpenError::Escapes { errno } | OpenError::Io { errno } => errno,
        _ => libc::EACCES,
    }
}

/// An `O_PATH` descriptor of what `rest` names beneath the grant (the last component
/// not followed if `nofollow`).
pub(super) fn lookup(l: &Located<'_>, nofollow: bool) -> Result<OwnedFd, i32> {
    let mut flags = libc::O_PATH | libc::O_CLOEXEC;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    open_retrying(l.grant, &l.rest, flags, 0).map_err(|e| caller_errno(e, l.grant, nofollow))
}

/// What a stat-like call's `path` names beneath a grant (with the grant). An empty
/// path is `ENOENT`: the filter leaves `AT_EMPTY_PATH` on a descriptor to the kernel
/// (`fstat`); the broker never acts on a caller's descriptor.
pub(super) fn target<'a>(
    files: &'a FileService,
    path: &[u8],
    flags: i32,
) -> Result<(OwnedFd, &'a HeldGrant), i32> {
    let l = locate(files, path)?;
    let fd = lookup(&l, flags & libc::AT_SYMLINK_NOFOLLOW != 0)?;
    Ok((fd, l.grant))
}

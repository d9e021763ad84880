//! memfds: create, seal, inspect, and map read-only once sealed.
//!
//! The safe wrappers go through `nix` (memfd_create, fcntl seals, fstat, fstatfs). The
//! two `mmap`s are ours, and each re-checks the seals itself before mapping, so neither
//! function relies on its caller for soundness: a [`ReadOnlyMapping`] exists only over a
//! file that can no longer change (F_SEAL_WRITE) or lose pages (F_SEAL_SHRINK).

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

/// The seals without which a memfd's bytes or size could still change under a reader:
/// `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`.
pub const REQUIRED_SEALS: libc::c_int =
    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL)`. Kernels
/// before 6.3 do not know MFD_NOEXEC_SEAL and say EINVAL; then the call is repeated
/// without it (a bad name fails the same way twice and reports EINVAL).
pub fn create(name: &str) -> io::Result<OwnedFd> {
    let base = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let noexec = MFdFlags::from_bits_retain(libc::MFD_NOEXEC_SEAL);
    match memfd_create(name, base | noexec) {
        Ok(fd) => Ok(fd),
        Err(Errno::EINVAL) => Ok(memfd_create(name, base)?),
        Err(e) => Err(e.into()),
    }
}

/// `fcntl(fd, F_ADD_SEALS, seals)`.
pub fn add_seals(fd: BorrowedFd<'_>, seals: libc::c_int) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_ADD_SEALS(SealFlag::from_bits_retain(seals)))?;
    Ok(())
}

/// `fcntl(fd, F_GET_SEALS)`: the seals of a memfd. Fails (EINVAL) for anything the
/// kernel cannot seal: pipes, sockets, directories, files on other filesystems.
pub fn seals(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    Ok(fcntl(fd, FcntlArg::F_GET_SEALS)?)
}

/// `fcntl(fd, F_GETFL)`: the open file description's access mode and status flags.
pub fn status_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    Ok(fcntl(fd, FcntlArg::F_GETFL)?)
}

/// What `fstat` says about a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// `st_mode & S_IFMT` (`libc::S_IFREG` for a memfd).
    pub file_type: u32,
    /// `st_size`.
    pub size: i64,
}

/// `fstat(fd)`: file type and size.
pub fn stat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok(FileInfo {
        file_type: st.st_mode & libc::S_IFMT,
        size: st.st_size,
    })
}

/// `fstatfs(fd)`: the filesystem's magic number (`libc::TMPFS_MAGIC` for an ordinary
/// memfd, `libc::HUGETLBFS_MAGIC` for one made with MFD_HUGETLB).
pub fn fs_magic(fd: BorrowedFd<'_>) -> io::Result<i64> {
    let st = nix::sys::statfs::fstatfs(fd)?;
    Ok(st.filesystem_type().0)
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// A read-only `MAP_SHARED` mapping of a sealed memfd; unmapped on drop. Derefs to the
/// file's bytes, which cannot change while it lives.
#[derive(Debug)]
pub struct ReadOnlyMapping {
    /// Start of the mapping; dangling (never dereferenced) when `len == 0`.
    ptr: NonNull<u8>,
    len: usize,
}

/// Map `len` bytes of `fd` read-only and shared. Refuses (InvalidInput) unless `fd` has
/// F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_WRITE, is a regular file and is exactly `len`
/// bytes long. The seals are read before the size, and seals are never removed, so the
/// size read is the size for good. `len == 0` maps nothing.
pub fn map_sealed(fd: BorrowedFd<'_>, len: usize) -> io::Result<ReadOnlyMapping> {
    if seals(fd)? & REQUIRED_SEALS != REQUIRED_SEALS {
        return Err(invalid(
            "memfd lacks F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE",
        ));
    }
    let info = stat(fd)?;
    if info.file_type != libc::S_IFREG || u64::try_from(info.size).ok() != Some(len as u64) {
        return Err(invalid(
            "sealed file is not a regular file of the expected size",
        ));
    }
    if len == 0 {
        return Ok(ReadOnlyMapping {
            ptr: NonNull::dangling(),
            len: 0,
        });
    }
    // What makes *reading* the mapping sound is checked above and argued at `Deref`.
    // SAFETY: a NULL hint without MAP_FIXED makes the kernel pick unused addresses, so
    // no memory Rust owns is replaced; `fd` is a live borrowed descriptor, offset 0.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| invalid("mmap returned NULL"))?;
    Ok(ReadOnlyMapping { ptr, len })
}

impl std::ops::Deref for ReadOnlyMapping {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // The bytes cannot change: `map_sealed` saw F_SEAL_WRITE, so no process can write
        // the pages (write(2) fails; no writable shared mapping can exist or be made),
        // and F_SEAL_SHRINK|GROW with size == `len`, so every page stays backed.
        // SAFETY: `ptr..ptr+len` is a live PROT_READ mapping unmapped only in `drop`,
        // which cannot run during this borrow of `self`, and immutable (above); for
        // len 0, `ptr` is dangling but non-null and aligned: valid for an empty slice.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for ReadOnlyMapping {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: `ptr`/`len` are exactly what mmap returned and nothing unmapped it
        // since; every slice handed out borrows `self`, so none outlives this call.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: the mapping is read-only and its bytes are immutable (F_SEAL_WRITE, checked
// in `map_sealed`), so sharing `&[u8]` views across threads is as safe as for any
// `&[u8]`; munmap from another thread is fine.
unsafe impl Send for ReadOnlyMapping {}
// SAFETY: as for `Send`: no interior mutability, immutable bytes.
unsafe impl Sync for ReadOnlyMapping {}

/// A writable `MAP_SHARED` mapping that is held and never accessed: what a hostile
/// renderer keeps to be able to change a memfd after the receiver checked it. While it
/// lives, `F_ADD_SEALS(F_SEAL_WRITE)` on the file fails with EBUSY. For tests.
#[derive(Debug)]
pub struct WritableHold {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

/// Map `len` (> 0) bytes of `fd` shared and writable, and keep the mapping until drop.
pub fn hold_writable_mapping(fd: BorrowedFd<'_>, len: usize) -> io::Result<WritableHold> {
    // `WritableHold` never reads or writes through the pointer nor hands it out, so no
    // Rust reference ever covers these bytes, whatever other holders of the file do.
    // SAFETY: a NULL hint without MAP_FIXED makes the kernel pick unused addresses, so
    // no memory Rust owns is replaced; `fd` is a live borrowed descriptor, offset 0.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let ptr = NonNull::new(p).ok_or_else(|| invalid("mmap returned NULL"))?;
    Ok(WritableHold { ptr, len })
}

impl Drop for WritableHold {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, not unmapped since, and
        // never exposed, so nothing refers to the range.
        unsafe {
            libc::munmap(self.ptr.as_ptr(), self.len);
        }
    }
}

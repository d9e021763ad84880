//! Large payloads as sealed memfds, checked before they are mapped.
//!
//! A message on the channel is capped in size; a payload larger than that (a decoded
//! image, a file's contents) travels as a memfd: the sender writes the bytes into it,
//! seals it, and passes the descriptor. The receiver maps it, or copies it out, without
//! a copy through the socket.
//!
//! The descriptor may come from a compromised renderer, which can send *any* descriptor
//! (a pipe, a socket, a directory, a regular file, an unsealed memfd, one sealed only in
//! part, a huge one, one it keeps a writable mapping of). [`SealedBlob::receive`]
//! accepts only a memfd that can no longer change, and never maps anything else. Each
//! seal it requires closes one attack:
//!
//! * **`F_SEAL_WRITE`**: the bytes are immutable after the checks. Without it the sender
//!   could change the content while the receiver parses it (a double-fetch: validate,
//!   then use different bytes) — and for the receiver's `&[u8]` view that would be
//!   undefined behaviour, not just a logic bug. The kernel refuses to add this seal
//!   (EBUSY) while any writable shared mapping of the file exists, so a sender that
//!   keeps such a mapping cannot produce an acceptable memfd. `F_SEAL_FUTURE_WRITE` is
//!   *not* enough: it leaves writable mappings made before it working.
//! * **`F_SEAL_SHRINK`**: the file cannot get shorter than the mapping. Touching a
//!   mapped page past the end of a file raises SIGBUS, so a sender that truncates the
//!   file after the receiver mapped it could kill the receiver at will.
//! * **`F_SEAL_GROW`**: the size we checked against the limit stays the size, and
//!   together with SHRINK fixes the length of the mapping and of `read_to_vec`.
//!
//! Order matters: the seals are read **before** the size. Seals can be added but never
//! removed, so once they are seen the size cannot move, and the size read next is the
//! size for good (reading the size first would leave a window to resize the file).
//! `F_SEAL_SEAL` is not required of the sender: more seals can only restrict further.
//!
//! Then the file must be a regular file on the internal tmpfs that backs memfds
//! (`TMPFS_MAGIC`): this refuses MFD_HUGETLB memfds, whose page faults depend on the
//! huge-page pool, and whatever else a future kernel lets F_GET_SEALS answer for. It
//! must be open for reading, and no larger than the receiver's limit. Only then may it
//! be mapped ([`SealedBlob::map`]), and the mapping itself re-checks the seals and the
//! size before calling `mmap` (in `sys::memfd`, the only unsafe code here).
//!
//! The descriptor shares its file offset with the sender (it is the same open file
//! description), so the receiver never uses `read`: [`SealedBlob::read_to_vec`] reads
//! at explicit offsets (`pread`).
//!
//! ```
//! use sandbox::ipc::blob::{BlobError, SealedBlob};
//!
//! // Sender: write, seal, send `blob.into_fd()` over the channel.
//! let blob = SealedBlob::from_bytes("tile", b"pixels")?;
//! let fd = blob.into_fd();
//!
//! // Receiver: check, then map.
//! let blob = SealedBlob::receive(fd, 1 << 20)?;
//! assert_eq!(&*blob.map()?, b"pixels");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::sys::memfd as sys;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::ops::{BitOr, Deref};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;

/// A set of memfd seals (`F_SEAL_*`), as `F_GET_SEALS` reports them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seals(u32);

impl Seals {
    /// `F_SEAL_SEAL`: no more seals can be added.
    pub const SEAL: Seals = Seals(libc::F_SEAL_SEAL as u32);
    /// `F_SEAL_SHRINK`: the file cannot get shorter.
    pub const SHRINK: Seals = Seals(libc::F_SEAL_SHRINK as u32);
    /// `F_SEAL_GROW`: the file cannot get longer.
    pub const GROW: Seals = Seals(libc::F_SEAL_GROW as u32);
    /// `F_SEAL_WRITE`: the content cannot change.
    pub const WRITE: Seals = Seals(libc::F_SEAL_WRITE as u32);
    /// `F_SEAL_FUTURE_WRITE`: no *new* write access (existing writable mappings keep
    /// working — which is why it does not replace `WRITE`).
    pub const FUTURE_WRITE: Seals = Seals(libc::F_SEAL_FUTURE_WRITE as u32);
    /// `F_SEAL_EXEC`: the exec bits cannot change.
    pub const EXEC: Seals = Seals(libc::F_SEAL_EXEC as u32);
    /// What a receiver requires: `SHRINK | GROW | WRITE`.
    pub const REQUIRED: Seals = Seals(sys::REQUIRED_SEALS as u32);

    /// No seals.
    pub const fn empty() -> Seals {
        Seals(0)
    }

    /// The set with these bits (unknown bits are kept, and shown in hex).
    pub const fn from_bits(bits: u32) -> Seals {
        Seals(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every seal of `other` is in `self`.
    pub const fn contains(self, other: Seals) -> bool {
        self.0 & other.0 == other.0
    }

    /// The seals of `self` that are not in `other`.
    pub const fn without(self, other: Seals) -> Seals {
        Seals(self.0 & !other.0)
    }
}

impl BitOr for Seals {
    type Output = Seals;

    fn bitor(self, rhs: Seals) -> Seals {
        Seals(self.0 | rhs.0)
    }
}

impl fmt::Display for Seals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Seals, &str); 6] = [
            (Seals::SEAL, "SEAL"),
            (Seals::SHRINK, "SHRINK"),
            (Seals::GROW, "GROW"),
            (Seals::WRITE, "WRITE"),
            (Seals::FUTURE_WRITE, "FUTURE_WRITE"),
            (Seals::EXEC, "EXEC"),
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut rest = *self;
        let mut first = true;
        for (seal, name) in NAMES {
            if self.contains(seal) {
                f.write_str(if first { "" } else { "|" })?;
                f.write_str(name)?;
                rest = rest.without(seal);
                first = false;
            }
        }
        if rest.0 != 0 {
            write!(f, "{}{:#x}", if first { "" } else { "|" }, rest.0)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Seals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seals({self})")
    }
}

/// Why a received descriptor was refused, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// `F_GET_SEALS` failed: a pipe, socket, directory, regular file on a disk, an
    /// `O_PATH` descriptor... anything but a memfd.
    #[error("blob descriptor is not a memfd (F_GET_SEALS failed: {source})")]
    NotAMemfd {
        /// The error of `F_GET_SEALS` (EINVAL for files that cannot be sealed).
        #[source]
        source: io::Error,
    },
    /// A memfd (or tmpfs file) without all of `F_SEAL_SHRINK`, `F_SEAL_GROW` and
    /// `F_SEAL_WRITE`: its size or content could still change after the checks.
    #[error(
        "blob memfd is not sealed against change: it has seals {seals}, \
         is missing {missing} (needs SHRINK|GROW|WRITE)",
        missing = Seals::REQUIRED.without(*.seals)
    )]
    Unsealed {
        /// The seals it has.
        seals: Seals,
    },
    /// Sealable but not a regular file (no kernel does this today; checked anyway).
    #[error("blob descriptor is not a regular file (st_mode type {file_type:#o})")]
    NotARegularFile {
        /// `st_mode & S_IFMT`.
        file_type: u32,
    },
    /// A sealed file on a filesystem other than the tmpfs behind ordinary memfds (an
    /// MFD_HUGETLB memfd, for instance).
    #[error("blob memfd is not on tmpfs (filesystem magic {fs_magic:#x})")]
    NotShmem {
        /// `f_type` of `fstatfs`.
        fs_magic: i64,
    },
    /// The descriptor was opened write-only.
    #[error("blob descriptor is not open for reading")]
    NotReadable,
    /// Larger than the receiver's limit.
    #[error("blob of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// The file's size.
        len: u64,
        /// The receiver's limit.
        max: usize,
    },
    /// `fstat`, `fstatfs` or `F_GETFL` failed on the descriptor.
    #[error("cannot inspect blob descriptor: {0}")]
    Stat(#[source] io::Error),
    /// `mmap` failed (or the re-check before it did).
    #[error("cannot map blob: {0}")]
    Map(#[source] io::Error),
    /// `dup` or `pread` failed (or the file ended early).
    #[error("cannot read blob: {0}")]
    Read(#[source] io::Error),
}

/// A memfd sealed against shrinking, growing and writing, of a known length: either
/// made here ([`SealedBlob::from_bytes`]) or received and checked
/// ([`SealedBlob::receive`]).
#[derive(Debug)]
pub struct SealedBlob {
    fd: OwnedFd,
    len: usize,
}

impl SealedBlob {
    /// Sender side: a new memfd named `name` (visible in `/proc/PID/fd`, at most 249
    /// bytes, no NUL) holding `bytes`, sealed with `SHRINK | GROW | WRITE | SEAL`.
    /// Close-on-exec, and not executable (MFD_NOEXEC_SEAL where the kernel has it).
    pub fn from_bytes(name: &str, bytes: &[u8]) -> io::Result<SealedBlob> {
        let mut file = File::from(sys::create(name)?);
        file.write_all(bytes)?;
        let fd = OwnedFd::from(file);
        sys::add_seals(fd.as_fd(), sys::REQUIRED_SEALS | libc::F_SEAL_SEAL)?;
        Ok(SealedBlob {
            fd,
            len: bytes.len(),
        })
    }

    /// Receiver side: accept `fd` from a peer only if it is a readable memfd on tmpfs
    /// sealed with at least `SHRINK | GROW | WRITE`, of at most `max_len` bytes. The
    /// checks run in the order of the variants of [`BlobError`]; the seals come before
    /// the size (see the module docs). Nothing is mapped here.
    pub fn receive(fd: OwnedFd, max_len: usize) -> Result<SealedBlob, BlobError> {
        let raw = sys::seals(fd.as_fd()).map_err(|source| BlobError::NotAMemfd { source })?;
        let seals = Seals(raw as u32);
        if !seals.contains(Seals::REQUIRED) {
            return Err(BlobError::Unsealed { seals });
        }
        let info = sys::stat(fd.as_fd()).map_err(BlobError::Stat)?;
        if info.file_type != libc::S_IFREG {
            return Err(BlobError::NotARegularFile {
                file_type: info.file_type,
            });
        }
        let fs_magic = sys::fs_magic(fd.as_fd()).map_err(BlobError::Stat)?;
        if fs_magic != libc::TMPFS_MAGIC {
            return Err(BlobError::NotShmem { fs_magic });
        }
        let flags = sys::status_flags(fd.as_fd()).map_err(BlobError::Stat)?;
        if flags & libc::O_ACCMODE == libc::O_WRONLY {
            return Err(BlobError::NotReadable);
        }
        // st_size is never negative for a regular file; treat it as huge if it were.
        let size = u64::try_from(info.size).unwrap_or(u64::MAX);
        let len = usize::try_from(size)
            .ok()
            .filter(|&len| len <= max_len)
            .ok_or(BlobError::TooLarge {
                len: size,
                max: max_len,
            })?;
        Ok(SealedBlob { fd, len })
    }

    /// The length in bytes (fixed by the seals).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the blob holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Map the bytes read-only (`MAP_SHARED`, populated up front). The mapping does not
    /// borrow the blob: it stays valid after the descriptor is closed. An empty blob
    /// maps nothing and gives an empty slice.
    pub fn map(&self) -> Result<BlobMapping, BlobError> {
        sys::map_sealed(self.fd.as_fd(), self.len)
            .map(BlobMapping)
            .map_err(BlobError::Map)
    }

    /// Copy the bytes out with `pread` (never `read`: the file offset is shared with
    /// the sender).
    pub fn read_to_vec(&self) -> Result<Vec<u8>, BlobError> {
        // Zeroed allocation (calloc): fresh pages need no memset. The length is at
        // most the receiver's own `max_len`.
        let mut out = vec![0u8; self.len];
        if self.len > 0 {
            let file = File::from(self.fd.try_clone().map_err(BlobError::Read)?);
            file.read_exact_at(&mut out, 0).map_err(BlobError::Read)?;
        }
        Ok(out)
    }

    /// The sealed memfd, to send to the peer (or to close).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for SealedBlob {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The bytes of a [`SealedBlob`], mapped read-only; unmapped on drop. Derefs to `[u8]`.
/// The content cannot change while the mapping lives (the file is `F_SEAL_WRITE`).
#[derive(Debug)]
pub struct BlobMapping(sys::ReadOnlyMapping);

impl Deref for BlobMapping {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for BlobMapping {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A writable shared mapping of a file, held (never read or written) until dropped:
/// what a hostile renderer keeps so that it could change a memfd after the receiver
/// checked it. Hostile-peer tests use it to show that such a memfd cannot be sealed
/// with `F_SEAL_WRITE` (EBUSY), and so is refused.
#[doc(hidden)]
#[derive(Debug)]
pub struct WritableMappingForTesting {
    _hold: sys::WritableHold,
}

/// Map `len` (> 0) bytes of `fd` shared and writable, and hold the mapping until the
/// returned value is dropped. For hostile-peer tests only.
#[doc(hidden)]
pub fn hold_writable_mapping_for_testing(
    fd: BorrowedFd<'_>,
    len: usize,
) -> io::Result<WritableMappingForTesting> {
    sys::hold_writable_mapping(fd, len).map(|hold| WritableMappingForTesting { _hold: hold })
}

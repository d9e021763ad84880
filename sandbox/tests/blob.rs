//! Sealed memfd blobs: round trips, and every hostile descriptor a compromised renderer
//! can send refused with the exact reason, before anything is mapped.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use sandbox::ipc::blob::{hold_writable_mapping_for_testing, BlobError, SealedBlob, Seals};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MIB: usize = 1 << 20;

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + 7) as u8 ^ (i >> 12) as u8)
        .collect()
}

fn seals_of(fd: impl AsFd) -> Seals {
    let bits = fcntl(fd.as_fd(), FcntlArg::F_GET_SEALS).expect("F_GET_SEALS");
    Seals::from_bits(bits as u32)
}

fn add_seals(fd: impl AsFd, seals: Seals) -> Result<(), Errno> {
    let flags = SealFlag::from_bits_retain(seals.bits() as i32);
    fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(flags)).map(|_| ())
}

/// A memfd as a hostile renderer would make it: sealing allowed, `data` written, no seal.
fn raw_memfd(data: &[u8]) -> OwnedFd {
    let fd = memfd_create(
        "hostile",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .expect("memfd_create");
    let mut file = File::from(fd);
    file.write_all(data).expect("write memfd");
    OwnedFd::from(file)
}

fn dup(fd: impl AsFd) -> OwnedFd {
    fd.as_fd().try_clone_to_owned().expect("dup")
}

fn refused(fd: OwnedFd, max_len: usize) -> BlobError {
    match SealedBlob::receive(fd, max_len) {
        Ok(blob) => panic!("accepted a hostile descriptor: {blob:?}"),
        Err(e) => e,
    }
}

fn assert_not_a_memfd(err: BlobError, errno: Errno, what: &str) {
    match err {
        BlobError::NotAMemfd { source } => {
            assert_eq!(
                source.raw_os_error(),
                Some(errno as i32),
                "{what}: {source}"
            )
        }
        other => panic!("{what}: expected NotAMemfd({errno}), got {other:?}"),
    }
}

fn assert_unsealed(err: BlobError, expected: Seals, what: &str) {
    match err {
        BlobError::Unsealed { seals } => assert_eq!(seals, expected, "{what}"),
        other => panic!("{what}: expected Unsealed {{ seals: {expected} }}, got {other:?}"),
    }
}

/// A fresh directory under `base`, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(base: &Path, tag: &str) -> TempDir {
        let path = base.join(format!("sandbox-blob-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_tmpfs(path: &Path) -> bool {
    let st = nix::sys::statfs::statfs(path).expect("statfs");
    st.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
}

// ---------------------------------------------------------------------------------
// Round trips

fn round_trip(len: usize) {
    let data = pattern(len);
    let sent = SealedBlob::from_bytes("round-trip", &data).expect("from_bytes");
    assert_eq!(sent.len(), len);
    let fd = sent.into_fd();

    // What the sender leaves on the file: the three required seals, SEAL, and EXEC
    // (MFD_NOEXEC_SEAL, Linux >= 6.3); no exec bit in the mode.
    assert_eq!(
        seals_of(&fd),
        Seals::SEAL | Seals::SHRINK | Seals::GROW | Seals::WRITE | Seals::EXEC
    );
    let mode = nix::sys::stat::fstat(&fd).expect("fstat").st_mode;
    assert_eq!(mode & 0o111, 0, "memfd mode {mode:o} is executable");

    let blob = SealedBlob::receive(fd, len).expect("receive");
    assert_eq!(blob.len(), len);
    assert_eq!(blob.is_empty(), len == 0);
    let mapping = blob.map().expect("map");
    assert_eq!(mapping.len(), len);
    assert!(*mapping == *data, "mapped bytes differ");
    assert_eq!(blob.read_to_vec().expect("read_to_vec"), data);

    // The mapping does not depend on the descriptor.
    drop(blob);
    assert!(
        *mapping == *data,
        "mapped bytes differ after the fd was closed"
    );
}

#[test]
fn round_trip_of_0_bytes() {
    round_trip(0);
}

#[test]
fn round_trip_of_1_byte() {
    round_trip(1);
}

#[test]
fn round_trip_of_1_mib() {
    round_trip(MIB);
}

#[test]
fn read_to_vec_ignores_the_shared_file_offset() {
    // The sender shares the open file description, hence the offset: moving it must
    // not change what the receiver reads.
    let data = pattern(10_000);
    let blob = SealedBlob::from_bytes("offset", &data).expect("from_bytes");
    let sender_view = dup(&blob);
    nix::unistd::lseek(&sender_view, 5_000, nix::unistd::Whence::SeekSet).expect("lseek");
    let blob = SealedBlob::receive(blob.into_fd(), 10_000).expect("receive");
    assert_eq!(blob.read_to_vec().expect("read_to_vec"), data);
}

#[test]
fn a_name_with_nul_is_refused_by_from_bytes() {
    let err = SealedBlob::from_bytes("a\0b", b"x").expect_err("NUL in a memfd name");
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}

// ---------------------------------------------------------------------------------
// The sender cannot change a blob it made

#[test]
fn after_from_bytes_the_creator_cannot_write_shrink_or_grow() {
    let data = pattern(8192);
    let blob = SealedBlob::from_bytes("creator", &data).expect("from_bytes");
    let fd = blob.as_fd();

    assert_eq!(nix::unistd::write(fd, b"x"), Err(Errno::EPERM), "write");
    let file = File::from(dup(fd));
    let pwrite = file.write_at(b"x", 0).expect_err("pwrite");
    assert_eq!(pwrite.raw_os_error(), Some(libc::EPERM), "pwrite");
    assert_eq!(
        nix::unistd::ftruncate(fd, 4096),
        Err(Errno::EPERM),
        "shrink"
    );
    assert_eq!(
        nix::unistd::ftruncate(fd, 0),
        Err(Errno::EPERM),
        "shrink to 0"
    );
    assert_eq!(nix::unistd::ftruncate(fd, 16384), Err(Errno::EPERM), "grow");
    let punch = nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
        | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
    assert_eq!(
        nix::fcntl::fallocate(fd, punch, 0, 4096),
        Err(Errno::EPERM),
        "punch hole"
    );
    assert_eq!(
        nix::fcntl::fallocate(fd, nix::fcntl::FallocateFlags::empty(), 0, 1 << 20),
        Err(Errno::EPERM),
        "grow by fallocate"
    );
    let map = hold_writable_mapping_for_testing(fd, 8192).expect_err("writable mapping");
    assert_eq!(
        map.raw_os_error(),
        Some(libc::EPERM),
        "writable shared mapping"
    );
    // F_SEAL_SEAL: nothing more can be added (nor, ever, removed).
    assert_eq!(
        add_seals(fd, Seals::FUTURE_WRITE),
        Err(Errno::EPERM),
        "add seal"
    );

    assert_eq!(blob.read_to_vec().expect("read_to_vec"), data);
    assert_eq!(nix::sys::stat::fstat(fd).expect("fstat").st_size, 8192);
}

// ---------------------------------------------------------------------------------
// Hostile memfds

#[test]
fn an_unsealed_memfd_is_refused() {
    let fd = raw_memfd(&pattern(4096));
    assert_unsealed(refused(fd, MIB), Seals::empty(), "memfd, sealing allowed");

    // Without MFD_ALLOW_SEALING the kernel reports F_SEAL_SEAL alone.
    let fd = memfd_create("no-sealing", MFdFlags::MFD_CLOEXEC).expect("memfd_create");
    assert_unsealed(refused(fd, MIB), Seals::SEAL, "memfd, sealing not allowed");
}

#[test]
fn a_memfd_sealed_shrink_grow_but_not_write_is_refused() {
    let fd = raw_memfd(&pattern(4096));
    add_seals(&fd, Seals::SHRINK | Seals::GROW).expect("seal");
    let err = refused(fd, MIB);
    assert_eq!(
        err.to_string(),
        "blob memfd is not sealed against change: it has seals SHRINK|GROW, \
         is missing WRITE (needs SHRINK|GROW|WRITE)"
    );
    assert_unsealed(err, Seals::SHRINK | Seals::GROW, "SHRINK|GROW");
}

#[test]
fn a_memfd_missing_any_one_required_seal_is_refused() {
    let required = [Seals::SHRINK, Seals::GROW, Seals::WRITE];
    for missing in required {
        let has = required
            .into_iter()
            .filter(|&s| s != missing)
            .fold(Seals::SEAL, |a, b| a | b);
        let fd = raw_memfd(&pattern(4096));
        add_seals(&fd, has).expect("seal");
        assert_unsealed(refused(fd, MIB), has, &format!("missing {missing}"));
    }
}

#[test]
fn future_write_does_not_replace_write() {
    let fd = raw_memfd(&pattern(4096));
    let has = Seals::SHRINK | Seals::GROW | Seals::FUTURE_WRITE | Seals::SEAL;
    add_seals(&fd, has).expect("seal");
    assert_unsealed(refused(fd, MIB), has, "FUTURE_WRITE instead of WRITE");
}

#[test]
fn a_live_writable_mapping_blocks_seal_write_so_the_memfd_is_refused() {
    let fd = raw_memfd(&pattern(8192));
    let hold = hold_writable_mapping_for_testing(fd.as_fd(), 8192).expect("mmap shared rw");

    // The kernel refuses F_SEAL_WRITE while the writable shared mapping exists, and
    // F_ADD_SEALS is all or nothing.
    assert_eq!(
        add_seals(&fd, Seals::SHRINK | Seals::GROW | Seals::WRITE),
        Err(Errno::EBUSY)
    );
    assert_eq!(seals_of(&fd), Seals::empty());
    // The best such a sender can do: everything but WRITE, or FUTURE_WRITE (which
    // leaves its mapping writable).
    add_seals(&fd, Seals::SHRINK | Seals::GROW).expect("SHRINK|GROW");
    assert_unsealed(
        refused(dup(&fd), MIB),
        Seals::SHRINK | Seals::GROW,
        "mapped",
    );
    add_seals(&fd, Seals::FUTURE_WRITE).expect("FUTURE_WRITE");
    assert_unsealed(
        refused(dup(&fd), MIB),
        Seals::SHRINK | Seals::GROW | Seals::FUTURE_WRITE,
        "mapped, FUTURE_WRITE",
    );

    // Once the mapping is gone, WRITE can be added and the memfd is accepted: the
    // mapping was the only obstacle.
    drop(hold);
    add_seals(&fd, Seals::WRITE).expect("WRITE after unmap");
    let blob = SealedBlob::receive(fd, MIB).expect("receive");
    assert_eq!(blob.len(), 8192);
}

#[test]
fn a_sealed_memfd_larger_than_max_len_is_refused() {
    let blob = SealedBlob::from_bytes("big", &pattern(4097)).expect("from_bytes");
    let fd = blob.into_fd();
    match refused(dup(&fd), 4096) {
        BlobError::TooLarge { len, max } => assert_eq!((len, max), (4097, 4096)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The limit itself is allowed.
    let blob = SealedBlob::receive(fd, 4097).expect("receive at the limit");
    assert_eq!(blob.len(), 4097);
}

#[test]
fn a_huge_sparse_sealed_memfd_is_refused_by_size() {
    // 1 TiB of holes: costs the sender nothing; must never be mapped or read.
    let fd = raw_memfd(&[]);
    nix::unistd::ftruncate(&fd, 1 << 40).expect("ftruncate 1 TiB");
    add_seals(&fd, Seals::SHRINK | Seals::GROW | Seals::WRITE).expect("seal");
    match refused(fd, 16 * MIB) {
        BlobError::TooLarge { len, max } => assert_eq!((len, max), (1 << 40, 16 * MIB)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn a_sealed_hugetlb_memfd_is_refused() {
    // Sealable (Linux >= 4.16) but on hugetlbfs: refused before any mapping.
    let fd = memfd_create(
        "hugetlb",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_HUGETLB,
    )
    .expect("memfd_create(MFD_HUGETLB) (kernel without hugetlbfs?)");
    nix::unistd::ftruncate(&fd, 2 << 20).expect("ftruncate 2 MiB");
    add_seals(&fd, Seals::SHRINK | Seals::GROW | Seals::WRITE).expect("seal");
    match refused(fd, 16 * MIB) {
        BlobError::NotShmem { fs_magic } => assert_eq!(fs_magic, libc::HUGETLBFS_MAGIC),
        other => panic!("expected NotShmem, got {other:?}"),
    }
}

#[test]
fn a_write_only_descriptor_of_a_sealed_memfd_is_refused() {
    let blob = SealedBlob::from_bytes("wronly", &pattern(4096)).expect("from_bytes");
    let path = format!("/proc/self/fd/{}", blob.as_fd().as_raw_fd());
    let wronly = nix::fcntl::open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .expect("reopen write-only");
    assert!(matches!(refused(wronly, MIB), BlobError::NotReadable));
}

// ---------------------------------------------------------------------------------
// Hostile non-memfds

#[test]
fn a_pipe_is_refused() {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    assert_not_a_memfd(refused(r, MIB), Errno::EINVAL, "pipe read end");
    assert_not_a_memfd(refused(w, MIB), Errno::EINVAL, "pipe write end");
}

#[test]
fn a_socket_is_refused() {
    for ty in [SockType::Stream, SockType::Datagram, SockType::SeqPacket] {
        let (a, _b) =
            socketpair(AddressFamily::Unix, ty, None, SockFlag::SOCK_CLOEXEC).expect("socketpair");
        assert_not_a_memfd(refused(a, MIB), Errno::EINVAL, &format!("{ty:?} socket"));
    }
}

#[test]
fn a_directory_is_refused() {
    for base in [std::env::temp_dir(), PathBuf::from("/dev/shm")] {
        let dir = TempDir::new(&base, "dir");
        let fd = nix::fcntl::open(
            &dir.0,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open dir");
        let what = format!("directory in {}", base.display());
        assert_not_a_memfd(refused(fd, MIB), Errno::EINVAL, &what);
    }
}

#[test]
fn a_regular_file_is_refused() {
    // On a disk filesystem F_GET_SEALS fails; a tmpfs file answers F_SEAL_SEAL (tmpfs
    // files other than memfds are born with it, so they can never be sealed).
    for base in [std::env::temp_dir(), PathBuf::from("/dev/shm")] {
        let dir = TempDir::new(&base, "file");
        let path = dir.0.join("payload");
        std::fs::write(&path, pattern(4096)).expect("write file");
        let fd = OwnedFd::from(File::open(&path).expect("open file"));
        let what = format!("regular file in {}", base.display());
        if is_tmpfs(&base) {
            assert_eq!(add_seals(&fd, Seals::REQUIRED), Err(Errno::EPERM), "{what}");
            assert_unsealed(refused(fd, MIB), Seals::SEAL, &what);
        } else {
            assert_not_a_memfd(refused(fd, MIB), Errno::EINVAL, &what);
        }
    }
}

#[test]
fn an_o_path_descriptor_is_refused() {
    let blob = SealedBlob::from_bytes("opath", &pattern(64)).expect("from_bytes");
    let path = format!("/proc/self/fd/{}", blob.as_fd().as_raw_fd());
    let fd = nix::fcntl::open(
        path.as_str(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .expect("O_PATH");
    assert_not_a_memfd(refused(fd, MIB), Errno::EBADF, "O_PATH");
}

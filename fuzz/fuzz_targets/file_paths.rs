//! The brokered file calls' path handling, with an oracle: any path and flags a
//! renderer could pass, answered beneath a fixed tree of grants. Whatever comes back as
//! a descriptor must be a regular file inside the grant it was answered for — never a
//! directory, never anything outside (`secret` beside the grants, `/etc`), never a write
//! through the read-only grant.
#![no_main]

#[path = "common/tree.rs"]
mod common;

use broker::services::file_calls::{answer, Answer, Caller, FileCall};
use common::{target, tree};
use libfuzzer_sys::fuzz_target;

struct Fake(Vec<u8>);
impl Caller for Fake {
    fn path(&self, _at: u64) -> Result<Vec<u8>, i32> {
        if self.0.len() > 4095 {
            return Err(libc::ENAMETOOLONG);
        }
        Ok(self.0.clone())
    }
    fn write(&self, _at: u64, _bytes: &[u8]) -> Result<(), i32> {
        Ok(())
    }
}

fuzz_target!(|input: (u16, u8, Vec<u8>)| {
    let (flags, prefix, tail) = input;
    let t = tree();
    // Paths start inside the tree most of the time, so the fuzzer spends its effort
    // beneath the grants rather than on absolute paths that miss them all.
    let base = match prefix % 5 {
        0 => format!("{}/ro/", t.root.display()),
        1 => format!("{}/rw/", t.root.display()),
        2 => format!("{}/flat/", t.root.display()),
        3 => format!("{}/", t.root.display()),
        _ => String::new(),
    };
    let mut path = base.into_bytes();
    path.extend_from_slice(&tail);
    let flags = i32::from(flags) & !libc::O_CREAT; // never litter the tree
    let call = FileCall::Open {
        dirfd: libc::AT_FDCWD,
        path: 0,
        flags,
        mode: 0,
    };
    if let Answer::Fd { fd, .. } = answer(&t.files, call, &Fake(path.clone())) {
        let meta = std::fs::File::from(fd.try_clone().expect("dup"))
            .metadata()
            .expect("fstat");
        assert!(meta.is_file(), "not a regular file for {path:?}");
        let at = target(&fd);
        let inside = ["ro", "rw", "flat"]
            .iter()
            .any(|g| at.starts_with(t.root.join(g)));
        assert!(inside, "{path:?} opened {at:?}");
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        assert!(
            !(writable && !at.starts_with(t.root.join("rw"))),
            "write through a read-only grant: {path:?} -> {at:?}"
        );
        assert!(
            !(at.starts_with(t.root.join("flat/deep"))),
            "a non-recursive grant reached deeper: {path:?}"
        );
    }
    let stat = FileCall::Stat {
        dirfd: libc::AT_FDCWD,
        path: 0,
        buf: 0,
        flags: i32::from(prefix) << 8 & 0x1d00,
    };
    let _ = answer(&t.files, stat, &Fake(path));
});

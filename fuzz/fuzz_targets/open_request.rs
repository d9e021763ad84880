//! The files service's dispatch of a decoded `OpenRequest` (what `client.open` sends):
//! any path text and any open mode, beneath the same tree of grants as `file_paths`.
//! Oracle: a descriptor is only ever a regular file inside a grant that allows the
//! mode; a refusal is an `OpenError`, never a panic.
#![no_main]

#[path = "common/tree.rs"]
mod common;

use arbitrary::Arbitrary;
use broker::services::files::{required_access, Access, OpenRequest};
use common::{target, tree};
use libfuzzer_sys::fuzz_target;
use sandbox::protocol::{Creation, OpenMode};

#[derive(Arbitrary, Debug)]
struct Input {
    prefix: u8,
    tail: String,
    mode: u8,
    truncate: bool,
}

fuzz_target!(|input: Input| {
    let t = tree();
    let base = match input.prefix % 4 {
        0 => format!("{}/ro/", t.root.display()),
        1 => format!("{}/rw/", t.root.display()),
        2 => format!("{}/flat/", t.root.display()),
        _ => format!("{}/", t.root.display()),
    };
    // Never create: the tree stays as it is for every input.
    let (create, truncate) = (Creation::Existing, input.truncate);
    let mode = match input.mode % 4 {
        0 => OpenMode::Read,
        1 => OpenMode::Write { create, truncate },
        2 => OpenMode::ReadWrite { create, truncate },
        _ => OpenMode::Append { create },
    };
    let req = OpenRequest {
        path: format!("{base}{}", input.tail),
        mode,
    };
    if let Ok(fd) = t.files.open(&req) {
        let meta = std::fs::File::from(fd.try_clone().expect("dup"))
            .metadata()
            .expect("fstat");
        assert!(meta.is_file(), "not a regular file for {req:?}");
        let at = target(&fd);
        let grant = ["ro", "rw", "flat"]
            .into_iter()
            .find(|g| at.starts_with(t.root.join(g)));
        assert!(grant.is_some(), "{req:?} opened {at:?}");
        if required_access(mode) > Access::ReadOnly {
            assert_eq!(grant, Some("rw"), "{req:?} writes {at:?}");
        }
        assert!(
            !at.starts_with(t.root.join("flat/deep")),
            "{req:?} went deeper than flat/"
        );
    }
});

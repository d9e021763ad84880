//! The ELF reader that finds a program's interpreter and libraries (`sandbox run`'s
//! automatic binds): a hostile binary's headers, read from a memfd. Never a panic;
//! every part it reads is capped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(fd) = nix::sys::memfd::memfd_create(c"elf", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
    else {
        return;
    };
    let mut file = std::fs::File::from(fd);
    if file.write_all(data).is_err() {
        return;
    }
    let _ = sandbox_cli::deps::elf::dynamic(&file, Path::new("fuzz.elf"));
});

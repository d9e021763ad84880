//! The profile parser (`sandbox run --profile`): directives and the policy part, from
//! any text, without touching the file system (`files` off: only built-in includes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandbox::policy::arch::Arch;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = sandbox_cli::profile::parse("fuzz.profile", text, Arch::native(), false);
});

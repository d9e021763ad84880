//! The policy text parser (and, for what parses, the compiler and the kernel's
//! validator): any text must give a policy or errors with positions, never a panic; a
//! policy that parses must compile to a program the kernel would accept, or say why.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandbox::policy::arch::Arch;
use sandbox::policy::text::{self, Options, Sources};

/// No includes: every `@include` is an error.
struct NoIncludes;
impl Sources for NoIncludes {
    fn load(&self, _from: Option<&str>, path: &str) -> Result<(String, String, String), String> {
        Err(format!("{path}: no includes here"))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let options = Options::new(arch).define("SELF_PID", 7);
        if let Ok(policy) = text::parse_str("fuzz.policy", src, &options, &NoIncludes) {
            if let Ok(program) = sandbox::bpf::compile(&policy, arch) {
                sandbox::bpf::validate(&program.instructions).expect("compiled programs validate");
            }
        }
    }
});

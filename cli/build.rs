//! Compiles the `exec` preset — `sandbox run`'s default policy, with the set-ID guard in
//! front and its default action replaced by `user-notify`, as `sandbox run` does — at build time, for the target's
//! architecture, so that a run with the default policy does not parse and compile it
//! again (~0.5 ms). `sandbox run` uses these bytes only when `--policy exec` names the
//! preset; a test checks they equal what the run-time compiler makes.
use sandbox::bpf;
use sandbox::policy::arch::Arch;
use sandbox::policy::presets::Preset;
use sandbox::policy::text::Options;
use sandbox::policy::Action;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    // Another architecture gets an empty file: the run-time compiler is used there.
    let bytes = Arch::ALL
        .into_iter()
        .find(|a| a.name() == target)
        .map(|arch| {
            let mut policy = Preset::Exec
                .policy(&Options::new(arch))
                .expect("the exec preset parses");
            sandbox::policy::guards::refuse_setid_modes(&mut policy)
                .expect("the set-ID guard applies");
            policy
                .set_default(Action::UserNotify)
                .expect("user-notify is a valid default");
            let program = bpf::compile(&policy, arch).expect("the exec preset compiles");
            bpf::to_bytes(&program.instructions)
        })
        .unwrap_or_default();
    std::fs::write(out.join("exec_notify.bpf"), bytes).expect("write OUT_DIR/exec_notify.bpf");
}

//! What the `sandbox` benches share.

/// The `sandbox` binary of the same build (target/<profile>/examples/BENCH →
/// target/<profile>/sandbox); panics with how to build it if it is not there.
pub fn sandbox_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let sandbox = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("sandbox"))
        .expect("target dir");
    assert!(
        sandbox.exists(),
        "build it first: cargo build --release --bin sandbox"
    );
    sandbox
}

/// The binds a dynamically linked Debian program needs.
pub const SYSTEM_BINDS: [&str; 8] = [
    "--ro", "/usr", "--ro", "/lib", "--ro", "/lib64", "--ro", "/bin",
];

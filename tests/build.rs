//! Compiles `escape.c`, the escape vectors a locked-down renderer attempts in
//! `tests/escape.rs` (through `sandbox_tests::escape`).

fn main() {
    println!("cargo:rerun-if-changed=escape.c");
    cc::Build::new()
        .file("escape.c")
        .warnings(true)
        .compile("escape");
}

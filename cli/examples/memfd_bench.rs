//! What `memfd_create` costs a program under `sandbox run`: a call with
//! `MFD_NOEXEC_SEAL` (allowed by the filter, the kernel answers) against one without
//! (handed to the supervisor, which makes the memfd noexec-sealed and installs it in
//! the program), each timed inside the sandbox by Python over many calls, alternating.
//!
//! ```sh
//! cargo build --release --bin sandbox && cargo run --release -p sandbox-cli --example memfd_bench
//! ```

mod common;

use std::process::Command;

/// ns per `memfd_create` + `close`, as Python in the sandbox measures it.
fn per_call(sandbox: &std::path::Path, flags: u32, calls: u32) -> f64 {
    let script = format!(
        "import os, time\n\
         t = time.perf_counter_ns()\n\
         for _ in range({calls}): os.close(os.memfd_create('m', {flags}))\n\
         print((time.perf_counter_ns() - t) / {calls})"
    );
    let o = Command::new(sandbox)
        .arg("run")
        .args(common::SYSTEM_BINDS)
        .args(["--", "/usr/bin/python3", "-c", &script])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("a number")
}

fn main() {
    let sandbox = common::sandbox_binary();
    const MFD_CLOEXEC: u32 = 1;
    const MFD_NOEXEC_SEAL: u32 = 8;
    let (rounds, calls) = (11, 20_000);
    let (mut kernel, mut supervisor) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        kernel.push(per_call(&sandbox, MFD_CLOEXEC | MFD_NOEXEC_SEAL, calls));
        supervisor.push(per_call(&sandbox, MFD_CLOEXEC, calls));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (k, s) = (median(kernel), median(supervisor));
    println!("memfd_create + close under sandbox run, {rounds} rounds of {calls} calls, medians:");
    println!("  MFD_NOEXEC_SEAL (the kernel answers)     {k:8.0} ns");
    println!(
        "  no flag (the supervisor answers, ADDFD)  {s:8.0} ns   {:.1}x",
        s / k
    );
}

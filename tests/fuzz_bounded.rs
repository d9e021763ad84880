//! The bounded fuzz runs, from the test command: every target of `fuzz/` for a few
//! seconds (`fuzz/run 5`: coverage-guided libFuzzer on the corpus in `fuzz/corpus/`).
//! A crash, a leak past 2 GiB or a 10-second input fails the test, naming the target
//! and leaving the input in `fuzz/artifacts/`.

#[test]
fn every_fuzz_target_runs_clean_for_five_seconds() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/run");
    let out = std::process::Command::new(script)
        .arg("5")
        .output()
        .expect("run fuzz/run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fuzz/run failed:\n{stdout}\n{stderr}");
    // Every target ran, and ran many inputs (a target that exits or hangs at once
    // would not).
    let runs: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    assert_eq!(runs.len(), 7, "{stdout}");
    assert!(runs.iter().all(|n| *n > 1000), "{stdout}");
}

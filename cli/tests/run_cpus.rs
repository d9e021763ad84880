//! The program runs on every CPU its caller may use. The stage runs on a CPU other
//! than the supervisor's (`sandbox::launch::spawn_in_place`), narrowed to it, and must
//! take the caller's set back before anything it forks runs the program — as root
//! and as uid 65534, with and without a network namespace of its own.

mod common;

fn cpus(status: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
}

#[test]
fn the_program_runs_on_the_callers_cpus() {
    let ours = cpus(&std::fs::read_to_string("/proc/self/status").expect("status"))
        .expect("Cpus_allowed_list");
    // With one CPU nothing is narrowed and this test could not fail.
    let count = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(count >= 2, "this test needs two CPUs or more (has {count})");
    for nobody in [false, true] {
        for net in [&[][..], &["--share-net"][..]] {
            let mut args = vec!["--proc"];
            args.extend_from_slice(net);
            args.extend(["--", "/bin/cat", "/proc/self/status"]);
            let out = common::run(&args, nobody);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "nobody={nobody} {net:?}: {stderr}");
            let theirs = cpus(&String::from_utf8_lossy(&out.stdout));
            assert_eq!(
                theirs.as_deref(),
                Some(ours.as_str()),
                "nobody={nobody} {net:?}: the program's CPU set is not the caller's"
            );
        }
    }
}

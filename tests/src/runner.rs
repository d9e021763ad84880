//! The runner shared by the tests that re-execute their own binary (`harness = false`):
//! runs each case, prints libtest-style lines, exits 101 on any failure.

/// A named case: Ok, or a message saying what was wrong.
pub type Case = (&'static str, fn() -> Result<(), String>);

/// Run `cases` (filtered by the plain words among the arguments) and exit.
pub fn run_cases(cases: &[Case], args: &[String]) -> ! {
    let filters: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed, mut filtered) = (0, Vec::new(), 0);
    println!("\nrunning {} tests", cases.len());
    for (name, case) in cases {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        match case() {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("test {name} ... FAILED\n{e}");
                failed.push(*name);
            }
        }
    }
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {} failed; 0 ignored; 0 measured; {filtered} filtered out\n",
        failed.len()
    );
    std::process::exit(if failed.is_empty() { 0 } else { 101 })
}

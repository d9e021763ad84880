//! Faults the broker must absorb without a trace: 10,000 renderers spawned through the
//! zygote and ended leave no descriptor and no zombie in the broker. (The broker's own
//! death — every renderer gone — is `tests/broker.rs`'s `broker_death_ends_its_renderers`;
//! how fast is `broker/examples/fault_bench.rs`.) Run in a fresh process (this binary
//! with `--spawns`), as the broker.

use broker::supervisor::{Broker, BrokerConfig, EndReason, Event};
use broker::RendererSpec;
use sandbox::renderer;
use sandbox_tests::plain::{Nothing, Plain};
use sandbox_tests::{run_cases, Case};
use std::time::Duration;

const SPAWNS: usize = 10_000;

/// The broker side, in its own process: prints `FDS before after`, `ZOMBIES n` and
/// `ENDED n`.
fn spawns() -> Result<String, String> {
    let mut broker = Broker::new(BrokerConfig::default(), Nothing).map_err(|e| e.to_string())?;
    let spec = RendererSpec::current_exe()
        .map_err(|e| e.to_string())?
        .inherit_stderr(false);
    broker.start_zygote(&spec).map_err(|e| e.to_string())?;
    // One round first: the zygote's and epoll's own descriptors are in the baseline.
    broker.spawn(spec.clone()).map_err(|e| e.to_string())?;
    let _ = broker.run_until_idle(Duration::from_secs(10));
    let before = sandbox::probe::open_descriptors();
    let mut ended = 0;
    for _ in 0..SPAWNS / 50 {
        for _ in 0..50 {
            broker.spawn(spec.clone()).map_err(|e| e.to_string())?;
        }
        for e in broker.run_until_idle(Duration::from_secs(60)) {
            if matches!(
                e,
                Event::Ended {
                    reason: EndReason::Exited(0),
                    ..
                }
            ) {
                ended += 1;
            }
        }
    }
    Ok(format!(
        "FDS {before} {}\nZOMBIES {}\nENDED {ended}\n",
        sandbox::probe::open_descriptors(),
        sandbox::probe::zombie_children()
    ))
}

fn ten_thousand_spawns_leave_nothing() -> Result<(), String> {
    let out = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .arg("--spawns")
        .output()
        .map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let fds: Vec<usize> = out
        .lines()
        .find_map(|l| l.strip_prefix("FDS "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let leak_free = fds.len() == 2 && fds[0] == fds[1];
    if leak_free && out.contains("ZOMBIES 0") && out.contains(&format!("ENDED {SPAWNS}")) {
        Ok(())
    } else {
        Err(out)
    }
}

const CASES: &[Case] = &[(
    "ten_thousand_spawns_leave_nothing",
    ten_thousand_spawns_leave_nothing,
)];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == renderer::ZYGOTE_ARG) {
        renderer::run_zygote::<Plain>(|_, _| 0);
    }
    if args.iter().any(|a| a == renderer::ROLE_ARG) {
        renderer::run::<Plain>(|_, _| 0);
    }
    if args.iter().any(|a| a == "--spawns") {
        match spawns() {
            Ok(out) => print!("{out}"),
            Err(e) => println!("ERROR {e}"),
        }
        std::process::exit(0);
    }
    run_cases(CASES, &args)
}

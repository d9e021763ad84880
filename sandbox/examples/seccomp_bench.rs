//! What an installed seccomp filter costs per syscall, and how many BPF instructions
//! our compiled programs run compared with seccompiler's.
//!
//! ```text
//! cargo run --release -p sandbox --example seccomp_bench
//! ```
//!
//! A filter cannot be removed, so every measurement runs in a fresh child: the example
//! re-executes itself with `--child CONFIG`; the child installs that configuration's
//! filter, checks in `/proc/self/status` that it is in force, warms up, times
//! `getpid()` (`std::process::id()`, a real syscall on glibc >= 2.25) and prints
//! nanoseconds per call. The parent runs the configurations round-robin, one child
//! each per round, for [`ROUNDS`] rounds, and prints the medians as markdown tables,
//! followed by instruction counts from the reference interpreter.

use sandbox::bpf::{self, SockFilter};
use sandbox::policy::arch::{Arch, SeccompData};
use sandbox::policy::presets::Preset;
use sandbox::policy::{arg, Action, Policy, RET_ALLOW};
use sandbox::seccomp::{self, InstallOptions};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::error::Error;
use std::io::Read;
use std::process::{Command, ExitCode};
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Timed runs per configuration (each in its own child); the median is reported.
const ROUNDS: usize = 9;
/// `getpid` calls per timed run.
const CALLS: u32 = 2_000_000;
/// Untimed `getpid` calls before the timed run.
const WARMUP: u32 = 200_000;
/// Length of the allow-list: the first this-many x86_64 syscalls in number order.
const LIST_LEN: usize = 300;
/// What the allow-list filters answer for everything else (EPERM).
const DENY_ERRNO: u16 = 1;
/// The bound the brief sets on our worst case over the allow-list.
const OUR_WORST_CASE_LIMIT: usize = 16;

/// A measured configuration: which filter (if any) the child installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Config {
    /// No filter at all: the baseline.
    None,
    /// A single `ret ALLOW`.
    AllowAll,
    /// `Preset::Renderer.policy_for_self()` compiled by `sandbox::bpf::compile`.
    Renderer,
    /// Our program for the 300-syscall allow-list.
    Ours300,
    /// seccompiler's program for the same list.
    Seccompiler300,
    /// Ours, with getpid allowed through an always-true argument check (see below).
    Ours300Arg,
    /// seccompiler's, with the same argument check on getpid.
    Seccompiler300Arg,
}

impl Config {
    const ALL: [Config; 7] = [
        Config::None,
        Config::AllowAll,
        Config::Renderer,
        Config::Ours300,
        Config::Seccompiler300,
        Config::Ours300Arg,
        Config::Seccompiler300Arg,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::None => "none",
            Config::AllowAll => "allow-all",
            Config::Renderer => "renderer",
            Config::Ours300 => "ours-300",
            Config::Seccompiler300 => "seccompiler-300",
            Config::Ours300Arg => "ours-300-argcheck",
            Config::Seccompiler300Arg => "seccompiler-300-argcheck",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Config::None => "no filter (baseline)",
            Config::AllowAll => "allow-all (`ret ALLOW`)",
            Config::Renderer => "`renderer` preset, compiled by us",
            Config::Ours300 => "300-syscall allow-list, compiled by us",
            Config::Seccompiler300 => "300-syscall allow-list, seccompiler 0.5",
            Config::Ours300Arg => "extra: same list, getpid behind an arg check, us",
            Config::Seccompiler300Arg => {
                "extra: same list, getpid behind an arg check, seccompiler"
            }
        }
    }

    fn from_name(name: &str) -> Option<Config> {
        Config::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The filter to install; `None` for the baseline. Built in the process that
    /// installs it (the renderer preset binds SELF_PID to that process's pid).
    fn program(self) -> Result<Option<Vec<SockFilter>>> {
        let list = allow_list();
        Ok(Some(match self {
            Config::None => return Ok(None),
            Config::AllowAll => vec![SockFilter::stmt(bpf::op::RET | bpf::op::K, RET_ALLOW)],
            Config::Renderer => {
                let policy = Preset::Renderer.policy_for_self()?;
                bpf::compile(&policy, Arch::native())?.instructions
            }
            Config::Ours300 => ours(&list, false)?,
            Config::Seccompiler300 => seccompiler_program(&list, false)?,
            Config::Ours300Arg => ours(&list, true)?,
            Config::Seccompiler300Arg => seccompiler_program(&list, true)?,
        }))
    }
}

/// The first [`LIST_LEN`] syscalls of x86_64 in number order.
fn allow_list() -> Vec<(&'static str, u32)> {
    let mut all = Arch::X86_64.syscalls();
    all.sort_by_key(|(_, nr)| *nr);
    all.truncate(LIST_LEN);
    all
}

/// The number of getpid on x86_64.
fn getpid_nr() -> Result<u32> {
    Arch::X86_64
        .syscall_number("getpid")
        .ok_or_else(|| "x86_64 has no getpid?".into())
}

/// Our program allowing `list` (default: errno EPERM). With `getpid_argcheck`, getpid
/// is allowed only when `arg0 >= 0`, which always holds but makes the filter read an
/// argument, so the kernel cannot answer getpid from its per-syscall cache.
fn ours(list: &[(&'static str, u32)], getpid_argcheck: bool) -> Result<Vec<SockFilter>> {
    let mut policy = Policy::new(Action::Errno(DENY_ERRNO))?;
    for (name, _) in list {
        if getpid_argcheck && *name == "getpid" {
            policy.add_rule(name, arg(0).ge(0), Action::Allow)?;
        } else {
            policy.allow(name)?;
        }
    }
    Ok(bpf::compile(&policy, Arch::X86_64)?.instructions)
}

/// seccompiler's program for the same list and actions as [`ours`].
fn seccompiler_program(
    list: &[(&'static str, u32)],
    getpid_argcheck: bool,
) -> Result<Vec<SockFilter>> {
    let getpid = getpid_nr()?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, nr) in list {
        let chain = if getpid_argcheck && *nr == getpid {
            let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Ge, 0)?;
            vec![SeccompRule::new(vec![cond])?]
        } else {
            Vec::new()
        };
        rules.insert(i64::from(*nr), chain);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(u32::from(DENY_ERRNO)),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    let program = BpfProgram::try_from(filter)?;
    Ok(program
        .iter()
        .map(|i| SockFilter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// Instructions the program runs for syscall `nr` (all-zero arguments), and its action.
fn executed(program: &[SockFilter], nr: u32) -> Result<(usize, Action)> {
    let out = bpf::run(program, &SeccompData::new(Arch::X86_64, nr, [0; 6]))?;
    Ok((out.executed, out.action))
}

// ---------------------------------------------------------------------------------
// Child: install, verify, time.

/// `Seccomp:` and `Seccomp_filters:` of this process, read through an fd opened before
/// the filter went in, with plain `read`s (allowed by every filter measured here).
fn seccomp_status(status: &mut std::fs::File) -> Result<(u32, u32)> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = status.read(&mut buf)?;
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    let field = |key: &str| -> Result<u32> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .ok_or_else(|| format!("no `{key}` line in /proc/self/status"))?;
        Ok(line.trim().parse()?)
    };
    Ok((field("Seccomp:")?, field("Seccomp_filters:")?))
}

fn child(config: Config) -> Result<()> {
    let program = config.program()?;
    let mut status = std::fs::File::open("/proc/self/status")?;
    seccomp::set_no_new_privs()?;
    if let Some(p) = &program {
        seccomp::install_raw(p, InstallOptions::default())?;
    }
    let (mode, filters) = seccomp_status(&mut status)?;
    let expected = if program.is_some() { (2, 1) } else { (0, 0) };
    if (mode, filters) != expected {
        return Err(format!(
            "{}: Seccomp={mode} Seccomp_filters={filters}, expected {expected:?}",
            config.name()
        )
        .into());
    }
    for _ in 0..WARMUP {
        std::hint::black_box(std::process::id());
    }
    let start = Instant::now();
    for _ in 0..CALLS {
        std::hint::black_box(std::process::id());
    }
    let elapsed = start.elapsed();
    println!("{:.3}", elapsed.as_nanos() as f64 / f64::from(CALLS));
    Ok(())
}

// ---------------------------------------------------------------------------------
// Parent: run the children, count instructions, print tables.

fn run_child(exe: &std::path::Path, config: Config) -> Result<f64> {
    let out = Command::new(exe)
        .arg("--child")
        .arg(config.name())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "child `{}` failed ({}): {}",
            config.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim().parse()?)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = read("/proc/sys/kernel/osrelease");
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

/// One row of the instruction-count table.
struct CountRow {
    label: &'static str,
    program: Vec<SockFilter>,
    /// The syscall numbers the program allows.
    listed: Vec<u32>,
}

fn instruction_counts(getpid: u32) -> Result<(Vec<String>, usize)> {
    let list = allow_list();
    let numbers: Vec<u32> = list.iter().map(|(_, nr)| *nr).collect();
    // A list with no two neighbouring numbers, so that no ranges merge: the odd
    // numbers of the 300 (150 syscalls, getpid = 39 included).
    let odd: Vec<(&'static str, u32)> = list.iter().copied().filter(|(_, n)| n % 2 == 1).collect();
    let odd_numbers: Vec<u32> = odd.iter().map(|(_, nr)| *nr).collect();
    let unlisted = numbers.iter().max().map_or(0, |m| m + 1);
    let rows = [
        CountRow {
            label: "300-list, ours",
            program: ours(&list, false)?,
            listed: numbers.clone(),
        },
        CountRow {
            label: "300-list, seccompiler",
            program: seccompiler_program(&list, false)?,
            listed: numbers.clone(),
        },
        CountRow {
            label: "extra: 300-list + getpid arg check, ours",
            program: ours(&list, true)?,
            listed: numbers.clone(),
        },
        CountRow {
            label: "extra: 300-list + getpid arg check, seccompiler",
            program: seccompiler_program(&list, true)?,
            listed: numbers.clone(),
        },
        CountRow {
            label: "extra: odd numbers of the 300 (150), ours",
            program: ours(&odd, false)?,
            listed: odd_numbers.clone(),
        },
        CountRow {
            label: "extra: odd numbers of the 300 (150), seccompiler",
            program: seccompiler_program(&odd, false)?,
            listed: odd_numbers,
        },
    ];
    let mut lines = vec![
        "| program | length | getpid (39) | first | middle | last | worst over the list | not listed (nr 300) |".to_string(),
        "|---|---:|---:|---:|---:|---:|---:|---:|".to_string(),
    ];
    let mut our_worst = 0;
    for row in &rows {
        let cell = |nr: u32| -> Result<String> {
            let (n, action) = executed(&row.program, nr)?;
            let expect = if row.listed.contains(&nr) {
                Action::Allow
            } else {
                Action::Errno(DENY_ERRNO)
            };
            if action != expect {
                return Err(
                    format!("{}: nr {nr} gives {action}, expected {expect}", row.label).into(),
                );
            }
            Ok(format!("{n} (nr {nr})"))
        };
        let pick = |i: usize| row.listed.get(i).copied().ok_or("list too short");
        let n = row.listed.len();
        let mut worst = (0, 0);
        for &nr in &row.listed {
            let (count, action) = executed(&row.program, nr)?;
            if action != Action::Allow {
                return Err(format!("{}: listed nr {nr} gives {action}", row.label).into());
            }
            if count > worst.0 {
                worst = (count, nr);
            }
        }
        if row.label == "300-list, ours" {
            our_worst = worst.0;
        }
        lines.push(format!(
            "| {} | {} | {} | {} | {} | {} | {} (nr {}) | {} |",
            row.label,
            row.program.len(),
            executed(&row.program, getpid)?.0,
            cell(pick(0)?)?,
            cell(pick(n / 2 - 1)?)?,
            cell(pick(n - 1)?)?,
            worst.0,
            worst.1,
            cell(unlisted)?,
        ));
    }
    Ok((lines, our_worst))
}

fn parent() -> Result<()> {
    if Arch::native() != Arch::X86_64 {
        return Err("the timed part compares x86_64 programs and must run on x86_64".into());
    }
    let getpid = getpid_nr()?;
    if !allow_list().iter().any(|(_, nr)| *nr == getpid) {
        return Err("getpid is not in the allow-list".into());
    }
    let exe = std::env::current_exe()?;
    let started = Instant::now();

    // Programs as the children will build them, for their lengths and getpid paths
    // (the renderer's SELF_PID differs in the child; its shape does not).
    let mut shapes = Vec::new();
    for c in Config::ALL {
        let shape = match c.program()? {
            Some(p) => (p.len().to_string(), executed(&p, getpid)?.0.to_string()),
            None => ("–".to_string(), "–".to_string()),
        };
        shapes.push(shape);
    }

    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); Config::ALL.len()];
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        // Rotate the order each round so no configuration always runs first.
        for k in 0..Config::ALL.len() {
            let i = (k + round) % Config::ALL.len();
            samples[i].push(run_child(&exe, Config::ALL[i])?);
        }
    }
    let stats: Vec<(f64, f64, f64)> = samples
        .iter_mut()
        .map(|s| {
            let lo = s.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = s.iter().copied().fold(0.0, f64::max);
            (median(s), lo, hi)
        })
        .collect();
    let base = stats[0].0;

    println!("### getpid() cost per call\n");
    println!("{}.", machine());
    println!(
        "Median of {ROUNDS} runs of {CALLS} calls, each run in a fresh child after \
         {WARMUP} warm-up calls; configurations interleaved round-robin.\n"
    );
    println!(
        "| configuration | program length | instructions for getpid | ns/call (median) | \
         min–max | vs. no filter | extra ns |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, c) in Config::ALL.into_iter().enumerate() {
        let (med, lo, hi) = stats[i];
        println!(
            "| {} | {} | {} | {med:.1} | {lo:.1}–{hi:.1} | {:.2}× | {:+.1} |",
            c.label(),
            shapes[i].0,
            shapes[i].1,
            med / base,
            med - base
        );
    }

    let (lines, our_worst) = instruction_counts(getpid)?;
    println!("\n### BPF instructions executed (reference interpreter, x86_64)\n");
    println!(
        "first / middle / last = entries 1, {} and {} of the list, in number order.\n",
        LIST_LEN / 2,
        LIST_LEN
    );
    for l in lines {
        println!("{l}");
    }
    println!();
    if our_worst <= OUR_WORST_CASE_LIMIT {
        println!("Our worst case over the 300-list: {our_worst} instructions (limit {OUR_WORST_CASE_LIMIT}: ok).");
    } else {
        println!(
            "**WARNING: our worst case over the 300-list is {our_worst} instructions, \
             above the limit of {OUR_WORST_CASE_LIMIT}.**"
        );
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [] => parent(),
        [flag, name] if flag == "--child" => match Config::from_name(name) {
            Some(c) => child(c),
            None => Err(format!("unknown configuration `{name}`").into()),
        },
        _ => Err("usage: seccomp_bench [--child CONFIG]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seccomp_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

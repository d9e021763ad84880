//! What the run reports: the `--status-json` document, the exit status with its line on
//! stderr, and counts of what was running when the sandbox was ended.

use super::cgroups::Cgroups;
use super::fail;
use sandbox::launch::cgroup::Hierarchy;
use sandbox::lockdown::Status;
use serde::Serialize;
use std::path::PathBuf;

/// What `--status-json` writes: the program's verified lockdown status and how
/// `--pids` and `--mem` are enforced.
#[derive(Serialize)]
pub(super) struct RunReport<'a> {
    pub(super) lockdown: &'a Status,
    pub(super) pids: PidsReport,
    pub(super) memory: MemoryReport,
    /// The files bound read-only because no grant held the program (its own, its
    /// loader's, its libraries').
    pub(super) auto_ro: &'a [PathBuf],
    /// How each `--ro`/`--rw` grant is bound (idmapped or as it is, and why).
    pub(super) grants: &'a [super::grants::GrantView],
    /// A degraded mode asked for (`--no-userns`, `--no-namespaces`), and what it gives
    /// up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) degraded: Option<&'static str>,
    /// `--no-namespaces`: the private scratch folder (HOME, TMPDIR; removed after).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) scratch_dir: Option<&'a std::path::Path>,
}

#[derive(Serialize)]
pub(super) struct PidsReport {
    /// `--pids`.
    pub(super) limit: u64,
    /// The cgroup holding the sandbox, if one could be made (`limit`: `pids.max`, the
    /// limit plus one for the stage).
    pub(super) cgroup: Option<CgroupReport>,
    /// RLIMIT_NPROC of the program.
    pub(super) rlimit_nproc: u64,
    /// Why there is no cgroup.
    pub(super) no_cgroup: Option<String>,
}

#[derive(Serialize)]
pub(super) struct MemoryReport {
    /// `--mem`.
    pub(super) limit: u64,
    /// The cgroup holding the sandbox, if one could be made (`limit`: its limit).
    pub(super) cgroup: Option<CgroupReport>,
    /// RLIMIT_AS of the program (`u64::MAX`: unlimited, the cgroup holds `--mem`).
    pub(super) rlimit_as: u64,
    /// Why there is no cgroup.
    pub(super) no_cgroup: Option<String>,
}

#[derive(Serialize)]
pub(super) struct CgroupReport {
    pub(super) hierarchy: Hierarchy,
    pub(super) path: String,
    pub(super) limit: u64,
}

/// The exit status for the program's end, with a line on stderr if a signal ended it,
/// and one if the memory limit ended any of the sandbox's processes.
pub(super) fn program_status(
    name: &str,
    code: Option<i32>,
    signal: Option<i32>,
    groups: &Cgroups,
) -> i32 {
    let oom = groups.oom_kills();
    let mem = groups.mem_limit;
    let status = match (code, signal) {
        (Some(code), _) => code,
        (None, Some(sig)) => {
            let why = match sig {
                libc::SIGXCPU => ": CPU time limit".to_string(),
                libc::SIGXFSZ => ": file size limit".to_string(),
                libc::SIGKILL if oom > 0 => {
                    format!(": memory limit (--mem {mem}): out of memory")
                }
                libc::SIGKILL => ": SIGKILL (CPU or memory limit, or killed)".to_string(),
                // Every call outside the policy is notified and named in the loop;
                // these are the filter's own kills (and the policy's kill or trap
                // rules), which the kernel does not tell us about.
                libc::SIGSYS => ": seccomp violation without a notification (an i386 or x32 \
                                 call, a 32-bit argument with junk in its high half, or a \
                                 kill or trap rule of the policy)"
                    .to_string(),
                _ => String::new(),
            };
            eprintln!("sandbox: {name} killed by signal {sig}{why}");
            128 + sig
        }
        (None, None) => return fail("the sandbox ended without the program's status"),
    };
    // The program may outlive a child the limit ended (a shell, a build tool).
    if oom > 0 && signal != Some(libc::SIGKILL) {
        eprintln!(
            "sandbox: the memory limit (--mem {mem}) ended {oom} process(es) in the sandbox of {name}"
        );
    }
    status
}

/// The first child of the stage: the program.
pub(super) fn payload_pid(stage: i32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{stage}/task/{stage}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// The processes and threads below `pid` (its descendants, not itself), found through
/// `/proc/PID/task/TID/children`; at most [`MAX_COUNTED`] processes are visited.
pub(super) fn count_below(pid: i32) -> (usize, usize) {
    let children = |p: i32| -> Vec<i32> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect()
    };
    let threads = |p: i32| std::fs::read_dir(format!("/proc/{p}/task")).map_or(0, |d| d.count());
    let mut todo = children(pid);
    let (mut processes, mut all_threads) = (0, 0);
    while let Some(p) = todo.pop() {
        if processes >= MAX_COUNTED {
            break;
        }
        processes += 1;
        all_threads += threads(p);
        todo.extend(children(p));
    }
    (processes, all_threads)
}
/// A bound on [`count_below`]'s walk.
const MAX_COUNTED: usize = 100_000;

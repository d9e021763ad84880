//! The cgroups that hold the sandbox (`--pids`, `--mem`), the child that removes them,
//! and the watch that tells a fork bomb from a program that hit its limit once.

use super::report::{CgroupReport, MemoryReport, PidsReport};
use super::RunError;
use super::{BOMB_GRACE, BOMB_TICK, CGROUP_PREFIX, EXIT_SETUP};
use sandbox::launch::cgroup::{Cgroup, CgroupError, MemoryCgroup, PidsCgroup, Places};
use sandbox::lockdown::SingleThreaded;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The cgroups that hold the sandbox, where they could be made: `--pids` and `--mem`.
pub(super) struct Cgroups {
    pub(super) pids_limit: u64,
    /// The tasks RLIMIT_NPROC counts besides the program's: the stage when the
    /// program runs as the stage's user; without namespaces, every task of the
    /// caller's user (see [`tasks_of_this_user`]).
    pub(super) also_counted: u64,
    pub(super) mem_limit: u64,
    pub(super) pids: Option<PidsCgroup>,
    pub(super) memory: Option<MemoryCgroup>,
    /// Why there is no pids cgroup, or no memory cgroup (in the report).
    pub(super) no_pids: Option<String>,
    pub(super) no_memory: Option<String>,
    /// The end of the pipe the cleanup child waits on (see `start_janitor`).
    pub(super) janitor: Option<OwnedFd>,
}

/// `Some(cgroup)`, or `None` with the reason when none can be made here; any other
/// failure is an error.
fn made<T>(got: Result<T, CgroupError>) -> Result<(Option<T>, Option<String>), RunError> {
    match got {
        Ok(c) => Ok((Some(c), None)),
        Err(e @ CgroupError::Unavailable(..)) => Ok((None, Some(e.to_string()))),
        Err(e) => Err(RunError::Cgroup(format!("cgroup: {e}"))),
    }
}

impl Cgroups {
    pub(super) fn new(
        pids_limit: u64,
        mem_limit: u64,
        also_counted: u64,
    ) -> Result<Cgroups, RunError> {
        let name = format!("{CGROUP_PREFIX}{}", std::process::id());
        let places = Places::read();
        let (pids, no_pids) = made(PidsCgroup::create(
            &places,
            &name,
            pids_limit.saturating_add(1),
        ))?;
        let (memory, no_memory) = made(MemoryCgroup::create(&places, &name, mem_limit))?;
        let groups = Cgroups {
            pids_limit,
            also_counted,
            mem_limit,
            pids,
            memory,
            no_pids,
            no_memory,
            janitor: None,
        };
        Ok(groups)
    }

    /// How many cgroups hold the sandbox.
    pub(super) fn count(&self) -> usize {
        self.all().count()
    }

    pub(super) fn all(&self) -> impl Iterator<Item = &Cgroup> {
        let pids = self.pids.as_deref();
        let memory = self.memory.as_deref();
        pids.into_iter().chain(memory)
    }

    /// RLIMIT_NPROC: the limit plus the other tasks it counts (the stage, the same
    /// user; or all of the caller's) — at least one above it when the cgroup holds
    /// the limit, so that the cgroup refuses first and its refusals are counted.
    pub(super) fn rlimit_nproc(&self) -> u64 {
        let margin = if self.pids.is_some() {
            self.also_counted.max(1)
        } else {
            self.also_counted
        };
        self.pids_limit.saturating_add(margin)
    }

    /// RLIMIT_AS: `--mem`, or unlimited when the memory cgroup holds `--mem` (which
    /// counts what is used, not address space reserved).
    pub(super) fn rlimit_as(&self) -> u64 {
        if self.memory.is_some() {
            u64::MAX
        } else {
            self.mem_limit
        }
    }

    /// The files the stage writes to move itself into each cgroup.
    pub(super) fn open_self_joins(&self) -> Result<Vec<std::fs::File>, RunError> {
        self.all()
            .map(|c| {
                c.open_self_join()
                    .map_err(|e| RunError::Cgroup(format!("cgroup: {e}")))
            })
            .collect()
    }

    /// Checked from outside with the rest of the status: the program is in each
    /// cgroup.
    pub(super) fn verify(&self, pid: i32) -> Result<(), RunError> {
        if self.all().next().is_none() {
            return Ok(());
        }
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|e| RunError::Cgroup(format!("/proc/{pid}/cgroup: {e}")))?;
        for c in self.all() {
            if !c.listed_in(&text) {
                return Err(RunError::Cgroup(format!(
                    "the program is not in the cgroup {}",
                    c.path().display()
                )));
            }
        }
        Ok(())
    }

    /// Tasks the out-of-memory killer ended in the sandbox.
    pub(super) fn oom_kills(&self) -> u64 {
        self.memory
            .as_ref()
            .and_then(|m| m.oom_kills())
            .unwrap_or(0)
    }

    pub(super) fn report(&self) -> (PidsReport, MemoryReport) {
        let cgroup = |c: &Cgroup, limit: u64| CgroupReport {
            hierarchy: c.hierarchy(),
            path: c.path().display().to_string(),
            limit,
        };
        (
            PidsReport {
                limit: self.pids_limit,
                cgroup: self.pids.as_ref().map(|c| cgroup(c, c.max())),
                rlimit_nproc: self.rlimit_nproc(),
                no_cgroup: self.no_pids.clone(),
            },
            MemoryReport {
                limit: self.mem_limit,
                cgroup: self.memory.as_ref().map(|c| cgroup(c, c.limit())),
                rlimit_as: self.rlimit_as(),
                no_cgroup: self.no_memory.clone(),
            },
        )
    }
}

/// How many tasks (threads) of this process's real user run now, as RLIMIT_NPROC
/// counts them: without namespaces the program shares that count with every other
/// process of the caller's (so the limit is set this far above `--pids`; what the
/// caller starts meanwhile takes from the program's share).
pub(super) fn tasks_of_this_user() -> u64 {
    let uid = nix::unistd::getuid().as_raw().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| field(status, "Uid:").as_deref() == Some(uid.as_str()))
        .map(|status| {
            field(&status, "Threads:")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1)
        })
        .sum()
}

impl Cgroups {
    /// Start the child that removes the cgroups once this process has ended (it waits
    /// for the end of a pipe whose other end only this process holds — so it also
    /// cleans up after a supervisor that was killed, whose stage the parent-death
    /// signal then ends). Started while the stage builds the root, its fork is off
    /// the path. Without it (an error before), [`Drop`] forks one.
    pub(super) fn start_janitor(&mut self) {
        if self.all().next().is_none() || self.janitor.is_some() {
            return;
        }
        let Ok((wait, hold)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return;
        };
        let Ok(one) = SingleThreaded::check() else {
            return;
        };
        match one.fork() {
            Ok(0) => {
                drop(hold);
                // Not holding the caller's pipes open while the program runs, nor
                // anything else of the supervisor's: a copy of the seccomp listener
                // would keep a violation waiting if the supervisor lost its own.
                stdio_to_null();
                let keep = [0, 1, 2, wait.as_raw_fd()];
                if sandbox::lockdown::close_descriptors_except(&keep).is_err() {
                    std::process::exit(EXIT_SETUP);
                }
                let mut wait = std::fs::File::from(wait);
                let mut byte = [0u8; 1];
                // Returns at end of file: every copy of `hold` is closed.
                while matches!(std::io::Read::read(&mut wait, &mut byte), Ok(1)) {}
                self.clean_up_and_exit()
            }
            Ok(_) => self.janitor = Some(hold),
            Err(_) => {}
        }
    }

    /// In a child of the supervisor: stdio on /dev/null, remove the cgroups (retrying
    /// every millisecond for up to 10 s while the stage exits) and those that killed
    /// supervisors left behind, and exit — without returning, so that nothing else
    /// of the supervisor's state (the stage is not this child's) is dropped here.
    pub(super) fn clean_up_and_exit(&self) -> ! {
        stdio_to_null();
        for cgroup in self.all() {
            for _ in 0..10_000 {
                match cgroup.remove() {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    _ => break,
                }
            }
        }
        for g in self.all() {
            g.remove_stale_siblings(CGROUP_PREFIX);
        }
        std::process::exit(0)
    }
}

/// Standard input, output and error onto /dev/null (in a cleanup child: the caller
/// reading the supervisor's output to its end must not wait for it).
fn stdio_to_null() {
    if let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

impl Drop for Cgroups {
    /// Remove the cgroups: let the janitor go; or, on an error before it was started
    /// (the stage, dropped after this, is being ended), remove them here, forking a
    /// child to retry if one is still busy.
    fn drop(&mut self) {
        if let Some(hold) = self.janitor.take() {
            drop(hold);
            return;
        }
        if self.all().all(|c| c.remove().is_ok() || !c.path().exists()) {
            return;
        }
        if let Ok(one) = SingleThreaded::check() {
            if let Ok(0) = one.fork() {
                self.clean_up_and_exit()
            }
        }
    }
}

/// Watches the pids cgroup's refusals: a fork bomb is a sandbox whose forks are still
/// being refused [`BOMB_GRACE`] after the first refusal seen; a program that hit the
/// limit once and backed off is left alone.
#[derive(Default)]
pub(super) struct BombWatch {
    /// Refusals already judged.
    seen: u64,
    /// When refusals were first seen past `seen`, and their count then.
    since: Option<(Instant, u64)>,
    /// When the cgroup was last read: at most once a [`BOMB_TICK`], however often the
    /// supervisor wakes (a program answered through the listener wakes it per call).
    last: Option<Instant>,
}

impl BombWatch {
    pub(super) fn still_refused(&mut self, pids: Option<&PidsCgroup>) -> bool {
        if self.last.is_some_and(|t| t.elapsed() < BOMB_TICK) {
            return false;
        }
        self.last = Some(Instant::now());
        let Some(refused) = pids.and_then(|c| c.refused()) else {
            return false;
        };
        match self.since {
            None => {
                if refused > self.seen {
                    self.since = Some((Instant::now(), refused));
                }
                false
            }
            Some((first, then)) if first.elapsed() >= BOMB_GRACE => {
                if refused > then {
                    return true;
                }
                self.since = None;
                self.seen = refused;
                false
            }
            Some(_) => false,
        }
    }
}

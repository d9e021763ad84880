//! Limits through cgroups, for a whole sandbox whatever the user ids of its tasks:
//!
//! * [`PidsCgroup`]: processes plus threads (`pids.max`), with a count of the forks the
//!   limit refused;
//! * [`MemoryCgroup`]: memory actually used — anonymous memory, page cache, memfds,
//!   kernel memory — rather than address space (`memory.limit_in_bytes` / `memory.max`,
//!   swap included where the kernel accounts it), with a count of the tasks the
//!   out-of-memory killer ended.
//!
//! [`Cgroup::create`] looks for a hierarchy with the controller that this process can
//! make a child cgroup in, from `/proc/self/mountinfo` and `/proc/self/cgroup`:
//!
//! * cgroup v2, if the controller is enabled in this process's cgroup's
//!   `cgroup.subtree_control` (a delegated subtree; v2 forbids enabling it in a cgroup
//!   that has processes, so this does not try);
//! * otherwise a cgroup v1 hierarchy mounted with the controller.
//!
//! The child is `<this process's cgroup>/<name>`. Making a cgroup needs write access
//! to the parent (root, or a delegated subtree); without one,
//! [`CgroupError::Unavailable`] says why and the caller uses its fallback.
//!
//! A process enters a cgroup cheaply by moving *itself* ([`Cgroup::open_self_join`],
//! [`join_self`]); everything it starts afterwards is born inside. A cgroup can be
//! removed only once no task is in it: [`Cgroup::remove`] says `EBUSY` until then, and
//! [`Cgroup::remove_stale_siblings`] removes those that earlier owners (dead processes)
//! left behind.

use std::io;
use std::path::{Path, PathBuf};

/// Which kind of hierarchy holds the cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Hierarchy {
    /// The unified hierarchy (cgroup2).
    V2,
    /// A cgroup v1 hierarchy with the controller.
    V1,
}

/// A controller [`Cgroup::create`] can find a hierarchy for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    /// `pids`.
    Pids,
    /// `memory`.
    Memory,
}

impl Controller {
    /// The kernel's name for it.
    pub const fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
        }
    }
}

/// Why no cgroup was made.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No hierarchy with the controller that this process may make a cgroup in.
    #[error("no {0} cgroup can be made here: {1}")]
    Unavailable(&'static str, String),
    /// A cgroup was found or made, and then a step failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The step.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// A cgroup made by [`Cgroup::create`] (or through [`PidsCgroup`] and
/// [`MemoryCgroup`], which dereference to it).
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    hierarchy: Hierarchy,
    controller: Controller,
    /// Its path within the hierarchy, as /proc/PID/cgroup shows it (from the initial
    /// cgroup namespace).
    name_in_hierarchy: String,
}

/// A cgroup with a `pids.max`, made by [`PidsCgroup::create`].
#[derive(Debug)]
pub struct PidsCgroup {
    group: Cgroup,
    max: u64,
}

/// A cgroup with a memory limit, made by [`MemoryCgroup::create`].
#[derive(Debug)]
pub struct MemoryCgroup {
    group: Cgroup,
    limit: u64,
}

impl std::ops::Deref for PidsCgroup {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.group
    }
}

impl std::ops::Deref for MemoryCgroup {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.group
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// One line of /proc/self/mountinfo: (root within the hierarchy, mount point, file
/// system type, super options).
fn mounts(mountinfo: &str) -> Vec<(String, String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let root = fields.get(3)?;
            let point = fields.get(4)?;
            let mut rest = after.split(' ');
            let fstype = rest.next()?;
            let _source = rest.next()?;
            let options = rest.next().unwrap_or("");
            Some((
                unescape(root),
                unescape(point),
                fstype.to_string(),
                options.to_string(),
            ))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3 {
                if let Ok(v) = u8::from_str_radix(&digits, 8) {
                    out.push(char::from(v));
                    for _ in 0..3 {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// The directory of this process's cgroup `path` (from /proc/self/cgroup) in a mount
/// of its hierarchy whose root is `root`, at `point`.
fn dir_in_mount(point: &str, root: &str, path: &str) -> Option<PathBuf> {
    let below = Path::new(path).strip_prefix(root).ok()?;
    if below.as_os_str().is_empty() {
        return Some(PathBuf::from(point)); // no trailing `/` for the mount's own root
    }
    Some(Path::new(point).join(below))
}

/// What [`Cgroup::create_in`] looks at to find where a cgroup can go: this process's
/// mounts and cgroups, read once (`/proc/self/mountinfo` costs ~0.1 ms to read here).
#[derive(Debug)]
pub struct Places {
    mountinfo: Result<String, String>,
    own: Result<String, String>,
}

impl Places {
    /// Read `/proc/self/mountinfo` and `/proc/self/cgroup` (a failure shows later, as
    /// [`CgroupError::Unavailable`]).
    pub fn read() -> Places {
        let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
        Places {
            mountinfo: read("/proc/self/mountinfo"),
            own: read("/proc/self/cgroup"),
        }
    }

    /// The places given as the text of a `mountinfo` and a `/proc/PID/cgroup` (a view
    /// read elsewhere; tests describe hierarchies this machine does not have).
    pub fn from_text(mountinfo: &str, cgroup: &str) -> Places {
        Places {
            mountinfo: Ok(mountinfo.to_string()),
            own: Ok(cgroup.to_string()),
        }
    }
}

/// The parent directory a new cgroup with `controller` goes in, its hierarchy, and this
/// process's cgroup path in it.
fn find_parent(
    places: &Places,
    controller: Controller,
) -> Result<(PathBuf, Hierarchy, String), CgroupError> {
    let want = controller.name();
    let unavailable = |why: String| CgroupError::Unavailable(want, why);
    let mountinfo = places
        .mountinfo
        .as_ref()
        .map_err(|e| unavailable(e.clone()))?;
    let own = places.own.as_ref().map_err(|e| unavailable(e.clone()))?;
    let mounts = mounts(mountinfo);
    // Lines are `ID:CONTROLLERS:PATH`; v2's is `0::PATH`.
    let own_path = |accept: &dyn Fn(&str, &str) -> bool| {
        own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (id, controllers, path) = (f.next()?, f.next()?, f.next()?);
            accept(id, controllers).then(|| path.to_string())
        })
    };
    if let Some(path) = own_path(&|id, c| id == "0" && c.is_empty()) {
        for (root, point, fstype, _) in &mounts {
            if fstype != "cgroup2" {
                continue;
            }
            let Some(dir) = dir_in_mount(point, root, &path) else {
                continue;
            };
            let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|w| w == want));
            if enabled {
                return Ok((dir, Hierarchy::V2, path));
            }
        }
    }
    if let Some(path) = own_path(&|_, c| c.split(',').any(|w| w == want)) {
        for (root, point, fstype, options) in &mounts {
            if fstype == "cgroup" && options.split(',').any(|o| o == want) {
                if let Some(dir) = dir_in_mount(point, root, &path) {
                    return Ok((dir, Hierarchy::V1, path));
                }
            }
        }
    }
    Err(unavailable(format!(
        "no cgroup v2 subtree with {want} enabled and no cgroup v1 {want} hierarchy mounted"
    )))
}

impl Cgroup {
    /// Make the cgroup `name` below this process's own in a hierarchy with
    /// `controller`. [`CgroupError::Unavailable`] when there is no usable hierarchy or
    /// the parent is not writable (the caller's fallback applies). An empty leftover
    /// of the same name (callers put their pid in it, and pids are reused) is taken
    /// over.
    pub fn create(controller: Controller, name: &str) -> Result<Cgroup, CgroupError> {
        Cgroup::create_in(&Places::read(), controller, name)
    }

    /// [`Cgroup::create`] with the mounts and cgroups already read.
    pub fn create_in(
        places: &Places,
        controller: Controller,
        name: &str,
    ) -> Result<Cgroup, CgroupError> {
        let unavailable = |why: String| CgroupError::Unavailable(controller.name(), why);
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(unavailable(format!("bad cgroup name {name:?}")));
        }
        let (parent, hierarchy, own) = find_parent(places, controller)?;
        let dir = parent.join(name);
        let mut made = std::fs::create_dir(&dir);
        if made
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::AlreadyExists)
        {
            std::fs::remove_dir(&dir).map_err(io_err("rmdir (left over)", &dir))?;
            made = std::fs::create_dir(&dir);
        }
        match made {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOENT)
                ) =>
            {
                return Err(unavailable(format!("cannot make {}: {e}", dir.display())))
            }
            Err(e) => return Err(io_err("mkdir", &dir)(e)),
        }
        Ok(Cgroup {
            dir,
            hierarchy,
            controller,
            name_in_hierarchy: format!("{}/{name}", own.trim_end_matches('/')),
        })
    }

    /// Write `value` to the cgroup's file `file`; on failure the cgroup is removed
    /// (it is being set up) and the error names the file.
    fn set_or_remove(&self, file: &str, value: &str) -> Result<(), CgroupError> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|e| {
            let _ = self.remove();
            io_err("write", &path)(e)
        })
    }

    /// A number from the cgroup's file `file`: the whole file, or the value of `key`
    /// in its `key value` lines.
    fn number(&self, file: &str, key: Option<&str>) -> Option<u64> {
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
        match key {
            None => text.trim().parse().ok(),
            Some(key) => text.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            }),
        }
    }

    /// Open the file through which a single-threaded process moves *itself* into the
    /// cgroup with [`join_self`]: v1's `tasks`, where a thread writing `0` moves only
    /// itself and the kernel skips the global lock against concurrent forks
    /// (`cgroup_threadgroup_rwsem`) that moving another process through
    /// `cgroup.procs` takes for writing — which waits for an RCU grace period: 20–80
    /// µs instead of 7–15 ms here; v2's `cgroup.procs`. The file is opened
    /// here so the kernel checks the opener's credentials, and the process that
    /// writes it needs no path to the cgroup file system.
    pub fn open_self_join(&self) -> Result<std::fs::File, CgroupError> {
        let file = self.dir.join(match self.hierarchy {
            Hierarchy::V1 => "tasks",
            Hierarchy::V2 => "cgroup.procs",
        });
        std::fs::File::options()
            .write(true)
            .open(&file)
            .map_err(io_err("open", &file))
    }

    /// Whether process `pid` is in this cgroup (from `/proc/PID/cgroup`).
    pub fn holds(&self, pid: i32) -> io::Result<bool> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        Ok(self.listed_in(&text))
    }

    /// Whether a `/proc/PID/cgroup` text (read from the initial cgroup namespace)
    /// places its process in this cgroup.
    pub fn listed_in(&self, proc_pid_cgroup: &str) -> bool {
        proc_pid_cgroup.lines().any(|l| {
            let mut f = l.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
                return false;
            };
            let ours = match self.hierarchy {
                Hierarchy::V2 => id == "0" && controllers.is_empty(),
                Hierarchy::V1 => controllers.split(',').any(|c| c == self.controller.name()),
            };
            ours && path == self.name_in_hierarchy
        })
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Its hierarchy.
    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }

    /// Remove the cgroup (`EBUSY` while a task is in it).
    pub fn remove(&self) -> io::Result<()> {
        std::fs::remove_dir(&self.dir)
    }

    /// Remove this cgroup's empty siblings named `<prefix><pid>` whose pid is not a
    /// live process: cgroups that earlier owners, killed before they could remove
    /// their own, left behind. Returns how many were removed; a busy one stays.
    pub fn remove_stale_siblings(&self, prefix: &str) -> usize {
        let Some(Ok(entries)) = self.dir.parent().map(std::fs::read_dir) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix(prefix))
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            })
            .filter(|e| std::fs::remove_dir(e.path()).is_ok())
            .count()
    }
}

impl PidsCgroup {
    /// Make the cgroup `name` (see [`Cgroup::create_in`]) with `pids.max` = `max`.
    pub fn create(places: &Places, name: &str, max: u64) -> Result<PidsCgroup, CgroupError> {
        let group = Cgroup::create_in(places, Controller::Pids, name)?;
        group.set_or_remove("pids.max", &max.to_string())?;
        Ok(PidsCgroup { group, max })
    }

    /// Tasks (processes and threads) in the cgroup now.
    pub fn current(&self) -> Option<u64> {
        self.number("pids.current", None)
    }

    /// How many forks and clones the limit has refused so far (`pids.events`, `max`).
    pub fn refused(&self) -> Option<u64> {
        self.number("pids.events", Some("max"))
    }

    /// Its `pids.max`.
    pub fn max(&self) -> u64 {
        self.max
    }
}

impl MemoryCgroup {
    /// Make the cgroup `name` (see [`Cgroup::create_in`]) with a memory limit of `limit`
    /// bytes, swap included where the kernel accounts swap (v1
    /// `memory.memsw.limit_in_bytes` = the limit, v2 `memory.swap.max` = 0): the
    /// sandbox cannot page its way past the limit.
    pub fn create(places: &Places, name: &str, limit: u64) -> Result<MemoryCgroup, CgroupError> {
        let group = Cgroup::create_in(places, Controller::Memory, name)?;
        let value = limit.to_string();
        match group.hierarchy {
            Hierarchy::V1 => {
                group.set_or_remove("memory.limit_in_bytes", &value)?;
                if group.dir.join("memory.memsw.limit_in_bytes").exists() {
                    group.set_or_remove("memory.memsw.limit_in_bytes", &value)?;
                }
            }
            Hierarchy::V2 => {
                group.set_or_remove("memory.max", &value)?;
                if group.dir.join("memory.swap.max").exists() {
                    group.set_or_remove("memory.swap.max", "0")?;
                }
            }
        }
        Ok(MemoryCgroup { group, limit })
    }

    /// How many tasks the out-of-memory killer has ended in the cgroup (`oom_kill` of
    /// v1's `memory.oom_control`, v2's `memory.events`).
    pub fn oom_kills(&self) -> Option<u64> {
        match self.hierarchy {
            Hierarchy::V1 => self.number("memory.oom_control", Some("oom_kill")),
            Hierarchy::V2 => self.number("memory.events", Some("oom_kill")),
        }
    }

    /// The most memory the cgroup has used, in bytes (v1 `memory.max_usage_in_bytes`,
    /// v2 `memory.peak`).
    pub fn peak(&self) -> Option<u64> {
        match self.hierarchy {
            Hierarchy::V1 => self.number("memory.max_usage_in_bytes", None),
            Hierarchy::V2 => self.number("memory.peak", None),
        }
    }

    /// Its limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// Where [`Cgroup::create_in`] would make a cgroup with `controller`, and whether
/// this process may (write access to the parent): a line for `sandbox check`.
pub fn probe(places: &Places, controller: Controller) -> Result<String, String> {
    let (parent, hierarchy, _) = find_parent(places, controller).map_err(|e| e.to_string())?;
    let version = match hierarchy {
        Hierarchy::V1 => "cgroup v1",
        Hierarchy::V2 => "cgroup v2",
    };
    nix::unistd::access(&parent, nix::unistd::AccessFlags::W_OK)
        .map(|()| format!("{version}, {} is writable", parent.display()))
        .map_err(|e| format!("{version}, {}: {e}", parent.display()))
}

/// Move the calling thread into the cgroup whose file [`Cgroup::open_self_join`]
/// opened (`0` names the writer). The caller must be single-threaded for the whole
/// process to move (with v1's `tasks` only the writing thread moves).
pub fn join_self(file: &mut std::fs::File) -> io::Result<()> {
    use std::io::Write;
    file.write_all(b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_read_with_their_escapes() {
        let info =
            "30 23 0:26 / /sys/fs/cgroup/pids rw,relatime shared:9 - cgroup cgroup rw,pids\n\
                    31 23 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    40 1 0:30 /sub /mnt/with\\040space rw - cgroup cgroup rw,memory\n";
        let m = mounts(info);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            (
                "/".to_string(),
                "/sys/fs/cgroup/pids".to_string(),
                "cgroup".to_string(),
                "rw,pids".to_string()
            )
        );
        assert_eq!(m[1].2, "cgroup2");
        assert_eq!(m[2].1, "/mnt/with space");
        assert_eq!(m[2].0, "/sub");
    }

    #[test]
    fn a_cgroup_path_maps_into_a_mount_of_part_of_the_hierarchy() {
        assert_eq!(
            dir_in_mount("/sys/fs/cgroup/pids", "/", "/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/pids/a/b"))
        );
        assert_eq!(
            dir_in_mount("/mnt", "/a", "/a/b"),
            Some(PathBuf::from("/mnt/b"))
        );
        assert_eq!(
            dir_in_mount("/sys/fs/cgroup/pids", "/", "/"),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(
            dir_in_mount("/sys/fs/cgroup/pids", "/", "/").map(|p| p.to_string_lossy().into_owned()),
            Some("/sys/fs/cgroup/pids".to_string())
        );
        // A cgroup outside the mounted part is not reachable through it.
        assert_eq!(dir_in_mount("/mnt", "/x", "/a/b"), None);
    }

    #[test]
    fn names_that_are_paths_are_refused() {
        for bad in ["", "a/b", "..", ".hidden"] {
            assert!(matches!(
                Cgroup::create(Controller::Pids, bad),
                Err(CgroupError::Unavailable("pids", _))
            ));
        }
    }
}

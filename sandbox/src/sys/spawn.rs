//! Starting a process in new namespaces: a fork-like `clone(2)` whose child runs only
//! async-signal-safe code (raw syscalls on memory prepared before the clone) until it
//! calls `execve`.

use super::cpus::{self, CpuSet};
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

/// Everything the child needs, allocated before the clone so the child allocates
/// nothing.
pub struct PreparedExec {
    path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// (source fd in the parent, number it gets in the child)
    remaps: Vec<(RawFd, RawFd)>,
    /// Where the child parks copies of the sources before moving them into place: just
    /// above every destination, so no move clobbers a parked copy. (Kept low: the
    /// descriptor table never shrinks, and a big one slows every later close_range.)
    park_base: RawFd,
    /// The uid and gid map lines a `join` child writes for itself: "0 K 1\n", its
    /// own ids in the joined namespace (K is 0 unless [`PreparedExec::own_ids`] says).
    self_map: Vec<u8>,
    /// An outside id of its own (see [`PreparedExec::own_ids`]): the `join` first stage
    /// takes id K of the joined namespace before it clones; a plain child takes uid and
    /// gid 0 of its new namespace once the parent has mapped them.
    own_id: Option<libc::uid_t>,
    /// Execute this descriptor of the executable (`execveat(fd, "", AT_EMPTY_PATH)`)
    /// rather than look `path` up: a child that took another id may not be allowed to
    /// walk the path (a binary under `/root/…` of a root spawner).
    exe_fd: Option<RawFd>,
    /// Run this instead of exec (see [`PreparedExec::in_place`]).
    entry: Option<fn(InPlace) -> !>,
    /// CLONE_NEW* flags the in-place child makes itself, right after its clone (see
    /// [`InPlace`]).
    deferred: libc::c_int,
    /// The CPUs the parent may run on (and so the child, at the clone): the child
    /// takes them back ([`InPlace::release_cpus`], or before its exec) after the
    /// parent narrowed it ([`PreparedExec::place_apart`]).
    cpus: Option<CpuSet>,
}

/// What an in-place child's entry gets: whether the namespaces deferred to it (see
/// `launch::spawn_in_place`) were made, and its CPU set to take back. The child
/// makes the deferred ones right after its clone, on a CPU of its own, while its
/// parent writes its id maps and goes on; it stays narrowed to that CPU (see
/// `cpus::place_apart`) until [`InPlace::release_cpus`] — or until this is dropped:
/// nothing it forks afterwards runs narrowed.
#[derive(Debug)]
pub struct InPlace {
    /// 0, or the errno of the deferred namespaces' `unshare`.
    unshared: libc::c_int,
    /// The CPU set to take back (the parent's, which the clone gave the child before
    /// the parent narrowed it).
    cpus: Option<CpuSet>,
    /// Whether the proof of one thread is still to be taken.
    fresh: bool,
}

impl InPlace {
    /// Whether the deferred namespaces were made (their `unshare`'s error if not).
    pub fn namespaces(&self) -> io::Result<()> {
        match self.unshared {
            0 => Ok(()),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Proof that this process has one thread: a copy of a single-threaded caller
    /// (`spawn_in_place` took its proof). Valid only when taken before the entry
    /// starts any thread — the entry's contract: take it first, or check with
    /// `SingleThreaded::check`. Once (a fork consumes it).
    pub fn single_threaded(&mut self) -> Option<crate::lockdown::SingleThreaded> {
        std::mem::take(&mut self.fresh).then(crate::lockdown::SingleThreaded::of_fresh_copy)
    }

    /// Take the parent's CPU set back (once; then nothing to do).
    pub fn release_cpus(&mut self) -> io::Result<()> {
        match self.cpus.take() {
            Some(all) => cpus::take_back(&all),
            None => Ok(()),
        }
    }
}

impl Drop for InPlace {
    fn drop(&mut self) {
        let _ = self.release_cpus();
    }
}

/// The in-place child's start, once released and left with its own descriptors: the
/// caller's command line and environment blanked in this copy (a process that can
/// read `/proc/PID/cmdline` — no permission check guards it — would otherwise see
/// the caller's arguments), then `entry`; a panic in it ends the process (exit 125)
/// rather than unwind into the caller's frames, whose descriptors are closed here.
fn start_in_place(entry: fn(InPlace) -> !, start: InPlace) -> ! {
    blank_arguments_and_environment();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(start)));
    // SAFETY: _exit ends the process without running anything of the caller's.
    unsafe { libc::_exit(125) }
}

/// Overwrite this process's argument and environment strings (the ranges
/// /proc/self/stat gives, fields 48–51) with zeros, the first with "sandbox-stage".
fn blank_arguments_and_environment() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return;
    };
    // Field 3 is the first after the name: field N is at index N - 3.
    let fields: Vec<usize> = rest
        .split_whitespace()
        .skip(45)
        .take(4)
        .filter_map(|f| f.parse().ok())
        .collect();
    let [arg_start, arg_end, env_start, env_end] = fields[..] else {
        return;
    };
    for (start, end) in [(arg_start, arg_end), (env_start, env_end)] {
        if start == 0 || end <= start {
            continue;
        }
        // Zeros keep every string the runtime's argv/environ pointers reach
        // NUL-terminated (they read as empty).
        // SAFETY: [start, end) is where the kernel put this process's argument (or
        // environment) strings at exec, on its initial stack, mapped read-write for
        // the process's life.
        unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
    }
    let title = b"sandbox-stage";
    if arg_end - arg_start > title.len() {
        // SAFETY: as above; `title` fits before the range's last (zero) byte.
        unsafe { std::ptr::copy_nonoverlapping(title.as_ptr(), arg_start as *mut u8, title.len()) };
    }
}

/// The highest destination descriptor accepted.
const MAX_DESTINATION: RawFd = 1 << 12;

impl PreparedExec {
    /// Prepare `path` with `argv` (argv[0] included) and `envp` ("K=V"), and fds to
    /// place at given numbers in the child.
    pub fn new(
        path: &str,
        argv: &[String],
        envp: &[String],
        remaps: &[(RawFd, RawFd)],
    ) -> io::Result<PreparedExec> {
        let c = |s: &str| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
        let path = c(path)?;
        let argv: Vec<CString> = argv.iter().map(|s| c(s)).collect::<io::Result<_>>()?;
        let envp: Vec<CString> = envp.iter().map(|s| c(s)).collect::<io::Result<_>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        if remaps.len() > 64
            || remaps
                .iter()
                .any(|(s, d)| *s < 0 || *d < 0 || *d > MAX_DESTINATION)
        {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let park_base = remaps.iter().map(|(_, d)| *d + 1).max().unwrap_or(3).max(3);
        Ok(PreparedExec {
            path,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            remaps: remaps.to_vec(),
            park_base,
            self_map: b"0 0 1\n".to_vec(),
            own_id: None,
            exe_fd: None,
            entry: None,
            deferred: 0,
            cpus: cpus::own(),
        })
    }

    /// A child that runs `entry` where an exec'd child would exec: the same steps up
    /// to the descriptors' moves, then every other descriptor closed (the caller's
    /// close-on-exec ones too: nothing is exec'd to close them — this also tells the
    /// parent, reading `report` to its end, that the child is released) and
    /// `entry` called with SIGPIPE as the caller had it and the caller's command line
    /// and environment blanked in the copy (see `start_in_place`). Only for
    /// a caller proven single-threaded (`lockdown::SingleThreaded`): the child is then
    /// a complete copy of it, no lock held by a thread that does not exist, and
    /// `entry` may run any code.
    pub fn in_place(
        remaps: &[(RawFd, RawFd)],
        entry: fn(InPlace) -> !,
        deferred: libc::c_int,
    ) -> io::Result<PreparedExec> {
        let mut prepared = PreparedExec::new("", &[], &[], remaps)?;
        prepared.entry = Some(entry);
        prepared.deferred = deferred;
        Ok(prepared)
    }
}

impl PreparedExec {
    /// Whether the child runs an entry in place.
    pub fn in_place_child(&self) -> bool {
        self.entry.is_some()
    }

    /// The caller's CPU set, read before the clone (what the child takes back).
    pub fn cpus(&self) -> Option<&CpuSet> {
        self.cpus.as_ref()
    }

    /// Narrow `child` (cloned from this, not yet running the entry or the program) to
    /// a CPU of the parent's set other than the one the caller runs on: see
    /// `cpus::place_apart`. The child takes the set back itself.
    pub fn place_apart(&self, child: libc::pid_t) -> bool {
        self.cpus
            .as_ref()
            .is_some_and(|all| cpus::place_apart(child, all))
    }

    /// An id of its own outside, without supplementary groups. A plain child takes
    /// uid and gid 0 of its new user namespace (which the parent maps to that id)
    /// before exec; the kernel keeps its capabilities over the namespace (the old ids
    /// were not the namespace's root) and exec gives root of the namespace the full
    /// set again. With `join`, the first stage takes `joined_id` of the joined
    /// namespace before cloning the child, which maps 0 to it for itself.
    /// Execute `fd` (an `O_PATH` descriptor of the executable, open until the child
    /// has exec'd) instead of looking the path up; `argv[0]` stays the path. Not for
    /// `#!` scripts: the interpreter could not open a close-on-exec descriptor.
    pub fn exec_through(&mut self, fd: RawFd) {
        self.exe_fd = Some(fd);
    }

    pub fn own_ids(&mut self, joined_id: u32) {
        self.own_id = Some(joined_id);
        self.self_map = format!("0 {joined_id} 1\n").into_bytes();
    }
}

/// Drop the supplementary groups and take `id` as every uid and gid: raw syscalls,
/// async-signal-safe, for a fork-like child.
fn take_ids(id: libc::uid_t) -> bool {
    // SAFETY: setgroups with a NULL list of length 0 reads no memory; setresgid and
    // setresuid take integers. All three are async-signal-safe.
    unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(id, id, id) == 0
            && libc::setresuid(id, id, id) == 0
    }
}

/// Namespaces an extra first stage joins before the renderer's own are created: a
/// user namespace and a network namespace owned by it (see `NetMode::Reuse`).
#[derive(Clone, Copy, Debug)]
pub struct Join {
    /// An fd of `/proc/PID/ns/user`.
    pub user: RawFd,
    /// An fd of `/proc/PID/ns/net` of a network namespace owned by `user`.
    pub net: RawFd,
}

/// Clone a child with `flags` (CLONE_NEW* bits; SIGCHLD is added). The child first
/// closes `parent_ends` (the parent's ends of `go` and `report`: a child holding the
/// write end of `go` would never see its end of file); then it
/// sets PR_SET_PDEATHSIG to SIGKILL; makes itself dumpable until exec; writes `R` to
/// `report` once the parent may write its id maps; makes the namespaces deferred to it
/// (an in-place child's network one: see [`InPlace`]); waits for one byte on `go`
/// (EOF — the parent died or gave up — ends it: this closes the race between clone and
/// PDEATHSIG); moves the remapped fds into place; takes the parent's CPU set back (an
/// exec'd child; the parent may have narrowed it: `cpus::place_apart`); execs — or
/// closes every other descriptor and calls its entry (in place). On any failure it
/// writes `E` and its errno (4 bytes) to `report` and exits 127. Both `go` and
/// `report` must be close-on-exec.
///
/// With `join`, a first stage joins `join.user` and then `join.net`, and clones the
/// renderer from there with CLONE_PARENT (so it is still the caller's child) and
/// `flags` minus CLONE_NEWNET; it writes `P` and the renderer's pid (4 bytes) to
/// `report` and exits. The renderer then maps its own ids (uid/gid 0 to 0 of the joined
/// namespace, the only mapping a process may write for itself) before saying `R`.
///
/// Returns the pid of the first process created (the first stage with `join`).
pub fn clone_and_exec(
    flags: libc::c_int,
    exec: &PreparedExec,
    go: RawFd,
    report: RawFd,
    join: Option<Join>,
    parent_ends: [RawFd; 2],
) -> io::Result<libc::pid_t> {
    let first_flags = if join.is_some() { 0 } else { flags };
    let pid = fork_like(first_flags)?;
    if pid == 0 {
        for fd in parent_ends {
            // SAFETY: close is async-signal-safe; the fds are this copy's own.
            unsafe { libc::close(fd) };
        }
        match join {
            None => child(exec, go, report, false),
            Some(j) => first_stage(flags & !libc::CLONE_NEWNET, exec, go, report, j),
        }
    }
    Ok(pid)
}

/// A fork-like clone: returns 0 in the child.
///
/// Every caller's child branch calls only async-signal-safe libc wrappers of raw
/// syscalls, reads only memory prepared before the clone, allocates nothing, takes no
/// lock, and leaves only by execve or _exit.
pub fn fork_like(flags: libc::c_int) -> io::Result<libc::pid_t> {
    let clone_flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: no CLONE_VM and a NULL stack make this a fork: the child gets a copy of
    // this address space and continues here with only the calling thread (see above).
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            clone_flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid as libc::pid_t)
    }
}

/// Write `E` + errno to `report` and exit 127.
fn fail(report: RawFd, errno: libc::c_int) -> ! {
    let e = errno.to_ne_bytes();
    let bytes = [b'E', e[0], e[1], e[2], e[3]];
    // SAFETY: write and _exit are async-signal-safe; `bytes` is a live local.
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

fn errno() -> libc::c_int {
    // SAFETY: reads this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// The first stage of a `join` spawn. Never returns.
fn first_stage(flags: libc::c_int, exec: &PreparedExec, go: RawFd, report: RawFd, j: Join) -> ! {
    // SAFETY (whole function): the only thread of a fresh fork-like child; setns and
    // clone take integers and fds that are open in this copy of the caller.
    unsafe {
        if libc::setns(j.user, libc::CLONE_NEWUSER) != 0
            || libc::setns(j.net, libc::CLONE_NEWNET) != 0
        {
            fail(report, errno());
        }
        // Its own id in the joined namespace: the child, which may map only its own
        // ids, then maps 0 to it.
        if let Some(id) = exec.own_id {
            if !take_ids(id) {
                fail(report, errno());
            }
        }
        let pid = match fork_like(flags | libc::CLONE_PARENT) {
            Ok(pid) => pid,
            Err(e) => fail(report, e.raw_os_error().unwrap_or(libc::EIO)),
        };
        if pid == 0 {
            child(exec, go, report, true);
        }
        let p = pid.to_ne_bytes();
        let bytes = [b'P', p[0], p[1], p[2], p[3]];
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(0)
    }
}

/// Write `text` to the file at `path` (NUL-terminated), async-signal-safely.
fn write_file(path: &[u8], text: &[u8]) -> bool {
    // SAFETY: `path` is a NUL-terminated static byte string; `text` a live slice; the
    // fd is closed before returning.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let ok = libc::write(fd, text.as_ptr().cast(), text.len()) == text.len() as isize;
        libc::close(fd);
        ok
    }
}

/// The child side of [`clone_and_exec`]. Never returns.
fn child(exec: &PreparedExec, go: RawFd, report: RawFd, map_self: bool) -> ! {
    // SAFETY (whole function): we are the only thread of a fresh fork-like child; every
    // call is an async-signal-safe syscall wrapper on fds and on memory prepared
    // before the clone and still mapped (the child has a copy of it).
    unsafe {
        let fail = |e: libc::c_int| -> ! { fail(report, e) };
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(errno());
        }
        // A caller that changed its uids (e.g. root dropping to a service user) is not
        // dumpable, and neither would this copy of it be: its /proc files would then
        // belong to root and neither the caller nor this process
        // could write its id maps. exec resets it.
        if libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong, 0, 0, 0) != 0 {
            fail(errno());
        }
        if map_self
            && !(write_file(b"/proc/self/setgroups\0", b"deny")
                && write_file(b"/proc/self/uid_map\0", &exec.self_map)
                && write_file(b"/proc/self/gid_map\0", &exec.self_map))
        {
            fail(errno());
        }
        // Tell the parent it may write the id maps now.
        if libc::write(report, b"R".as_ptr().cast(), 1) != 1 {
            libc::_exit(126);
        }
        // The namespaces deferred to an in-place child (the network one, the costliest
        // to make): made now, while the parent writes the maps and goes on; the entry
        // learns the outcome (`InPlace::namespaces`).
        let unshared = if exec.deferred != 0 && libc::unshare(exec.deferred) != 0 {
            errno()
        } else {
            0
        };
        // The parent writes one byte once the id maps are written. EOF means it died
        // before that (possibly before PDEATHSIG was armed): end here.
        let mut byte = 0u8;
        loop {
            let n = libc::read(go, (&mut byte as *mut u8).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            libc::_exit(126);
        }
        // An outside id of its own: uid and gid 0 of the namespace, now mapped to it.
        if !map_self && exec.own_id.is_some() && !take_ids(0) {
            fail(errno());
        }
        // Park every source above every destination (close-on-exec), then move into
        // place, so a source that is also another entry's destination is not clobbered.
        let mut parked = [0 as RawFd; 64];
        for (i, (src, _)) in exec.remaps.iter().enumerate() {
            let fd = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, exec.park_base);
            if fd < 0 {
                fail(errno());
            }
            parked[i] = fd;
        }
        for (i, (_, dst)) in exec.remaps.iter().enumerate() {
            // dup2 leaves the new descriptor without FD_CLOEXEC: it survives exec.
            if libc::dup2(parked[i], *dst) < 0 {
                fail(errno());
            }
        }
        if let Some(entry) = exec.entry {
            close_all_but(&exec.remaps, exec.park_base);
            start_in_place(
                entry,
                InPlace {
                    unshared,
                    cpus: exec.cpus,
                    fresh: true,
                },
            );
        }
        // The CPU set the parent narrowed (`place_apart`), back before the program.
        if let Some(all) = &exec.cpus {
            if cpus::take_back(all).is_err() {
                fail(errno());
            }
        }
        // A Rust parent ignores SIGPIPE, and an ignored signal stays ignored across
        // execve: give the program the default action, as std's Command does.
        if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR {
            fail(errno());
        }
        match exec.exe_fd {
            Some(fd) => {
                libc::syscall(
                    libc::SYS_execveat,
                    fd,
                    c"".as_ptr(),
                    exec.argv_ptrs.as_ptr(),
                    exec.envp_ptrs.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
            }
            None => {
                libc::execve(
                    exec.path.as_ptr(),
                    exec.argv_ptrs.as_ptr(),
                    exec.envp_ptrs.as_ptr(),
                );
            }
        }
        fail(errno())
    }
}

/// Close every descriptor that is not a destination of `remaps`: everything from
/// `park_base` (above every destination) up, and the gaps below it. Async-signal-safe.
fn close_all_but(remaps: &[(RawFd, RawFd)], park_base: RawFd) {
    // SAFETY: close_range and close take integers; closing descriptors this copy of
    // the caller owns affects only this process.
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            park_base as libc::c_uint,
            libc::c_uint::MAX,
            0,
        ) != 0
        {
            // No close_range (before Linux 5.9): one by one up to the descriptor limit.
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            let top = limit.rlim_cur.min(1 << 20) as RawFd;
            for fd in park_base..top {
                libc::close(fd);
            }
        }
        for fd in 0..park_base {
            if !remaps.iter().any(|(_, dst)| *dst == fd) {
                libc::close(fd);
            }
        }
    }
}

/// Whether a child can be created with `flags` (CLONE_NEW* bits): a fork-like clone
/// whose child exits at once.
pub fn clone_probe(flags: libc::c_int) -> io::Result<()> {
    let pid = fork_like(flags)?;
    if pid == 0 {
        // SAFETY: _exit is async-signal-safe; the fork-like child ends here.
        unsafe { libc::_exit(0) }
    }
    let mut status = 0;
    // SAFETY: waits for the child just created; `status` is a live local.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    Ok(())
}

/// Start a child in new namespaces (`flags`) that only waits: it closes `close`, makes
/// itself dumpable (so a caller that changed uids can still write its /proc files),
/// writes one byte to `ready`, then blocks reading `hold` until EOF, then exits. The
/// caller opens its namespaces through /proc meanwhile, then closes the other end of
/// `hold` and reaps it.
pub fn hold_namespaces(
    flags: libc::c_int,
    hold: RawFd,
    close: RawFd,
    ready: RawFd,
) -> io::Result<libc::pid_t> {
    let pid = fork_like(flags)?;
    if pid == 0 {
        // SAFETY: the only thread of a fork-like child: close, prctl, write, read and
        // _exit are async-signal-safe; `byte` is a live local.
        unsafe {
            libc::close(close);
            libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong, 0, 0, 0);
            libc::write(ready, b"R".as_ptr().cast(), 1);
            let mut byte = 0u8;
            while libc::read(hold, (&mut byte as *mut u8).cast(), 1) != 0 {
                if *libc::__errno_location() != libc::EINTR {
                    break;
                }
            }
            libc::_exit(0)
        }
    }
    Ok(pid)
}

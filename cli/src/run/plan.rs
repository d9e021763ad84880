//! Step 1 and 3 of `sandbox run`: what the caller asked, made concrete — the binds,
//! the program and its files, its ids, the namespaces, the environment.

use super::options::{environment, parse_bind, resolve_program, RunArgs};
use super::*;
use sandbox::launch::{Namespaces, NetMode};
use sandbox::lockdown::Bind;
use std::path::{Path, PathBuf};

/// What the caller asked, made concrete.
pub(super) struct Plan {
    /// The profile's binds, the caller's `--ro`/`--rw` grants (at `grants`), the rest.
    pub(super) binds: Vec<Bind>,
    pub(super) grants: std::ops::Range<usize>,
    /// The program, resolved.
    pub(super) exe: PathBuf,
    pub(super) argv: Vec<String>,
    pub(super) env: Vec<String>,
    /// The size of the program's /tmp, if it gets one.
    pub(super) scratch_tmp: Option<u64>,
    /// That id's mapping: (inside, outside uid, outside gid).
    pub(super) extra_id: Option<(u32, u32, u32)>,
    /// The (uid, gid) the program takes in the payload's lockdown, if not the stage's.
    pub(super) switch_to: Option<(u32, u32)>,
    /// The program's own outside id, if it has one (a root caller's program).
    pub(super) outside: Option<u32>,
    pub(super) namespaces: Namespaces,
    /// The program's own files are bound for it where no grant holds them.
    pub(super) find_files: bool,
    /// `--no-namespaces`: the private folder the program gets as HOME and TMPDIR
    /// (removed when the plan is dropped, after the run).
    pub(super) scratch_dir: Option<super::scratch::ScratchDir>,
    /// `--connect`: the destinations, and the folder of the /etc/hosts and
    /// /etc/nsswitch.conf bound inside (removed when the plan is dropped).
    pub(super) egress: Option<(super::egress::AllowList, super::scratch::ScratchDir)>,
}

impl Plan {
    /// No namespace at all (`--no-namespaces`).
    pub(super) fn without_namespaces(&self) -> bool {
        self.namespaces.clone_flags() == 0
    }
}

/// Step 1: the binds as asked, the program, its ids, the namespaces.
pub(super) fn plan(args: &RunArgs) -> Result<Plan, RunError> {
    let mut binds = Vec::new();
    // The profile's binds, then the caller's grants.
    for (list, writable) in [(&args.profile_ro, false), (&args.profile_rw, true)] {
        for r in list {
            binds.push(parse_bind(r, writable)?);
        }
    }
    let first_grant = binds.len();
    for (list, writable) in [(&args.ro, false), (&args.rw, true)] {
        for r in list {
            binds.push(parse_bind(r, writable)?);
        }
    }
    let grants = first_grant..binds.len();
    if args.dev {
        for (dev, writable) in [
            ("/dev/null", true),
            ("/dev/zero", true),
            ("/dev/urandom", false),
        ] {
            binds.push(Bind {
                path: dev.into(),
                writable,
                dest: None,
                identity: None,
                tree: None,
            });
        }
    }
    let mut env = environment(&args.env, args.clearenv)?;
    // A name is looked up in the PATH the program gets (not the caller's: a shim of
    // the caller's, e.g. in a home directory, would not be inside).
    let path = env.iter().find_map(|e| e.strip_prefix("PATH="));
    let exe = resolve_program(&args.command[0], path)?;
    // The program, its loader and its libraries (see `deps`) are bound read-only, each
    // file at its own path, where no grant holds them — unless --no-auto-ro: then the
    // grants must hold the program.
    let find_files = !args.no_auto_ro;
    if args.no_auto_ro && !covered(&binds, &exe) {
        return Err(RunError::ProgramFiles(format!(
            "{} is not reachable inside: bind it (e.g. --ro {}) and its libraries (e.g. --ro /usr --ro /lib --ro /lib64), or leave out --no-auto-ro",
            exe.display(),
            exe.parent().map_or("/".into(), |p| p.display().to_string())
        )));
    }
    let mut argv = args.command.clone();
    if let Some(first) = argv.first_mut() {
        *first = exe.display().to_string();
    }
    // As root, the program runs as a user id of its own (inside: SANDBOX_UID), so that
    // RLIMIT_NPROC counts only its processes (the kernel never applies it to root) and
    // root's files outside are not its own.
    let root = nix::unistd::geteuid().is_root();
    let inside = match (args.uid, root) {
        (Some(0), _) => None,
        (Some(u), true) => Some(u),
        (Some(_), false) => {
            return Err(RunError::Options(
                "--uid other than 0 needs a root caller (only one id can be mapped)".into(),
            ))
        }
        (None, true) => Some(SANDBOX_UID),
        (None, false) => None,
    };
    let scratch_dir = if args.no_namespaces {
        Some(without_namespaces(args, &mut binds, &mut env)?)
    } else {
        None
    };
    let egress = connect_files(args, &mut binds)?;
    let own_id = SANDBOX_ID_BASE + (std::process::id() & 0xffff);
    let (extra_id, switch_to, outside) = if args.no_namespaces {
        // The program runs as the caller.
        (None, None, None)
    } else if args.no_userns {
        // Degraded: no user namespace, so no mapping; the program takes its own id
        // as it is.
        if !root {
            return Err(RunError::Options(
                "--no-userns needs a root caller: without a user namespace an \
                 unprivileged caller can make no other namespace (its degraded mode is \
                 --no-namespaces)"
                    .into(),
            ));
        }
        if inside.is_none() {
            return Err(RunError::Options(
                "--no-userns with --uid 0 would run the program as real root".into(),
            ));
        }
        (None, Some((own_id, own_id)), Some(own_id))
    } else {
        let extra = inside.map(|u| (u, own_id, own_id));
        (extra, inside.map(|u| (u, u)), inside.map(|_| own_id))
    };
    let namespaces = if args.no_namespaces {
        Namespaces::none()
    } else {
        Namespaces {
            user: !args.no_userns,
            net: if args.share_net {
                NetMode::Shared
            } else {
                NetMode::Fresh
            },
            ..Namespaces::default()
        }
    };
    let at_tmp = binds.iter().any(|g| g.inside() == Path::new("/tmp"));
    let mounts_tmp = args.tmp_size() > 0 && !at_tmp && !args.no_namespaces;
    let scratch_tmp = mounts_tmp.then_some(args.tmp_size());
    Ok(Plan {
        binds,
        grants,
        exe,
        argv,
        env,
        scratch_tmp,
        extra_id,
        switch_to,
        outside,
        namespaces,
        find_files,
        scratch_dir,
        egress,
    })
}

/// `--connect`: the destinations resolved, and an /etc/hosts naming them and an
/// /etc/nsswitch.conf that reads only it, bound inside.
fn connect_files(
    args: &RunArgs,
    binds: &mut Vec<Bind>,
) -> Result<Option<(super::egress::AllowList, super::scratch::ScratchDir)>, RunError> {
    if args.connect.is_empty() {
        return Ok(None);
    }
    if args.no_namespaces || args.share_net {
        return Err(RunError::Options(
            "--connect needs the sandbox's own, empty network namespace (not with \
             --no-namespaces or --share-net)"
                .into(),
        ));
    }
    let allowed = super::egress::AllowList::resolve(&args.connect)?;
    let folder = super::scratch::ScratchDir::new()?;
    let io = |e: std::io::Error| RunError::Setup(format!("{}: {e}", folder.path().display()));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    for (name, text) in [
        ("hosts", allowed.hosts_file()),
        ("nsswitch.conf", "hosts: files\n".to_string()),
    ] {
        let file = folder.path().join(name);
        std::fs::write(&file, text).map_err(io)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).map_err(io)?;
        let meta = std::fs::metadata(&file).map_err(io)?;
        use std::os::unix::fs::MetadataExt;
        binds.push(Bind {
            path: file,
            writable: false,
            dest: Some(PathBuf::from("/etc").join(name)),
            identity: Some((meta.dev(), meta.ino())),
            tree: None,
        });
    }
    Ok(Some((allowed, folder)))
}

/// Step 1 for `--no-namespaces`: the options that need a namespace refused; a private
/// scratch folder granted, as HOME and TMPDIR (where `--env` does not set them and
/// `--clearenv` does not leave the environment empty).
fn without_namespaces(
    args: &RunArgs,
    binds: &mut Vec<Bind>,
    env: &mut Vec<String>,
) -> Result<super::scratch::ScratchDir, RunError> {
    let refuse = |why: &str| Err(RunError::Options(format!("--no-namespaces: {why}")));
    if nix::unistd::geteuid().is_root() {
        return refuse(
            "not for root (the program would run as root among the host's processes): \
             as root, --no-userns still makes the other namespaces",
        );
    }
    if args.no_userns {
        return refuse("and --no-userns: choose one");
    }
    if args.share_net {
        return refuse(
            "every socket is refused without a network namespace; leave out --share-net",
        );
    }
    if args.proc {
        return refuse("no /proc of its own without a pid namespace; leave out --proc");
    }
    if let Some(moved) = binds.iter().find(|b| b.dest.is_some()) {
        return refuse(&format!(
            "nothing is mounted, so {} can be granted only at its own path",
            moved.path.display()
        ));
    }
    let scratch = super::scratch::ScratchDir::new()?;
    binds.push(scratch.bind()?);
    for key in ["HOME", "TMPDIR"] {
        let set_by_caller = args
            .env
            .iter()
            .any(|kv| kv.split_once('=').map(|(k, _)| k) == Some(key));
        if !set_by_caller && !args.clearenv {
            env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
            env.push(format!("{key}={}", scratch.path().display()));
        }
    }
    Ok(scratch)
}

/// Whether a grant at its own path holds `file`.
pub(super) fn covered(binds: &[Bind], file: &Path) -> bool {
    binds
        .iter()
        .any(|g| g.dest.is_none() && file.starts_with(&g.path))
}

/// Step 3: the program's own files that no grant holds, each bound read-only at the
/// path the loader opens (~0.3 ms for /bin/true). Returns those paths.
pub(super) fn bind_program_files(plan: &mut Plan) -> Result<Vec<PathBuf>, RunError> {
    let mut auto_ro = Vec::new();
    if !plan.find_files {
        return Ok(auto_ro);
    }
    // What the caller granted may be used whatever its permissions.
    let granted: Vec<PathBuf> = plan
        .binds
        .iter()
        .filter(|g| g.dest.is_none())
        .filter_map(|g| std::fs::canonicalize(&g.path).ok())
        .collect();
    for file in crate::deps::needed_files(&plan.exe, &granted).map_err(RunError::ProgramFiles)? {
        if !covered(&plan.binds, &file.path) {
            // Bound from the file itself, at the path the loader opens: a symlink on
            // the way (/lib64/ld-linux-x86-64.so.2 is an absolute one) would otherwise
            // be followed inside the new root, where its target is not. The stage
            // checks that what it bound is the file checked here.
            // Without a mount (--no-namespaces), the real file is granted: the loader's
            // path leads to it.
            let moved = file.real != file.path && !plan.without_namespaces();
            plan.binds.push(Bind {
                dest: moved.then(|| file.path.clone()),
                path: file.real,
                writable: false,
                identity: Some(file.id),
                tree: None,
            });
            auto_ro.push(file.path);
        }
    }
    Ok(auto_ro)
}

//! Landlock through the `landlock` crate, as a hard requirement: every file access
//! right of the kernel's best ABI is handled, so anything not granted is denied.
//! Read-only grants get the read rights and execute; writable grants every right but
//! execute, so only files in read-only grants can be `execve`d (what a writable grant
//! holds may have been written by the sandbox itself). That is not a bound on code:
//! a readable file can still be mapped executable (the loader run directly, `mmap`);
//! the filter and the rest of the layers hold what such code could do. TCP
//! bind and connect are denied where the ABI has network rules (4+); abstract unix
//! sockets and signals are scoped to the sandbox where the ABI has scopes (6+).

use super::{Config, Layer, LockdownError, OptOut};
use crate::sys::process::landlock_abi;
use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

pub(super) struct Outcome {
    pub abi: u32,
    pub applied: bool,
    pub detail: String,
}

/// The lowest ABI [`OptOut::NoNamespaces`] accepts: the first with scopes.
pub(super) const NO_NAMESPACES_MIN_ABI: u32 = 6;

fn abi_of(version: u32) -> ABI {
    match version {
        0 => ABI::Unsupported,
        1 => ABI::V1,
        2 => ABI::V2,
        3 => ABI::V3,
        4 => ABI::V4,
        5 => ABI::V5,
        6 => ABI::V6,
        7 => ABI::V7,
        8 => ABI::V8,
        9 => ABI::V9,
        // The newest this crate knows; the kernel may know more, which is fine: we ask
        // for everything the crate can name.
        _ => ABI::V10,
    }
}

fn err(call: &'static str) -> impl Fn(landlock::RulesetError) -> LockdownError {
    move |e| LockdownError::msg(Layer::Landlock, call, e.to_string())
}

/// The kernel's Landlock ABI, if it can be used as `config` asks with `threads`
/// threads; `Err(outcome)` when it is missing and that was opted out of.
fn usable_abi(config: &Config, threads: usize) -> Result<Result<u32, Outcome>, LockdownError> {
    let (version, errno) = landlock_abi();
    if version == 0 {
        let why = match errno {
            Some(libc::ENOSYS) => "not built into this kernel (ENOSYS)",
            Some(libc::EOPNOTSUPP) => "disabled at boot (EOPNOTSUPP)",
            _ => "unavailable",
        };
        if config.opted_out(OptOut::AllowMissingLandlock) && !config.opted_out(OptOut::NoNamespaces)
        {
            return Ok(Err(Outcome {
                abi: 0,
                applied: false,
                detail: format!("Landlock {why}; opted out"),
            }));
        }
        return Err(LockdownError::msg(
            Layer::Landlock,
            "landlock_create_ruleset",
            format!("Landlock is {why}"),
        ));
    }
    if version < config.landlock_min_abi {
        return Err(LockdownError::msg(
            Layer::Landlock,
            "abi",
            format!(
                "the kernel has Landlock ABI {version}; ABI {} was required",
                config.landlock_min_abi
            ),
        ));
    }
    // Without namespaces, Landlock's scopes are what keep signals and abstract unix
    // sockets inside.
    if config.opted_out(OptOut::NoNamespaces) && version < NO_NAMESPACES_MIN_ABI {
        return Err(LockdownError::msg(
            Layer::Landlock,
            "abi",
            format!(
                "the kernel has Landlock ABI {version}; without namespaces ABI \
                 {NO_NAMESPACES_MIN_ABI} (Linux 6.12) is required, whose scopes keep the \
                 program's signals and abstract unix sockets from reaching other processes"
            ),
        ));
    }
    // ABI 8 brought LANDLOCK_RESTRICT_SELF_TSYNC; before it, a domain covers only the
    // calling thread.
    if threads > 1 && version < 8 && !config.opted_out(OptOut::LandlockCallingThreadOnly) {
        return Err(LockdownError::msg(
            Layer::Landlock,
            "threads",
            format!(
                "{threads} threads exist and Landlock ABI {version} restricts only the calling thread: \
                 lock down before starting threads, or opt out with LandlockCallingThreadOnly"
            ),
        ));
    }
    Ok(Ok(version))
}

pub(super) fn restrict(config: &Config, threads: usize) -> Result<Outcome, LockdownError> {
    let version = match usable_abi(config, threads)? {
        Ok(version) => version,
        Err(opted_out) => return Ok(opted_out),
    };
    if config.keeps_root() {
        // Both would grant the host's own folder.
        if config.scratch_tmp.is_some() || config.mount_proc {
            return Err(LockdownError::msg(
                Layer::Landlock,
                "grant",
                "a scratch /tmp or a /proc is mounted in the empty root, which this \
                 configuration keeps as it is: leave them out"
                    .into(),
            ));
        }
        if let Some(moved) = config.binds.iter().find(|b| b.inside() != b.path) {
            return Err(LockdownError::msg(
                Layer::Landlock,
                "grant",
                format!(
                    "{} cannot appear at {} without an empty root (nothing is mounted): \
                     grant it at its own path",
                    moved.path.display(),
                    moved.inside().display()
                ),
            ));
        }
    }
    let abi = abi_of(version);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err("handle_access(fs)"))?;
    let mut parts = vec![format!(
        "ABI {version}: all {} file access rights handled",
        AccessFs::from_all(abi).iter().count()
    )];
    if version >= 4 {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(err("handle_access(net)"))?;
        parts.push("tcp bind/connect denied".into());
    }
    if version >= 6 {
        ruleset = ruleset.scope(Scope::from_all(abi)).map_err(err("scope"))?;
        parts.push("abstract unix sockets and signals scoped".into());
    }
    let ro: Vec<_> = config
        .binds
        .iter()
        .filter(|g| !g.writable)
        .map(|g| g.inside().to_path_buf())
        .collect();
    let mut ro = ro;
    if config.mount_proc {
        ro.push(std::path::PathBuf::from("/proc"));
    }
    let mut rw: Vec<_> = config
        .binds
        .iter()
        .filter(|g| g.writable)
        .map(|g| g.inside().to_path_buf())
        .collect();
    if config.scratch_tmp.is_some() {
        rw.push(std::path::PathBuf::from(super::root::SCRATCH_TMP));
    }
    let status = ruleset
        .create()
        .map_err(err("landlock_create_ruleset"))?
        .add_rules(path_beneath_rules(&ro, AccessFs::from_read(abi)))
        .map_err(err("landlock_add_rule(read-only)"))?
        .add_rules(path_beneath_rules(
            &rw,
            AccessFs::from_all(abi) & !AccessFs::Execute,
        ))
        .map_err(err("landlock_add_rule(read-write)"))?
        .restrict_self()
        .map_err(err("landlock_restrict_self"))?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(LockdownError::msg(
            Layer::Landlock,
            "landlock_restrict_self",
            format!("ruleset {:?}", status.ruleset),
        ));
    }
    parts.push(format!(
        "{} read-only and {} read-write grants",
        ro.len(),
        rw.len()
    ));
    Ok(Outcome {
        abi: version,
        applied: true,
        detail: parts.join("; "),
    })
}

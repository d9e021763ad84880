//! User and group ids: the maps a spawner writes for its child, and the outside ids of
//! their own that a root spawner gives renderers.

use super::namespaces::NetMode;
use super::spawn::{ns_err, SpawnSpec};
use super::LaunchError;

/// The first of the outside user and group ids a root spawner gives its renderers
/// ([`SpawnSpec::outside_id`]): a renderer of a root broker is not root outside its
/// user namespace, and — one id each — RLIMIT_NPROC (which the kernel never applies
/// to root) counts its threads alone.
pub const OWN_ID_BASE: u32 = 0x7fe0_0000;
/// How many outside ids from [`OWN_ID_BASE`] renderers may get.
pub const OWN_ID_RANGE: u32 = 1 << 20;

/// An outside id of its own for renderer number `n` of the process `pid`, in
/// [`OWN_ID_BASE`]'s range (1024 renderers a process before ids repeat; processes whose
/// pids agree modulo 1024 share ids — both sides of a collision are sandboxes).
pub fn own_id(pid: u32, n: u64) -> u32 {
    OWN_ID_BASE + ((pid & 0x3ff) << 10) + (n & 0x3ff) as u32
}

/// Map uid/gid 0 inside the user namespace of `pid` (a child just cloned with
/// CLONE_NEWUSER, not yet past its maps) to our euid/egid, setgroups denied first; or,
/// with `outside`, to that id (a root caller; setgroups stays allowed so that the child
/// can drop its groups as it takes the id).
pub fn map_ids(pid: i32, outside: Option<u32>) -> Result<(), LaunchError> {
    write_id_maps(pid, None, outside)
}

/// The id a `join` child maps 0 to for itself, in the joined namespace: `id` less the
/// range's start; or, without `join`, nothing to map (the parent writes the maps).
pub(super) fn joined_id(spec: &SpawnSpec, id: u32) -> Result<u32, LaunchError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(LaunchError::msg(
            "spec",
            "an outside id of the renderer's own needs a root spawner".into(),
        ));
    }
    match &spec.namespaces.net {
        NetMode::Reuse(n) if !n.own_ids => Err(LaunchError::msg(
            "spec",
            "an outside id of the renderer's own needs an EmptyNetwork made by root".into(),
        )),
        NetMode::Reuse(_) => id
            .checked_sub(OWN_ID_BASE)
            .filter(|k| *k < OWN_ID_RANGE)
            .ok_or_else(|| {
                LaunchError::msg(
                    "spec",
                    format!("outside id {id:#x} is not in the shared network's range"),
                )
            }),
        _ => Ok(0),
    }
}

/// setgroups = deny, then uid/gid 0 inside mapped to our euid/egid outside (or to
/// `outside`, setgroups left allowed), with the `extra` mapping.
pub(super) fn write_id_maps(
    pid: i32,
    extra: Option<(u32, u32, u32)>,
    outside: Option<u32>,
) -> Result<(), LaunchError> {
    let uid = outside.unwrap_or(nix::unistd::geteuid().as_raw());
    let gid = outside.unwrap_or(nix::unistd::getegid().as_raw());
    let (more_uid, more_gid) = match extra {
        Some((inside, ou, og)) => (format!("{inside} {ou} 1\n"), format!("{inside} {og} 1\n")),
        None => (String::new(), String::new()),
    };
    let write = |file: &str, text: String| std::fs::write(format!("/proc/{pid}/{file}"), text);
    // An unprivileged caller must deny setgroups to write a gid map; root need not,
    // and leaves it allowed so that the child can drop root's supplementary groups
    // when it takes another id (`outside`, or `Config::switch_to` in lockdown).
    if !nix::unistd::geteuid().is_root() {
        write("setgroups", "deny".into()).map_err(ns_err("write /proc/PID/setgroups"))?;
    }
    write("uid_map", format!("0 {uid} 1\n{more_uid}"))
        .map_err(ns_err("write /proc/PID/uid_map"))?;
    write("gid_map", format!("0 {gid} 1\n{more_gid}")).map_err(ns_err("write /proc/PID/gid_map"))
}

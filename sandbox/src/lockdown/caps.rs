//! Capabilities: securebits locked, bounding and ambient sets emptied, effective,
//! permitted and inheritable sets emptied; the process made non-dumpable (unless it is
//! about to exec: `Config::dumpable_until_exec`); the parent-death signal checked.
//!
//! Order matters: securebits and the bounding set need CAP_SETPCAP, so they go first;
//! capset empties the sets last. An unprivileged process ([`OptOut::NoNamespaces`](super::OptOut::NoNamespaces)) has no
//! CAP_SETPCAP: its bounding set and securebits stay as they are (with no_new_privs, no
//! execve can raise a capability from them), the rest is as for everyone.

use super::{Layer, LockdownError};
use crate::sys::process::{capget, capset_none, prctl_int};

/// SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_NO_CAP_AMBIENT_RAISE and the
/// lock bits of all four (KEEP_CAPS stays off, locked).
pub(super) const SECUREBITS: libc::c_ulong = 0b1110_1111;

fn err(call: &'static str) -> impl Fn(std::io::Error) -> LockdownError {
    move |e| LockdownError::new(Layer::Capabilities, call, e)
}

pub(super) fn drop_all(
    cap_last_cap: u32,
    switch_to: Option<(u32, u32)>,
    unprivileged: bool,
    dumpable: bool,
) -> Result<(), LockdownError> {
    if unprivileged && switch_to.is_some() {
        return Err(LockdownError::msg(
            Layer::Capabilities,
            "setresuid",
            "an unprivileged process cannot switch to another user id".into(),
        ));
    }
    if !unprivileged {
        prctl_int(libc::PR_SET_SECUREBITS, SECUREBITS, 0)
            .map_err(err("prctl(PR_SET_SECUREBITS)"))?;
        for cap in 0..=cap_last_cap {
            prctl_int(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0)
                .map_err(err("prctl(PR_CAPBSET_DROP)"))?;
        }
    }
    prctl_int(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .map_err(err("prctl(PR_CAP_AMBIENT_CLEAR_ALL)"))?;
    if let Some((uid, gid)) = switch_to {
        let (u, g) = (
            nix::unistd::Uid::from_raw(uid),
            nix::unistd::Gid::from_raw(gid),
        );
        // No supplementary groups either (a root spawner's groups would otherwise stay:
        // group 0 is mapped, and opens every group-root file of a bind). Another id
        // can be mapped only by a root spawner, which leaves setgroups allowed.
        nix::unistd::setgroups(&[])
            .map_err(|e| LockdownError::new(Layer::Capabilities, "setgroups", e.into()))?;
        nix::unistd::setresgid(g, g, g)
            .map_err(|e| LockdownError::new(Layer::Capabilities, "setresgid", e.into()))?;
        nix::unistd::setresuid(u, u, u)
            .map_err(|e| LockdownError::new(Layer::Capabilities, "setresuid", e.into()))?;
    }
    capset_none().map_err(err("capset"))?;
    // (Set either way: a change of user id has just made the process non-dumpable.)
    prctl_int(libc::PR_SET_DUMPABLE, libc::c_ulong::from(dumpable), 0)
        .map_err(err("prctl(PR_SET_DUMPABLE)"))?;
    // The spawner arms PR_SET_PDEATHSIG before exec (and checks the race); a renderer
    // started some other way gets it here.
    if nix::sys::prctl::get_pdeathsig().ok().flatten() != Some(nix::sys::signal::Signal::SIGKILL) {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(|e| {
            LockdownError::new(Layer::Capabilities, "prctl(PR_SET_PDEATHSIG)", e.into())
        })?;
    }
    Ok(())
}

/// Read everything back; any difference is an error (`unprivileged`: the bounding set
/// and securebits are not asked to have changed; `dumpable`: the process was asked to
/// stay dumpable until its exec).
pub(super) fn verify(
    cap_last_cap: u32,
    unprivileged: bool,
    dumpable: bool,
) -> Result<String, LockdownError> {
    let (eff, prm, inh) = capget().map_err(err("capget"))?;
    let mut bounding = 0u64;
    for cap in 0..=cap_last_cap.min(63) {
        if prctl_int(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0)
            .map_err(err("prctl(PR_CAPBSET_READ)"))?
            != 0
        {
            bounding |= 1 << cap;
        }
    }
    let ambient_any = (0..=cap_last_cap.min(63)).try_fold(false, |any, cap| {
        prctl_int(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong,
            libc::c_ulong::from(cap),
        )
        .map(|r| any || r != 0)
    });
    let ambient_any = ambient_any.map_err(err("prctl(PR_CAP_AMBIENT_IS_SET)"))?;
    let secbits =
        prctl_int(libc::PR_GET_SECUREBITS, 0, 0).map_err(err("prctl(PR_GET_SECUREBITS)"))?;
    let dumpable_now =
        prctl_int(libc::PR_GET_DUMPABLE, 0, 0).map_err(err("prctl(PR_GET_DUMPABLE)"))?;
    let pdeathsig = nix::sys::prctl::get_pdeathsig().ok().flatten();
    let detail = format!(
        "eff={eff:#x} prm={prm:#x} inh={inh:#x} bnd={bounding:#x} amb={ambient_any} securebits={secbits:#x} dumpable={dumpable_now} pdeathsig={pdeathsig:?}"
    );
    let kept = if unprivileged {
        "; bounding set and securebits kept (no CAP_SETPCAP; no_new_privs)"
    } else {
        ""
    };
    let detail = format!("{detail}{kept}");
    let ok = eff == 0
        && prm == 0
        && inh == 0
        && (unprivileged || bounding == 0)
        && !ambient_any
        && (unprivileged || secbits as libc::c_ulong == SECUREBITS)
        && dumpable_now == i32::from(dumpable)
        && pdeathsig == Some(nix::sys::signal::Signal::SIGKILL);
    if ok {
        Ok(detail)
    } else {
        Err(LockdownError::msg(Layer::Capabilities, "verify", detail))
    }
}

//! What this kernel and this user can provide, for `sandbox check`.

use crate::policy::Action;
use crate::seccomp;
use crate::sys::{process, spawn};
use serde::{Deserialize, Serialize};

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// What was probed.
    pub name: String,
    /// Whether it is there.
    pub available: bool,
    /// Whether the default renderer configuration needs it.
    pub required: bool,
    /// Details (errno, version).
    pub detail: String,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelReport {
    /// Every probe, in order.
    pub features: Vec<Feature>,
}

impl KernelReport {
    /// Whether every feature the default renderer configuration needs is there.
    pub fn default_config_applies(&self) -> bool {
        self.features.iter().all(|f| f.available || !f.required)
    }
}

fn feature(name: &str, required: bool, r: Result<String, String>) -> Feature {
    let (available, detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Feature {
        name: name.to_string(),
        available,
        required,
        detail,
    }
}

/// Create a child in the namespaces `flags` (CLONE_NEW* bits) that exits at once, and
/// reap it. (Also the cost floor of any spawn into those namespaces.)
pub fn clone_in_namespaces(flags: libc::c_int) -> std::io::Result<()> {
    spawn::clone_probe(flags)
}

fn clone_with(flags: libc::c_int) -> Result<String, String> {
    clone_in_namespaces(flags)
        .map(|()| String::new())
        .map_err(|e| e.to_string())
}

/// Probe the running kernel.
pub fn kernel_report() -> KernelReport {
    let mut f = Vec::new();
    // A made namespace can still be powerless: AppArmor's restriction lets the clone
    // succeed and denies capabilities inside; the facts say so before any probe.
    let facts = super::userns::UsernsFacts::read();
    f.push(feature(
        "user namespaces",
        true,
        match clone_in_namespaces(libc::CLONE_NEWUSER) {
            Err(e) => Err(format!(
                "{e}: {}",
                super::userns::diagnose(e.raw_os_error(), &facts)
            )),
            Ok(()) if facts.apparmor_restricts() => Err(super::userns::diagnose(None, &facts)),
            Ok(()) => Ok(String::new()),
        },
    ));
    for (name, flag) in [
        ("pid namespace", libc::CLONE_NEWPID),
        ("network namespace", libc::CLONE_NEWNET),
        ("mount namespace", libc::CLONE_NEWNS),
        ("ipc namespace", libc::CLONE_NEWIPC),
        ("uts namespace", libc::CLONE_NEWUTS),
        ("cgroup namespace", libc::CLONE_NEWCGROUP),
    ] {
        f.push(feature(name, true, clone_with(libc::CLONE_NEWUSER | flag)));
    }
    let (abi, errno) = process::landlock_abi();
    f.push(feature(
        "landlock",
        true,
        if abi > 0 {
            Ok(format!("ABI {abi}"))
        } else {
            Err(match errno {
                Some(libc::ENOSYS) => "unavailable: this kernel has no Landlock (ENOSYS)".into(),
                Some(libc::EOPNOTSUPP) => {
                    "unavailable: Landlock is built in but not enabled (EOPNOTSUPP: add \
                     landlock to the lsm= boot parameter)"
                        .into()
                }
                Some(e) => format!("unavailable: {}", std::io::Error::from_raw_os_error(e)),
                None => "unavailable".into(),
            })
        },
    ));
    for (name, action, required) in [
        ("seccomp kill-process", Action::KillProcess, true),
        ("seccomp kill-thread", Action::KillThread, false),
        ("seccomp trap", Action::Trap(0), true),
        ("seccomp errno", Action::Errno(1), true),
        ("seccomp user-notify", Action::UserNotify, false),
        ("seccomp trace", Action::Trace(0), false),
        ("seccomp log", Action::Log, false),
        ("seccomp allow", Action::Allow, true),
    ] {
        let ok = seccomp::action_available(action);
        f.push(feature(
            name,
            required,
            if ok {
                Ok(String::new())
            } else {
                Err("SECCOMP_GET_ACTION_AVAIL says no".into())
            },
        ));
    }
    let yes_no = |ok: bool, no: &str| {
        if ok {
            Ok(String::new())
        } else {
            Err(no.to_string())
        }
    };
    f.push(feature(
        "seccomp TSYNC",
        true,
        yes_no(
            process::seccomp_flag_known(seccomp::FLAG_TSYNC),
            "flag refused",
        ),
    ));
    f.push(feature(
        "seccomp user notification listener",
        false,
        yes_no(
            process::seccomp_flag_known(1 << 3),
            "SECCOMP_FILTER_FLAG_NEW_LISTENER refused",
        ),
    ));
    f.push(feature(
        "pidfd",
        false,
        yes_no(process::pidfd_works(), "pidfd_open failed"),
    ));
    // Without it the descriptor layer closes each open descriptor (slower, as strong).
    f.push(feature(
        "close_range",
        false,
        yes_no(
            process::close_range_works(),
            "ENOSYS: descriptors are closed one by one",
        ),
    ));
    // Grants (client.open, a renderer's own file calls, --broker-ro) need it.
    f.push(feature(
        "openat2",
        false,
        yes_no(
            process::openat2_exists(),
            "ENOSYS: file grants are refused (no safe resolution beneath a folder)",
        ),
    ));
    // `sandbox run` holds --pids and --mem with these where it can.
    let places = super::cgroup::Places::read();
    for (name, controller) in [
        ("pids cgroup", super::cgroup::Controller::Pids),
        ("memory cgroup", super::cgroup::Controller::Memory),
    ] {
        f.push(feature(
            name,
            false,
            super::cgroup::probe(&places, controller),
        ));
    }
    KernelReport { features: f }
}

impl std::fmt::Display for KernelReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<36} {:<10} {:<9} detail",
            "feature", "available", "required"
        )?;
        for x in &self.features {
            writeln!(
                f,
                "{:<36} {:<10} {:<9} {}",
                x.name,
                if x.available { "yes" } else { "NO" },
                if x.required { "yes" } else { "" },
                x.detail
            )?;
        }
        if self.default_config_applies() {
            writeln!(
                f,
                "\nthe default renderer configuration can be applied in full"
            )
        } else {
            writeln!(
                f,
                "\nthe default renderer configuration CANNOT be applied in full"
            )
        }
    }
}

/// The old name of [`kernel_report`] (one "probe" in the crate is enough:
/// `sandbox::probe`, the test support).
#[deprecated(note = "use kernel_report")]
pub fn probe() -> KernelReport {
    kernel_report()
}

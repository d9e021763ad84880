//! Which namespaces a sandboxed process is started in, and which network.

use super::network::EmptyNetwork;
use std::sync::Arc;

/// The network namespace a renderer gets.
#[derive(Clone, Debug)]
pub enum NetMode {
    /// A new, empty network namespace (about 0.5 ms of kernel work per spawn here).
    Fresh,
    /// One empty network namespace made once and joined by every renderer.
    Reuse(Arc<EmptyNetwork>),
    /// The caller's network namespace (an opt-out).
    Shared,
}

impl PartialEq for NetMode {
    fn eq(&self, other: &NetMode) -> bool {
        matches!(
            (self, other),
            (NetMode::Fresh, NetMode::Fresh)
                | (NetMode::Shared, NetMode::Shared)
                | (NetMode::Reuse(_), NetMode::Reuse(_))
        )
    }
}

/// Which namespaces to create. Default: all of them, with a fresh network namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct Namespaces {
    /// New user namespace (needed for the others when unprivileged).
    pub user: bool,
    /// New pid namespace.
    pub pid: bool,
    /// Network namespace.
    pub net: NetMode,
    /// New mount namespace (needed for the empty root).
    pub mount: bool,
    /// New IPC namespace.
    pub ipc: bool,
    /// New UTS namespace.
    pub uts: bool,
    /// New cgroup namespace.
    pub cgroup: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            user: true,
            pid: true,
            net: NetMode::Fresh,
            mount: true,
            ipc: true,
            uts: true,
            cgroup: true,
        }
    }
}

impl Namespaces {
    /// No new namespace at all: the child shares every one of the caller's (for a
    /// process that is not a sandbox, such as a zygote that makes them per child).
    pub fn none() -> Namespaces {
        Namespaces {
            user: false,
            pid: false,
            net: NetMode::Shared,
            mount: false,
            ipc: false,
            uts: false,
            cgroup: false,
        }
    }

    /// The CLONE_NEW* flags these namespaces need (a reused network namespace cannot
    /// be expressed as a flag).
    pub fn clone_flags(&self) -> libc::c_int {
        let mut f = 0;
        let mut set = |on: bool, flag: libc::c_int| {
            if on {
                f |= flag;
            }
        };
        set(self.user, libc::CLONE_NEWUSER);
        set(self.pid, libc::CLONE_NEWPID);
        set(self.net == NetMode::Fresh, libc::CLONE_NEWNET);
        set(self.mount, libc::CLONE_NEWNS);
        set(self.ipc, libc::CLONE_NEWIPC);
        set(self.uts, libc::CLONE_NEWUTS);
        set(self.cgroup, libc::CLONE_NEWCGROUP);
        f
    }

    /// The `/proc/PID/ns/*` names of the namespaces that must differ from the caller's.
    pub fn expected_new(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, name) in [
            (self.user, "user"),
            (self.pid, "pid"),
            (self.net != NetMode::Shared, "net"),
            (self.mount, "mnt"),
            (self.ipc, "ipc"),
            (self.uts, "uts"),
            (self.cgroup, "cgroup"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }
}

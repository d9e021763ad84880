//! Why a user namespace could not be made, in words, with what to do about it: the
//! sysctls (`user.max_user_namespaces`, Debian's `kernel.unprivileged_userns_clone`),
//! AppArmor's restriction on unprivileged user namespaces (Ubuntu 23.10+), a
//! container's seccomp filter, a kernel without them.

use std::path::Path;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// What the system says about user namespaces for this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsernsFacts {
    /// `/proc/sys/user/max_user_namespaces`.
    pub max_user_namespaces: Option<u64>,
    /// `/proc/sys/kernel/unprivileged_userns_clone` (Debian's older patch).
    pub unprivileged_userns_clone: Option<u64>,
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns`.
    pub apparmor_restrict: Option<u64>,
    /// This process's AppArmor label (`unconfined`, `sandbox (unconfined)`...).
    pub apparmor_label: Option<String>,
    /// The effective uid is 0.
    pub root: bool,
}

impl UsernsFacts {
    /// Read from /proc.
    pub fn read() -> UsernsFacts {
        let num = |p: &str| read(p).and_then(|s| s.parse().ok());
        UsernsFacts {
            max_user_namespaces: num("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: num("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict: num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            apparmor_label: read("/proc/self/attr/apparmor/current")
                .or_else(|| read("/proc/self/attr/current")),
            root: nix::unistd::geteuid().is_root(),
        }
    }

    /// Whether AppArmor's restriction applies to this process: on, not root, and
    /// unconfined (a profile granting `userns` exempts it).
    pub fn apparmor_restricts(&self) -> bool {
        self.apparmor_restrict == Some(1)
            && !self.root
            && self.apparmor_label.as_deref() == Some("unconfined")
    }
}

/// The cause and the remedies, for a failure with `errno` while making or entering
/// a user namespace (several lines, each a sentence).
pub fn diagnose(errno: Option<i32>, facts: &UsernsFacts) -> String {
    let apparmor_profile = "install the AppArmor profile shipped in packaging/apparmor/ \
                            (see its README), which allows user namespaces for the sandbox \
                            binary only";
    let cause = if facts.max_user_namespaces == Some(0) {
        "the sysctl user.max_user_namespaces is 0, which switches them off. Remedy: sysctl -w user.max_user_namespaces=15000 (as root; persist it in \
         /etc/sysctl.d/)"
            .to_string()
    } else if facts.unprivileged_userns_clone == Some(0) && !facts.root {
        "the sysctl kernel.unprivileged_userns_clone is 0, which switches them off for \
         callers other than root. Remedy: sysctl -w \
         kernel.unprivileged_userns_clone=1 (as root), or run as root"
            .to_string()
    } else if facts.apparmor_restricts() {
        format!(
            "AppArmor restricts unprivileged user namespaces \
             (kernel.apparmor_restrict_unprivileged_userns = 1, Ubuntu 23.10 and later): \
             the namespace is made but gets no capabilities, so mounts and id maps fail. \
             Remedy: {apparmor_profile}; or run as root; or (weakening the whole system) \
             sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
        )
    } else {
        match errno {
            Some(libc::ENOSPC) => format!(
                "the limit of user namespaces is reached (user.max_user_namespaces = {}). \
                 Remedy: raise it, or end processes that hold user namespaces",
                facts
                    .max_user_namespaces
                    .map_or("unknown".into(), |n| n.to_string())
            ),
            Some(libc::EINVAL) if !Path::new("/proc/self/ns/user").exists() => {
                "this kernel has no user namespaces (CONFIG_USER_NS). Remedy: a kernel \
                 built with them"
                    .to_string()
            }
            Some(libc::EPERM) | Some(libc::EACCES) => format!(
                "something outside the sandbox refuses user namespaces: most often a \
                 container's seccomp filter (Docker's and Podman's default profiles refuse \
                 clone and unshare with CLONE_NEWUSER) or a security module{}. Remedy: run \
                 the container with a profile that allows them (e.g. docker run \
                 --security-opt seccomp=PROFILE allowing clone/unshare with \
                 CLONE_NEWUSER), or run the sandbox outside the container",
                if facts.apparmor_restrict == Some(1) {
                    format!(" (AppArmor's restriction is on; {apparmor_profile})")
                } else {
                    String::new()
                }
            ),
            _ => "user namespaces are unavailable for a reason the system does not say".to_string(),
        }
    };
    let degraded = if facts.root {
        " As root, `sandbox run --no-userns` runs the sandbox's other namespaces without a \
         user namespace (a degraded mode, named in the status report)."
    } else {
        " Without privilege, `sandbox run --no-namespaces` runs the program under \
         no_new_privs, Landlock and the filter but in no namespace (a degraded mode, named \
         in the status report; see docs/sandbox-run.md)."
    };
    format!(
        "user namespaces are not available: {cause}.{degraded} `sandbox check` shows what \
         this kernel offers."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> UsernsFacts {
        UsernsFacts {
            max_user_namespaces: Some(15000),
            apparmor_label: Some("unconfined".into()),
            ..UsernsFacts::default()
        }
    }

    #[test]
    fn each_cause_is_named_with_its_remedy() {
        let f = UsernsFacts {
            max_user_namespaces: Some(0),
            ..facts()
        };
        assert!(diagnose(Some(libc::ENOSPC), &f).contains("user.max_user_namespaces is 0, which"));
        let f = UsernsFacts {
            apparmor_restrict: Some(1),
            ..facts()
        };
        let d = diagnose(Some(libc::EACCES), &f);
        assert!(
            d.contains("apparmor_restrict_unprivileged_userns = 1")
                && d.contains("packaging/apparmor"),
            "{d}"
        );
        let root = UsernsFacts { root: true, ..f };
        assert!(!diagnose(Some(libc::EPERM), &root).contains("= 1, Ubuntu"));
        let d = diagnose(Some(libc::EPERM), &facts());
        assert!(d.contains("container's seccomp filter"), "{d}");
        let f = UsernsFacts {
            unprivileged_userns_clone: Some(0),
            ..facts()
        };
        assert!(diagnose(Some(libc::EPERM), &f).contains("kernel.unprivileged_userns_clone is 0"));
    }
}

//! The trusted side's check that a renderer is locked down as asked: what
//! `/proc/PID/status` and `/proc/PID/ns/*` say, against what the spawner asked — not
//! against the renderer's own report, which is checked against the same.

use crate::lockdown::{Layer, OptOut, Status};
use serde::{Deserialize, Serialize};

/// What the trusted side reads about a renderer from outside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideView {
    /// `NoNewPrivs:` in /proc/PID/status.
    pub no_new_privs: bool,
    /// `Seccomp:` (2 = filter).
    pub seccomp_mode: u32,
    /// `Seccomp_filters:`.
    pub seccomp_filters: u32,
    /// `CapEff`, `CapPrm`, `CapInh`, `CapBnd`, `CapAmb`.
    pub caps: [u64; 5],
    /// Namespaces (by /proc/PID/ns name) that differ from the caller's.
    pub new_namespaces: Vec<String>,
}

fn field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
}

/// What the trusted side asked of a renderer: the checks from outside follow this, not
/// the renderer's own report.
#[derive(Clone, Copy, Debug)]
pub struct Asked<'a> {
    /// The opt-outs the renderer was given (every other layer is required).
    pub opt_outs: &'a [OptOut],
    /// The `/proc/PID/ns/*` names of the namespaces that must be new.
    pub new_namespaces: &'a [&'a str],
}

/// The layers `opt_outs` leave out altogether (the others are required; Landlock may
/// be missing only with [`OptOut::AllowMissingLandlock`]).
fn skipped_by(opt_outs: &[OptOut]) -> Vec<Layer> {
    let mut skipped = Vec::new();
    let no_namespaces = opt_outs.contains(&OptOut::NoNamespaces);
    if opt_outs.contains(&OptOut::KeepRoot) || no_namespaces {
        skipped.push(Layer::EmptyRoot);
    }
    if opt_outs.contains(&OptOut::NoSeccomp) {
        skipped.push(Layer::Seccomp);
    }
    if opt_outs.contains(&OptOut::NoUserNamespace) || no_namespaces {
        skipped.push(Layer::Namespaces);
    }
    skipped
}

/// The namespaces `/proc/PID/ns/` names that [`verify_from_outside`] compares.
const NAMESPACES: [&str; 7] = ["user", "pid", "net", "mnt", "ipc", "uts", "cgroup"];

/// A process's namespaces seen from outside (`/proc/PID/ns/*`, each read once) next to
/// the caller's. A process keeps its namespaces unless it changes them itself: a
/// spawner whose child runs only the spawner's code until it execs may read them as
/// soon as the child exists, while it locks down, and check the rest later
/// ([`verify_with_namespaces`]).
#[derive(Clone, Debug)]
pub struct NamespaceLinks {
    /// (name, whether the process's link was readable, whether it differs from the
    /// caller's)
    links: Vec<(&'static str, bool, bool)>,
}

impl NamespaceLinks {
    /// Read `pid`'s and the caller's.
    pub fn read(pid: i32) -> NamespaceLinks {
        let links = NAMESPACES
            .iter()
            .map(|ns| {
                let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok();
                let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).ok();
                let new = theirs.is_some() && theirs != ours;
                (*ns, theirs.is_some(), new)
            })
            .collect();
        NamespaceLinks { links }
    }

    fn readable(&self, ns: &str) -> bool {
        self.links
            .iter()
            .any(|(n, readable, _)| *n == ns && *readable)
    }

    fn new_ones(&self) -> Vec<String> {
        self.links
            .iter()
            .filter(|(_, _, new)| *new)
            .map(|(ns, _, _)| ns.to_string())
            .collect()
    }
}

/// Read `/proc/PID/status` and `/proc/PID/ns/*` of `pid` and check them, and the
/// renderer's own `report`, against what was `asked`: the report must carry exactly
/// the opt-outs asked, list every layer asked for as requested, applied and verified
/// (Landlock may be unapplied only where [`OptOut::AllowMissingLandlock`] was asked),
/// and what can be read from outside — no_new_privs, seccomp filter mode, empty
/// capability sets, new namespaces — is checked for every layer asked, whatever the
/// report says. Every mismatch is listed in the error.
pub fn verify_from_outside(
    pid: i32,
    report: &Status,
    asked: &Asked<'_>,
) -> Result<OutsideView, Vec<String>> {
    verify_with_namespaces(pid, report, asked, &NamespaceLinks::read(pid))
}

/// [`verify_from_outside`] with `pid`'s namespaces read earlier (see
/// [`NamespaceLinks`]).
pub fn verify_with_namespaces(
    pid: i32,
    report: &Status,
    asked: &Asked<'_>,
    namespaces: &NamespaceLinks,
) -> Result<OutsideView, Vec<String>> {
    let mut problems = Vec::new();
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| vec![format!("/proc/{pid}/status: {e}")])?;
    let num = |name: &str| {
        field(&text, name)
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let hex = |name: &str| {
        field(&text, name)
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .unwrap_or(u64::MAX)
    };
    let view = OutsideView {
        no_new_privs: num("NoNewPrivs:") == 1,
        seccomp_mode: num("Seccomp:"),
        seccomp_filters: num("Seccomp_filters:"),
        caps: [
            hex("CapEff:"),
            hex("CapPrm:"),
            hex("CapInh:"),
            hex("CapBnd:"),
            hex("CapAmb:"),
        ],
        new_namespaces: namespaces.new_ones(),
    };
    let mut theirs = report.opt_outs.clone();
    let mut ours = asked.opt_outs.to_vec();
    let key = |o: &OptOut| format!("{o:?}");
    theirs.sort_by_key(key);
    theirs.dedup();
    ours.sort_by_key(key);
    ours.dedup();
    if theirs != ours {
        problems.push(format!(
            "the renderer reports opt-outs {theirs:?}; the broker asked for {ours:?}"
        ));
    }
    let skipped = skipped_by(asked.opt_outs);
    let landlock_optional = asked.opt_outs.contains(&OptOut::AllowMissingLandlock);
    for layer in Layer::ALL {
        let wanted = !skipped.contains(&layer);
        let line = report.layer(layer);
        let requested = line.is_some_and(|l| l.requested);
        let done = line.is_some_and(|l| l.applied && l.verified);
        if wanted && !requested {
            problems.push(format!(
                "the renderer reports {layer} as not requested; it was asked for"
            ));
        } else if wanted && !done && !(layer == Layer::Landlock && landlock_optional) {
            problems.push(format!(
                "the renderer reports {layer} as requested but not applied and verified"
            ));
        }
    }
    if !view.no_new_privs {
        problems.push("NoNewPrivs is not 1".into());
    }
    if !skipped.contains(&Layer::Seccomp) && (view.seccomp_mode != 2 || view.seccomp_filters == 0) {
        problems.push(format!(
            "Seccomp is {} with {} filters, not filter mode",
            view.seccomp_mode, view.seccomp_filters
        ));
    }
    // An unprivileged process cannot empty its bounding set (see OptOut::NoNamespaces).
    let [eff, prm, inh, _, amb] = view.caps;
    let unprivileged = asked.opt_outs.contains(&OptOut::NoNamespaces);
    if (unprivileged && [eff, prm, inh, amb] != [0; 4]) || (!unprivileged && view.caps != [0; 5]) {
        problems.push(format!("capabilities not empty: {:x?}", view.caps));
    }
    for ns in asked.new_namespaces {
        if !namespaces.readable(ns) {
            problems.push(format!(
                "cannot read /proc/{pid}/ns/{ns} (has the renderer exited?)"
            ));
        } else if !view.new_namespaces.iter().any(|n| n == ns) {
            problems.push(format!("namespace {ns} is the caller's"));
        }
    }
    if problems.is_empty() {
        Ok(view)
    } else {
        Err(problems)
    }
}

//! The lockdown status report: for every layer, whether it was requested, applied and
//! verified, with a short detail — like chrome://sandbox. The renderer sends it to the
//! trusted side, which decodes it under a size limit, checks it, and then verifies
//! what it can from outside (`/proc/PID/status`, `/proc/PID/ns/*`).

use super::root::RootMethod;
use super::{Config, OptOut};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The layers, in the order they are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Layer {
    /// Namespaces, created at spawn.
    Namespaces = 0,
    /// The empty root.
    EmptyRoot = 1,
    /// Descriptor hygiene.
    Fds = 2,
    /// Resource limits.
    Rlimits = 3,
    /// Capabilities, securebits, dumpability, parent-death signal.
    Capabilities = 4,
    /// no_new_privs.
    NoNewPrivs = 5,
    /// Landlock.
    Landlock = 6,
    /// The seccomp filter.
    Seccomp = 7,
}

impl Layer {
    /// All layers in order.
    pub const ALL: [Layer; 8] = [
        Layer::Namespaces,
        Layer::EmptyRoot,
        Layer::Fds,
        Layer::Rlimits,
        Layer::Capabilities,
        Layer::NoNewPrivs,
        Layer::Landlock,
        Layer::Seccomp,
    ];
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Namespaces => "namespaces",
            Layer::EmptyRoot => "empty-root",
            Layer::Fds => "fds",
            Layer::Rlimits => "rlimits",
            Layer::Capabilities => "capabilities",
            Layer::NoNewPrivs => "no-new-privs",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
        })
    }
}

/// One layer's line in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStatus {
    /// Which layer.
    pub layer: Layer,
    /// Asked for (not opted out).
    pub requested: bool,
    /// Done.
    pub applied: bool,
    /// Read back and found as asked.
    pub verified: bool,
    /// What was read back.
    pub detail: String,
    /// How long applying and verifying it took, in microseconds (0 at spawn).
    pub micros: u32,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// One entry per layer, in order.
    pub layers: Vec<LayerStatus>,
    /// The opt-outs in force.
    pub opt_outs: Vec<OptOut>,
    /// The Landlock ABI used (0: none).
    pub landlock_abi: u32,
    /// How the root was changed, if it was.
    pub root_method: Option<RootMethod>,
}

/// Largest encoded report accepted.
pub const MAX_REPORT: usize = 8 * 1024;
const MAX_DETAIL: usize = 512;

impl Status {
    pub(super) fn new(config: &Config) -> Status {
        Status {
            layers: Layer::ALL
                .iter()
                .map(|l| LayerStatus {
                    layer: *l,
                    requested: true,
                    applied: false,
                    verified: false,
                    detail: String::new(),
                    micros: 0,
                })
                .collect(),
            opt_outs: config.opt_outs.clone(),
            landlock_abi: 0,
            root_method: None,
        }
    }

    fn entry(&mut self, layer: Layer) -> Option<&mut LayerStatus> {
        self.layers.iter_mut().find(|l| l.layer == layer)
    }

    pub(super) fn record(&mut self, layer: Layer, applied: bool, verified: bool, detail: String) {
        if let Some(e) = self.entry(layer) {
            e.applied = applied;
            e.verified = verified;
            e.detail = detail.chars().take(MAX_DETAIL).collect();
        }
    }

    pub(super) fn time(&mut self, layer: Layer, took: std::time::Duration) {
        let micros = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        if let Some(e) = self.entry(layer) {
            e.micros = micros;
        }
    }

    pub(super) fn record_namespaces(&mut self, inside_user_ns: bool) {
        let detail = if inside_user_ns {
            "in a user namespace of its own".to_string()
        } else {
            "in the initial user namespace".to_string()
        };
        self.record(Layer::Namespaces, inside_user_ns, inside_user_ns, detail);
    }

    pub(super) fn skip(&mut self, layer: Layer) {
        if let Some(e) = self.entry(layer) {
            e.requested = false;
            e.detail = "opted out".into();
        }
    }

    /// The line of `layer`.
    pub fn layer(&self, layer: Layer) -> Option<&LayerStatus> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    /// Layers that were requested but not applied and verified.
    pub fn missing(&self) -> Vec<Layer> {
        self.layers
            .iter()
            .filter(|l| l.requested && !(l.applied && l.verified))
            .map(|l| l.layer)
            .collect()
    }

    /// Encode for sending (bincode, standard configuration).
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// Decode bytes a renderer wrote: size-capped, then checked for shape (every layer
    /// exactly once, in order; details short).
    pub fn decode(bytes: &[u8]) -> Result<Status, String> {
        if bytes.len() > MAX_REPORT {
            return Err(format!(
                "report of {} bytes exceeds {MAX_REPORT}",
                bytes.len()
            ));
        }
        let config = bincode::config::standard().with_limit::<MAX_REPORT>();
        let (status, used): (Status, usize) = bincode::serde::decode_from_slice(bytes, config)
            .map_err(|e| format!("undecodable report: {e}"))?;
        if used != bytes.len() {
            return Err("trailing bytes after the report".into());
        }
        let order: Vec<Layer> = status.layers.iter().map(|l| l.layer).collect();
        if order != Layer::ALL {
            return Err("report does not list every layer once, in order".into());
        }
        if status.layers.iter().any(|l| l.detail.len() > MAX_DETAIL) || status.opt_outs.len() > 8 {
            return Err("report fields too long".into());
        }
        Ok(status)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:<9} {:<7} {:<8} detail",
            "layer", "requested", "applied", "verified"
        )?;
        for l in &self.layers {
            let yn = |b: bool| if b { "yes" } else { "no" };
            writeln!(
                f,
                "{:<14} {:<9} {:<7} {:<8} {} [{} µs]",
                l.layer.to_string(),
                yn(l.requested),
                yn(l.applied),
                yn(l.verified),
                l.detail,
                l.micros
            )?;
        }
        if !self.opt_outs.is_empty() {
            writeln!(f, "opt-outs: {:?}", self.opt_outs)?;
        }
        Ok(())
    }
}

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
    if opt_outs.contains(&OptOut::KeepRoot) {
        skipped.push(Layer::EmptyRoot);
    }
    if opt_outs.contains(&OptOut::NoSeccomp) {
        skipped.push(Layer::Seccomp);
    }
    skipped
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
        new_namespaces: ["user", "pid", "net", "mnt", "ipc", "uts", "cgroup"]
            .iter()
            .filter(|ns| {
                let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok();
                let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).ok();
                theirs.is_some() && theirs != ours
            })
            .map(|s| s.to_string())
            .collect(),
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
    if view.caps != [0; 5] {
        problems.push(format!("capabilities not empty: {:x?}", view.caps));
    }
    for ns in asked.new_namespaces {
        if std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).is_err() {
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

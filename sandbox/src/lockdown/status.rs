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

pub use crate::launch::{verify_from_outside, Asked, OutsideView};

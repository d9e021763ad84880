//! Built-in policies, kept as policy text in `src/policy/presets/` and embedded in the
//! library. `sandbox policy show NAME` prints one; each line says why it is there.
//!
//! * [`Preset::Renderer`]: strict, modelled on Chromium's baseline policy.
//! * [`Preset::Plugin`]: renderer plus executable (never writable) mappings.
//! * [`Preset::Exec`]: for unmodified programs started by `sandbox run`.
//!
//! `renderer` and `plugin` refer to `SELF_PID`, the pid of the process that installs the
//! filter (signals may only go to it): bind it with [`Preset::policy_for_self`] or
//! [`Options::define`].

use super::arch::Arch;
use super::text::{self, EmbeddedSources, Options, ParseErrors};
use super::Policy;
use std::fmt;
use std::str::FromStr;

/// The embedded files, by the name `@include` uses.
pub static FILES: &[(&str, &str)] = &[
    ("runtime.policy", include_str!("presets/runtime.policy")),
    ("renderer.policy", include_str!("presets/renderer.policy")),
    ("plugin.policy", include_str!("presets/plugin.policy")),
    ("exec.policy", include_str!("presets/exec.policy")),
];

/// A built-in policy (on the wire by name, e.g. in the broker's `Setup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Strict: threads but no processes, no files, no new sockets, no exec.
    Renderer,
    /// Renderer plus code loaded at run time (W^X mappings).
    Plugin,
    /// Unmodified programs under `sandbox run`.
    Exec,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 3] = [Preset::Renderer, Preset::Plugin, Preset::Exec];

    /// Its name.
    pub const fn name(self) -> &'static str {
        match self {
            Preset::Renderer => "renderer",
            Preset::Plugin => "plugin",
            Preset::Exec => "exec",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Preset::Renderer => "renderer.policy",
            Preset::Plugin => "plugin.policy",
            Preset::Exec => "exec.policy",
        }
    }

    /// The preset's text, with the files it includes after it.
    pub fn text(self) -> String {
        let mut out = String::new();
        let own = FILES
            .iter()
            .find(|(n, _)| *n == self.file())
            .map_or("", |(_, t)| t);
        out.push_str(own);
        for (name, t) in FILES {
            if *name != self.file() && own.contains(&format!("@include {name}")) {
                out.push_str(&format!("\n# ===== {name} (included above) =====\n"));
                out.push_str(t);
            }
        }
        out
    }

    /// Whether the preset needs `SELF_PID` bound.
    pub const fn needs_self_pid(self) -> bool {
        matches!(self, Preset::Renderer | Preset::Plugin)
    }

    /// The preset as a policy, read with `options` (which must bind `SELF_PID` for
    /// presets that use it).
    pub fn policy(self, options: &Options) -> Result<Policy, ParseErrors> {
        text::parse_with(&EmbeddedSources(FILES), self.file(), options)
    }

    /// The preset compiled for `arch`, with `SELF_PID` bound to `self_pid` (the one
    /// place a preset is compiled for a renderer: the broker compiles it once with 1,
    /// the pid of a renderer in its own pid namespace; lockdown with its own pid).
    pub fn compile(self, arch: Arch, self_pid: u32) -> Result<crate::bpf::Program, String> {
        let options = Options::new(arch).define("SELF_PID", u64::from(self_pid));
        let policy = self.policy(&options).map_err(|e| e.to_string())?;
        crate::bpf::compile(&policy, arch).map_err(|e| e.to_string())
    }

    /// [`Preset::compile`] with every trap — the default and the explicit ones, the
    /// presets' violations — made a user notification, for a broker that holds the
    /// listener and reads each violation from the kernel.
    pub fn compile_notifying(
        self,
        arch: Arch,
        self_pid: u32,
    ) -> Result<crate::bpf::Program, String> {
        self.compile_handing_over(arch, self_pid, &[])
    }

    /// [`Preset::compile_notifying`], and the refusals of the syscalls in `handed_over`
    /// (those `arch` has) made user notifications too (see
    /// [`Policy::hand_over_refusals`]): for a broker that answers those calls itself.
    pub fn compile_handing_over(
        self,
        arch: Arch,
        self_pid: u32,
        handed_over: &[&str],
    ) -> Result<crate::bpf::Program, String> {
        use super::Action;
        let options = Options::new(arch).define("SELF_PID", u64::from(self_pid));
        let mut policy = self.policy(&options).map_err(|e| e.to_string())?;
        // Handed over first: a call that is a violation cannot be (an error).
        for name in handed_over {
            if arch.syscall_number(name).is_some() {
                policy.hand_over_refusals(name).map_err(|e| e.to_string())?;
            }
        }
        policy
            .map_actions(|a| match a {
                Action::Trap(_) => Action::UserNotify,
                other => other,
            })
            .map_err(|e| e.to_string())?;
        crate::bpf::compile(&policy, arch).map_err(|e| e.to_string())
    }

    /// The preset for the calling process on this architecture (`SELF_PID` = getpid()).
    pub fn policy_for_self(self) -> Result<Policy, ParseErrors> {
        let options =
            Options::new(Arch::native()).define("SELF_PID", u64::from(std::process::id()));
        self.policy(&options)
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Preset, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown preset `{s}` (expected renderer, plugin or exec)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf;

    #[test]
    fn every_preset_parses_and_compiles_on_both_arches() {
        for p in Preset::ALL {
            for arch in Arch::ALL {
                let opts = Options::new(arch).define("SELF_PID", 1234);
                let policy = p
                    .policy(&opts)
                    .unwrap_or_else(|e| panic!("{p} on {arch}:\n{e}"));
                let prog =
                    bpf::compile(&policy, arch).unwrap_or_else(|e| panic!("{p} on {arch}: {e}"));
                bpf::validate(&prog.instructions).expect("valid");
            }
        }
    }

    /// The broker compiles `renderer` and `plugin` with a `user-notify` default (it
    /// holds the listener and reads violations from the kernel).
    #[test]
    fn renderer_presets_compile_with_notifications_for_violations() {
        use crate::policy::arch::SeccompData;
        use crate::policy::Action;
        for p in [Preset::Renderer, Preset::Plugin] {
            let prog = p
                .compile_notifying(Arch::X86_64, 1)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            bpf::validate(&prog.instructions).expect("valid");
            // An explicit violation (ptrace) and a default one (swapon) notify.
            for name in ["ptrace", "swapon"] {
                let nr = Arch::X86_64.syscall_number(name).expect("nr");
                let call = SeccompData::new(Arch::X86_64, nr, [0; 6]);
                let got = bpf::run(&prog.instructions, &call).expect("runs").action;
                assert_eq!(got, Action::UserNotify, "{p} {name}");
            }
        }
    }

    #[test]
    fn self_pid_must_be_bound() {
        let e = Preset::Renderer
            .policy(&Options::new(Arch::X86_64))
            .expect_err("SELF_PID unbound");
        assert!(e.to_string().contains("unknown constant `SELF_PID`"), "{e}");
        Preset::Exec
            .policy(&Options::new(Arch::X86_64))
            .expect("exec needs no SELF_PID");
    }
}

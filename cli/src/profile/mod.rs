//! Profiles: one file describes a whole sandbox — the seccomp policy (the policy
//! language, `docs/policy-language.md`) and, on lines of their own, what `sandbox run`
//! options would say: binds, environment, limits, /dev, /proc, network. Specified in
//! `docs/profiles.md`.
//!
//! ```text
//! # jq: a JSON processor.
//! @include exec.policy
//! @ro /usr
//! @ro-if-exists /lib64
//! @env JQ_COLORS=0;39
//! @limit mem 256M
//! ```
//!
//! The profile lines are taken out (left blank, so that the policy parser's line
//! numbers stay the file's) and the rest is read as a policy, `@include` finding the
//! built-in files (`exec.policy`...) by name before any file. A profile is named like a
//! policy: a built-in name (`python3`), or a file with a `/` (`./mine.profile`) — a
//! bare name is never looked up in the working directory.

mod directives;

pub use directives::{number, Limits, Settings};

use sandbox::policy::arch::Arch;
use sandbox::policy::presets::FILES;
use sandbox::policy::text::{self, FileSources, Options, Sources};
use sandbox::policy::Policy;

/// The profiles that ship in the binary, by name.
pub static BUILT_IN: &[(&str, &str)] = &[
    ("shell", include_str!("../../profiles/shell.profile")),
    ("python3", include_str!("../../profiles/python3.profile")),
    (
        "imagemagick",
        include_str!("../../profiles/imagemagick.profile"),
    ),
    ("poppler", include_str!("../../profiles/poppler.profile")),
    ("sqlite3", include_str!("../../profiles/sqlite3.profile")),
    ("jq", include_str!("../../profiles/jq.profile")),
];

/// A profile read: its name, its policy and its settings.
#[derive(Debug)]
pub struct Profile {
    /// The built-in name or the file, as given.
    pub name: String,
    /// The seccomp part, parsed for the architecture asked.
    pub policy: Policy,
    /// Everything else.
    pub settings: Settings,
}

/// Load the profile `arg` names (a built-in name, or a file named with a `/`) for
/// `arch`. Errors are `file:line:column: message` lines.
pub fn load(arg: &str, arch: Arch) -> Result<Profile, String> {
    let (name, text, files) = if arg.contains('/') {
        let text = std::fs::read_to_string(arg).map_err(|e| format!("{arg}: {e}"))?;
        (arg.to_string(), text, true)
    } else {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == arg).ok_or_else(|| {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            format!(
                "`{arg}` is not a built-in profile ({}); name a profile file with a `/`, \
                 e.g. ./{arg}",
                names.join(", ")
            )
        })?;
        (arg.to_string(), text.to_string(), false)
    };
    parse(&name, &text, arch, files)
}

/// Parse profile `text` called `name`. Includes find built-in files by name, then —
/// if `files` (a profile from a file) — files relative to `name`; a built-in profile
/// includes only built-in files.
pub fn parse(name: &str, text: &str, arch: Arch, files: bool) -> Result<Profile, String> {
    let (policy_text, settings) = directives::split(name, text)?;
    if !has_policy(&policy_text) {
        return Err(format!(
            "{name}: the profile has no seccomp part: add `@include exec.policy` (the \
             exec preset) or rules of its own"
        ));
    }
    let sources = BuiltInsThenFiles {
        files: files.then(FileSources::default),
    };
    let policy = text::parse_str(name, &policy_text, &Options::new(arch), &sources)
        .map_err(|e| e.to_string())?;
    Ok(Profile {
        name: name.to_string(),
        policy,
        settings,
    })
}

/// Whether anything but comments and blank lines is left.
fn has_policy(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#')
    })
}

/// `@include NAME` finds a built-in policy file (`exec.policy`, `runtime.policy`...)
/// by that exact name first; anything else is a file (relative to the includer), when
/// files may be read.
struct BuiltInsThenFiles {
    files: Option<FileSources>,
}

impl Sources for BuiltInsThenFiles {
    fn load(&self, from: Option<&str>, path: &str) -> Result<(String, String, String), String> {
        match FILES.iter().find(|(n, _)| *n == path) {
            Some((n, text)) => Ok((format!("built-in:{n}"), n.to_string(), text.to_string())),
            None => match &self.files {
                // Relative to the including file, unless that is a built-in one.
                Some(files) => files.load(from.filter(|f| !f.starts_with("built-in:")), path),
                None => Err(format!(
                    "`{path}` is not a built-in policy file ({})",
                    FILES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests;

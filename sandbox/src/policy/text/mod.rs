//! The policy text language (specified in `docs/policy-language.md`).
//!
//! ```text
//! @default trap
//! @include common.policy
//! read: allow
//! {close, exit_group}: allow
//! write: arg0 == 1 || arg0 == 2
//! ioctl: cmd == TCGETS || cmd == FIONREAD; errno ENOTTY
//! clone: !(flags & CLONE_THREAD) => errno EPERM
//! ```
//!
//! It reads minijail policy files unchanged (`1`, `return N`, `@frequency`, repeated
//! statements for one syscall, absolute `@include` paths found through include
//! directories). The parser never panics: every input gives a [`Policy`] or errors
//! with `file:line:column`.

use super::arch::Arch;
use super::params::{self, Width};
use super::{
    consts, fits_32, Action, Cond, Expr, Op, Policy, PolicyError, MAX_ERRNO, MAX_EXPR_DEPTH,
};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod errors;
mod expr;
mod lex;
mod statements;
#[cfg(test)]
mod tests;

pub use errors::{ParseError, ParseErrors};
use expr::*;
use lex::*;
use statements::*;

/// How deeply `@include` may nest.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Errors reported before the parser gives up.
const MAX_ERRORS: usize = 50;
/// Longest logical line accepted (after `\` continuations), in bytes.
const MAX_LINE: usize = 64 * 1024;
/// Where `@include` finds files.
pub trait Sources {
    /// Load `path` as included from `from` (`None` for the top file). Returns a key that
    /// identifies the file (for cycle detection), its display name, and its text.
    fn load(&self, from: Option<&str>, path: &str) -> Result<(String, String, String), String>;
}

/// Files on disk: includes relative to the including file; an include that does not
/// exist as written is looked up by file name in each include directory, in order.
#[derive(Clone, Debug, Default)]
pub struct FileSources {
    /// Directories searched for includes not found where they point.
    pub include_dirs: Vec<PathBuf>,
}

impl Sources for FileSources {
    fn load(&self, from: Option<&str>, path: &str) -> Result<(String, String, String), String> {
        let written = Path::new(path);
        let mut candidates = Vec::new();
        match from.map(Path::new).and_then(Path::parent) {
            Some(dir) if written.is_relative() => candidates.push(dir.join(written)),
            _ => candidates.push(written.to_path_buf()),
        }
        if let Some(name) = written.file_name() {
            candidates.extend(self.include_dirs.iter().map(|d| d.join(name)));
        }
        let found = candidates.iter().find(|c| c.is_file()).ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
            let hint = if written.is_absolute() && self.include_dirs.is_empty() {
                "; for an installed path, pass --include-dir DIR holding a file of that name"
            } else {
                ""
            };
            format!(
                "cannot find `{path}` (looked at {}){hint}",
                tried.join(", ")
            )
        })?;
        let key = std::fs::canonicalize(found)
            .map_err(|e| format!("cannot open `{}`: {e}", found.display()))?;
        let text = std::fs::read_to_string(found)
            .map_err(|e| format!("cannot read `{}`: {e}", found.display()))?;
        Ok((key.display().to_string(), found.display().to_string(), text))
    }
}

/// A fixed set of named texts (the built-in presets include each other this way).
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedSources(pub &'static [(&'static str, &'static str)]);

impl Sources for EmbeddedSources {
    fn load(&self, _from: Option<&str>, path: &str) -> Result<(String, String, String), String> {
        self.0
            .iter()
            .find(|(name, _)| *name == path)
            .map(|(name, text)| (name.to_string(), name.to_string(), text.to_string()))
            .ok_or_else(|| format!("no built-in policy called `{path}`"))
    }
}

/// What a policy text is read for.
#[derive(Clone, Debug)]
pub struct Options {
    /// The architecture whose constant values are used (a few `O_*` flags differ).
    pub arch: Arch,
    /// Constants the caller binds, looked up before the built-in ones (e.g. the
    /// presets' `SELF_PID`).
    pub defines: Vec<(String, u64)>,
}

impl Options {
    /// Read for `arch` with no extra constants.
    pub fn new(arch: Arch) -> Options {
        Options {
            arch,
            defines: Vec::new(),
        }
    }

    /// Bind constant `name` to `value`.
    pub fn define(mut self, name: &str, value: u64) -> Options {
        self.defines.push((name.to_string(), value));
        self
    }
}

/// Parse the policy in file `path`.
pub fn parse_file(
    path: &Path,
    options: &Options,
    include_dirs: &[PathBuf],
) -> Result<Policy, ParseErrors> {
    let sources = FileSources {
        include_dirs: include_dirs.to_vec(),
    };
    parse_with(&sources, &path.display().to_string(), options)
}

/// Parse `text` as a policy file called `name`; includes are looked up in `sources`.
pub fn parse_str(
    name: &str,
    text: &str,
    options: &Options,
    sources: &dyn Sources,
) -> Result<Policy, ParseErrors> {
    let mut p = Parser::new(options, sources);
    p.file(name.to_string(), name.to_string(), text, 0);
    p.finish()
}

/// Parse the file `top` found through `sources`.
pub fn parse_with(
    sources: &dyn Sources,
    top: &str,
    options: &Options,
) -> Result<Policy, ParseErrors> {
    let mut p = Parser::new(options, sources);
    match sources.load(None, top) {
        Ok((key, display, text)) => p.file(key, display, &text, 0),
        Err(message) => p.errors.push(ParseError {
            file: top.to_string(),
            line: 0,
            column: 0,
            line_text: String::new(),
            message,
        }),
    }
    p.finish()
}

// ---------------------------------------------------------------------------------
// Lines: comments, continuations, positions.

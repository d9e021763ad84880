//! The profile `sandbox learn` writes from what it recorded.

use super::record::{normal, Recorder};
use sandbox::policy::arch::Arch;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Top-level folders bound whole when anything in them was used.
const SYSTEM_TOPS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Lines written whatever was recorded, and decided so in the learning filter too
/// (`learning_policy`): what the payload itself needs under the filter (it hands over its listener with `sendmsg` before the supervisor can record
/// anything), and what makes libc use calls a filter can read (clone3 → clone).
pub(super) const ALWAYS: &[&str] = &[
    "sendmsg: !(flags & MSG_OOB); errno EOPNOTSUPP",
    "clone3: errno ENOSYS",
];

/// What the payload itself calls between its filter and the program's execve (it waits
/// for the supervisor's "go": it may poll or not, as the timing falls), allowed whether
/// or not this run saw them.
const HANDOVER: &[&str] = &[
    "close",
    "execve",
    "exit_group",
    "poll",
    "ppoll",
    "recvmsg",
    "write",
];

/// The exec preset's own rule for a call, where a learned `allow` would be weaker.
const PRESET_RULES: &[(&str, &str)] = &[(
    "memfd_create",
    "memfd_create: flags & MFD_NOEXEC_SEAL && !(flags & MFD_EXEC); user-notify",
)];

/// The profile text: a header, the policy (one line per syscall seen), then the binds
/// for the paths used (except those beneath `granted`: the caller's `--ro`/`--rw`,
/// given again when the profile is used), `@dev`, `@proc`.
pub fn profile_text(rec: &Recorder, arch: Arch, command: &[String], granted: &[PathBuf]) -> String {
    let mut out = String::new();
    // Shown on comment lines: one line whatever the arguments hold (a newline in an
    // argument must not start a profile line of its own).
    let command: Vec<String> = command.iter().map(|a| shown(a)).collect();
    let _ = writeln!(
        out,
        "# Learned by `sandbox learn` from: {}",
        command.join(" ")
    );
    let _ = writeln!(
        out,
        "# {} calls of {} syscalls recorded. Use it with\n#   sandbox run --profile THIS_FILE [the same --ro/--rw] -- {}\n# A call this run did not make is refused and reported. Review the binds below:\n# they are the folders of the paths the program asked for, and a hostile program\n# can ask for any path (e.g. a folder of yours) to have it bound next time.",
        rec.count,
        rec.calls.len(),
        command.join(" ")
    );
    out.push_str("@default kill-process\n\n");
    let mut calls = rec.calls.clone();
    for name in HANDOVER {
        calls.entry(name).or_default();
    }
    for (name, values) in &calls {
        if ALWAYS.iter().any(|l| l.starts_with(&format!("{name}:"))) {
            continue;
        }
        if let Some((_, rule)) = PRESET_RULES.iter().find(|(n, _)| n == name) {
            let _ = writeln!(out, "{rule}");
            continue;
        }
        match crate::explain::key_value(name, &[0; 6]) {
            Some((param, _)) if !values.is_empty() && !rec.too_many.contains(name) => {
                let alternatives: Vec<String> = values
                    .iter()
                    .map(|v| format!("{param} == {}", crate::explain::value_text(arch, name, *v)))
                    .collect();
                let _ = writeln!(out, "{name}: {}", alternatives.join(" || "));
            }
            _ => {
                let _ = writeln!(out, "{name}: allow");
            }
        }
    }
    for line in ALWAYS {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    out.push_str(&binds(&rec.paths, granted));
    out
}

/// An argument on one line: quoted when it holds anything but plain characters, with
/// control characters escaped.
fn shown(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.escape_debug())
    }
}

/// `@ro`/`@ro-if-exists` lines for the folders the paths are in, `@dev`, `@proc`.
fn binds(paths: &BTreeSet<PathBuf>, granted: &[PathBuf]) -> String {
    let mut tops = BTreeSet::new();
    let mut others = BTreeSet::new();
    let (mut dev, mut proc) = (false, false);
    for p in paths.iter().map(|p| normal(p)) {
        if granted.iter().any(|g| p.starts_with(g)) || p.starts_with("/tmp") {
            continue;
        }
        if p.starts_with("/proc") {
            proc = true;
            continue;
        }
        if p.starts_with("/dev") {
            dev |= ["/dev/null", "/dev/zero", "/dev/urandom"]
                .iter()
                .any(|d| p == Path::new(d));
            continue;
        }
        if std::fs::symlink_metadata(&p).is_err() {
            continue; // looked for and not there
        }
        let parts: Vec<_> = p.components().skip(1).collect();
        let Some(first) = parts.first() else {
            continue;
        };
        let first = first.as_os_str().to_string_lossy().into_owned();
        if SYSTEM_TOPS.contains(&first.as_str()) {
            tops.insert(first);
            continue;
        }
        let depth = if first == "var" || first == "home" {
            3
        } else {
            2
        };
        let prefix: PathBuf = Path::new("/").join(parts.iter().take(depth).collect::<PathBuf>());
        others.insert(prefix);
    }
    let mut out = String::new();
    for t in &tops {
        let word = if t == "usr" { "@ro" } else { "@ro-if-exists" };
        let _ = writeln!(out, "{word} /{t}");
    }
    for o in &others {
        let _ = writeln!(out, "@ro-if-exists {}", o.display());
    }
    if dev {
        out.push_str("@dev\n");
    }
    if proc {
        out.push_str("@proc\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_becomes_rules_and_binds() {
        let mut rec = Recorder::default();
        rec.calls.insert("read", BTreeSet::new());
        rec.calls.insert("socket", [1, 2].into_iter().collect());
        rec.calls.insert("sendmsg", BTreeSet::new());
        rec.calls.insert("memfd_create", BTreeSet::new());
        for p in [
            "/usr/bin/env",
            "/etc/passwd",
            "/etc/../etc/passwd",
            "/dev/null",
            "/proc/self/maps",
            "/tmp/x",
            "/granted/in",
            "/no/such/thing",
        ] {
            rec.paths.insert(PathBuf::from(p));
        }
        let text = profile_text(
            &rec,
            Arch::X86_64,
            &["prog".into()],
            &[PathBuf::from("/granted")],
        );
        assert!(text.contains("\nread: allow\n"), "{text}");
        assert!(
            text.contains("\nsocket: domain == AF_UNIX || domain == AF_INET\n"),
            "{text}"
        );
        assert!(
            text.contains("memfd_create: flags & MFD_NOEXEC_SEAL"),
            "{text}"
        );
        assert_eq!(text.matches("sendmsg:").count(), 1, "{text}");
        assert!(
            text.contains("\n@ro /usr\n@ro-if-exists /etc/passwd\n@dev\n@proc\n"),
            "{text}"
        );
        assert!(
            !text.contains("/granted") && !text.contains("/tmp") && !text.contains("/no/such"),
            "{text}"
        );
        let p =
            crate::profile::parse("learned", &text, Arch::X86_64, false).expect("a valid profile");
        assert!(p.settings.dev && p.settings.proc);
        // A newline in the command cannot add a line to the profile.
        let text = profile_text(
            &rec,
            Arch::X86_64,
            &["sh".into(), "-c".into(), "x\n@rw /".into()],
            &[],
        );
        let p = crate::profile::parse("learned", &text, Arch::X86_64, false).expect("valid");
        assert!(p.settings.rw.is_empty(), "{text}");
        assert!(text.contains("'x\\n@rw /'"), "{text}");
    }
}

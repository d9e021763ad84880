//! A profile's own lines (`@ro`, `@rw`, `@env`, `@limit`...), taken out of the text
//! before the rest is read as a policy.

/// What a profile says besides its policy: `sandbox run` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `@ro PATH[:DEST]`: bound read-only; missing is an error.
    pub ro: Vec<String>,
    /// `@ro-if-exists PATH[:DEST]`: bound read-only where it exists (a version's
    /// configuration folder, `/lib64` on x86_64 only).
    pub ro_if_exists: Vec<String>,
    /// `@rw PATH[:DEST]`.
    pub rw: Vec<String>,
    /// `@env NAME=VALUE`, in order.
    pub env: Vec<String>,
    /// `@dev`: the minimal /dev.
    pub dev: bool,
    /// `@proc`: a /proc of the sandbox's pid namespace.
    pub proc: bool,
    /// `@net shared`: the host's network namespace.
    pub share_net: bool,
    /// `@limit NAME VALUE`.
    pub limits: Limits,
}

/// `@limit` values (the `sandbox run` option of the same name; `tmp` is `--tmp-size`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `@limit mem BYTES`.
    pub mem: Option<u64>,
    /// `@limit cpu SECONDS`.
    pub cpu: Option<u64>,
    /// `@limit wall SECONDS`.
    pub wall: Option<u64>,
    /// `@limit nofile N`.
    pub nofile: Option<u64>,
    /// `@limit fsize BYTES`.
    pub fsize: Option<u64>,
    /// `@limit pids N`.
    pub pids: Option<u64>,
    /// `@limit tmp BYTES`.
    pub tmp: Option<u64>,
}

/// The directives, and whether each takes an argument.
const DIRECTIVES: &[(&str, bool)] = &[
    ("@ro", true),
    ("@ro-if-exists", true),
    ("@rw", true),
    ("@env", true),
    ("@limit", true),
    ("@dev", false),
    ("@proc", false),
    ("@net", true),
];

/// Split profile `text` (called `name`) into the policy text — the profile lines left
/// blank — and the settings. Errors: `name:line:column: message`, one per line.
pub(super) fn split(name: &str, text: &str) -> Result<(String, Settings), String> {
    let mut settings = Settings::default();
    let mut policy = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut continued = false;
    for (i, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        let word = code.split_whitespace().next().unwrap_or("");
        let directive = DIRECTIVES.iter().find(|(d, _)| *d == word);
        match directive {
            Some((d, takes_arg)) if !continued => {
                let column = line.len() - line.trim_start().len() + 1;
                let arg = code.trim_start()[d.len()..].trim();
                let result = if code.trim_end().ends_with('\\') {
                    Err("a profile line cannot continue on the next".to_string())
                } else if *takes_arg && arg.is_empty() {
                    Err(format!("{d} needs a value"))
                } else if !*takes_arg && !arg.is_empty() {
                    Err(format!("{d} takes no value"))
                } else {
                    settings.apply(d, arg)
                };
                if let Err(m) = result {
                    errors.push(format!("{name}:{}:{column}: {m}", i + 1));
                }
                policy.push('\n');
            }
            _ => {
                policy.push_str(line);
                policy.push('\n');
                continued = code.trim_end().ends_with('\\');
            }
        }
    }
    if errors.is_empty() {
        Ok((policy, settings))
    } else {
        Err(errors.join("\n"))
    }
}

impl Settings {
    fn apply(&mut self, directive: &str, arg: &str) -> Result<(), String> {
        match directive {
            "@ro" => self.ro.push(path(arg)?),
            "@ro-if-exists" => self.ro_if_exists.push(path(arg)?),
            "@rw" => self.rw.push(path(arg)?),
            "@env" => {
                if !arg.contains('=') || arg.starts_with('=') {
                    return Err(format!("@env {arg}: expected NAME=VALUE"));
                }
                self.env.push(arg.to_string());
            }
            "@dev" => self.dev = true,
            "@proc" => self.proc = true,
            "@net" => match arg {
                "shared" => self.share_net = true,
                "none" => self.share_net = false,
                _ => return Err(format!("@net {arg}: expected `shared` or `none`")),
            },
            "@limit" => self.limit(arg)?,
            _ => return Err(format!("unknown profile line {directive}")),
        }
        Ok(())
    }

    fn limit(&mut self, arg: &str) -> Result<(), String> {
        let mut words = arg.split_whitespace();
        let (Some(what), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("@limit {arg}: expected `@limit NAME VALUE`"));
        };
        let l = &mut self.limits;
        let (slot, sized) = match what {
            "mem" => (&mut l.mem, true),
            "cpu" => (&mut l.cpu, false),
            "wall" => (&mut l.wall, false),
            "nofile" => (&mut l.nofile, false),
            "fsize" => (&mut l.fsize, true),
            "pids" => (&mut l.pids, false),
            "tmp" => (&mut l.tmp, true),
            _ => {
                return Err(format!(
                    "@limit {what}: expected mem, cpu, wall, nofile, fsize, pids or tmp"
                ))
            }
        };
        if slot.is_some() {
            return Err(format!("@limit {what} is given twice"));
        }
        *slot = Some(number(value, sized).map_err(|e| format!("@limit {what} {value}: {e}"))?);
        Ok(())
    }
}

/// An absolute path, with an optional `:DEST`.
fn path(arg: &str) -> Result<String, String> {
    let (p, dest) = arg.split_once(':').unwrap_or((arg, "/"));
    if !p.starts_with('/') || !dest.starts_with('/') {
        return Err(format!("{arg}: a profile names absolute paths"));
    }
    if arg.contains(char::is_whitespace) {
        return Err(format!("{arg}: one path per line, without spaces"));
    }
    Ok(arg.to_string())
}

/// A count, or (when `sized`) a size with an optional K, M or G (powers of 1024).
pub fn number(text: &str, sized: bool) -> Result<u64, String> {
    let (digits, shift) = match text.char_indices().last() {
        Some((at, c)) if sized && "KMG".contains(c) => {
            let shift = match c {
                'K' => 10,
                'M' => 20,
                _ => 30,
            };
            (&text[..at], shift)
        }
        _ => (text, 0),
    };
    let n: u64 = digits.parse().map_err(|_| {
        "expected a whole number".to_string() + if sized { " (K, M or G after it)" } else { "" }
    })?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| "too large".to_string())
}

//! Policy lines for a call: the parameter a rule for a syscall is best written on, and
//! the line that would allow one call — for violation reports and learn mode.

use sandbox::policy::arch::Arch;
use sandbox::policy::params::{self, Width};

/// Syscalls whose rules are written on one parameter (the one the language can decide
/// on: a value, not a pointer), with the prefixes of that parameter's constant names.
pub const KEY_PARAMS: &[(&str, &str, &[&str])] = &[
    ("socket", "domain", &["AF_"]),
    ("ioctl", "cmd", &["TC", "TIOC", "FIO"]),
    ("prctl", "option", &["PR_"]),
    ("clone", "flags", &[]),
    ("mmap", "prot", &[]),
    ("mprotect", "prot", &[]),
    ("personality", "personality", &[]),
    ("fcntl", "cmd", &["F_"]),
];

/// The key parameter of `syscall` and its value in `args` (the low half of a 32-bit
/// parameter, as the kernel reads it), if the syscall has one.
pub fn key_value(syscall: &str, args: &[u64; 6]) -> Option<(&'static str, u64)> {
    let (_, param, _) = KEY_PARAMS.iter().find(|(s, _, _)| *s == syscall)?;
    let index = params::index_of(syscall, param)?;
    let raw = *args.get(usize::from(index))?;
    let value = match params::width(syscall, index) {
        Width::W32 => raw & 0xffff_ffff,
        Width::W64 => raw,
    };
    Some((param, value))
}

/// `value` of `syscall`'s key parameter as a policy writes it: its constant's name
/// where one of the expected family has that value, else a number.
pub fn value_text(arch: Arch, syscall: &str, value: u64) -> String {
    let prefixes = KEY_PARAMS
        .iter()
        .find(|(s, _, _)| *s == syscall)
        .map_or(&[][..], |(_, _, p)| p);
    sandbox::policy::consts::names()
        .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
        .find(|n| sandbox::policy::consts::lookup(arch, n) == Some(value))
        .map_or_else(
            || {
                if value > 9 {
                    format!("{value:#x}")
                } else {
                    value.to_string()
                }
            },
            str::to_string,
        )
}

/// The policy line that would allow this call: `NAME: allow`, or for a syscall with a
/// key parameter, `NAME: PARAM == VALUE`.
pub fn allowing_line(arch: Arch, syscall: &str, args: &[u64; 6]) -> String {
    match key_value(syscall, args) {
        Some((param, v)) => format!("{syscall}: {param} == {}", value_text(arch, syscall, v)),
        None => format!("{syscall}: allow"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_key_parameter_by_its_constant() {
        let a = Arch::X86_64;
        assert_eq!(
            allowing_line(a, "ptrace", &[16, 1, 0, 0, 0, 0]),
            "ptrace: allow"
        );
        assert_eq!(
            allowing_line(a, "socket", &[17, 3, 0, 0, 0, 0]),
            "socket: domain == AF_PACKET"
        );
        assert_eq!(
            allowing_line(a, "ioctl", &[1, 0x5412 | 1 << 32, 0, 0, 0, 0]),
            "ioctl: cmd == TIOCSTI"
        );
        assert_eq!(
            allowing_line(a, "personality", &[0x40000, 0, 0, 0, 0, 0]),
            "personality: personality == 0x40000"
        );
    }
}

//! Architectures the compiler targets, and their syscall tables.
//!
//! Names and numbers come from the `syscalls` crate (generated from the kernel's own
//! tables); this module only adds the audit-arch values and lookups in both directions.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `AUDIT_ARCH_X86_64`: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_AARCH64`: EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `AUDIT_ARCH_I386`, the arch value of an `int 0x80` call made on x86_64.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// Bit 30 of the syscall number marks the x32 ABI on x86_64 (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A 64-bit architecture a policy can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Arch {
    /// x86_64 (the x32 ABI and the i386 entry are refused by every compiled program).
    X86_64,
    /// aarch64 (the 32-bit arm compat entry is refused by the arch check).
    Aarch64,
}

impl Arch {
    /// Every architecture the compiler supports.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture this library was built for.
    pub const fn native() -> Arch {
        #[cfg(target_arch = "aarch64")]
        {
            Arch::Aarch64
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            Arch::X86_64
        }
    }

    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`.
    pub const fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The architecture whose audit value is `value`, if supported.
    pub fn from_audit_arch(value: u32) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.audit_arch() == value)
    }

    /// The lower-case name used on the command line and in listings.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The number of syscall `name` on this architecture.
    pub fn syscall_number(self, name: &str) -> Option<u32> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::Aarch64 => syscalls::aarch64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
        }
    }

    /// The name of syscall number `nr` on this architecture.
    pub fn syscall_name(self, nr: u32) -> Option<&'static str> {
        let nr = usize::try_from(nr).ok()?;
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::new(nr).map(|s| s.name()),
            Arch::Aarch64 => syscalls::aarch64::Sysno::new(nr).map(|s| s.name()),
        }
    }

    /// Every (name, number) pair of this architecture, in number order.
    pub fn syscalls(self) -> Vec<(&'static str, u32)> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::iter()
                .map(|s| (s.name(), s.id() as u32))
                .collect(),
            Arch::Aarch64 => syscalls::aarch64::Sysno::iter()
                .map(|s| (s.name(), s.id() as u32))
                .collect(),
        }
    }

    /// Whether this architecture has an x32-style alias range that must be refused.
    pub const fn has_x32(self) -> bool {
        matches!(self, Arch::X86_64)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Arch, String> {
        match s {
            "x86_64" | "x86-64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            other => Err(format!(
                "unknown architecture `{other}` (expected x86_64 or aarch64)"
            )),
        }
    }
}

/// The kernel's `struct seccomp_data`: what a filter sees of one syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SeccompData {
    /// The syscall number (`int` in the kernel; kept as raw bits here).
    pub nr: u32,
    /// The `AUDIT_ARCH_*` value of the calling convention used.
    pub arch: u32,
    /// The instruction pointer at the time of the call.
    pub instruction_pointer: u64,
    /// The six argument registers, full 64-bit values.
    pub args: [u64; 6],
}

impl SeccompData {
    /// A call of `nr` on `arch` with `args`.
    pub fn new(arch: Arch, nr: u32, args: [u64; 6]) -> SeccompData {
        SeccompData {
            nr,
            arch: arch.audit_arch(),
            instruction_pointer: 0,
            args,
        }
    }

    /// The 32-bit word at byte `offset` of the structure as the kernel lays it out
    /// (little endian, as on both supported architectures), or `None` past its end or
    /// at an unaligned offset.
    pub fn word_at(&self, offset: u32) -> Option<u32> {
        if offset % 4 != 0 {
            return None;
        }
        let lo = |v: u64| v as u32;
        let hi = |v: u64| (v >> 32) as u32;
        match offset {
            0 => Some(self.nr),
            4 => Some(self.arch),
            8 => Some(lo(self.instruction_pointer)),
            12 => Some(hi(self.instruction_pointer)),
            16..=63 => {
                let index = ((offset - 16) / 8) as usize;
                let arg = *self.args.get(index)?;
                Some(if (offset - 16) % 8 == 0 {
                    lo(arg)
                } else {
                    hi(arg)
                })
            }
            _ => None,
        }
    }
}

/// Size of `struct seccomp_data` in bytes.
pub const SECCOMP_DATA_SIZE: u32 = 64;
/// Offset of `nr`.
pub const OFFSET_NR: u32 = 0;
/// Offset of `arch`.
pub const OFFSET_ARCH: u32 = 4;

/// Offset of the low 32 bits of argument `index` (little endian).
pub const fn offset_arg_lo(index: u8) -> u32 {
    16 + 8 * index as u32
}

/// Offset of the high 32 bits of argument `index` (little endian).
pub const fn offset_arg_hi(index: u8) -> u32 {
    offset_arg_lo(index) + 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_agree_with_known_numbers() {
        assert_eq!(Arch::X86_64.syscall_number("read"), Some(0));
        assert_eq!(Arch::X86_64.syscall_number("ptrace"), Some(101));
        assert_eq!(Arch::Aarch64.syscall_number("openat"), Some(56));
        assert_eq!(Arch::Aarch64.syscall_number("open"), None);
        assert_eq!(Arch::X86_64.syscall_name(231), Some("exit_group"));
        assert_eq!(Arch::X86_64.syscall_name(0x4000_0000), None);
    }

    #[test]
    fn word_layout() {
        let d = SeccompData {
            nr: 7,
            arch: AUDIT_ARCH_X86_64,
            instruction_pointer: 0x1122_3344_5566_7788,
            args: [0xaaaa_bbbb_cccc_dddd, 0, 0, 0, 0, 0x0102_0304_0506_0708],
        };
        assert_eq!(d.word_at(0), Some(7));
        assert_eq!(d.word_at(4), Some(AUDIT_ARCH_X86_64));
        assert_eq!(d.word_at(8), Some(0x5566_7788));
        assert_eq!(d.word_at(12), Some(0x1122_3344));
        assert_eq!(d.word_at(16), Some(0xcccc_dddd));
        assert_eq!(d.word_at(20), Some(0xaaaa_bbbb));
        assert_eq!(d.word_at(60), Some(0x0102_0304));
        assert_eq!(d.word_at(64), None);
        assert_eq!(d.word_at(2), None);
    }
}

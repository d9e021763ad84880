//! A readable listing of a seccomp BPF program: one line per instruction, jump
//! targets as labels, loads named after the `seccomp_data` field they read, and
//! compares against the syscall number named after the syscall.

use super::op::*;
use super::SockFilter;
use crate::policy::arch::Arch;
use crate::policy::Action;
use std::fmt::Write as _;

/// What the accumulator is known to hold at an instruction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Acc {
    Unknown,
    Field(u32),
}

/// The listing of `program` compiled for `arch`.
pub fn disassemble(program: &[SockFilter], arch: Arch) -> String {
    let n = program.len();
    let mut is_target = vec![false; n];
    let mut acc_in: Vec<Option<Acc>> = vec![None; n];
    if n > 0 {
        acc_in[0] = Some(Acc::Unknown);
    }
    let merge = |slot: &mut Option<Acc>, v: Acc| {
        *slot = match *slot {
            None => Some(v),
            Some(old) if old == v => Some(v),
            Some(_) => Some(Acc::Unknown),
        }
    };
    // Jumps only go forward, so one pass in order sees every predecessor first.
    for (i, ins) in program.iter().enumerate() {
        let acc = acc_in[i].unwrap_or(Acc::Unknown);
        let after = if ins.code == LD | W | ABS {
            Acc::Field(ins.k)
        } else if matches!(class(ins.code), LD | ALU | MISC) {
            Acc::Unknown
        } else {
            acc
        };
        let mut flow = |to: usize| {
            if let Some(slot) = acc_in.get_mut(to) {
                merge(slot, after);
            }
        };
        match class(ins.code) {
            RET => {}
            JMP if ins.code & 0xf0 == JA => {
                let t = i + 1 + ins.k as usize;
                flow(t);
                if let Some(x) = is_target.get_mut(t) {
                    *x = true;
                }
            }
            JMP => {
                for off in [ins.jt, ins.jf] {
                    let t = i + 1 + usize::from(off);
                    flow(t);
                    if off != 0 {
                        if let Some(x) = is_target.get_mut(t) {
                            *x = true;
                        }
                    }
                }
            }
            _ => flow(i + 1),
        }
    }

    let mut out = String::new();
    for (i, ins) in program.iter().enumerate() {
        if is_target[i] {
            let _ = writeln!(out, "L{i}:");
        }
        let acc = acc_in[i].unwrap_or(Acc::Unknown);
        let (text, note) = describe(ins, i, acc, arch);
        if note.is_empty() {
            let _ = writeln!(out, "  {i:4}  {text}");
        } else {
            let _ = writeln!(out, "  {i:4}  {text:<34} ; {note}");
        }
    }
    out
}

fn field_name(offset: u32) -> String {
    match offset {
        0 => "nr".into(),
        4 => "arch".into(),
        8 => "instruction_pointer (low)".into(),
        12 => "instruction_pointer (high)".into(),
        16..=63 => {
            let arg = (offset - 16) / 8;
            let half = if (offset - 16) % 8 == 0 {
                "low"
            } else {
                "high"
            };
            format!("args[{arg}] ({half})")
        }
        _ => format!("offset {offset}"),
    }
}

fn describe(ins: &SockFilter, i: usize, acc: Acc, arch: Arch) -> (String, String) {
    let k = ins.k;
    let target = |off: usize| format!("L{}", i + 1 + off);
    let value_note = |k: u32| match acc {
        Acc::Field(0) => arch
            .syscall_name(k)
            .map(|n| n.to_string())
            .unwrap_or_else(|| {
                if k & 0x4000_0000 != 0 {
                    "x32 bit".into()
                } else {
                    String::new()
                }
            }),
        Acc::Field(4) => match Arch::from_audit_arch(k) {
            Some(a) => format!("AUDIT_ARCH_{}", a.name().to_uppercase()),
            None => String::new(),
        },
        Acc::Field(f) => field_name(f),
        Acc::Unknown => String::new(),
    };
    match class(ins.code) {
        LD if ins.code == LD | W | ABS => (format!("ld   [{k}]"), field_name(k)),
        LD if ins.code == LD | W | LEN => ("ld   #len".into(), String::new()),
        LD if ins.code == LD | MEM => (format!("ld   M[{k}]"), String::new()),
        LD => (format!("ld   #{k:#x}"), String::new()),
        LDX if ins.code == LDX | MEM => (format!("ldx  M[{k}]"), String::new()),
        LDX if ins.code == LDX | W | LEN => ("ldx  #len".into(), String::new()),
        LDX => (format!("ldx  #{k:#x}"), String::new()),
        ST => (format!("st   M[{k}]"), String::new()),
        STX => (format!("stx  M[{k}]"), String::new()),
        ALU => {
            let name = match ins.code & 0xf0 {
                ADD => "add",
                SUB => "sub",
                MUL => "mul",
                DIV => "div",
                OR => "or",
                AND => "and",
                LSH => "lsh",
                RSH => "rsh",
                NEG => "neg",
                MOD => "mod",
                XOR => "xor",
                _ => "alu?",
            };
            let operand = if ins.code & X != 0 {
                "x".to_string()
            } else {
                format!("#{k:#x}")
            };
            (format!("{name:<4} {operand}"), String::new())
        }
        JMP if ins.code & 0xf0 == JA => (format!("ja   {}", target(k as usize)), String::new()),
        JMP => {
            let name = match ins.code & 0xf0 {
                JEQ => "jeq",
                JGT => "jgt",
                JGE => "jge",
                JSET => "jset",
                _ => "j?",
            };
            let operand = if ins.code & X != 0 {
                "x".to_string()
            } else {
                format!("#{k:#x}")
            };
            let t = target(usize::from(ins.jt));
            let f = target(usize::from(ins.jf));
            let note = if ins.code & X != 0 {
                String::new()
            } else {
                value_note(k)
            };
            (format!("{name:<4} {operand}, {t}, {f}"), note)
        }
        RET if ins.code & A != 0 => ("ret  a".into(), String::new()),
        RET => (format!("ret  {}", Action::from_ret(k)), String::new()),
        MISC if ins.code & TXA != 0 => ("txa".into(), String::new()),
        MISC => ("tax".into(), String::new()),
        _ => (
            format!(".word {:#06x} {} {} {k:#x}", ins.code, ins.jt, ins.jf),
            String::new(),
        ),
    }
}

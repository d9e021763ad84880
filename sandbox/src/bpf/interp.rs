//! A reference interpreter for seccomp's classic BPF, and the kernel's load-time checks.
//!
//! It accepts exactly the instructions `seccomp_check_filter` accepts (loads of
//! `seccomp_data` words, immediates and scratch memory, ALU, jumps, returns, TAX/TXA)
//! and rejects programs the kernel would refuse (`bpf_check_classic`): empty or longer
//! than 4096, a jump out of the program, a division by a constant zero, a scratch
//! index out of range, or a last instruction that is not a return.

use super::op::*;
use super::{SockFilter, MAX_INSTRUCTIONS};
use crate::policy::arch::{SeccompData, SECCOMP_DATA_SIZE};
use crate::policy::Action;

/// The result of running a program on one `seccomp_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The raw return value.
    pub ret: u32,
    /// What the kernel does with it.
    pub action: Action,
    /// How many instructions ran, the return included.
    pub executed: usize,
}

/// Why a program cannot be loaded or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    /// No instructions.
    #[error("empty program")]
    Empty,
    /// More than 4096 instructions.
    #[error("program has {0} instructions; the kernel accepts at most 4096")]
    TooLong(usize),
    /// An opcode seccomp does not accept.
    #[error("instruction {at}: opcode {code:#06x} is not allowed in a seccomp filter")]
    BadOpcode {
        /// Index of the instruction.
        at: usize,
        /// Its opcode.
        code: u16,
    },
    /// A load outside `seccomp_data` or not 4-byte aligned.
    #[error("instruction {at}: load at offset {offset} is outside seccomp_data or unaligned")]
    BadLoad {
        /// Index of the instruction.
        at: usize,
        /// The offset.
        offset: u32,
    },
    /// A jump past the end.
    #[error("instruction {at}: jump leaves the program")]
    JumpOut {
        /// Index of the instruction.
        at: usize,
    },
    /// Division or modulo by a constant zero.
    #[error("instruction {at}: division by zero")]
    DivByZero {
        /// Index of the instruction.
        at: usize,
    },
    /// Scratch memory index past 15.
    #[error("instruction {at}: scratch memory index {index} out of range")]
    BadMemIndex {
        /// Index of the instruction.
        at: usize,
        /// The index.
        index: u32,
    },
    /// The program does not end with a return.
    #[error("the last instruction is not a return")]
    NoFinalReturn,
}

/// Check `program` as the kernel does when it is loaded.
pub fn validate(program: &[SockFilter]) -> Result<(), InterpError> {
    if program.is_empty() {
        return Err(InterpError::Empty);
    }
    if program.len() > MAX_INSTRUCTIONS {
        return Err(InterpError::TooLong(program.len()));
    }
    for (at, ins) in program.iter().enumerate() {
        let code = ins.code;
        let bad = || InterpError::BadOpcode { at, code };
        match class(code) {
            LD => match code {
                c if c == LD | W | ABS => {
                    if ins.k % 4 != 0 || ins.k >= SECCOMP_DATA_SIZE {
                        return Err(InterpError::BadLoad { at, offset: ins.k });
                    }
                }
                c if c == LD | W | LEN || c == LD | IMM => {}
                c if c == LD | MEM => check_mem(at, ins.k)?,
                _ => return Err(bad()),
            },
            LDX => match code {
                c if c == LDX | W | LEN || c == LDX | IMM => {}
                c if c == LDX | MEM => check_mem(at, ins.k)?,
                _ => return Err(bad()),
            },
            ST | STX => {
                if code != ST && code != STX {
                    return Err(bad());
                }
                check_mem(at, ins.k)?;
            }
            ALU => {
                let alu_op = code & 0xf0;
                let src = code & 0x08;
                if code & !0xf8 != ALU {
                    return Err(bad());
                }
                match alu_op {
                    ADD | SUB | MUL | OR | AND | LSH | RSH | XOR => {}
                    DIV | MOD => {
                        if src == K && ins.k == 0 {
                            return Err(InterpError::DivByZero { at });
                        }
                    }
                    NEG if src == K => {}
                    _ => return Err(bad()),
                }
            }
            JMP => {
                let next = at + 1;
                match code {
                    c if c == JMP | JA => {
                        if next + ins.k as usize >= program.len() {
                            return Err(InterpError::JumpOut { at });
                        }
                    }
                    c if [JEQ, JGT, JGE, JSET]
                        .iter()
                        .any(|j| c == JMP | j | K || c == JMP | j | X) =>
                    {
                        let far = next + usize::from(ins.jt.max(ins.jf));
                        if far >= program.len() {
                            return Err(InterpError::JumpOut { at });
                        }
                    }
                    _ => return Err(bad()),
                }
            }
            RET => {
                if code != RET | K && code != RET | A {
                    return Err(bad());
                }
            }
            MISC => {
                if code != MISC | TAX && code != MISC | TXA {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        }
    }
    match program.last().map(|i| class(i.code)) {
        Some(RET) => Ok(()),
        _ => Err(InterpError::NoFinalReturn),
    }
}

fn check_mem(at: usize, index: u32) -> Result<(), InterpError> {
    if index >= MEMWORDS {
        Err(InterpError::BadMemIndex { at, index })
    } else {
        Ok(())
    }
}

/// Run `program` on `data`, as the kernel would. The program is validated first.
pub fn run(program: &[SockFilter], data: &SeccompData) -> Result<Outcome, InterpError> {
    validate(program)?;
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut mem = [0u32; MEMWORDS as usize];
    let mut pc = 0usize;
    let mut executed = 0usize;
    // Jumps only go forward, so this loop runs at most program.len() times.
    while let Some(ins) = program.get(pc) {
        executed += 1;
        pc += 1;
        let k = ins.k;
        let mem_slot = (k as usize).min(mem.len() - 1);
        match class(ins.code) {
            LD => {
                a = match ins.code & 0xe0 {
                    ABS => data.word_at(k).ok_or(InterpError::BadLoad {
                        at: pc - 1,
                        offset: k,
                    })?,
                    LEN => SECCOMP_DATA_SIZE,
                    MEM => mem[mem_slot],
                    _ => k,
                }
            }
            LDX => {
                x = match ins.code & 0xe0 {
                    LEN => SECCOMP_DATA_SIZE,
                    MEM => mem[mem_slot],
                    _ => k,
                }
            }
            ST => mem[mem_slot] = a,
            STX => mem[mem_slot] = x,
            ALU => {
                let operand = if ins.code & X != 0 { x } else { k };
                a = match ins.code & 0xf0 {
                    ADD => a.wrapping_add(operand),
                    SUB => a.wrapping_sub(operand),
                    MUL => a.wrapping_mul(operand),
                    // The kernel returns 0 from the filter on a runtime division by
                    // zero (X == 0): that is kill-thread.
                    DIV => match a.checked_div(operand) {
                        Some(v) => v,
                        None => return Ok(finish(0, executed)),
                    },
                    MOD => match a.checked_rem(operand) {
                        Some(v) => v,
                        None => return Ok(finish(0, executed)),
                    },
                    OR => a | operand,
                    AND => a & operand,
                    LSH => a.checked_shl(operand).unwrap_or(0),
                    RSH => a.checked_shr(operand).unwrap_or(0),
                    XOR => a ^ operand,
                    _ => a.wrapping_neg(),
                }
            }
            JMP => {
                let operand = if ins.code & X != 0 { x } else { k };
                let taken = match ins.code & 0xf0 {
                    JA => {
                        pc += k as usize;
                        continue;
                    }
                    JEQ => a == operand,
                    JGT => a > operand,
                    JGE => a >= operand,
                    _ => a & operand != 0,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            RET => {
                let ret = if ins.code & A != 0 { a } else { k };
                return Ok(finish(ret, executed));
            }
            _ => {
                if ins.code & TXA != 0 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
    // validate() guarantees the last instruction is a return and jumps stay inside.
    Err(InterpError::NoFinalReturn)
}

fn finish(ret: u32, executed: usize) -> Outcome {
    Outcome {
        ret,
        action: Action::from_ret(ret),
        executed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_the_kernel_rejects() {
        let ret = SockFilter::stmt(RET | K, 0);
        assert_eq!(validate(&[]), Err(InterpError::Empty));
        assert_eq!(
            validate(&[SockFilter::stmt(LD | W | ABS, 2), ret]),
            Err(InterpError::BadLoad { at: 0, offset: 2 })
        );
        assert_eq!(
            validate(&[SockFilter::stmt(LD | W | ABS, 64), ret]),
            Err(InterpError::BadLoad { at: 0, offset: 64 })
        );
        assert_eq!(
            validate(&[SockFilter::jump(JMP | JEQ | K, 0, 1, 0), ret]),
            Err(InterpError::JumpOut { at: 0 })
        );
        assert_eq!(
            validate(&[SockFilter::stmt(ALU | DIV | K, 0), ret]),
            Err(InterpError::DivByZero { at: 0 })
        );
        assert_eq!(
            validate(&[SockFilter::stmt(LD | B | ABS, 0), ret]),
            Err(InterpError::BadOpcode {
                at: 0,
                code: LD | B | ABS
            })
        );
        assert_eq!(
            validate(&[SockFilter::stmt(LD | W | ABS, 0)]),
            Err(InterpError::NoFinalReturn)
        );
    }

    #[test]
    fn runs_alu_and_memory() {
        let prog = [
            SockFilter::stmt(LD | W | ABS, 0),
            SockFilter::stmt(ALU | ADD | K, 5),
            SockFilter::stmt(ST, 3),
            SockFilter::stmt(LDX | MEM, 3),
            SockFilter::stmt(MISC | TXA, 0),
            SockFilter::stmt(ALU | AND | K, 0xff),
            SockFilter::stmt(RET | A, 0),
        ];
        let d = SeccompData {
            nr: 10,
            ..Default::default()
        };
        let out = run(&prog, &d).expect("runs");
        assert_eq!(out.ret, 15);
        assert_eq!(out.executed, 7);
    }
}

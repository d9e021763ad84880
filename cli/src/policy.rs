//! `sandbox policy ...`: check, compile, evaluate and show policies.

use clap::{Args, Subcommand};
use sandbox::bpf::{self, Program};
use sandbox::policy::arch::{Arch, SeccompData};
use sandbox::policy::presets::Preset;
use sandbox::policy::text::{self, Options};
use sandbox::policy::Policy;
use std::io::Write;
use std::path::PathBuf;

/// Exit status for a policy that does not check or compile.
pub const EXIT_POLICY_ERROR: i32 = 2;

/// `sandbox policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse and compile a policy; print `file:line:col` errors and exit 2 if it fails.
    Check {
        /// The policy and how to read it.
        #[command(flatten)]
        source: Source,
    },
    /// Compile a policy and print its disassembly.
    Compile {
        /// The policy and how to read it.
        #[command(flatten)]
        source: Source,
        /// Also write the raw sock_filter array (8 bytes per instruction, native
        /// endian), as seccomp(2) and `bwrap --seccomp FD` load it.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Run the compiled program on one syscall and print `<action> instructions=<n>
    /// (decided by <the rule and its file:line:column, a fallback, or the default>)`.
    Eval {
        /// The policy and how to read it.
        #[command(flatten)]
        source: Source,
        /// Syscall name or number (0x hex accepted).
        #[arg(long)]
        syscall: String,
        /// Argument 0 (decimal, 0x hex, or negative; up to 64 bits).
        #[arg(long, value_parser = parse_u64, default_value = "0", allow_hyphen_values = true)]
        arg0: u64,
        /// Argument 1.
        #[arg(long, value_parser = parse_u64, default_value = "0", allow_hyphen_values = true)]
        arg1: u64,
        /// Argument 2.
        #[arg(long, value_parser = parse_u64, default_value = "0", allow_hyphen_values = true)]
        arg2: u64,
        /// Argument 3.
        #[arg(long, value_parser = parse_u64, default_value = "0", allow_hyphen_values = true)]
        arg3: u64,
        /// Argument 4.
        #[arg(long, value_parser = parse_u64, default_value = "0", allow_hyphen_values = true)]
        arg4: u64,
        /// Argument 5.
        #[arg(long, value_parser = parse_u64, default_value = "0", allow_hyphen_values = true)]
        arg5: u64,
    },
    /// Print a built-in preset's text.
    Show {
        /// renderer, plugin or exec.
        preset: String,
    },
}

/// Where the policy comes from and how to read it.
#[derive(Debug, Args)]
pub struct Source {
    /// The name of a preset (renderer, plugin, exec), or a policy file named with a `/`
    /// (e.g. `./my.policy`).
    pub file: String,
    /// Architecture: x86_64 or aarch64 (for `eval`, also a raw 0xAUDIT_ARCH value for
    /// the call, the program being compiled for this machine). Default: this machine.
    #[arg(long)]
    pub arch: Option<String>,
    /// Directory where `@include`s that do not exist as written are looked up by name.
    #[arg(long = "include-dir", value_name = "DIR")]
    pub include_dirs: Vec<PathBuf>,
    /// Bind a constant, e.g. `--define SELF_PID=1` for the renderer preset.
    #[arg(long = "define", value_name = "NAME=VALUE", value_parser = parse_define)]
    pub defines: Vec<(String, u64)>,
}

/// Parse a number: decimal (a leading 0 is still decimal), 0x hex, 0o octal, 0b
/// binary, or negative (two's complement, 64 bits).
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t),
    };
    let (digits, radix) =
        if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (h, 16)
        } else if let Some(b) = body.strip_prefix("0b") {
            (b, 2)
        } else if let Some(o) = body.strip_prefix("0o") {
            (o, 8)
        } else {
            (body, 10)
        };
    let v = u64::from_str_radix(digits, radix).map_err(|e| format!("`{s}`: {e}"))?;
    if neg {
        if v > 1 << 63 {
            return Err(format!("`{s}` overflows 64 bits"));
        }
        Ok(v.wrapping_neg())
    } else {
        Ok(v)
    }
}

fn parse_define(s: &str) -> Result<(String, u64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))?;
    Ok((name.trim().to_string(), parse_u64(value)?))
}

/// The architecture to compile for, and the audit-arch value a call is made with.
fn arches(arch: Option<&str>) -> Result<(Arch, u32), String> {
    match arch {
        None => Ok((Arch::native(), Arch::native().audit_arch())),
        Some(s) if s.starts_with("0x") || s.starts_with("0X") => {
            let raw = parse_u64(s)?;
            let raw =
                u32::try_from(raw).map_err(|_| format!("audit arch `{s}` does not fit 32 bits"))?;
            let compile_for = Arch::from_audit_arch(raw).unwrap_or(Arch::native());
            Ok((compile_for, raw))
        }
        Some(s) => {
            let a: Arch = s.parse()?;
            Ok((a, a.audit_arch()))
        }
    }
}

/// What a policy argument names: a built-in preset, or a file. A preset name is never
/// looked up in the file system (a file of that name in the working directory, which
/// an untrusted project can ship, must not replace it); a file is named with a `/`
/// (`./exec`, `/etc/x.policy`); any other bare word is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyArg {
    /// A built-in preset.
    Preset(Preset),
    /// A policy file.
    File(PathBuf),
}

impl PolicyArg {
    /// Read a command-line argument.
    pub fn parse(arg: &str) -> Result<PolicyArg, String> {
        if let Ok(preset) = arg.parse::<Preset>() {
            return Ok(PolicyArg::Preset(preset));
        }
        if arg.contains('/') {
            return Ok(PolicyArg::File(PathBuf::from(arg)));
        }
        Err(format!(
            "`{arg}` is not a preset (renderer, plugin, exec); name a policy file with a `/`, \
             e.g. ./{arg}"
        ))
    }
}

/// Load the policy named by `source` for `arch`.
pub fn load(source: &Source, arch: Arch) -> Result<Policy, String> {
    let mut options = Options::new(arch);
    options.defines = source.defines.clone();
    match PolicyArg::parse(&source.file)? {
        // A profile's policy, its `sandbox run` lines set aside.
        PolicyArg::File(path) if path.extension().is_some_and(|e| e == "profile") => {
            crate::profile::load(&source.file, arch).map(|p| p.policy)
        }
        PolicyArg::File(path) => {
            text::parse_file(&path, &options, &source.include_dirs).map_err(|e| e.to_string())
        }
        PolicyArg::Preset(preset) => {
            if preset.needs_self_pid() && !options.defines.iter().any(|(n, _)| n == "SELF_PID") {
                return Err(format!(
                    "the `{preset}` preset lets a process signal only itself: bind its pid with \
                     --define SELF_PID=PID"
                ));
            }
            preset.policy(&options).map_err(|e| e.to_string())
        }
    }
}

fn compile(source: &Source, arch: Arch) -> Result<(Policy, Program), String> {
    let policy = load(source, arch)?;
    let program = bpf::compile(&policy, arch).map_err(|e| format!("{}: {e}", source.file))?;
    Ok((policy, program))
}

fn resolve_syscall(arch: Arch, s: &str) -> Result<u32, String> {
    if s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-')
    {
        let v = parse_u64(s)?;
        return u32::try_from(v)
            .or_else(|_| i32::try_from(v as i64).map(|x| x as u32))
            .map_err(|_| format!("syscall number `{s}` does not fit 32 bits"));
    }
    arch.syscall_number(s)
        .ok_or_else(|| format!("no syscall `{s}` on {arch}"))
}

/// Run one `sandbox policy` command; returns the exit code.
pub fn run(cmd: PolicyCommand) -> i32 {
    match execute(cmd, &mut std::io::stdout().lock()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            EXIT_POLICY_ERROR
        }
    }
}

/// Run one command, writing its normal output to `out`.
pub fn execute(cmd: PolicyCommand, out: &mut dyn Write) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot write output: {e}");
    match cmd {
        PolicyCommand::Check { source } => {
            let (arch, _) = arches(source.arch.as_deref())?;
            let (policy, program) = compile(&source, arch)?;
            writeln!(
                out,
                "{}: ok ({} syscalls named, {} instructions on {arch})",
                source.file,
                policy.syscalls().count(),
                program.instructions.len()
            )
            .map_err(io)?;
        }
        PolicyCommand::Compile { source, output } => {
            let (arch, _) = arches(source.arch.as_deref())?;
            let (_, program) = compile(&source, arch)?;
            writeln!(
                out,
                "# {} compiled for {arch}: {} instructions",
                source.file,
                program.instructions.len()
            )
            .map_err(io)?;
            if !program.left_out.is_empty() {
                let names: Vec<&str> = program.left_out.iter().map(|s| s.name()).collect();
                writeln!(out, "# not on {arch}, left out: {}", names.join(", ")).map_err(io)?;
            }
            write!(out, "{}", bpf::disassemble(&program.instructions, arch)).map_err(io)?;
            if let Some(path) = output {
                std::fs::write(&path, bpf::to_bytes(&program.instructions))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        PolicyCommand::Eval {
            source,
            syscall,
            arg0,
            arg1,
            arg2,
            arg3,
            arg4,
            arg5,
        } => {
            let (arch, audit) = arches(source.arch.as_deref())?;
            let (policy, program) = compile(&source, arch)?;
            let data = SeccompData {
                nr: resolve_syscall(arch, &syscall)?,
                arch: audit,
                instruction_pointer: 0,
                args: [arg0, arg1, arg2, arg3, arg4, arg5],
            };
            let outcome = bpf::run(&program.instructions, &data).map_err(|e| e.to_string())?;
            // What decided, from the policy itself (the property tests hold the
            // compiled program to it).
            let (_, by) = policy.explain(arch, &data);
            writeln!(
                out,
                "{} instructions={} (decided by {by})",
                outcome.action, outcome.executed
            )
            .map_err(io)?;
        }
        PolicyCommand::Show { preset } => {
            let p: Preset = preset.parse()?;
            write!(out, "{}", p.text()).map_err(io)?;
        }
    }
    Ok(())
}

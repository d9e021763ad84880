//! Helpers shared by the `sandbox run` test files.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binds every dynamically linked program from Debian needs.
pub const SYSTEM: &[&str] = &[
    "--ro", "/usr", "--ro", "/lib", "--ro", "/lib64", "--ro", "/bin",
];

/// The test folders of earlier test processes that have ended (named with their pid),
/// removed once per process: a failed or killed test leaves its folder for a look,
/// until the next run.
fn sweep_stale() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = ["sandbox-run-", "sandbox-grants-"]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    });
}

/// A fresh folder under the temporary directory, open to uid 65534 too.
pub fn tmp(name: &str) -> PathBuf {
    sweep_stale();
    let d = std::env::temp_dir().join(format!("sandbox-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    open_to_all(&d);
    d
}

/// Mode 0777 for a folder, 0666 for a file (so that uid 65534 can use it).
pub fn open_to_all(p: &Path) {
    let mode = if p.is_dir() { 0o777 } else { 0o666 };
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
}

/// `sandbox run` with the system binds, then `args`.
pub fn run(args: &[&str], nobody: bool) -> Output {
    let all: Vec<&str> = SYSTEM.iter().chain(args).copied().collect();
    run_bare(&all, nobody)
}

/// `sandbox run ARGS`, no binds added; as uid 65534 if `nobody`.
pub fn run_bare(args: &[&str], nobody: bool) -> Output {
    let mut c = Command::new(sandbox_exe(nobody));
    c.arg("run").args(args).current_dir("/");
    if nobody {
        c.uid(65534).gid(65534);
    }
    c.output().expect("run sandbox")
}

/// The `sandbox` command; for uid 65534, a copy it can run wherever the checkout is.
pub fn sandbox_exe(nobody: bool) -> PathBuf {
    let built = Path::new(env!("CARGO_BIN_EXE_sandbox"));
    if nobody {
        sandbox_tests::reachable::copy_of(built)
    } else {
        built.to_path_buf()
    }
}

/// Lossy text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Compile C `source` as `dir/name`.
pub fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).expect("write C");
    let out = dir.join(name);
    let s = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .status()
        .expect("cc");
    assert!(s.success(), "cc failed");
    let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755));
    out
}

/// `f(false)` as root, then `f(true)` as uid 65534.
pub fn both(f: impl Fn(bool)) {
    f(false);
    f(true);
}

/// A valid one-page PDF with a filled rectangle, with a correct xref table.
pub fn minimal_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] /Contents 4 0 R >>".to_string(),
        "<< /Length 26 >>\nstream\n0 0 1 rg 10 10 50 50 re f\nendstream".to_string(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (n, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{body}\nendobj\n", n + 1).bytes());
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for o in offsets {
        pdf.extend(format!("{o:010} 00000 n \n").bytes());
    }
    pdf.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .bytes(),
    );
    pdf
}

/// A 0700 folder owned by the caller (uid 65534 when `nobody`), as `mktemp -d` makes.
pub fn private_dir(name: &str, nobody: bool) -> PathBuf {
    sweep_stale();
    let d = std::env::temp_dir().join(format!("sandbox-grants-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).expect("mkdir");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    if nobody {
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).expect("chown");
    }
    d
}

/// `path` written by the caller (owned as `private_dir`).
pub fn caller_file(path: &Path, content: &str, mode: u32, nobody: bool) {
    std::fs::write(path, content).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if nobody {
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).expect("chown");
    }
}

//! The files a program needs to start: the program, its ELF interpreter (the dynamic
//! loader) and the shared libraries it needs, transitively — found the way glibc's
//! loader finds them, so that `sandbox run` can bind exactly those, read-only, at the
//! paths the loader inside will open.
//!
//! Resolution, per needed library name (as `ld.so(8)` describes): a name with a `/` is
//! a path; otherwise the requesting object's `DT_RPATH` (when it has no `DT_RUNPATH`),
//! its `DT_RUNPATH` (`$ORIGIN` is the requester's directory; entries with other
//! tokens are skipped), `/etc/ld.so.cache` (every entry of the name for this
//! architecture, so that whichever hardware-capability variant the loader picks is
//! there), then the default directories. `LD_LIBRARY_PATH` is not consulted: the
//! sandbox's environment is empty unless `--env` sets it. The cache itself is among
//! the files, so the loader inside looks libraries up the same way.
//!
//! A `#!` script yields itself and its interpreter's files (one level). What a
//! program opens once running (Python's standard library, data files, `dlopen`ed
//! plugins) is not found here: those still need `--ro`.
//!
//! Everything here reads host files in the supervisor, named by a program that may be
//! hostile: every file found besides the program and the cache must be a regular ELF
//! file, or the run is refused (a crafted `DT_NEEDED` of `/etc/passwd`, or a
//! `DT_RUNPATH` into a home directory, would otherwise bind that file inside). ELF
//! parsing is goblin's, and the amount read is bounded ([`MAX_PART`], [`MAX_FILES`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The largest ELF part (program headers, dynamic section, string table) read.
pub const MAX_PART: u64 = 16 << 20;
/// The most files one program may need.
pub const MAX_FILES: usize = 1024;

const LD_SO_CACHE: &str = "/etc/ld.so.cache";
const CACHE_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";

/// `FLAG_ELF_LIBC6` with the architecture's 64-bit library flag, as `ldconfig` writes
/// it for this architecture's libraries.
#[cfg(target_arch = "x86_64")]
const CACHE_FLAGS: i32 = 0x0303;
#[cfg(target_arch = "aarch64")]
const CACHE_FLAGS: i32 = 0x0a03;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const CACHE_FLAGS: i32 = -1;

/// Where the loader looks last (glibc's built-in system directories on Debian-style
/// multiarch systems, then the classic ones).
#[cfg(target_arch = "x86_64")]
const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
#[cfg(not(target_arch = "x86_64"))]
const DEFAULT_DIRS: &[&str] = &[
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// What one ELF file asks of the loader.
#[derive(Debug, Default, PartialEq)]
struct Dynamic {
    interpreter: Option<String>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
}

/// Open `path` for reading if it is a regular file — without blocking on a FIFO or
/// taking a terminal, which a hostile program could name.
fn open_regular(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file: refused", path.display()));
    }
    Ok(file)
}

/// `len` bytes at `offset` of `file`, at most `cap`; fewer at its end only if
/// `short_ok` (else a part that runs past the end is an error).
fn read_at(
    file: &std::fs::File,
    path: &Path,
    (offset, len): (u64, u64),
    cap: u64,
    short_ok: bool,
) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::FileExt;
    if len > cap {
        return Err(format!(
            "{}: a {len}-byte ELF part (at most {cap})",
            path.display()
        ));
    }
    let mut buf = vec![0u8; usize::try_from(len).map_err(|e| e.to_string())?];
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        match file.read_at(rest, offset.saturating_add(done as u64)) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    if done < buf.len() && !short_ok {
        return Err(format!(
            "{}: an ELF part at {offset} runs past the end of the file",
            path.display()
        ));
    }
    buf.truncate(done);
    Ok(buf)
}

/// The dynamic-linking facts of the file at `path`, or `None` if it is not ELF. Only
/// the parts that hold them are read — the header, the program headers, `PT_INTERP`,
/// `PT_DYNAMIC` and its string table — each through goblin's parsers and capped in
/// size ([`MAX_PART`]); a library's symbols and relocations are never touched.
fn dynamic(path: &Path) -> Result<Option<Dynamic>, String> {
    use goblin::container::Ctx;
    use goblin::elf::dynamic::{Dynamic as Dyns, DT_NEEDED, DT_RPATH, DT_RUNPATH};
    use goblin::elf::program_header::{ProgramHeader, PT_DYNAMIC, PT_INTERP};
    let err = |e: goblin::error::Error| format!("{}: {e}", path.display());
    let file = open_regular(path)?;
    let head = read_at(&file, path, (0, 64), 64, true)?;
    if !head.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let header = goblin::elf::Elf::parse_header(&head).map_err(err)?;
    let ctx = Ctx::new(
        header.container().map_err(err)?,
        header.endianness().map_err(err)?,
    );
    let table = u64::from(header.e_phnum) * u64::from(header.e_phentsize);
    let ph_bytes = read_at(&file, path, (header.e_phoff, table), MAX_PART, false)?;
    let mut phdrs =
        ProgramHeader::parse(&ph_bytes, 0, usize::from(header.e_phnum), ctx).map_err(err)?;
    let mut out = Dynamic::default();
    let c_string = |bytes: &[u8]| {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(bytes.get(..end).unwrap_or(&[])).into_owned()
    };
    if let Some(interp) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        let bytes = read_at(&file, path, (interp.p_offset, interp.p_filesz), 4096, false)?;
        out.interpreter = Some(c_string(&bytes));
    }
    let Some(at) = phdrs.iter().position(|p| p.p_type == PT_DYNAMIC) else {
        return Ok(Some(out)); // static
    };
    let Some(dyn_phdr) = phdrs.get_mut(at) else {
        return Ok(Some(out));
    };
    let dyn_bytes = read_at(
        &file,
        path,
        (dyn_phdr.p_offset, dyn_phdr.p_filesz),
        MAX_PART,
        false,
    )?;
    // goblin reads PT_DYNAMIC at its file offset in the bytes it is given: here the
    // bytes are that segment alone.
    dyn_phdr.p_offset = 0;
    dyn_phdr.p_filesz = dyn_bytes.len() as u64;
    let Some(dyns) = Dyns::parse(&dyn_bytes, &phdrs, ctx).map_err(err)? else {
        return Ok(Some(out));
    };
    // DT_STRTAB, as a file offset (goblin maps the address through PT_LOAD).
    let strtab = read_at(
        &file,
        path,
        (dyns.info.strtab as u64, dyns.info.strsz as u64),
        MAX_PART,
        false,
    )?;
    let string = |offset: u64| {
        usize::try_from(offset)
            .ok()
            .and_then(|o| strtab.get(o..))
            .map(c_string)
            .ok_or_else(|| format!("{}: a string outside DT_STRTAB", path.display()))
    };
    for d in &dyns.dyns {
        match d.d_tag {
            DT_NEEDED => out.needed.push(string(d.d_val)?),
            DT_RPATH => out.rpath.push(string(d.d_val)?),
            DT_RUNPATH => out.runpath.push(string(d.d_val)?),
            _ => {}
        }
    }
    Ok(Some(out))
}

/// `name → paths` from an `ld.so.cache` in the format glibc ≥ 2.32 writes
/// (`glibc-ld.so.cache1.1`), this architecture's entries only, in the cache's order.
/// Anything malformed yields what was read before it.
fn parse_cache(data: &[u8]) -> Vec<(String, PathBuf)> {
    let u32_at = |at: usize| -> Option<u32> {
        let b = data.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    };
    let string_at = |at: usize| -> Option<&str> {
        let tail = data.get(at..)?;
        let end = tail.iter().position(|&b| b == 0)?;
        std::str::from_utf8(tail.get(..end)?).ok()
    };
    let mut out = Vec::new();
    // Little-endian caches only (flags byte 2), as on both supported architectures.
    if !data.starts_with(CACHE_MAGIC) || data.get(28) != Some(&2) {
        return out;
    }
    let Some(count) = u32_at(20) else {
        return out;
    };
    for i in 0..count as usize {
        let Some(entry) = i.checked_mul(24).and_then(|o| o.checked_add(48)) else {
            break;
        };
        let (Some(flags), Some(key), Some(value)) =
            (u32_at(entry), u32_at(entry + 4), u32_at(entry + 8))
        else {
            break;
        };
        if flags as i32 != CACHE_FLAGS {
            continue;
        }
        if let (Some(name), Some(path)) = (string_at(key as usize), string_at(value as usize)) {
            out.push((name.to_string(), PathBuf::from(path)));
        }
    }
    out
}

/// The directories a `DT_RPATH`/`DT_RUNPATH` value names, `$ORIGIN` expanded.
fn search_dirs(entries: &[String], origin: &Path) -> Vec<PathBuf> {
    entries
        .iter()
        .flat_map(|e| e.split(':'))
        .filter(|d| !d.is_empty())
        .filter_map(|d| {
            let d = d
                .replace("${ORIGIN}", &origin.to_string_lossy())
                .replace("$ORIGIN", &origin.to_string_lossy());
            // $LIB, $PLATFORM: not expanded; such entries are skipped.
            (!d.contains('$')).then(|| PathBuf::from(d))
        })
        .collect()
}

/// The files `program` needs to start, itself first. An error names the file and
/// what went wrong, or the library that cannot be found.
pub fn needed_files(program: &Path) -> Result<Vec<PathBuf>, String> {
    let cache = std::fs::read(LD_SO_CACHE)
        .map(|d| parse_cache(&d))
        .unwrap_or_default();
    let mut found: Vec<PathBuf> = vec![program.to_path_buf()];
    let mut seen: BTreeSet<PathBuf> = found.iter().cloned().collect();
    let mut todo: Vec<PathBuf> = Vec::new();
    let first = {
        let file = open_regular(program)?;
        read_at(&file, program, (0, 256), 256, true)?
    };
    if first.starts_with(b"#!") {
        let line = first
            .split(|&b| b == b'\n')
            .next()
            .and_then(|l| std::str::from_utf8(l.get(2..)?).ok())
            .unwrap_or("");
        let interpreter = line.split_whitespace().next().unwrap_or("");
        if !interpreter.starts_with('/') {
            return Err(format!(
                "{}: the #! line names no absolute interpreter",
                program.display()
            ));
        }
        let interpreter = PathBuf::from(interpreter);
        if seen.insert(interpreter.clone()) {
            found.push(interpreter.clone());
        }
        todo.push(interpreter);
    } else {
        todo.push(program.to_path_buf());
    }
    let mut used_cache = false;
    while let Some(object) = todo.pop() {
        let Some(dynamic) = dynamic(&object)? else {
            if object == program {
                continue; // not ELF: execve decides
            }
            // The program names its interpreter and libraries, and it may be hostile:
            // a dependency that is not ELF (`DT_NEEDED` "/etc/passwd", a RUNPATH into a
            // home directory) is refused, so only code can be bound this way.
            return Err(format!(
                "{} needs {}, which is not an ELF file: refused",
                program.display(),
                object.display()
            ));
        };
        let mut add = |path: PathBuf, todo: &mut Vec<PathBuf>| -> Result<(), String> {
            if seen.insert(path.clone()) {
                if found.len() >= MAX_FILES {
                    return Err(format!(
                        "{}: more than {MAX_FILES} files",
                        program.display()
                    ));
                }
                found.push(path.clone());
                todo.push(path);
            }
            Ok(())
        };
        if let Some(interp) = &dynamic.interpreter {
            add(PathBuf::from(interp), &mut todo)?;
        }
        let real = std::fs::canonicalize(&object).unwrap_or_else(|_| object.clone());
        let origin = real.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut dirs = Vec::new();
        if dynamic.runpath.is_empty() {
            dirs.extend(search_dirs(&dynamic.rpath, &origin));
        }
        dirs.extend(search_dirs(&dynamic.runpath, &origin));
        for name in &dynamic.needed {
            if name.contains('/') {
                add(PathBuf::from(name), &mut todo)?;
                continue;
            }
            if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
                add(p, &mut todo)?;
                continue;
            }
            let cached: Vec<PathBuf> = cache
                .iter()
                .filter(|(n, p)| n == name && p.is_file())
                .map(|(_, p)| p.clone())
                .collect();
            if !cached.is_empty() {
                used_cache = true;
                for p in cached {
                    add(p, &mut todo)?;
                }
                continue;
            }
            match DEFAULT_DIRS
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
            {
                Some(p) => add(p, &mut todo)?,
                None => {
                    return Err(format!(
                        "{} needs {name}, which is not found",
                        object.display()
                    ))
                }
            }
        }
    }
    if used_cache {
        found.push(PathBuf::from(LD_SO_CACHE));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_with(entries: &[(i32, &str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = 48 + 24 * entries.len();
        let mut table = Vec::new();
        for (flags, name, path) in entries {
            let key = base + strings.len();
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            let value = base + strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&(key as u32).to_le_bytes());
            table.extend_from_slice(&(value as u32).to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
            table.extend_from_slice(&0u64.to_le_bytes());
        }
        let mut data = CACHE_MAGIC.to_vec();
        data.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        data.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        data.extend_from_slice(&[2, 0, 0, 0]);
        data.extend_from_slice(&[0; 16]);
        data.extend_from_slice(&table);
        data.extend_from_slice(&strings);
        data
    }

    #[test]
    fn the_cache_yields_this_architectures_entries() {
        let data = cache_with(&[
            (CACHE_FLAGS, "libc.so.6", "/lib/x/libc.so.6"),
            (0x0003, "libc.so.6", "/lib32/libc.so.6"),
            (CACHE_FLAGS, "libm.so.6", "/lib/x/libm.so.6"),
        ]);
        assert_eq!(
            parse_cache(&data),
            vec![
                ("libc.so.6".to_string(), PathBuf::from("/lib/x/libc.so.6")),
                ("libm.so.6".to_string(), PathBuf::from("/lib/x/libm.so.6")),
            ]
        );
    }

    #[test]
    fn a_malformed_cache_yields_what_came_before_the_damage() {
        let data = cache_with(&[
            (CACHE_FLAGS, "a.so", "/a.so"),
            (CACHE_FLAGS, "b.so", "/b.so"),
        ]);
        // Cut inside the second entry's table slot: only the first is whole, and its
        // strings are gone too, so nothing is returned rather than garbage.
        assert!(parse_cache(&data[..48 + 30]).is_empty());
        assert!(parse_cache(b"not a cache").is_empty());
        let mut big = data.clone();
        big[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse_cache(&big).len(),
            2,
            "a lying count stops at the data's end"
        );
    }

    #[test]
    fn origin_is_expanded_and_other_tokens_skipped() {
        let dirs = search_dirs(
            &["$ORIGIN/../lib:/opt/x".into(), "${ORIGIN}/y:$LIB/z".into()],
            Path::new("/app/bin"),
        );
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/app/bin/../lib"),
                PathBuf::from("/opt/x"),
                PathBuf::from("/app/bin/y"),
            ]
        );
    }

    /// `/bin/true` from the host: itself, the loader its PT_INTERP names, libc, and
    /// the cache (found through it).
    #[test]
    fn bin_true_needs_its_loader_and_libc() {
        let files = needed_files(Path::new("/bin/true")).expect("resolved");
        assert_eq!(files[0], PathBuf::from("/bin/true"));
        assert!(files.iter().any(|f| f.ends_with("libc.so.6")), "{files:?}");
        assert!(
            files
                .iter()
                .any(|f| f.to_string_lossy().contains("ld-linux")),
            "{files:?}"
        );
        assert!(files.contains(&PathBuf::from(LD_SO_CACHE)), "{files:?}");
    }

    #[test]
    fn a_script_brings_its_interpreter() {
        let dir = std::env::temp_dir().join(format!("deps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let script = dir.join("s");
        std::fs::write(&script, "#!/bin/sh -e\necho hi\n").expect("write");
        let files = needed_files(&script).expect("resolved");
        assert_eq!(files[0], script);
        assert_eq!(files[1], PathBuf::from("/bin/sh"));
        assert!(files.iter().any(|f| f.ends_with("libc.so.6")), "{files:?}");
        std::fs::write(&script, "#!sh\n").expect("write");
        assert!(needed_files(&script).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_is_not_elf_and_broken_elf_is_an_error() {
        let dir = std::env::temp_dir().join(format!("deps-g-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("f");
        std::fs::write(&f, b"hello").expect("write");
        assert_eq!(dynamic(&f).expect("not ELF"), None);
        // A 64-bit header whose program header table is 65535 entries of 65535 bytes.
        let mut broken = b"\x7fELF\x02\x01\x01".to_vec();
        broken.extend_from_slice(&[0xff; 57]);
        std::fs::write(&f, &broken).expect("write");
        assert!(dynamic(&f).is_err());
        // A real binary cut short after its headers: its parts are missing.
        let real = std::fs::read("/bin/true").expect("read");
        std::fs::write(&f, real.get(..1024).expect("long enough")).expect("write");
        assert!(
            dynamic(&f).is_err(),
            "a truncated dynamic section or string table"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

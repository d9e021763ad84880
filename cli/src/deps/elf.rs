//! What an ELF file asks of the loader: its interpreter (`PT_INTERP`) and the
//! libraries it needs with where to search them (`DT_NEEDED`, `DT_RPATH`,
//! `DT_RUNPATH`). Only the parts that hold these are read — the header, the program
//! headers, `PT_INTERP`, `PT_DYNAMIC` and its string table — each through goblin's
//! parsers and capped in size ([`MAX_PART`]); a library's symbols and relocations are
//! never touched.

use std::path::Path;

/// The largest ELF part (program headers, dynamic section, string table) read.
pub const MAX_PART: u64 = 16 << 20;

/// What one ELF file asks of the loader.
#[derive(Debug, Default, PartialEq)]
pub struct Dynamic {
    /// `PT_INTERP`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_RPATH` values.
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` values.
    pub runpath: Vec<String>,
}

/// `len` bytes at `offset` of `file`, at most `cap`; fewer at its end only if
/// `short_ok` (else a part that runs past the end is an error).
pub fn read_at(
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
pub fn dynamic(file: &std::fs::File, path: &Path) -> Result<Option<Dynamic>, String> {
    use goblin::container::Ctx;
    use goblin::elf::dynamic::{Dynamic as Dyns, DT_NEEDED, DT_RPATH, DT_RUNPATH};
    use goblin::elf::program_header::{ProgramHeader, PT_DYNAMIC, PT_INTERP};
    let err = |e: goblin::error::Error| format!("{}: {e}", path.display());
    let head = read_at(file, path, (0, 64), 64, true)?;
    if !head.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let header = goblin::elf::Elf::parse_header(&head).map_err(err)?;
    let ctx = Ctx::new(
        header.container().map_err(err)?,
        header.endianness().map_err(err)?,
    );
    let table = u64::from(header.e_phnum) * u64::from(header.e_phentsize);
    let ph_bytes = read_at(file, path, (header.e_phoff, table), MAX_PART, false)?;
    let mut phdrs =
        ProgramHeader::parse(&ph_bytes, 0, usize::from(header.e_phnum), ctx).map_err(err)?;
    let mut out = Dynamic::default();
    let c_string = |bytes: &[u8]| {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(bytes.get(..end).unwrap_or(&[])).into_owned()
    };
    if let Some(interp) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        let bytes = read_at(file, path, (interp.p_offset, interp.p_filesz), 4096, false)?;
        out.interpreter = Some(c_string(&bytes));
    }
    let Some(at) = phdrs.iter().position(|p| p.p_type == PT_DYNAMIC) else {
        return Ok(Some(out)); // static
    };
    let Some(dyn_phdr) = phdrs.get_mut(at) else {
        return Ok(Some(out));
    };
    let dyn_bytes = read_at(
        file,
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
        file,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic_of(p: &Path) -> Result<Option<Dynamic>, String> {
        dynamic(&std::fs::File::open(p).map_err(|e| e.to_string())?, p)
    }

    #[test]
    fn garbage_is_not_elf_and_broken_elf_is_an_error() {
        let dir = std::env::temp_dir().join(format!("deps-g-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("f");
        std::fs::write(&f, b"hello").expect("write");
        assert_eq!(dynamic_of(&f).expect("not ELF"), None);
        // A 64-bit header whose program header table is 65535 entries of 65535 bytes.
        let mut broken = b"\x7fELF\x02\x01\x01".to_vec();
        broken.extend_from_slice(&[0xff; 57]);
        std::fs::write(&f, &broken).expect("write");
        assert!(dynamic_of(&f).is_err());
        // A real binary cut short after its headers: its parts are missing.
        let real = std::fs::read("/bin/true").expect("read");
        std::fs::write(&f, real.get(..1024).expect("long enough")).expect("write");
        assert!(
            dynamic_of(&f).is_err(),
            "a truncated dynamic section or string table"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

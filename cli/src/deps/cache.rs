//! `/etc/ld.so.cache`, as glibc ≥ 2.32 writes it (`glibc-ld.so.cache1.1`): which
//! paths the loader finds a library name at, this architecture's entries only.

use std::path::PathBuf;

/// Where the cache is.
pub const LD_SO_CACHE: &str = "/etc/ld.so.cache";
const CACHE_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";

/// `FLAG_ELF_LIBC6` with the architecture's 64-bit library flag, as `ldconfig` writes
/// it for this architecture's libraries.
#[cfg(target_arch = "x86_64")]
const CACHE_FLAGS: i32 = 0x0303;
#[cfg(target_arch = "aarch64")]
const CACHE_FLAGS: i32 = 0x0a03;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const CACHE_FLAGS: i32 = -1;

/// The cache of this system (empty if it cannot be read).
pub fn read() -> Vec<(String, PathBuf)> {
    std::fs::read(LD_SO_CACHE)
        .map(|d| parse(&d))
        .unwrap_or_default()
}

/// `name → paths` from an `ld.so.cache` in the format glibc ≥ 2.32 writes
/// (`glibc-ld.so.cache1.1`), this architecture's entries only, in the cache's order.
/// Anything malformed yields what was read before it.
pub fn parse(data: &[u8]) -> Vec<(String, PathBuf)> {
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
            parse(&data),
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
        assert!(parse(&data[..48 + 30]).is_empty());
        assert!(parse(b"not a cache").is_empty());
        let mut big = data.clone();
        big[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse(&big).len(),
            2,
            "a lying count stops at the data's end"
        );
    }
}

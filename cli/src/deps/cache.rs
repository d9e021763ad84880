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

/// Where the first NUL of `bytes` is.
fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

/// An `ld.so.cache` in the format glibc ≥ 2.32 writes (`glibc-ld.so.cache1.1`),
/// read on demand: one `sandbox run` looks up a few names among hundreds of entries.
pub struct Cache {
    data: Vec<u8>,
}

impl Cache {
    /// The cache of this system (empty if it cannot be read).
    pub fn read() -> Cache {
        Cache::from_bytes(std::fs::read(LD_SO_CACHE).unwrap_or_default())
    }

    pub fn from_bytes(data: Vec<u8>) -> Cache {
        Cache { data }
    }

    /// The string at `at` (to its NUL), if within the data.
    fn string_at(&self, at: u32) -> Option<&[u8]> {
        let tail = self.data.get(at as usize..)?;
        tail.get(..memchr_nul(tail)?)
    }

    /// `(name offset, path offset)` of this architecture's entries, in the cache's
    /// order. A malformed table ends the entries (what came before it is yielded).
    fn slots(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let data = &self.data[..];
        let u32_at = move |at: usize| -> Option<u32> {
            let b = data.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes(b.try_into().ok()?))
        };
        // Little-endian caches only (flags byte 2), as on both supported architectures.
        let count = match data.starts_with(CACHE_MAGIC) && data.get(28) == Some(&2) {
            true => u32_at(20).unwrap_or(0),
            false => 0,
        };
        (0..count as usize)
            .map_while(move |i| {
                let entry = i.checked_mul(24)?.checked_add(48)?;
                Some((u32_at(entry)?, u32_at(entry + 4)?, u32_at(entry + 8)?))
            })
            .filter(|(flags, _, _)| *flags as i32 == CACHE_FLAGS)
            .map(|(_, key, value)| (key, value))
    }

    /// `(name, path)` of this architecture's entries, in the cache's order, as bytes.
    /// An entry whose strings are not within the data is left out — as [`lookup`]
    /// leaves it out (the two agree on what the cache holds).
    ///
    /// [`lookup`]: Cache::lookup
    fn raw_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.slots()
            .filter_map(|(key, value)| Some((self.string_at(key)?, self.string_at(value)?)))
    }

    /// This architecture's entries, in the cache's order (entries that are not UTF-8
    /// are left out).
    #[cfg(test)]
    fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.raw_entries()
            .filter_map(|(n, p)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(p).ok()?)))
    }

    /// The paths of every entry of library `name`, in the cache's order (compared
    /// where each entry's name starts: only a matching entry's path is read).
    pub fn lookup<'a>(&'a self, name: &'a str) -> impl Iterator<Item = PathBuf> + 'a {
        let wanted = name.as_bytes();
        self.slots()
            .map_while(|(key, value)| {
                let end = (key as usize).checked_add(wanted.len())?;
                let named = self.data.get(key as usize..end) == Some(wanted)
                    && self.data.get(end) == Some(&0);
                Some((named, value))
            })
            .filter(|(named, _)| *named)
            .filter_map(|(_, value)| {
                let path = std::str::from_utf8(self.string_at(value)?).ok()?;
                Some(PathBuf::from(path))
            })
    }

    /// The folders the entries are in, each once.
    pub fn folders(&self) -> Vec<PathBuf> {
        let mut seen: Vec<&[u8]> = Vec::new();
        for (_, path) in self.raw_entries() {
            let folder = path.rsplitn(2, |&b| b == b'/').nth(1).unwrap_or(b"");
            if !folder.is_empty() && !seen.contains(&folder) {
                seen.push(folder);
            }
        }
        seen.into_iter()
            .filter_map(|f| std::str::from_utf8(f).ok().map(PathBuf::from))
            .collect()
    }
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
        let cache = Cache::from_bytes(data);
        assert_eq!(
            cache.entries().collect::<Vec<_>>(),
            vec![
                ("libc.so.6", "/lib/x/libc.so.6"),
                ("libm.so.6", "/lib/x/libm.so.6"),
            ]
        );
        assert_eq!(
            cache.lookup("libc.so.6").collect::<Vec<_>>(),
            vec![PathBuf::from("/lib/x/libc.so.6")]
        );
        assert_eq!(cache.folders(), vec![PathBuf::from("/lib/x")]);
    }

    #[test]
    fn a_malformed_cache_yields_what_came_before_the_damage() {
        let data = cache_with(&[
            (CACHE_FLAGS, "a.so", "/a.so"),
            (CACHE_FLAGS, "b.so", "/b.so"),
        ]);
        // Cut inside the second entry's table slot: only the first is whole, and its
        // strings are gone too, so nothing is returned rather than garbage.
        let count = |d: &[u8]| Cache::from_bytes(d.to_vec()).entries().count();
        assert_eq!(count(&data[..48 + 30]), 0);
        assert_eq!(count(b"not a cache"), 0);
        let mut big = data.clone();
        big[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(count(&big), 2, "a lying count stops at the data's end");
    }

    proptest::proptest! {
        /// A cache damaged anywhere (bytes overwritten, cut short) never panics, and a
        /// lookup finds only what the entries list.
        #[test]
        fn damaged_caches_are_read_without_panics(
            at in 0usize..200,
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            cut in 0usize..260,
        ) {
            let mut data = cache_with(&[
                (CACHE_FLAGS, "libc.so.6", "/lib/x/libc.so.6"),
                (CACHE_FLAGS, "libm.so.6", "/usr/lib/y/libm.so.6"),
                (0x0003, "libc.so.6", "/lib32/libc.so.6"),
            ]);
            for (i, b) in junk.iter().enumerate() {
                if let Some(d) = data.get_mut(at + i) {
                    *d = *b;
                }
            }
            data.truncate(cut);
            let cache = Cache::from_bytes(data);
            let listed: Vec<PathBuf> = cache.entries().map(|(_, p)| PathBuf::from(p)).collect();
            for name in ["libc.so.6", "libm.so.6", ""] {
                for found in cache.lookup(name) {
                    proptest::prop_assert!(listed.contains(&found), "{found:?} not listed");
                }
            }
            let _ = cache.folders();
        }
    }
}

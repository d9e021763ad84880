//! The only `unsafe` of the host: loading a plugin (a shared library) and calling it.
//! Both run only in a plugin process — loading before its lockdown, calls after — never
//! in the broker.
#![allow(unsafe_code)]

use std::path::Path;

/// The plugin interface: `input[..len]` in; at most `cap` bytes written at `out`;
/// returns how many were written, or a negative number for an error.
type RunFn = unsafe extern "C" fn(*const u8, usize, *mut u8, usize) -> isize;

/// A loaded plugin.
pub struct Plugin {
    run: RunFn,
    /// Kept loaded for as long as `run` may be called.
    _lib: libloading::Library,
}

impl Plugin {
    /// Load the library at `path` and find its `plugin_run`.
    pub fn load(path: &Path) -> Result<Plugin, String> {
        // SAFETY: loading runs the library's initialisers, which may do anything: the
        // plugin is untrusted, which is why this runs only in a plugin process that is
        // about to lock itself down, never in the broker.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
        // SAFETY: `RunFn` is the documented plugin interface; a library whose
        // `plugin_run` has another type harms only the plugin process it runs in.
        let run: RunFn = unsafe { lib.get::<RunFn>(b"plugin_run\0") }
            .map(|f| *f)
            .map_err(|e| e.to_string())?;
        Ok(Plugin { run, _lib: lib })
    }

    /// Call the plugin on `input`; its answer (at most 4 KiB, lossy UTF-8).
    pub fn call(&self, input: &str) -> Result<String, String> {
        let mut out = vec![0u8; 4096];
        // SAFETY: `input` and `out` are live buffers of exactly the lengths passed, not
        // touched by anything else during the call; the library was loaded above and
        // is kept loaded by `self`.
        let n = unsafe { (self.run)(input.as_ptr(), input.len(), out.as_mut_ptr(), out.len()) };
        let n = usize::try_from(n).map_err(|_| format!("plugin error {n}"))?;
        out.truncate(n.min(4096));
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

//! A plugin that crashes: it writes through a null pointer.

/// See the good plugin.
#[no_mangle]
pub extern "C" fn plugin_run(_input: *const u8, _len: usize, _out: *mut u8, _cap: usize) -> isize {
    let p: *mut u8 = std::hint::black_box(std::ptr::null_mut());
    // SAFETY: none — this is the bug the sandbox contains (a SIGSEGV in the plugin
    // process, which the host reports).
    unsafe { p.write_volatile(1) };
    0
}

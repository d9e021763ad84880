//! A plugin that never returns.

/// See the good plugin.
#[no_mangle]
pub extern "C" fn plugin_run(_input: *const u8, _len: usize, _out: *mut u8, _cap: usize) -> isize {
    loop {
        std::hint::black_box(0u64);
    }
}

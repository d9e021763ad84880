//! A plugin that allocates without bound.

/// See the good plugin.
#[no_mangle]
pub extern "C" fn plugin_run(_input: *const u8, _len: usize, _out: *mut u8, _cap: usize) -> isize {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![7u8; 32 << 20]);
        std::hint::black_box(&hoard);
    }
}

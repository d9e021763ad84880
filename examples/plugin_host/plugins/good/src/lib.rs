//! A well-behaved plugin: counts the words of its input and shouts them back.

/// The plugin interface (see the host's `sys` module): `input[..len]` in, at most
/// `cap` bytes written to `out`; the number written, or -1.
#[no_mangle]
pub extern "C" fn plugin_run(input: *const u8, len: usize, out: *mut u8, cap: usize) -> isize {
    // SAFETY: the host passes a live buffer of `len` bytes it does not touch during the
    // call, and `out` for `cap` writable bytes (its own Vec's spare capacity).
    let (input, out) = unsafe {
        (
            std::slice::from_raw_parts(input, len),
            std::slice::from_raw_parts_mut(out, cap),
        )
    };
    let text = String::from_utf8_lossy(input);
    let answer = format!(
        "{} words: {}",
        text.split_whitespace().count(),
        text.to_uppercase()
    );
    let n = answer.len().min(cap);
    out[..n].copy_from_slice(&answer.as_bytes()[..n]);
    n as isize
}

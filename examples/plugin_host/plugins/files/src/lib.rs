//! A plugin that tries to read the host's files and to reach the network.

/// See the good plugin.
#[no_mangle]
pub extern "C" fn plugin_run(_input: *const u8, _len: usize, out: *mut u8, cap: usize) -> isize {
    let passwd = std::fs::read_to_string("/etc/passwd").map(|s| s.len());
    let net = std::net::TcpStream::connect(("1.1.1.1", 443)).map(|_| ());
    let answer = format!("read /etc/passwd: {passwd:?}; connect: {net:?}");
    // SAFETY: the host passes `out` for `cap` writable bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(out, cap) };
    let n = answer.len().min(cap);
    out[..n].copy_from_slice(&answer.as_bytes()[..n]);
    n as isize
}

//! Errors in words: what a system error means, with its name for searching
//! ("Permission denied (EACCES)"), never Rust's debug text.

/// "Permission denied (EACCES)" for an errno value.
pub(crate) fn errno(code: i32) -> String {
    let e = nix::errno::Errno::from_raw(code);
    format!("{} ({e:?})", e.desc())
}

/// An I/O error in words: its errno's (see [`errno`]), or its own text.
pub(crate) fn io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => errno(code),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_errno_reads_as_words_with_its_name() {
        assert_eq!(super::errno(libc::EACCES), "Permission denied (EACCES)");
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(super::io(&e), "No such file or directory (ENOENT)");
    }
}

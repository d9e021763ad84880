//! Thin wrappers over syscalls: the only unsafe code.

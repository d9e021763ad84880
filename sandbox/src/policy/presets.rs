//! Built-in policies (filled in below).

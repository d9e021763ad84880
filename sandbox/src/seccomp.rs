//! Installing compiled filters in the calling process.

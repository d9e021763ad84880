//! The services the broker offers renderers, one module per capability.

pub mod files;

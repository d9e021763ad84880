//! Sealed memfd payloads (being written).

//! The privileged side.

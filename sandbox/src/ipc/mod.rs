//! The typed channel both sides use (see docs/architecture.md, "IPC").
//!
//! * [`codec`]: bincode 2 with a hard decode limit — the only place bytes become values;
//! * [`Channel`]: one SOCK_SEQPACKET datagram per message; caps on size and on
//!   descriptors; non-blocking; MSG_TRUNC / MSG_CTRUNC are the peer's fault;
//!   descriptors received close-on-exec as `OwnedFd`; decoded values validated;
//! * [`rpc`]: request/response with ids, deadlines and notifications both ways;
//! * [`blob`]: large payloads as sealed memfds, checked before they are mapped.

pub mod blob;
mod channel;
pub mod codec;
pub mod rpc;

pub use channel::{
    pair, socket_pair, Channel, IpcError, Limits, Message, MAX_FDS_CEILING, MAX_MESSAGE_CEILING,
    VERSION,
};

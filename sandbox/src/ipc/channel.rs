//! A typed, message-at-a-time channel over an inherited SOCK_SEQPACKET socket.

use super::codec;
use crate::sys::socket::recv_with_fds;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The first byte of every datagram: the protocol version.
pub const VERSION: u8 = 1;
/// The largest `max_message` a channel accepts.
pub const MAX_MESSAGE_CEILING: usize = codec::DECODE_LIMIT;
/// The most descriptors any message may carry.
pub const MAX_FDS_CEILING: usize = 16;

/// A value that travels on a channel: decoded under the channel's limits, then
/// checked by [`Message::validate`] before anyone sees it. Types must not be
/// recursive (a self-containing enum could nest deep enough to exhaust the stack).
pub trait Message: Serialize + DeserializeOwned {
    /// How many descriptors this message must arrive with (checked exactly).
    fn fd_count(&self) -> usize {
        0
    }
    /// The most descriptors any value of this type carries (the receive buffer's room).
    const MAX_FDS: usize = 0;
    /// Check invariants serde cannot express (lengths, ranges, ...).
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Size caps of one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest datagram (version byte included). Default 64 KiB.
    pub max_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 * 1024,
        }
    }
}

/// What went wrong on a channel. [`IpcError::is_peer_fault`] says whether the peer
/// broke the protocol (and should be ended).
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// The peer closed its end.
    #[error("peer closed the channel")]
    Closed,
    /// The socket's buffer is full; try again when writable.
    #[error("send would block")]
    WouldBlock,
    /// We tried to send more than the limit.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer sent a datagram longer than the limit (MSG_TRUNC).
    #[error("peer sent a message longer than {max} bytes")]
    Truncated {
        /// The limit.
        max: usize,
    },
    /// The peer sent more descriptors than any message may carry (MSG_CTRUNC).
    #[error("peer sent more descriptors than a message may carry")]
    ControlTruncated,
    /// The message carried a different number of descriptors than it must.
    #[error("message carries {got} descriptors, {expected} expected")]
    WrongFdCount {
        /// Received.
        got: usize,
        /// Required by the decoded message.
        expected: usize,
    },
    /// Empty datagram, or a protocol version we do not speak.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// The bytes are not a valid message.
    #[error("undecodable message: {0}")]
    Decode(String),
    /// The message decoded but is not acceptable.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// No message within the time allowed.
    #[error("timed out")]
    TimedOut,
    /// Another socket error.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
}

impl IpcError {
    /// Whether the peer broke the protocol (as opposed to closing, or us).
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            IpcError::Truncated { .. }
                | IpcError::ControlTruncated
                | IpcError::WrongFdCount { .. }
                | IpcError::BadFrame(_)
                | IpcError::Decode(_)
                | IpcError::Invalid(_)
        )
    }
}

/// One end of a channel: sends `S`, receives `R`.
pub struct Channel<S, R> {
    sock: OwnedFd,
    limits: Limits,
    buf: Vec<u8>,
    /// The `SO_RCVTIMEO` last set for [`Channel::recv_timeout`].
    receive_timeout: Option<Duration>,
    _types: PhantomData<fn(S) -> R>,
}

impl<S, R> std::fmt::Debug for Channel<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("fd", &self.sock.as_raw_fd())
            .field("limits", &self.limits)
            .finish()
    }
}

/// A connected pair of unix SOCK_SEQPACKET sockets, close-on-exec: what a channel runs
/// over (one end stays, the other goes to the child, which makes a channel of it).
pub fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// A connected pair of channel ends (non-blocking, close-on-exec).
pub fn pair<A: Message, B: Message>(limits: Limits) -> io::Result<(Channel<A, B>, Channel<B, A>)> {
    let (a, b) = socket_pair()?;
    Ok((Channel::from_fd(a, limits)?, Channel::from_fd(b, limits)?))
}

/// How far [`Channel::recv_timeout`]'s kernel timeout may be from the time left.
pub const TIMEOUT_SLACK: Duration = Duration::from_millis(1);

impl<S: Message, R: Message> Channel<S, R> {
    /// Take `sock`, which must be a unix SOCK_SEQPACKET socket. Its descriptor is made
    /// blocking, but nothing here blocks on it but [`Channel::recv_timeout`], which
    /// waits in the kernel up to its timeout (`SO_RCVTIMEO`): every send and
    /// [`Channel::try_recv`] passes `MSG_DONTWAIT`.
    pub fn from_fd(sock: OwnedFd, limits: Limits) -> io::Result<Channel<S, R>> {
        use nix::sys::socket::{getsockopt, sockopt};
        let ty = getsockopt(&sock, sockopt::SockType).map_err(io::Error::from)?;
        if ty != nix::sys::socket::SockType::SeqPacket {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a SOCK_SEQPACKET socket",
            ));
        }
        let flags =
            nix::fcntl::fcntl(&sock, nix::fcntl::FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) - nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&sock, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        if limits.max_message < 2 || limits.max_message > MAX_MESSAGE_CEILING {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_message out of range",
            ));
        }
        Ok(Channel {
            sock,
            limits,
            // One byte more than the limit, so an oversize datagram shows as MSG_TRUNC.
            buf: vec![0u8; limits.max_message + 1],
            receive_timeout: None,
            _types: PhantomData,
        })
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Give the socket back (e.g. to place it in a child).
    pub fn into_fd(self) -> OwnedFd {
        self.sock
    }

    /// Encode `msg` into one datagram (checked against the limit).
    pub fn encode(&self, msg: &S) -> Result<Vec<u8>, IpcError> {
        let mut bytes = Vec::with_capacity(64);
        bytes.push(VERSION);
        bytes.extend(codec::encode(msg).map_err(IpcError::Decode)?);
        if bytes.len() > self.limits.max_message {
            return Err(IpcError::TooLarge {
                len: bytes.len(),
                max: self.limits.max_message,
            });
        }
        Ok(bytes)
    }

    /// Send `msg` with `fds` (which must be exactly `msg.fd_count()`), without blocking.
    pub fn send(&self, msg: &S, fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        if fds.len() != msg.fd_count() || fds.len() > S::MAX_FDS.min(MAX_FDS_CEILING) {
            return Err(IpcError::WrongFdCount {
                got: fds.len(),
                expected: msg.fd_count(),
            });
        }
        let bytes = self.encode(msg)?;
        self.send_raw(&bytes, fds)
    }

    /// Send one encoded datagram, without blocking.
    pub fn send_raw(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cmsgs: Vec<ControlMessage<'_>> = if raw.is_empty() {
            Vec::new()
        } else {
            vec![ControlMessage::ScmRights(&raw)]
        };
        let iov = [IoSlice::new(bytes)];
        match sendmsg::<()>(
            self.sock.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => Ok(()),
            Err(nix::Error::EAGAIN) => Err(IpcError::WouldBlock),
            Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => Err(IpcError::Closed),
            Err(e) => Err(IpcError::Io(e.into())),
        }
    }

    /// Receive one message if one is waiting (`Ok(None)` otherwise). Every check runs
    /// before the value is returned: size (MSG_TRUNC), descriptors (MSG_CTRUNC, the
    /// type's maximum, the exact count the value says), version, decoding under the
    /// codec limit, and [`Message::validate`]. Received descriptors are close-on-exec
    /// and owned; on any error they are closed.
    pub fn try_recv(&mut self) -> Result<Option<(R, Vec<OwnedFd>)>, IpcError> {
        self.recv_one(false)
    }

    /// One receive, non-blocking or (`wait`) up to the socket's `SO_RCVTIMEO`, with
    /// every check of [`Channel::try_recv`].
    fn recv_one(&mut self, wait: bool) -> Result<Option<(R, Vec<OwnedFd>)>, IpcError> {
        let room = R::MAX_FDS.min(MAX_FDS_CEILING);
        let got = match recv_with_fds(self.sock.as_fd(), &mut self.buf, room, wait) {
            Ok(Some(got)) => got,
            Ok(None) => return Ok(None),
            // The peer closed with data still unread on its side.
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Err(IpcError::Closed),
            Err(e) => return Err(IpcError::Io(e)),
        };
        if got.truncated || got.len > self.limits.max_message {
            return Err(IpcError::Truncated {
                max: self.limits.max_message,
            });
        }
        if got.control_truncated || got.fds.len() > room {
            return Err(IpcError::ControlTruncated);
        }
        let frame = self.buf.get(..got.len).unwrap_or(&[]);
        let Some((&version, body)) = frame.split_first() else {
            // A zero-length read on a seqpacket socket is the peer's end of file — or
            // an empty datagram, which a peer that has not hung up sent on purpose.
            return Err(if self.peer_hung_up() {
                IpcError::Closed
            } else {
                IpcError::BadFrame("an empty message".into())
            });
        };
        if version != VERSION {
            return Err(IpcError::BadFrame(format!("protocol version {version}")));
        }
        let value: R = codec::decode(body).map_err(IpcError::Decode)?;
        if value.fd_count() != got.fds.len() {
            return Err(IpcError::WrongFdCount {
                got: got.fds.len(),
                expected: value.fd_count(),
            });
        }
        value.validate().map_err(IpcError::Invalid)?;
        Ok(Some((value, got.fds)))
    }

    /// Bytes sent on this channel that the peer has not read yet (0: it has read
    /// everything).
    pub fn unread_by_peer(&self) -> io::Result<usize> {
        crate::sys::socket::unread_by_peer(self.sock.as_fd())
    }

    /// Whether the peer has closed its end (the kernel reports POLLHUP on a connected
    /// seqpacket socket whose peer is gone).
    fn peer_hung_up(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) > 0
            && fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP))
    }

    /// Wait up to `timeout` for one message: a receive that waits in the kernel (with
    /// `SO_RCVTIMEO`, set again only when the time left differs from the last setting
    /// by more than `TIMEOUT_SLACK`, 1 ms, so a wait may outlast `timeout` by that much).
    /// Waking from a blocked receive is much cheaper than from `poll` and a second
    /// receive (see docs/performance.md).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<(R, Vec<OwnedFd>), IpcError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.try_recv()?.ok_or(IpcError::TimedOut);
            }
            let stale = self
                .receive_timeout
                .is_none_or(|set| set.abs_diff(left) > TIMEOUT_SLACK);
            if stale {
                crate::sys::socket::set_receive_timeout(self.sock.as_fd(), left)
                    .map_err(IpcError::Io)?;
                self.receive_timeout = Some(left);
            }
            match self.recv_one(true) {
                Ok(Some(m)) => return Ok(m),
                // The timeout ran out (or was longer than what is left: set again).
                Ok(None) => self.receive_timeout = None,
                Err(IpcError::Io(e)) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait until the socket is ready for `events` or `timeout` passes.
    pub fn wait(&self, events: nix::poll::PollFlags, timeout: Duration) -> Result<(), IpcError> {
        use nix::poll::{poll, PollFd, PollTimeout};
        let ms = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.sock.as_fd(), events)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::Error::EINTR) => Ok(()),
            Err(e) => Err(IpcError::Io(e.into())),
        }
    }
}

impl<S, R> AsFd for Channel<S, R> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

// Plain values carry no descriptors and need no checks beyond decoding (their size is
// bounded by the message limit).
macro_rules! plain_messages {
    ($($t:ty),*) => { $(impl Message for $t {})* };
}
plain_messages!(bool, u8, u16, u32, u64, i32, i64, String, Vec<u8>);

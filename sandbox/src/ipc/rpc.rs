//! Requests with ids and deadlines, responses, and notifications both ways.
//!
//! A renderer sends [`Up`] frames (requests, cancellations, notifications); the broker
//! sends [`Down`] frames (responses, notifications). The renderer's [`Client`] waits
//! for the response with its id until a deadline; at the deadline it sends `Cancel`
//! and reports [`IpcError::TimedOut`]; if the broker goes away, every call ends with
//! [`IpcError::Closed`].

use super::{Channel, IpcError, Message};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Renderer → broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Up<Req, Note> {
    /// A request; the response carries the same id.
    Request {
        /// Chosen by the renderer, unique among its pending requests.
        id: u64,
        /// The request.
        body: Req,
    },
    /// The renderer no longer waits for this request.
    Cancel {
        /// The request's id.
        id: u64,
    },
    /// A one-way message.
    Notify(Note),
}

/// Broker → renderer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Down<Resp, Note> {
    /// The answer to request `id`.
    Response {
        /// The request's id.
        id: u64,
        /// The answer.
        body: Resp,
    },
    /// A one-way message.
    Notify(Note),
}

impl<Req: Message, Note: Message> Message for Up<Req, Note> {
    fn fd_count(&self) -> usize {
        match self {
            Up::Request { body, .. } => body.fd_count(),
            Up::Cancel { .. } => 0,
            Up::Notify(n) => n.fd_count(),
        }
    }
    const MAX_FDS: usize = max(Req::MAX_FDS, Note::MAX_FDS);
    fn validate(&self) -> Result<(), String> {
        match self {
            Up::Request { body, .. } => body.validate(),
            Up::Cancel { .. } => Ok(()),
            Up::Notify(n) => n.validate(),
        }
    }
}

impl<Resp: Message, Note: Message> Message for Down<Resp, Note> {
    fn fd_count(&self) -> usize {
        match self {
            Down::Response { body, .. } => body.fd_count(),
            Down::Notify(n) => n.fd_count(),
        }
    }
    const MAX_FDS: usize = max(Resp::MAX_FDS, Note::MAX_FDS);
    fn validate(&self) -> Result<(), String> {
        match self {
            Down::Response { body, .. } => body.validate(),
            Down::Notify(n) => n.validate(),
        }
    }
}

/// `()` as a message: for directions that carry nothing.
impl Message for () {}

/// The renderer's side of the request/response layer.
pub struct Client<Req, Resp, UpNote, DownNote> {
    channel: Channel<Up<Req, UpNote>, Down<Resp, DownNote>>,
    next_id: u64,
    notes: VecDeque<(DownNote, Vec<OwnedFd>)>,
}

impl<Req: Message, Resp: Message, UpNote: Message, DownNote: Message>
    Client<Req, Resp, UpNote, DownNote>
{
    /// Wrap a channel end.
    pub fn new(channel: Channel<Up<Req, UpNote>, Down<Resp, DownNote>>) -> Self {
        Client {
            channel,
            next_id: 1,
            notes: VecDeque::new(),
        }
    }

    fn send(
        &self,
        frame: &Up<Req, UpNote>,
        fds: &[BorrowedFd<'_>],
        deadline: Instant,
    ) -> Result<(), IpcError> {
        loop {
            match self.channel.send(frame, fds) {
                Err(IpcError::WouldBlock) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(IpcError::TimedOut);
                    }
                    self.channel.wait(nix::poll::PollFlags::POLLOUT, left)?;
                }
                other => return other,
            }
        }
    }

    /// Send `body` and wait for its response until `timeout` has passed. Notifications
    /// that arrive meanwhile are kept for [`Client::next_notification`].
    pub fn call(
        &mut self,
        body: Req,
        fds: &[BorrowedFd<'_>],
        timeout: Duration,
    ) -> Result<(Resp, Vec<OwnedFd>), IpcError> {
        let deadline = Instant::now() + timeout;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.send(&Up::Request { id, body }, fds, deadline)?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.channel.recv_timeout(left) {
                Ok((Down::Response { id: got, body }, fds)) if got == id => return Ok((body, fds)),
                // A late answer to a call that already timed out: drop it.
                Ok((Down::Response { .. }, _)) => {}
                Ok((Down::Notify(n), fds)) => self.notes.push_back((n, fds)),
                Err(IpcError::TimedOut) => {
                    let _ = self.channel.send(&Up::Cancel { id }, &[]);
                    return Err(IpcError::TimedOut);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Send a one-way message.
    pub fn notify(
        &self,
        note: UpNote,
        fds: &[BorrowedFd<'_>],
        timeout: Duration,
    ) -> Result<(), IpcError> {
        self.send(&Up::Notify(note), fds, Instant::now() + timeout)
    }

    /// The next notification from the broker, waiting up to `timeout`.
    pub fn next_notification(
        &mut self,
        timeout: Duration,
    ) -> Result<(DownNote, Vec<OwnedFd>), IpcError> {
        if let Some(n) = self.notes.pop_front() {
            return Ok(n);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.channel.recv_timeout(left)? {
                (Down::Notify(n), fds) => return Ok((n, fds)),
                (Down::Response { .. }, _) => {}
            }
        }
    }

    /// The channel, e.g. to poll it.
    pub fn channel(&self) -> &Channel<Up<Req, UpNote>, Down<Resp, DownNote>> {
        &self.channel
    }
}

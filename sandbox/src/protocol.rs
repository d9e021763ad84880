//! The messages between the broker and its renderers, above the embedder's own.
//!
//! Broker → renderer: first a [`Setup`] (how to lock down), then [`BrokerNote`]s and
//! responses. Renderer → broker: its lockdown `Status` ([`crate::lockdown`]) (or
//! the error that stopped it), requests, logs, and — from its SIGSYS handler — a
//! fixed-size [`Violation`] report. Everything a renderer sends is validated here
//! before any handler sees it.

use crate::ipc::Message;
use crate::lockdown::{OptOut, Rlimits, Status};
use crate::policy::presets::Preset;
use serde::{Deserialize, Serialize};

/// Longest log line a renderer may send (longer is a bad message).
pub const MAX_LOG_LINE: usize = 4096;

/// How the renderer must lock itself down, sent before anything else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// The built-in seccomp preset.
    pub preset: Preset,
    /// Resource limits.
    pub rlimits: Rlimits,
    /// Opt-outs the embedder chose.
    pub opt_outs: Vec<OptOut>,
    /// The lowest Landlock ABI accepted.
    pub landlock_min_abi: u32,
    /// The preset already compiled by the broker for this architecture (raw
    /// `sock_filter` bytes), so the renderer need not parse and compile it. `None`:
    /// the renderer compiles `preset` itself (with its own pid as `SELF_PID`).
    pub filter: Option<Vec<u8>>,
    /// Install the filter with a notification listener (its default action is then
    /// `user-notify`) and send the listener with the lockdown report: the broker reads
    /// each violation — the syscall and its arguments — from the kernel.
    pub listener: bool,
}

impl Message for Setup {}

// Opening files through the broker: the request a renderer sends and what it can
// learn back. The broker's files service (`broker::services::files`) decides.

/// Longest request path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest path component, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Whether an open may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Creation {
    /// The file must exist (no `O_CREAT`).
    Existing,
    /// Create the file if it does not exist (`O_CREAT`).
    OrCreate,
    /// Create the file; fail with [`OpenError::AlreadyExists`] if it exists
    /// (`O_CREAT | O_EXCL`; a symlink in the last component is never followed).
    New,
}

/// How to open a file. A closed set of shapes rather than `O_*` flags, so the
/// combinations that make no sense (truncating or creating a file opened read-only,
/// `O_EXCL` without `O_CREAT`, truncating an append-only open, `O_PATH`,
/// `O_DIRECTORY`, ...) cannot be asked for at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpenMode {
    /// Read an existing file (`O_RDONLY`).
    Read,
    /// Write only (`O_WRONLY`).
    Write {
        /// Whether the file may or must be created.
        create: Creation,
        /// Truncate to length 0 (`O_TRUNC`).
        truncate: bool,
    },
    /// Read and write (`O_RDWR`).
    ReadWrite {
        /// Whether the file may or must be created.
        create: Creation,
        /// Truncate to length 0 (`O_TRUNC`).
        truncate: bool,
    },
    /// Write only, every write at the end (`O_WRONLY | O_APPEND`).
    Append {
        /// Whether the file may or must be created.
        create: Creation,
    },
}

impl OpenMode {
    /// Whether the file may be created.
    pub fn creation(self) -> Creation {
        match self {
            OpenMode::Read => Creation::Existing,
            OpenMode::Write { create, .. }
            | OpenMode::ReadWrite { create, .. }
            | OpenMode::Append { create } => create,
        }
    }

    /// The `open(2)` flags for this mode, as the returned descriptor has them:
    /// always `O_CLOEXEC | O_NOCTTY`, never `O_PATH` or `O_DIRECTORY`.
    pub fn open_flags(self) -> i32 {
        let (access, truncate) = match self {
            OpenMode::Read => (libc::O_RDONLY, false),
            OpenMode::Write { truncate, .. } => (libc::O_WRONLY, truncate),
            OpenMode::ReadWrite { truncate, .. } => (libc::O_RDWR, truncate),
            OpenMode::Append { .. } => (libc::O_WRONLY | libc::O_APPEND, false),
        };
        let create = match self.creation() {
            Creation::Existing => 0,
            Creation::OrCreate => libc::O_CREAT,
            Creation::New => libc::O_CREAT | libc::O_EXCL,
        };
        let trunc = if truncate { libc::O_TRUNC } else { 0 };
        libc::O_CLOEXEC | libc::O_NOCTTY | access | create | trunc
    }
}

/// A renderer's request: open `path` in `mode`. On success one descriptor travels
/// back with [`Response::Opened`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// Absolute path, as the grant spells it; checked by the broker's files service
    /// (`broker::services::files::ValidPath::parse`).
    pub path: String,
    /// How to open it.
    pub mode: OpenMode,
}

/// Why a path's text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum PathProblem {
    /// More than [`MAX_PATH_LEN`] bytes.
    #[error("longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    /// Contains a NUL byte.
    #[error("contains a NUL byte")]
    Nul,
    /// Does not start with `/`.
    #[error("not absolute")]
    NotAbsolute,
    /// Ends with `/` (this includes `/` itself).
    #[error("ends with `/`")]
    TrailingSlash,
    /// Has an empty component (`//`).
    #[error("has an empty component (`//`)")]
    EmptyComponent,
    /// Has a `.` component.
    #[error("has a `.` component")]
    Dot,
    /// Has a `..` component.
    #[error("has a `..` component")]
    DotDot,
    /// Has a component longer than [`MAX_NAME_LEN`] bytes.
    #[error("has a component longer than {MAX_NAME_LEN} bytes")]
    NameTooLong,
}

/// Why an open failed: what the renderer may learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum OpenError {
    /// The path's text is refused before any grant is consulted.
    #[error("invalid path: {reason}")]
    InvalidPath {
        /// What is wrong with it.
        reason: PathProblem,
    },
    /// No grant covers the path.
    #[error("no grant covers the path")]
    NotGranted,
    /// A grant covers the path, but not this mode (writing under a read-only grant,
    /// creating without a create grant).
    #[error("the grant does not allow this mode")]
    Denied,
    /// The file does not exist (`ENOENT`).
    #[error("no such file")]
    NotFound,
    /// [`Creation::New`] and the file exists (`EEXIST`).
    #[error("the file exists")]
    AlreadyExists,
    /// The path names something other than a regular file (a directory, FIFO, socket,
    /// device); also `EISDIR` from the kernel.
    #[error("not a regular file")]
    NotAFile,
    /// Resolution was refused: it would leave the grant's tree (`EXDEV`), or met a
    /// symlink the grant does not follow, a magic link, or a symlink loop (`ELOOP`).
    #[error("path resolution refused (errno {errno})")]
    Escapes {
        /// `EXDEV` or `ELOOP`.
        errno: i32,
    },
    /// Any other error from the kernel.
    #[error("open failed (errno {errno})")]
    Io {
        /// The errno.
        errno: i32,
    },
}

// Connecting through the broker: a renderer has no network of its own (an empty
// network namespace; its preset refuses `socket` and `connect`), but its spec may name
// hosts it may reach. The broker resolves them when it spawns the renderer, connects
// on request, and hands back the connected socket.

/// Longest host name in a [`ConnectRequest`] (a DNS name's limit).
pub const MAX_HOST_LEN: usize = 253;

/// A TCP connection to `host:port`, which must be on the renderer's allow-list
/// exactly as its spec wrote it (a name, or an IP address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    /// The host, as in the spec's allow-list.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// Why the broker connected nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ConnectError {
    /// `host:port` is not on the renderer's allow-list.
    #[error("not on the allow-list")]
    NotAllowed,
    /// The renderer has too many connections being made at once.
    #[error("too many connections in progress")]
    TooMany,
    /// Every address of the host refused or failed; the last error.
    #[error("connect failed (errno {errno})")]
    Failed {
        /// The errno of the last attempt.
        errno: i32,
    },
    /// No address answered within the broker's connect timeout.
    #[error("connect timed out")]
    TimedOut,
}

impl Message for ConnectRequest {
    fn validate(&self) -> Result<(), String> {
        if self.host.len() > MAX_HOST_LEN {
            Err("host name longer than 253 bytes".into())
        } else {
            Ok(())
        }
    }
}

/// A request from a renderer: a built-in service, or the embedder's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<E> {
    /// Open a file under the renderer's grants.
    Open(OpenRequest),
    /// The embedder's own request.
    Embedder(E),
    /// Connect to a host on the renderer's allow-list.
    Connect(ConnectRequest),
}

impl Message for OpenRequest {
    fn validate(&self) -> Result<(), String> {
        if self.path.len() > MAX_PATH_LEN {
            Err("path longer than 4096 bytes".into())
        } else {
            Ok(())
        }
    }
}

impl<E: Message> Message for Request<E> {
    fn fd_count(&self) -> usize {
        match self {
            Request::Open(_) | Request::Connect(_) => 0,
            Request::Embedder(e) => e.fd_count(),
        }
    }
    const MAX_FDS: usize = E::MAX_FDS;
    fn validate(&self) -> Result<(), String> {
        match self {
            Request::Open(o) => o.validate(),
            Request::Embedder(e) => e.validate(),
            Request::Connect(c) => c.validate(),
        }
    }
}

/// The broker's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response<R> {
    /// The file is open: its descriptor comes with this message.
    Opened,
    /// The open was refused.
    OpenFailed(OpenError),
    /// The embedder's answer.
    Embedder(R),
    /// The request was refused before any handler (rate limit, shutdown).
    Refused(String),
    /// Connected: the socket comes with this message.
    Connected,
    /// Nothing was connected.
    ConnectFailed(ConnectError),
}

const fn at_least_one(n: usize) -> usize {
    if n > 1 {
        n
    } else {
        1
    }
}

impl<R: Message> Message for Response<R> {
    fn fd_count(&self) -> usize {
        match self {
            Response::Opened | Response::Connected => 1,
            Response::Embedder(r) => r.fd_count(),
            _ => 0,
        }
    }
    const MAX_FDS: usize = at_least_one(R::MAX_FDS);
    fn validate(&self) -> Result<(), String> {
        match self {
            Response::Embedder(r) => r.validate(),
            _ => Ok(()),
        }
    }
}

/// What a renderer's SIGSYS handler sends, fixed-size so it can be written without
/// allocating: byte arrays encode as themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// si_syscall, little endian.
    pub nr: [u8; 4],
    /// si_arch, little endian.
    pub arch: [u8; 4],
    /// The six argument registers, little endian.
    pub args: [[u8; 8]; 6],
}

impl Violation {
    /// The syscall number.
    pub fn nr(&self) -> i32 {
        i32::from_le_bytes(self.nr)
    }
    /// The audit arch.
    pub fn arch(&self) -> u32 {
        u32::from_le_bytes(self.arch)
    }
    /// The arguments.
    pub fn args(&self) -> [u64; 6] {
        self.args.map(u64::from_le_bytes)
    }
}

/// Renderer → broker notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RendererNote {
    /// Lockdown is complete: the report; with `listener`, the seccomp listener of its
    /// filter comes along (the broker then reads violations from the kernel).
    LockedDown {
        /// The report.
        status: Box<Status>,
        /// Whether the filter's notification listener comes with the message.
        listener: bool,
    },
    /// Lockdown failed at a layer.
    LockdownFailed {
        /// The error, as text.
        error: String,
    },
    /// A log line.
    Log {
        /// 1 error .. 5 trace.
        level: u8,
        /// The line.
        line: String,
    },
    /// A seccomp violation, sent from the SIGSYS handler just before dying.
    Violation(Violation),
    /// An allocation failed (sent by `renderer::ReportingAllocator`, just before the
    /// process aborts): the size asked for, little endian.
    OutOfMemory {
        /// Bytes requested.
        size: [u8; 8],
    },
}

impl Message for RendererNote {
    fn validate(&self) -> Result<(), String> {
        match self {
            RendererNote::Log { line, .. } if line.len() > MAX_LOG_LINE => {
                Err("log line too long".into())
            }
            RendererNote::Log { level, .. } if !(1..=5).contains(level) => {
                Err("bad log level".into())
            }
            RendererNote::LockdownFailed { error } if error.len() > MAX_LOG_LINE => {
                Err("error too long".into())
            }
            RendererNote::LockedDown { status, .. } => Status::decode(&status.encode()).map(|_| ()),
            _ => Ok(()),
        }
    }
    fn fd_count(&self) -> usize {
        usize::from(matches!(
            self,
            RendererNote::LockedDown { listener: true, .. }
        ))
    }
    const MAX_FDS: usize = 1;
}

/// Broker → renderer notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrokerNote<N> {
    /// The broker checked the lockdown report from outside: untrusted work may start.
    Verified,
    /// Finish and exit.
    Shutdown,
    /// The embedder's own notification.
    Embedder(N),
}

impl<N: Message> Message for BrokerNote<N> {
    fn fd_count(&self) -> usize {
        match self {
            BrokerNote::Verified | BrokerNote::Shutdown => 0,
            BrokerNote::Embedder(n) => n.fd_count(),
        }
    }
    const MAX_FDS: usize = N::MAX_FDS;
    fn validate(&self) -> Result<(), String> {
        match self {
            BrokerNote::Verified | BrokerNote::Shutdown => Ok(()),
            BrokerNote::Embedder(n) => n.validate(),
        }
    }
}

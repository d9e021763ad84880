//! Connections a renderer asks for (`Request::Connect`): to the hosts its spec allows,
//! made by the broker outside the renderer's empty network namespace, the connected
//! socket handed back.
//!
//! The allow-list is resolved once, when the renderer is spawned (names through the
//! broker's resolver): a request must name a host and port exactly as the spec wrote
//! them, and only the addresses found then are tried, in order. Connects are
//! non-blocking and watched in the broker's epoll set, so a slow or silent host holds
//! up nothing else; each has [`CONNECT_TIMEOUT`], and a renderer may have
//! [`MAX_CONNECTS`] in progress (more are answered [`ConnectError::TooMany`]).

use super::*;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6};
use sandbox::protocol::{ConnectError, ConnectRequest};
use std::net::{SocketAddr, ToSocketAddrs};

/// How long the broker tries one request's addresses before answering `TimedOut`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one renderer may have in progress at once.
pub const MAX_CONNECTS: usize = 8;
/// The epoll key bit of a connection in progress (its token in the low bits).
pub(super) const CONNECT_BIT: u64 = 1 << 61;

/// One destination a renderer may reach, resolved when it was spawned.
#[derive(Clone, Debug)]
pub(super) struct Allowed {
    host: String,
    port: u16,
    addrs: Vec<SocketAddr>,
}

/// Resolve a spec's allow-list. A name that resolves to nothing is an error: the
/// embedder asked for a destination the renderer could never reach.
pub(super) fn resolve(list: &[(String, u16)]) -> Result<Vec<Allowed>, SpawnError> {
    list.iter()
        .map(|(host, port)| {
            let addrs: Vec<SocketAddr> = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| SpawnError::Egress(format!("{host}:{port}: {e}")))?
                .collect();
            if addrs.is_empty() {
                return Err(SpawnError::Egress(format!("{host}:{port}: no address")));
            }
            Ok(Allowed {
                host: host.clone(),
                port: *port,
                addrs,
            })
        })
        .collect()
}

/// A connection being made for a renderer's request.
pub(super) struct PendingConnect {
    renderer: u64,
    req_id: u64,
    /// The socket whose connect is in progress.
    sock: OwnedFd,
    /// The address being connected to.
    addr: SocketAddr,
    /// Addresses not tried yet.
    left: Vec<SocketAddr>,
    deadline: Instant,
}

impl<S: Service> Broker<S> {
    /// Start connecting for request `req_id` of renderer `id` (answered later).
    pub(super) fn start_connect(&mut self, id: u64, req_id: u64, req: &ConnectRequest) {
        let Some(r) = self.renderers.get(&id) else {
            return;
        };
        let allowed = r
            .egress
            .iter()
            .find(|a| a.port == req.port && a.host == req.host);
        let Some(allowed) = allowed else {
            return self.answer_connect(id, req_id, Err(ConnectError::NotAllowed));
        };
        let in_progress = self.connects.values().filter(|p| p.renderer == id).count();
        if in_progress >= MAX_CONNECTS {
            return self.answer_connect(id, req_id, Err(ConnectError::TooMany));
        }
        let mut left = allowed.addrs.clone();
        left.reverse();
        self.try_next(
            id,
            req_id,
            left,
            Instant::now() + CONNECT_TIMEOUT,
            libc::ECONNREFUSED,
        );
    }

    /// Try the next address (popped from the end of `left`) until one is in progress
    /// or connected; answer when none is left.
    fn try_next(
        &mut self,
        id: u64,
        req_id: u64,
        mut left: Vec<SocketAddr>,
        deadline: Instant,
        mut errno: i32,
    ) {
        while let Some(addr) = left.pop() {
            match begin(addr) {
                Ok((sock, true)) => return self.answer_connect(id, req_id, Ok(sock)),
                Ok((sock, false)) => {
                    let token = self.next_connect;
                    self.next_connect += 1;
                    let key = EpollEvent::new(EpollFlags::EPOLLOUT, CONNECT_BIT | token);
                    if let Err(e) = self.epoll.add(sock.as_fd(), key) {
                        errno = e as i32;
                        continue;
                    }
                    let pending = PendingConnect {
                        renderer: id,
                        req_id,
                        sock,
                        addr,
                        left,
                        deadline,
                    };
                    self.connects.insert(token, pending);
                    return;
                }
                Err(e) => errno = e,
            }
        }
        self.answer_connect(id, req_id, Err(ConnectError::Failed { errno }));
    }

    /// The socket of connection `token` is writable: connected, or failed.
    pub(super) fn on_connect(&mut self, token: u64) {
        let Some(p) = self.connects.remove(&token) else {
            return;
        };
        let _ = self.epoll.delete(p.sock.as_fd());
        match socket::getsockopt(&p.sock, socket::sockopt::SocketError) {
            // Connected; `settle` makes the socket layer say so too.
            Ok(0) if settle(&p.sock, p.addr).is_err() => {
                self.try_next(p.renderer, p.req_id, p.left, p.deadline, libc::ECONNABORTED)
            }
            Ok(0) => {
                let blocking = nix::fcntl::fcntl(
                    &p.sock,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
                );
                match blocking {
                    Ok(_) => self.answer_connect(p.renderer, p.req_id, Ok(p.sock)),
                    Err(e) => self.try_next(p.renderer, p.req_id, p.left, p.deadline, e as i32),
                }
            }
            Ok(errno) => self.try_next(p.renderer, p.req_id, p.left, p.deadline, errno),
            Err(e) => self.try_next(p.renderer, p.req_id, p.left, p.deadline, e as i32),
        }
    }

    /// Answer the connections past their deadline (`TimedOut`), and forget those of
    /// renderers that are gone.
    pub(super) fn expire_connects(&mut self) {
        let now = Instant::now();
        let done: Vec<u64> = self
            .connects
            .iter()
            .filter(|(_, p)| p.deadline <= now || !self.renderers.contains_key(&p.renderer))
            .map(|(t, _)| *t)
            .collect();
        for token in done {
            if let Some(p) = self.connects.remove(&token) {
                let _ = self.epoll.delete(p.sock.as_fd());
                self.answer_connect(p.renderer, p.req_id, Err(ConnectError::TimedOut));
            }
        }
    }

    /// The earliest deadline of a connection in progress.
    pub(super) fn next_connect_deadline(&self) -> Option<Instant> {
        self.connects.values().map(|p| p.deadline).min()
    }

    fn answer_connect(&mut self, id: u64, req_id: u64, result: Result<OwnedFd, ConnectError>) {
        let (body, fds) = match result {
            Ok(sock) => (Response::Connected, vec![sock]),
            Err(e) => (Response::ConnectFailed(e), Vec::new()),
        };
        // A renderer that is gone or ending gets nothing (queue ignores it).
        self.queue(id, &Down::Response { id: req_id, body }, fds);
    }
}

/// A connect completed in the background leaves the socket "connecting" to the kernel's
/// socket layer until `connect` is called again; only then is it "connected", so that
/// a later connect or a send with MSG_FASTOPEN (with which TCP connects to the address
/// it carries) fails with EISCONN instead of pointing the socket somewhere else.
fn settle(sock: &OwnedFd, addr: SocketAddr) -> Result<(), i32> {
    let r = match addr {
        SocketAddr::V4(a) => socket::connect(sock.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => socket::connect(sock.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    match r {
        Ok(()) | Err(nix::errno::Errno::EISCONN) => Ok(()),
        Err(e) => Err(e as i32),
    }
}

/// A non-blocking, close-on-exec stream socket connecting to `addr`: connected
/// already (`true`) or in progress (`false`), or the errno.
fn begin(addr: SocketAddr) -> Result<(OwnedFd, bool), i32> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let sock = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| e as i32)?;
    let result = match addr {
        SocketAddr::V4(a) => socket::connect(sock.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => socket::connect(sock.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    match result {
        Ok(()) => {
            nix::fcntl::fcntl(
                &sock,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
            )
            .map_err(|e| e as i32)?;
            Ok((sock, true))
        }
        Err(nix::errno::Errno::EINPROGRESS) => Ok((sock, false)),
        Err(e) => Err(e as i32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connect completed in the background and then settled is connected for the
    /// socket layer: connecting it again (or a MSG_FASTOPEN send) says EISCONN.
    #[test]
    fn settled_sockets_cannot_be_pointed_elsewhere() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (sock, connected) = begin(addr).expect("begin");
        if !connected {
            let mut fds = [nix::poll::PollFd::new(
                sock.as_fd(),
                nix::poll::PollFlags::POLLOUT,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).expect("poll");
        }
        settle(&sock, addr).expect("settled");
        let other = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9);
        let again = socket::connect(sock.as_raw_fd(), &SockaddrIn::from(other));
        assert_eq!(again, Err(nix::errno::Errno::EISCONN));
    }
}

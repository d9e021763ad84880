//! `sandbox run --connect HOST:PORT`: the program's `connect()` to an allowed TCP
//! destination is made by the supervisor, outside the sandbox's empty network
//! namespace, and the connected socket put in place of the program's.
//!
//! - Before the run, each HOST is resolved by the supervisor; the addresses (with the
//!   port) form the allow-list, and the names go into an `/etc/hosts` bound inside
//!   (with an `/etc/nsswitch.conf` saying `hosts: files`), so the program's resolver
//!   needs no DNS.
//! - The filter hands every `connect` to the supervisor (`filter::with_connect`). The
//!   supervisor reads the address (at most 128 bytes) from the caller's memory, checks
//!   that the call still waits (so the memory was the caller's), and decides on its own
//!   copy: an IPv4/IPv6 address on the list, of a stream socket, is connected by the
//!   supervisor (a thread per call, at most 64 at once — EAGAIN beyond: a slow host
//!   stalls no other call) and installed at
//!   the caller's descriptor number (`SECCOMP_ADDFD_FLAG_SETFD`), keeping its
//!   `O_NONBLOCK`, close-on-exec and `TCP_NODELAY`; the call returns 0. Any other
//!   IPv4/IPv6 destination, and any datagram socket, gets EACCES.
//! - A `connect` to an address of another family (a unix socket, AF_UNSPEC) is decided
//!   by the policy as written: where it allows `connect`, the kernel runs the call
//!   (CONTINUE). That one answer follows a read of memory but allows nothing on its
//!   strength: whatever address the kernel reads then, the call runs in the sandbox's
//!   empty network namespace and empty root, as any connect without `--connect` does.

use super::RunError;
use crate::notify::{describe_call, Outcome};
use sandbox::policy::arch::{Arch, SeccompData};
use sandbox::policy::{Action, Policy};
use sandbox::seccomp::{self, Notification};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// How long the supervisor tries to connect before the call fails with ETIMEDOUT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the supervisor makes at once at most; a call beyond gets EAGAIN (a
/// program opening connections without end holds no more of the supervisor's threads).
const MAX_IN_FLIGHT: usize = 64;

/// The largest address `connect` takes (`sizeof(struct sockaddr_storage)`).
const MAX_ADDRESS: u64 = 128;

/// The destinations `--connect` allows, and the names for `/etc/hosts`.
#[derive(Debug, Default)]
pub(crate) struct AllowList {
    pub(crate) addresses: HashSet<SocketAddr>,
    /// (address, name) for each name resolved.
    pub(crate) names: Vec<(IpAddr, String)>,
}

impl AllowList {
    /// Each `HOST:PORT` (`[V6]:PORT` for an IPv6 literal) resolved by this process.
    pub(crate) fn resolve(specs: &[String]) -> Result<AllowList, RunError> {
        let mut list = AllowList::default();
        for spec in specs {
            let bad = |why: &str| RunError::Options(format!("--connect {spec}: {why}"));
            if let Ok(addr) = spec.parse::<SocketAddr>() {
                list.addresses.insert(addr);
                continue;
            }
            let (host, port) = spec
                .rsplit_once(':')
                .ok_or_else(|| bad("expected HOST:PORT"))?;
            let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(bad("no host name"));
            }
            let found = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
                .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?;
            for addr in found {
                list.addresses.insert(addr);
                if !list.names.contains(&(addr.ip(), host.to_string())) {
                    list.names.push((addr.ip(), host.to_string()));
                }
            }
        }
        Ok(list)
    }

    /// The `/etc/hosts` the program gets: localhost, then each name resolved.
    pub(crate) fn hosts_file(&self) -> String {
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost\n");
        for (ip, name) in &self.names {
            text.push_str(&format!("{ip} {name}\n"));
        }
        text
    }

    /// Whether `addr` may be connected to (an IPv4-mapped IPv6 address as its IPv4).
    pub(crate) fn allows(&self, addr: &SocketAddr) -> bool {
        let plain = match addr {
            SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
                None => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
            },
            v4 => *v4,
        };
        self.addresses.contains(&plain)
    }
}

/// What the supervisor needs to answer `connect`: the list, and the policy as written
/// (for calls it does not broker).
pub(crate) struct Egress {
    pub(crate) allowed: AllowList,
    pub(crate) policy: Policy,
    /// Connections being made now (see [`MAX_IN_FLIGHT`]).
    pub(crate) in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// An address read from the caller's memory, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// IPv4 or IPv6.
    Inet(SocketAddr),
    /// Another family.
    Other,
    /// Too short for its family, or too long for any: the kernel's EINVAL.
    Invalid,
}

/// Decode `bytes`, a `struct sockaddr` of the caller's.
pub(crate) fn destination(bytes: &[u8]) -> Destination {
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| [b[0], b[1]]);
    let Some(family) = u16_at(0).map(u16::from_ne_bytes) else {
        return Destination::Invalid;
    };
    let port = u16_at(2).map(u16::from_be_bytes);
    match i32::from(family) {
        libc::AF_INET => match (port, bytes.get(4..8)) {
            (Some(port), Some(ip)) if bytes.len() >= 16 => Destination::Inet(SocketAddr::V4(
                SocketAddrV4::new(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]), port),
            )),
            _ => Destination::Invalid,
        },
        libc::AF_INET6 => {
            let ip = bytes.get(8..24).and_then(|b| <[u8; 16]>::try_from(b).ok());
            let scope = bytes.get(24..28).and_then(|b| <[u8; 4]>::try_from(b).ok());
            match (port, ip, scope) {
                (Some(port), Some(ip), Some(scope)) => Destination::Inet(SocketAddr::V6(
                    SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, u32::from_ne_bytes(scope)),
                )),
                _ => Destination::Invalid,
            }
        }
        _ => Destination::Other,
    }
}

impl Egress {
    /// Answer one `connect` notification (`n`).
    pub(crate) fn answer(&self, listener: BorrowedFd<'_>, n: &Notification, arch: Arch) -> Outcome {
        let (fd, at, len) = (n.args[0] as u32 as i32, n.args[1], n.args[2] & 0xffff_ffff);
        if len > MAX_ADDRESS {
            let _ = seccomp::answer_error(listener, n.id, libc::EINVAL);
            return Outcome::Answered;
        }
        let read = crate::notify::read_memory(n.pid, at, len as usize);
        let Some(bytes) = read.filter(|b| b.len() as u64 == len) else {
            let _ = seccomp::answer_error(listener, n.id, libc::EFAULT);
            return Outcome::Answered;
        };
        // Still waiting: the bytes were the caller's.
        if !seccomp::notification_valid(listener, n.id).unwrap_or(false) {
            return Outcome::Retry;
        }
        let data = SeccompData {
            nr: n.nr as u32,
            arch: n.arch,
            instruction_pointer: 0,
            args: n.args,
        };
        let written = self.policy.evaluate(arch, &data);
        if written != Action::Allow {
            return match written {
                Action::Errno(e) => {
                    let _ = seccomp::answer_error(listener, n.id, i32::from(e));
                    Outcome::Answered
                }
                _ => Outcome::Violation {
                    pid: n.pid,
                    call: describe_call(arch, n.nr, &n.args),
                    data,
                },
            };
        }
        match destination(&bytes) {
            Destination::Invalid => {
                let _ = seccomp::answer_error(listener, n.id, libc::EINVAL);
            }
            Destination::Other => {
                let _ = seccomp::answer_continue(listener, n.id);
            }
            Destination::Inet(addr) if !self.allowed.allows(&addr) => {
                eprintln!("sandbox: refused a connection to {addr} (not a --connect destination)");
                let _ = seccomp::answer_error(listener, n.id, libc::EACCES);
            }
            Destination::Inet(addr) => match listener.try_clone_to_owned() {
                Ok(own) => {
                    use std::sync::atomic::Ordering;
                    if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
                        self.in_flight.fetch_sub(1, Ordering::SeqCst);
                        let _ = seccomp::answer_error(listener, n.id, libc::EAGAIN);
                        return Outcome::Answered;
                    }
                    let (id, tid, count) = (n.id, n.pid, self.in_flight.clone());
                    std::thread::spawn(move || {
                        broker_connect(own.as_fd(), id, tid, fd, addr);
                        count.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(e) => {
                    let _ = seccomp::answer_error(
                        listener,
                        n.id,
                        e.raw_os_error().unwrap_or(libc::EIO),
                    );
                }
            },
        }
        Outcome::Answered
    }
}

/// On its own thread: connect to `addr` outside, put the socket at the caller's `fd`
/// as the caller's socket was (non-blocking, close-on-exec, TCP_NODELAY), answer 0;
/// or answer the error.
fn broker_connect(listener: BorrowedFd<'_>, id: u64, tid: u32, fd: i32, addr: SocketAddr) {
    let errno = match connect_for(tid, fd, addr) {
        Ok((socket, cloexec)) => {
            match seccomp::install_fd_at(listener, id, socket.as_fd(), fd as u32, cloexec) {
                Ok(()) => {
                    let _ = seccomp::answer_value(listener, id, 0);
                    return;
                }
                Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
            }
        }
        Err(errno) => errno,
    };
    let _ = seccomp::answer_error(listener, id, errno);
}

/// The caller's socket looked at, and a socket connected to `addr` made like it; with
/// whether the caller's descriptor is close-on-exec. An errno for the call otherwise.
fn connect_for(tid: u32, fd: i32, addr: SocketAddr) -> Result<(OwnedFd, bool), i32> {
    use nix::sys::socket::{getsockopt, sockopt};
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let theirs = seccomp::callers_fd(tid, fd).map_err(errno)?;
    let kind = getsockopt(&theirs, sockopt::SockType).map_err(|e| e as i32)?;
    if kind != nix::sys::socket::SockType::Stream {
        // A connected datagram socket of the host's could still send anywhere
        // (sendto with an address): only TCP is brokered.
        return Err(libc::EACCES);
    }
    let status = nix::fcntl::fcntl(&theirs, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| e as i32)?;
    let no_delay = getsockopt(&theirs, sockopt::TcpNoDelay).unwrap_or(false);
    let cloexec = close_on_exec(tid, fd);
    let stream = std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(errno)?;
    settle(&stream, addr)?;
    if status & libc::O_NONBLOCK != 0 {
        stream.set_nonblocking(true).map_err(errno)?;
    }
    if no_delay {
        let _ = stream.set_nodelay(true);
    }
    Ok((OwnedFd::from(stream), cloexec))
}

/// A connect completed in the background leaves the socket "connecting" to the kernel's
/// socket layer until `connect` is called again; only then is it "connected", so that a
/// later connect (or a send with MSG_FASTOPEN) on it fails with EISCONN instead of
/// connecting it somewhere else. Called again here: EISCONN (or 0) is the answer.
fn settle(stream: &std::net::TcpStream, addr: SocketAddr) -> Result<(), i32> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let r = match addr {
        SocketAddr::V4(a) => nix::sys::socket::connect(fd, &nix::sys::socket::SockaddrIn::from(a)),
        SocketAddr::V6(a) => nix::sys::socket::connect(fd, &nix::sys::socket::SockaddrIn6::from(a)),
    };
    match r {
        Ok(()) | Err(nix::errno::Errno::EISCONN) => Ok(()),
        Err(e) => Err(e as i32),
    }
}

/// Whether descriptor `fd` of thread `tid`'s process is close-on-exec (`flags:` in
/// /proc/TID/fdinfo/FD, octal); close-on-exec when it cannot be read.
fn close_on_exec(tid: u32, fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .is_none_or(|flags| flags & libc::O_CLOEXEC as u32 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        b.extend(port.to_be_bytes());
        b.extend(ip);
        b.extend([0u8; 8]);
        b
    }

    #[test]
    fn addresses_are_decoded_as_the_kernel_reads_them() {
        let addr = "127.0.0.1:8080".parse().expect("addr");
        assert_eq!(
            destination(&v4([127, 0, 0, 1], 8080)),
            Destination::Inet(addr)
        );
        assert_eq!(
            destination(&v4([127, 0, 0, 1], 80)[..15]),
            Destination::Invalid
        );
        assert_eq!(destination(&[1, 0, b'/', b'x', 0]), Destination::Other);
        assert_eq!(destination(&[]), Destination::Invalid);
        let mut six = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        six.extend(443u16.to_be_bytes());
        six.extend([0u8; 4]);
        six.extend(Ipv6Addr::LOCALHOST.octets());
        six.extend([0u8; 4]);
        let want: SocketAddr = "[::1]:443".parse().expect("addr");
        assert_eq!(destination(&six), Destination::Inet(want));
        assert_eq!(destination(&six[..27]), Destination::Invalid);
    }

    #[test]
    fn the_list_holds_what_was_named_and_nothing_else() {
        let list =
            AllowList::resolve(&["127.0.0.1:80".into(), "localhost:81".into()]).expect("resolves");
        assert!(list.allows(&"127.0.0.1:80".parse().expect("addr")));
        assert!(list.allows(&"127.0.0.1:81".parse().expect("addr")));
        assert!(list.allows(&"[::ffff:127.0.0.1]:80".parse().expect("addr")));
        assert!(!list.allows(&"127.0.0.1:82".parse().expect("addr")));
        assert!(!list.allows(&"127.0.0.2:80".parse().expect("addr")));
        assert!(list.hosts_file().contains("localhost"));
        for bad in ["nohost", "host:port", ":80", "a b:80"] {
            assert!(AllowList::resolve(&[bad.into()]).is_err(), "{bad}");
        }
    }
}

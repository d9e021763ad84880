//! recvmsg with descriptor passing, written out so that every descriptor the kernel
//! installs is owned at once — even from a truncated control message, which `nix`
//! refuses to parse (and whose descriptors would then leak).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// What one `recvmsg` got.
pub struct Received {
    /// Bytes of the datagram that fit the buffer.
    pub len: usize,
    /// Every descriptor received, owned (closed on drop).
    pub fds: Vec<OwnedFd>,
    /// MSG_TRUNC: the datagram was longer than the buffer.
    pub truncated: bool,
    /// MSG_CTRUNC: more descriptors (or control data) than the buffer held.
    pub control_truncated: bool,
}

/// One `recvmsg(MSG_CMSG_CLOEXEC)` into `buf`, with room for `max_fds` descriptors:
/// non-blocking (`MSG_DONTWAIT`) unless `wait`, when it waits up to the socket's
/// `SO_RCVTIMEO`. Returns `Ok(None)` when nothing is waiting (or came in time).
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    wait: bool,
) -> io::Result<Option<Received>> {
    let fd_bytes = (max_fds.max(1) * std::mem::size_of::<RawFd>()) as u32;
    // SAFETY: CMSG_SPACE only computes a size from an integer.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    // u64 backing keeps the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (null name, no iovecs, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() * 8;
    // SAFETY: `msg` points at one iovec over `buf` and at `control`, both live and
    // writable for the lengths given; the kernel writes at most those lengths.
    let n = unsafe {
        libc::recvmsg(
            sock.as_raw_fd(),
            &mut msg,
            libc::MSG_CMSG_CLOEXEC | if wait { 0 } else { libc::MSG_DONTWAIT },
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(None),
            _ => Err(e),
        };
    }
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by the kernel: CMSG_FIRSTHDR/NXTHDR walk only within
    // msg_control..msg_control+msg_controllen (which the kernel set to what it wrote).
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        let (level, kind, len) =
            // SAFETY: `cmsg` is non-null and within the control buffer (see above).
            unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN computes a size; CMSG_DATA points into this cmsg.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = len.saturating_sub(header) / std::mem::size_of::<RawFd>();
            // SAFETY: see above.
            let data = unsafe { libc::CMSG_DATA(cmsg) } as *const RawFd;
            for i in 0..count {
                // The kernel wrote `count` fds at `data` (cmsg_len says so, within the
                // control buffer); each was just installed in our table for this call.
                // SAFETY: in bounds (above); read_unaligned copes with any alignment.
                let fd = unsafe { std::ptr::read_unaligned(data.add(i)) };
                if fd >= 0 {
                    // SAFETY: as above: a fresh descriptor owned by nothing else.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(Some(Received {
        len: n as usize,
        fds,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        control_truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
    }))
}

/// `setsockopt(SO_RCVTIMEO)`: how long a waiting receive on `sock` waits (at least a
/// microsecond: zero would mean for ever).
pub fn set_receive_timeout(sock: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros().max(1)),
    };
    // SAFETY: `tv` is a live, initialised `struct timeval` and the length passed is its
    // size; the kernel only reads it; the socket is borrowed, so it stays open.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(SIOCOUTQ)`: the bytes this socket has sent that its peer has not read yet
/// (for unix datagram and seqpacket sockets, the send-buffer memory still charged).
pub fn unread_by_peer(sock: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int into `n`, a live local; the socket is
    // borrowed, so it stays open across the call.
    let r = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::TIOCOUTQ as _,
            &mut n as *mut libc::c_int,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

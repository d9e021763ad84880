//! The channel against a hostile peer: each input class a compromised renderer can
//! write is refused with its own error, descriptors that came with it are closed, and
//! the channel's owner decides to end the peer (`is_peer_fault`).

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use sandbox::ipc::rpc::{Client, Down, Up};
use sandbox::ipc::{codec, pair, Channel, IpcError, Limits, Message, VERSION};
use serde::{Deserialize, Serialize};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Req {
    Ping(u32),
    Name(String),
    WithFd,
}

impl Message for Req {
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, Req::WithFd))
    }
    const MAX_FDS: usize = 1;
    fn validate(&self) -> Result<(), String> {
        match self {
            Req::Name(n) if n.len() > 64 => Err("name longer than 64 bytes".into()),
            _ => Ok(()),
        }
    }
}

/// A victim end (typed) and a raw hostile end.
fn hostile() -> (Channel<(), Req>, OwnedFd) {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair");
    (Channel::from_fd(a, Limits::default()).expect("channel"), b)
}

fn raw_send(sock: &OwnedFd, bytes: &[u8], fds: &[i32]) {
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes)],
        cmsgs,
        MsgFlags::empty(),
        None,
    )
    .expect("sendmsg");
}

fn frame(value: &impl Serialize) -> Vec<u8> {
    let mut v = vec![VERSION];
    v.extend(codec::encode(value).expect("encode"));
    v
}

#[test]
fn a_valid_message_with_its_descriptor_arrives() {
    let (mut rx, tx) = hostile();
    let file = std::fs::File::open("/dev/null").expect("open");
    raw_send(&tx, &frame(&Req::WithFd), &[file.as_raw_fd()]);
    let (msg, fds) = rx.try_recv().expect("ok").expect("a message");
    assert_eq!(msg, Req::WithFd);
    assert_eq!(fds.len(), 1);
    let flags = nix::fcntl::fcntl(&fds[0], nix::fcntl::FcntlArg::F_GETFD).expect("getfd");
    assert_ne!(
        flags & libc::FD_CLOEXEC,
        0,
        "received descriptors are close-on-exec"
    );
}

#[test]
fn garbage_is_a_decode_error() {
    let (mut rx, tx) = hostile();
    raw_send(&tx, &[VERSION, 0xff, 0xfe, 0xfd, 0x07], &[]);
    let e = rx.try_recv().expect_err("garbage");
    assert!(matches!(e, IpcError::Decode(_)), "{e}");
    assert!(e.is_peer_fault());
}

#[test]
fn a_huge_length_prefix_is_refused_without_allocating() {
    let (mut rx, tx) = hostile();
    // Req::Name with a varint length of 2^40: bincode must refuse before allocating.
    let mut bytes = vec![VERSION, 1, 0xfd];
    bytes.extend((1u64 << 40).to_le_bytes());
    raw_send(&tx, &bytes, &[]);
    let e = rx.try_recv().expect_err("huge prefix");
    assert!(matches!(e, IpcError::Decode(_)), "{e}");
}

#[test]
fn truncated_trailing_and_wrong_type_are_decode_errors() {
    let (mut rx, tx) = hostile();
    let mut good = frame(&Req::Name("abc".into()));
    good.pop();
    raw_send(&tx, &good, &[]);
    assert!(
        matches!(rx.try_recv(), Err(IpcError::Decode(_))),
        "truncated"
    );
    let mut long = frame(&Req::Ping(7));
    long.push(0);
    raw_send(&tx, &long, &[]);
    assert!(
        matches!(rx.try_recv(), Err(IpcError::Decode(_))),
        "trailing byte"
    );
    // A valid encoding of another type: an enum index that does not exist.
    raw_send(&tx, &frame(&(9u32, 1u8)), &[]);
    assert!(
        matches!(rx.try_recv(), Err(IpcError::Decode(_))),
        "wrong type"
    );
}

#[test]
fn oversize_is_truncation_and_ends_the_peer() {
    let (mut rx, tx) = hostile();
    raw_send(&tx, &vec![VERSION; 64 * 1024 + 10], &[]);
    let e = rx.try_recv().expect_err("oversize");
    assert!(matches!(e, IpcError::Truncated { max: 65536 }), "{e}");
    assert!(e.is_peer_fault());
}

#[test]
fn unexpected_or_too_many_descriptors_are_refused_and_closed() {
    let (mut rx, tx) = hostile();
    let f = std::fs::File::open("/dev/null").expect("open");
    // A Ping must carry no descriptor.
    raw_send(&tx, &frame(&Req::Ping(1)), &[f.as_raw_fd()]);
    let e = rx.try_recv().expect_err("unexpected fd");
    assert!(
        matches!(
            e,
            IpcError::WrongFdCount {
                got: 1,
                expected: 0
            }
        ),
        "{e}"
    );
    // Five descriptors where at most one fits: MSG_CTRUNC.
    let fds = [f.as_raw_fd(); 5];
    raw_send(&tx, &frame(&Req::WithFd), &fds);
    let e = rx.try_recv().expect_err("too many");
    assert!(matches!(e, IpcError::ControlTruncated), "{e}");
    // WithFd without its descriptor.
    raw_send(&tx, &frame(&Req::WithFd), &[]);
    assert!(matches!(
        rx.try_recv(),
        Err(IpcError::WrongFdCount {
            got: 0,
            expected: 1
        })
    ));
    // That none of the descriptors received above leaked is checked in
    // tests/ipc_fd_leak.rs, alone in its process.
}

#[test]
fn bad_version_empty_and_invalid_values() {
    let (mut rx, tx) = hostile();
    let mut v = frame(&Req::Ping(1));
    v[0] = 9;
    raw_send(&tx, &v, &[]);
    assert!(matches!(rx.try_recv(), Err(IpcError::BadFrame(_))));
    raw_send(&tx, &frame(&Req::Name("x".repeat(65))), &[]);
    assert!(matches!(rx.try_recv(), Err(IpcError::Invalid(_))));
    // An empty datagram from a peer that is still there is a bad frame, not its end.
    raw_send(&tx, &[], &[]);
    assert!(matches!(rx.try_recv(), Err(IpcError::BadFrame(m)) if m == "an empty message"));
    drop(tx);
    assert!(matches!(rx.try_recv(), Err(IpcError::Closed)));
}

#[test]
fn a_sender_never_blocks_on_a_peer_that_does_not_read() {
    let (tx, _rx) = pair::<Req, ()>(Limits::default()).expect("pair");
    let mut sent = 0;
    loop {
        match tx.send(&Req::Name("y".repeat(60)), &[]) {
            Ok(()) => sent += 1,
            Err(IpcError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 1_000_000, "never filled");
    }
    assert!(sent > 0);
}

#[test]
fn a_sender_sees_a_closed_peer() {
    let (tx, rx) = pair::<Req, ()>(Limits::default()).expect("pair");
    drop(rx);
    assert!(matches!(tx.send(&Req::Ping(1), &[]), Err(IpcError::Closed)));
}

#[test]
fn rpc_call_matches_ids_keeps_notifications_and_times_out() {
    type C = Client<Req, u32, (), String>;
    let (client_end, mut server) =
        pair::<Up<Req, ()>, Down<u32, String>>(Limits::default()).expect("pair");
    let mut client: C = Client::new(client_end);
    let t = std::thread::spawn(move || {
        // Answer the first request after a notification and a stale response.
        let (req, _) = server
            .recv_timeout(Duration::from_secs(5))
            .expect("request");
        let Up::Request {
            id,
            body: Req::Ping(n),
        } = req
        else {
            panic!("{req:?}")
        };
        server
            .send(&Down::Notify("hello".into()), &[])
            .expect("note");
        server
            .send(
                &Down::Response {
                    id: id + 100,
                    body: 0,
                },
                &[],
            )
            .expect("stale");
        server
            .send(&Down::Response { id, body: n * 2 }, &[])
            .expect("answer");
        // Do not answer the second request; expect its Cancel.
        let (second, _) = server.recv_timeout(Duration::from_secs(5)).expect("second");
        let (cancel, _) = server.recv_timeout(Duration::from_secs(5)).expect("cancel");
        (second, cancel)
    });
    let (answer, _) = client
        .call(Req::Ping(21), &[], Duration::from_secs(5))
        .expect("call");
    assert_eq!(answer, 42);
    let e = client
        .call(Req::Ping(1), &[], Duration::from_millis(100))
        .expect_err("no answer");
    assert!(matches!(e, IpcError::TimedOut));
    let (second, cancel) = t.join().expect("server");
    let Up::Request { id, .. } = second else {
        panic!("{second:?}")
    };
    assert_eq!(cancel, Up::Cancel { id });
    let (note, _) = client
        .next_notification(Duration::from_secs(1))
        .expect("kept note");
    assert_eq!(note, "hello");
    drop(client);
}

#[test]
fn only_seqpacket_sockets_make_channels() {
    let (a, _b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("pair");
    assert!(Channel::<(), Req>::from_fd(a, Limits::default()).is_err());
    let _ = std::io::stdout().as_fd();
}

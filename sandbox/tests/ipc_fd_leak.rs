//! Descriptors that arrive with a refused message are closed, never leaked. Alone in
//! its test binary so that no other test opens descriptors meanwhile.

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use sandbox::ipc::{codec, Channel, IpcError, Limits, Message, VERSION};
use std::io::IoSlice;
use std::os::fd::AsRawFd;

#[derive(serde::Serialize, serde::Deserialize)]
enum Req {
    Ping,
    WithFd,
}

impl Message for Req {
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, Req::WithFd))
    }
    const MAX_FDS: usize = 1;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn refused_messages_leave_no_descriptor_behind() {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair");
    let mut rx: Channel<(), Req> = Channel::from_fd(a, Limits::default()).expect("channel");
    let f = std::fs::File::open("/dev/null").expect("open");
    let before = open_fds();
    let send = |value: &Req, fds: &[i32]| {
        let mut bytes = vec![VERSION];
        bytes.extend(codec::encode(value).expect("encode"));
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
        sendmsg::<()>(
            b.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            cmsgs,
            MsgFlags::empty(),
            None,
        )
        .expect("sendmsg");
    };
    for _ in 0..50 {
        send(&Req::Ping, &[f.as_raw_fd()]);
        assert!(matches!(
            rx.try_recv(),
            Err(IpcError::WrongFdCount {
                got: 1,
                expected: 0
            })
        ));
        send(&Req::WithFd, &[f.as_raw_fd(); 8]);
        assert!(matches!(rx.try_recv(), Err(IpcError::ControlTruncated)));
        let mut garbage = vec![VERSION, 0xff, 0xff];
        garbage.extend([0u8; 8]);
        let cmsg = [ControlMessage::ScmRights(&[f.as_raw_fd()])];
        sendmsg::<()>(
            b.as_raw_fd(),
            &[IoSlice::new(&garbage)],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .expect("sendmsg");
        assert!(matches!(rx.try_recv(), Err(IpcError::Decode(_))));
    }
    assert_eq!(
        open_fds(),
        before,
        "a refused message's descriptors were leaked"
    );
}

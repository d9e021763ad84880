//! IPC costs, each next to its baseline, in one run:
//!
//! 1. typed request/response (`Client::call` ↔ a server loop on `Channel`) vs a raw
//!    SOCK_SEQPACKET 8-byte ping-pong, same two threads;
//! 2. brokered open (request → `FileService::open` → fd back over SCM_RIGHTS) vs a
//!    native `File::open` vs a raw round trip that carries an already-open fd;
//! 3. from a real renderer (locked down, its file calls handed to the broker): a plain
//!    `File::open` answered by the broker's file-call thread (with and without
//!    `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`) and `client.open` through the broker's loop,
//!    against the raw fd round trip of 2.;
//! 4. spawn → ready through the broker (renderer locked down and verified).
//!
//! ```sh
//! cargo run --release -p broker --example ipc_bench
//! ```

use broker::services::files::{Access, FileService, Grant};
use broker::{Broker, BrokerConfig, Event, RendererSpec, Service};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use sandbox::ipc::rpc::{Client, Down, Up};
use sandbox::ipc::{pair, Limits};
use sandbox::protocol::{OpenMode, OpenRequest, Request, Response};
use sandbox::renderer::{self, Protocol};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

const N: usize = 5_000;

fn per_op(start: Instant, n: usize) -> f64 {
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Raw 8-byte ping-pong over SEQPACKET between two threads; optionally with an fd
/// riding on the answer.
fn raw_round_trips(with_fd: bool) -> f64 {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("pair");
    let server = raw_server(b, with_fd);
    let t = raw_client(&a);
    let _ = server.join();
    t
}

/// The answering side of a raw ping-pong: `N` answers, each with an already-open fd
/// if `with_fd`.
fn raw_server(b: OwnedFd, with_fd: bool) -> std::thread::JoinHandle<()> {
    let file = std::fs::File::open("/etc/hostname").expect("a file");
    std::thread::spawn(move || {
        let fd = file.as_raw_fd();
        let mut buf = [0u8; 8];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        for _ in 0..N {
            let mut iov = [IoSliceMut::new(&mut buf)];
            if recvmsg::<()>(b.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).is_err() {
                return;
            }
            let fds = [fd];
            let c = [ControlMessage::ScmRights(&fds)];
            let cm: &[ControlMessage<'_>] = if with_fd { &c } else { &[] };
            let _ = sendmsg::<()>(
                b.as_raw_fd(),
                &[IoSlice::new(&buf)],
                cm,
                MsgFlags::empty(),
                None,
            );
        }
    })
}

/// The asking side of a raw ping-pong: µs per round trip over `N` (descriptors that
/// come back are closed, as a real receiver would). Sends with `send`, as a renderer
/// may (its preset allows `sendmsg` only on its channel).
fn raw_client(a: &OwnedFd) -> f64 {
    let start = Instant::now();
    let mut buf = [7u8; 8];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    for _ in 0..N {
        let _ = nix::sys::socket::send(a.as_raw_fd(), &buf, MsgFlags::empty());
        let mut iov = [IoSliceMut::new(&mut buf)];
        if let Ok(m) = recvmsg::<()>(
            a.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            if let Ok(cms) = m.cmsgs() {
                for c in cms {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            let _ = nix::unistd::close(f);
                        }
                    }
                }
            }
        }
    }
    per_op(start, N)
}

/// Typed call/response on our channel: `Client::call` against a server loop.
fn typed_round_trips() -> f64 {
    let (client_end, mut server) =
        pair::<Up<u64, ()>, Down<u64, ()>>(Limits::default()).expect("pair");
    let t = std::thread::spawn(move || {
        for _ in 0..N {
            if let Ok((Up::Request { id, body }, _)) = server.recv_timeout(Duration::from_secs(5)) {
                let _ = server.send(&Down::Response { id, body }, &[]);
            }
        }
    });
    let mut client: Client<u64, u64, (), ()> = Client::new(client_end);
    let start = Instant::now();
    for i in 0..N as u64 {
        let _ = client.call(i, &[], Duration::from_secs(5));
    }
    let r = per_op(start, N);
    let _ = t.join();
    r
}

/// Brokered open: the renderer's request type, the files service, the fd back.
fn brokered_opens(dir: &std::path::Path) -> f64 {
    type UpF = Up<Request<()>, ()>;
    type DownF = Down<Response<()>, ()>;
    let (client_end, mut server) = pair::<UpF, DownF>(Limits::default()).expect("pair");
    let files = FileService::new(vec![Grant::new(dir, Access::ReadOnly)]).expect("grant");
    let t = std::thread::spawn(move || {
        for _ in 0..N {
            if let Ok((
                Up::Request {
                    id,
                    body: Request::Open(req),
                },
                _,
            )) = server.recv_timeout(Duration::from_secs(5))
            {
                match files.open(&req) {
                    Ok(fd) => {
                        let _ = server.send(
                            &Down::Response {
                                id,
                                body: Response::Opened,
                            },
                            &[fd.as_fd()],
                        );
                    }
                    Err(e) => {
                        let _ = server.send(
                            &Down::Response {
                                id,
                                body: Response::OpenFailed(e),
                            },
                            &[],
                        );
                    }
                }
            }
        }
    });
    let mut client: Client<Request<()>, Response<()>, (), ()> = Client::new(client_end);
    let path = dir.join("file").display().to_string();
    let start = Instant::now();
    for _ in 0..N {
        let req = Request::Open(OpenRequest {
            path: path.clone(),
            mode: OpenMode::Read,
        });
        let _ = client.call(req, &[], Duration::from_secs(5));
    }
    let r = per_op(start, N);
    let _ = t.join();
    r
}

fn native_opens(dir: &std::path::Path) -> f64 {
    let path = dir.join("file");
    let start = Instant::now();
    for _ in 0..N {
        let _ = std::fs::File::open(&path);
    }
    per_op(start, N)
}

/// From a real renderer with a grant on `dir`: µs per plain `File::open` (+ close),
/// answered through the seccomp listener, per `client.open`, through the channel and
/// the broker's loop, and per raw round trip carrying a descriptor between the renderer
/// and a broker thread (the baseline). `sync`: the broker asks for synchronous
/// wake-ups.
fn renderer_opens(dir: &std::path::Path, sync: bool) -> (f64, f64, f64) {
    let config = BrokerConfig {
        sync_wake_up: sync,
        ..BrokerConfig::default()
    };
    let mut broker = Broker::new(config, Nothing).expect("broker");
    let spec = RendererSpec::current_exe()
        .expect("exe")
        .arg(BENCH_OPENS)
        .grant(Grant::new(dir, Access::ReadOnly))
        .env("FILE", dir.join("file").display().to_string())
        .inherit_stderr(false);
    broker.spawn(spec).expect("spawn");
    let (mut plain, mut brokered, mut raw) = (f64::NAN, f64::NAN, f64::NAN);
    for e in broker.run_until_idle(Duration::from_secs(120)) {
        if let Event::Log { line, .. } = e {
            let mut words = line.split_whitespace();
            let (what, value) = (words.next(), words.next().and_then(|v| v.parse().ok()));
            match (what, value) {
                (Some("plain"), Some(v)) => plain = v,
                (Some("client"), Some(v)) => brokered = v,
                (Some("raw"), Some(v)) => raw = v,
                _ => {}
            }
        }
    }
    (plain, brokered, raw)
}

/// The renderer side of [`renderer_opens`].
fn bench_opens(client: &mut renderer::RendererClient<Nothing>) -> i32 {
    let path = std::env::var("FILE").unwrap_or_default();
    let start = Instant::now();
    for _ in 0..N {
        if std::fs::File::open(&path).is_err() {
            return 1;
        }
    }
    let plain = per_op(start, N);
    let start = Instant::now();
    for _ in 0..N {
        if client
            .open(&path, OpenMode::Read, Duration::from_secs(5))
            .is_err()
        {
            return 2;
        }
    }
    let brokered = per_op(start, N);
    // The baseline between the same two processes: a raw round trip with the broker
    // that carries an already-open descriptor.
    let raw = match client.call_with_fds((), &[], Duration::from_secs(5)) {
        Ok((EchoEnd, mut fds)) => match fds.pop() {
            Some(end) => raw_client(&end),
            None => return 3,
        },
        Err(_) => return 3,
    };
    let _ = client.log(3, &format!("plain {plain}"));
    let _ = client.log(3, &format!("client {brokered}"));
    let _ = client.log(3, &format!("raw {raw}"));
    0
}

/// The renderer argument that runs [`bench_opens`].
const BENCH_OPENS: &str = "bench-opens";

/// The bench's protocol: a renderer may ask for one end of a raw ping-pong socket
/// whose other end a broker thread answers, each answer carrying a descriptor.
struct Nothing;
impl Protocol for Nothing {
    type Req = ();
    type Resp = EchoEnd;
    type Note = ();
}

/// The answer that carries the renderer's end of the ping-pong socket.
#[derive(serde::Serialize, serde::Deserialize)]
struct EchoEnd;
impl sandbox::ipc::Message for EchoEnd {
    fn fd_count(&self) -> usize {
        1
    }
    const MAX_FDS: usize = 1;
}

impl Service for Nothing {
    type Proto = Nothing;
    fn handle(
        &mut self,
        _: broker::RendererId,
        _: (),
        _: Vec<OwnedFd>,
    ) -> Result<(EchoEnd, Vec<OwnedFd>), String> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| e.to_string())?;
        drop(raw_server(b, true));
        Ok((EchoEnd, vec![a]))
    }
}

fn spawn_to_ready(rounds: usize, zygote: bool, share_net: bool) -> f64 {
    let mut broker = Broker::new(BrokerConfig::default(), Nothing).expect("broker");
    if zygote {
        let spec = RendererSpec::current_exe()
            .expect("exe")
            .inherit_stderr(false);
        broker.start_zygote(&spec).expect("zygote");
    }
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let mut spec = RendererSpec::current_exe()
            .expect("exe")
            .inherit_stderr(false);
        if share_net {
            spec = spec.namespaces(sandbox::launch::Namespaces {
                net: sandbox::launch::NetMode::Shared,
                ..Default::default()
            });
        }
        let id = broker.spawn(spec).expect("spawn");
        let mut ready = false;
        while !ready && start.elapsed() < Duration::from_secs(10) {
            for e in broker.poll(Duration::from_millis(100)) {
                if matches!(e, Event::Ready { id: got, .. } if got == id) {
                    ready = true;
                }
            }
        }
        times.push(start.elapsed().as_secs_f64() * 1e6);
        broker.kill(id, broker::EndReason::BrokerShutdown);
        let _ = broker.run_until_idle(Duration::from_secs(5));
    }
    median(times)
}

fn main() {
    if std::env::args().any(|a| a == renderer::ROLE_ARG) {
        if std::env::args().any(|a| a == BENCH_OPENS) {
            renderer::run::<Nothing>(|_, client| bench_opens(client));
        }
        renderer::run::<Nothing>(|_, _| 0);
    }
    if std::env::args().any(|a| a == renderer::ZYGOTE_ARG) {
        renderer::run_zygote::<Nothing>(|_, _| 0);
    }
    let dir = std::env::temp_dir().join(format!("ipc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("file"), "x").expect("file");
    let rounds = 15;
    let mut raw = Vec::new();
    let mut typed = Vec::new();
    let mut raw_fd = Vec::new();
    let mut brokered = Vec::new();
    let mut native = Vec::new();
    let (mut plain_sync, mut plain_async, mut client_open) = (Vec::new(), Vec::new(), Vec::new());
    let mut raw_renderer = Vec::new();
    for round in 0..rounds {
        // Renderers in 5 of the rounds (each is a spawn).
        if round % 3 == 0 {
            let (plain, client, raw) = renderer_opens(&dir, true);
            plain_sync.push(plain);
            client_open.push(client);
            raw_renderer.push(raw);
            plain_async.push(renderer_opens(&dir, false).0);
        }
        raw.push(raw_round_trips(false));
        typed.push(typed_round_trips());
        raw_fd.push(raw_round_trips(true));
        brokered.push(brokered_opens(&dir));
        native.push(native_opens(&dir));
    }
    let (raw, typed, raw_fd, brokered, native) = (
        median(raw),
        median(typed),
        median(raw_fd),
        median(brokered),
        median(native),
    );
    let (plain_sync, plain_async, client_open, raw_renderer) = (
        median(plain_sync),
        median(plain_async),
        median(client_open),
        median(raw_renderer),
    );
    let spawn = spawn_to_ready(30, false, false);
    let spawn_zygote = spawn_to_ready(30, true, false);
    let spawn_zygote_shared = spawn_to_ready(30, true, true);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{N} operations per run, median of {rounds} interleaved runs; two threads, one process, no pinning");
    println!();
    println!("| operation | µs per operation | ratio to its baseline | target |");
    println!("|---|---:|---:|---|");
    println!("| raw SEQPACKET 8-byte ping-pong (baseline) | {raw:.2} | 1.00× | |");
    println!(
        "| typed request/response (`Client::call`) | {typed:.2} | {:.2}× | ≤ 1.2× |",
        typed / raw
    );
    println!("| raw round trip carrying an open fd (baseline) | {raw_fd:.2} | 1.00× | |");
    println!("| brokered open (request, openat2 beneath the grant, fd back) | {brokered:.2} | {:.2}× | ≤ 1.2× |", brokered / raw_fd);
    println!(
        "| native `File::open` (for scale) | {native:.2} | {:.2}× | |",
        native / raw_fd
    );
    println!("| renderer ↔ broker thread: raw round trip carrying an open fd (baseline) | {raw_renderer:.2} | 1.00× | |");
    println!("| renderer: plain `File::open`, brokered file call, synchronous wake-up | {plain_sync:.2} | {:.2}× | ≤ 1.2× |", plain_sync / raw_renderer);
    println!("| renderer: plain `File::open`, brokered file call, ordinary wake-up | {plain_async:.2} | {:.2}× | |", plain_async / raw_renderer);
    println!("| renderer: `client.open` through the broker's loop | {client_open:.2} | {:.2}× | ≤ 1.2× |", client_open / raw_renderer);
    println!("| spawn → ready through the broker (median of 30) | {spawn:.0} | | |");
    println!(
        "| spawn → ready through the broker's zygote (median of 30) | {spawn_zygote:.0} | | |"
    );
    println!("| the same, network namespace shared (median of 30) | {spawn_zygote_shared:.0} | | ≤ 500 µs |");
}

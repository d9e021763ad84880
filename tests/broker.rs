//! The broker against hostile renderers. Each case starts a broker (in a fresh process:
//! this binary with `--case NAME`, as root or dropped to uid 65534) with two renderers
//! — this binary again, with `--type=renderer MODE` — one hostile, one well-behaved.
//! The hostile one must end with the exact classified reason while the good one's
//! requests keep being answered.

use sandbox_tests::{reachable, run_cases, Case};

use broker::services::files::{Access, Grant};
use broker::spec::RendererSpec;
use broker::supervisor::{Broker, BrokerConfig, Event, RendererId, Service};
use sandbox::ipc::{codec, Message, VERSION};
use sandbox::protocol::{Creation, OpenMode};
use sandbox::renderer::{self, Protocol, RendererClient};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// Renderers built from this binary report failed allocations.
#[global_allocator]
static ALLOC: renderer::ReportingAllocator = renderer::ReportingAllocator;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Req {
    Echo(u32),
    /// Carries a sealed memfd.
    Blob,
}

impl Message for Req {
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, Req::Blob))
    }
    const MAX_FDS: usize = 1;
}

struct Test;
impl Protocol for Test {
    type Req = Req;
    type Resp = u32;
    type Note = ();
}

#[derive(Default)]
struct Counting {
    answered: std::collections::HashMap<RendererId, u32>,
}

impl Service for Counting {
    type Proto = Test;
    fn handle(
        &mut self,
        from: RendererId,
        request: Req,
        mut fds: Vec<OwnedFd>,
    ) -> Result<(u32, Vec<OwnedFd>), String> {
        *self.answered.entry(from).or_default() += 1;
        match request {
            Req::Echo(n) => Ok((n, Vec::new())),
            Req::Blob => {
                let fd = fds.pop().ok_or("no descriptor")?;
                let blob = sandbox::ipc::blob::SealedBlob::receive(fd, 1 << 20)
                    .map_err(|e| e.to_string())?;
                Ok((blob.len() as u32, Vec::new()))
            }
        }
    }
}

// ------------------------------------------------------------------------------------
// Renderers.

fn frame(value: &impl Serialize) -> Vec<u8> {
    let mut v = vec![VERSION];
    v.extend(codec::encode(value).unwrap_or_default());
    v
}

fn request_frame(id: u64, req: Req) -> Vec<u8> {
    frame(&sandbox::ipc::rpc::Up::<
        sandbox::protocol::Request<Req>,
        sandbox::protocol::RendererNote,
    >::Request {
        id,
        body: sandbox::protocol::Request::Embedder(req),
    })
}

fn renderer_main(mode: &str, client: &mut RendererClient<Test>) -> i32 {
    let t = Duration::from_secs(5);
    let raw = |c: &mut RendererClient<Test>, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]| {
        let _ = c.raw().channel().send_raw(bytes, fds);
        std::thread::sleep(Duration::from_secs(30));
    };
    match mode {
        "good" => {
            // Keep asking for two seconds; every answer must be right.
            let start = Instant::now();
            let mut n = 0;
            while start.elapsed() < Duration::from_millis(1500) {
                match client.call(Req::Echo(n), t) {
                    Ok(v) if v == n => n += 1,
                    _ => return 1,
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = client.log(3, &format!("good renderer made {n} calls\n\x1b[31mFORGED"));
            0
        }
        "open" => {
            let base = std::env::var("GRANT").unwrap_or_default();
            let ok = client
                .open(&format!("{base}/hello"), OpenMode::Read, t)
                .is_ok();
            let escaped = client.open("/etc/passwd", OpenMode::Read, t).is_err();
            let no_write = client
                .open(
                    &format!("{base}/hello"),
                    OpenMode::Write {
                        create: Creation::Existing,
                        truncate: false,
                    },
                    t,
                )
                .is_err();
            if ok && escaped && no_write {
                0
            } else {
                2
            }
        }
        "garbage" => {
            raw(client, &[VERSION, 0xff, 0xfe, 0xfd], &[]);
            0
        }
        "truncated" => {
            let mut f = request_frame(1, Req::Echo(7));
            f.pop();
            raw(client, &f, &[]);
            0
        }
        "oversize" => {
            raw(client, &vec![VERSION; 70_000], &[]);
            0
        }
        "wrong_type" => {
            raw(client, &frame(&(77u32, "not a frame".to_string())), &[]);
            0
        }
        "too_many_fds" => {
            // After lockdown nothing can be opened; stdin (/dev/null) will do, six times.
            let stdin = std::io::stdin();
            let fds = vec![stdin.as_fd(); 6];
            raw(client, &request_frame(1, Req::Blob), &fds);
            0
        }
        "unexpected_fd" => {
            // A datagram pair: the renderer preset allows no stream pairs.
            let (a, _b) = std::os::unix::net::UnixDatagram::pair().expect("pair");
            raw(client, &request_frame(1, Req::Echo(1)), &[a.as_fd()]);
            0
        }
        "socket_as_blob" => {
            let (a, _b) = std::os::unix::net::UnixDatagram::pair().expect("pair");
            let _ = client.call_with_fds(Req::Blob, &[a.as_fd()], t);
            std::thread::sleep(Duration::from_secs(30));
            0
        }
        "unsealed_blob" => {
            let fd = nix::sys::memfd::memfd_create(c"x", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .expect("memfd");
            let _ = client.call_with_fds(Req::Blob, &[fd.as_fd()], t);
            std::thread::sleep(Duration::from_secs(30));
            0
        }
        "flood" => {
            for i in 0..1_000_000u64 {
                let _ = client
                    .raw()
                    .channel()
                    .send_raw(&request_frame(i, Req::Echo(1)), &[]);
            }
            std::thread::sleep(Duration::from_secs(30));
            0
        }
        "never_read" => {
            // Well-formed requests, within the rate, but never read an answer.
            for i in 0..100_000u64 {
                let _ = client
                    .raw()
                    .channel()
                    .send_raw(&request_frame(i, Req::Echo(1)), &[]);
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            std::thread::sleep(Duration::from_secs(30));
            0
        }
        "die_mid_conversation" => {
            // Ask and leave before the answer can be sent.
            let _ = client
                .raw()
                .channel()
                .send_raw(&request_frame(1, Req::Echo(1)), &[]);
            7
        }
        "violation" => {
            // ptrace(PTRACE_ATTACH, 1, 0, 0): not in the renderer preset.
            let _ = nix::sys::ptrace::attach(nix::unistd::Pid::from_raw(1));
            // Never reached: the SIGSYS handler reports and ends the process.
            let _ = client.log(1, "GOT PAST THE VIOLATION");
            0
        }
        "sleep" => {
            std::thread::sleep(Duration::from_secs(30));
            0
        }
        "memory_bomb" => {
            // Bounded: grows until the 512 MiB address-space limit refuses a block.
            let mut hold: Vec<Vec<u8>> = Vec::new();
            for _ in 0..64 {
                let mut block = vec![0u8; 64 << 20];
                block[0] = 1;
                hold.push(block);
            }
            hold.len() as i32
        }
        "wait_for_shutdown" => match client.next_note(Duration::from_secs(30)) {
            Ok(sandbox::protocol::BrokerNote::Shutdown) => 0,
            _ => 3,
        },
        "exit3" => 3,
        "threads" => {
            // A bounded thread bomb: how many of 50 threads can it start?
            let mut started = Vec::new();
            for _ in 0..50 {
                match std::thread::Builder::new()
                    .spawn(|| std::thread::sleep(Duration::from_millis(500)))
                {
                    Ok(h) => started.push(h),
                    Err(_) => break,
                }
            }
            let _ = client.log(3, &format!("THREADS {}", started.len()));
            for h in started {
                let _ = h.join();
            }
            0
        }
        "violation_on_shutdown" => {
            // Dies of a violation while the broker shuts down.
            let _ = client.next_note(Duration::from_secs(30));
            let _ = nix::sys::ptrace::attach(nix::unistd::Pid::from_raw(1));
            0
        }
        "fd_hoard" => {
            // Hundreds of open requests, answers never read: each answer carries a
            // descriptor the broker would go on holding or keep in flight.
            let base = std::env::var("GRANT").unwrap_or_default();
            let open = |id: u64| {
                frame(&sandbox::ipc::rpc::Up::<
                    sandbox::protocol::Request<Req>,
                    sandbox::protocol::RendererNote,
                >::Request {
                    id,
                    body: sandbox::protocol::Request::Open(sandbox::protocol::OpenRequest {
                        path: format!("{base}/hello"),
                        mode: OpenMode::Read,
                    }),
                })
            };
            for i in 0..400u64 {
                let _ = client.raw().channel().send_raw(&open(i), &[]);
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            std::thread::sleep(Duration::from_secs(30));
            0
        }
        "park_fds" => {
            // Descriptors sent on a socketpair of its own and never received: in
            // flight, counted against a per-user budget the broker may share.
            let (a, _b) = std::os::unix::net::UnixDatagram::pair().expect("pair");
            let stdin = std::io::stdin();
            let fds = [stdin.as_fd(); 8];
            for _ in 0..100 {
                let _ = nix::sys::socket::sendmsg::<()>(
                    std::os::fd::AsRawFd::as_raw_fd(&a),
                    &[std::io::IoSlice::new(b"x")],
                    &[nix::sys::socket::ControlMessage::ScmRights(
                        &fds.map(|f| std::os::fd::AsRawFd::as_raw_fd(&f)),
                    )],
                    nix::sys::socket::MsgFlags::empty(),
                    None,
                );
            }
            let _ = client.log(1, "PARKED");
            std::thread::sleep(Duration::from_secs(30));
            0
        }
        "forged_violation" | "forged_oom" => {
            // Claims a violation (execve) or a failed allocation, then exits 0.
            let note = if mode == "forged_violation" {
                sandbox::protocol::RendererNote::Violation(sandbox::protocol::Violation {
                    nr: 59i32.to_le_bytes(),
                    arch: 0xc000_003eu32.to_le_bytes(),
                    args: [[0; 8]; 6],
                })
            } else {
                sandbox::protocol::RendererNote::OutOfMemory {
                    size: 4096u64.to_le_bytes(),
                }
            };
            let f =
                frame(&sandbox::ipc::rpc::Up::<sandbox::protocol::Request<Req>, _>::Notify(note));
            let _ = client.raw().channel().send_raw(&f, &[]);
            std::thread::sleep(Duration::from_millis(100));
            0
        }
        "empty_datagram" => {
            raw(client, &[], &[]);
            0
        }
        "forged_lockdown_failed" => {
            // Verified, then claims its lockdown failed, then keeps one frame pending.
            let note = frame(&sandbox::ipc::rpc::Up::<
                sandbox::protocol::Request<Req>,
                sandbox::protocol::RendererNote,
            >::Notify(
                sandbox::protocol::RendererNote::LockdownFailed {
                    error: "forged".into(),
                },
            ));
            let _ = client.raw().channel().send_raw(&note, &[]);
            raw(client, &request_frame(9, Req::Echo(9)), &[]);
            0
        }
        "cancel_flood" => {
            // Notes are not requests: a flood of cancels.
            let cancel = |id: u64| {
                frame(&sandbox::ipc::rpc::Up::<
                    sandbox::protocol::Request<Req>,
                    sandbox::protocol::RendererNote,
                >::Cancel {
                    id,
                })
            };
            for i in 0..200_000u64 {
                if client.raw().channel().send_raw(&cancel(i), &[]).is_err() {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            std::thread::sleep(Duration::from_secs(30));
            0
        }
        "log_flood" => {
            for i in 0..2000 {
                let _ = client.log(3, &format!("flood {i}"));
            }
            0
        }
        _ => 99,
    }
}

// ------------------------------------------------------------------------------------
// Cases (each in its own process).

fn spec(mode: &str) -> RendererSpec {
    RendererSpec::current_exe().expect("own path").arg(mode)
}

fn run_case(name: &str) -> Result<String, String> {
    let mut config = BrokerConfig::default();
    if name == "flood" {
        config.max_requests_per_sec = 200;
    }
    let mut broker = Broker::new(config, Counting::default()).map_err(|e| e.to_string())?;
    let mut hostile_spec = spec(name);
    let grant_dir = std::env::temp_dir().join(format!("broker-grant-{}", std::process::id()));
    if name == "open" || name == "fd_hoard" {
        std::fs::create_dir_all(&grant_dir).map_err(|e| e.to_string())?;
        std::fs::write(grant_dir.join("hello"), "hi").map_err(|e| e.to_string())?;
        hostile_spec = hostile_spec
            .grant(Grant::new(&grant_dir, Access::ReadOnly))
            .env("GRANT", grant_dir.display().to_string());
    }
    if name == "deadline" {
        hostile_spec = spec("sleep").deadline(Duration::from_millis(300));
    }
    if name == "memory_bomb" {
        hostile_spec = hostile_spec.memory_limit(512 << 20);
    }
    let hostile = broker.spawn(hostile_spec).map_err(|e| e.to_string())?;
    let good = broker.spawn(spec("good")).map_err(|e| e.to_string())?;
    let events = broker.run_until_idle(Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&grant_dir);
    let mut out = String::new();
    for e in &events {
        match e {
            Event::Ended { id, reason, .. } => {
                let who = if *id == hostile {
                    "HOSTILE"
                } else if *id == good {
                    "GOOD"
                } else {
                    "OTHER"
                };
                out.push_str(&format!("{who} ENDED {reason:?}\n"));
            }
            Event::Ready { id, .. } => out.push_str(&format!(
                "READY {}\n",
                if *id == good { "GOOD" } else { "HOSTILE" }
            )),
            Event::Log { line, .. } => out.push_str(&format!("LOG {line}\n")),
        }
    }
    let answered = broker.service().answered.get(&good).copied().unwrap_or(0);
    out.push_str(&format!("GOOD ANSWERED {answered}\n"));
    Ok(out)
}

/// Cases that are not "one hostile, one good".
fn run_special(name: &str) -> Result<String, String> {
    let mut broker =
        Broker::new(BrokerConfig::default(), Counting::default()).map_err(|e| e.to_string())?;
    let wait_ready = |broker: &mut Broker<Counting>, n: usize| {
        let mut ready = 0;
        let start = Instant::now();
        while ready < n && start.elapsed() < Duration::from_secs(10) {
            ready += broker
                .poll(Duration::from_millis(50))
                .iter()
                .filter(|e| matches!(e, Event::Ready { .. }))
                .count();
        }
        ready == n
    };
    let mut out = String::new();
    match name {
        "shutdown" => {
            broker
                .spawn(spec("wait_for_shutdown"))
                .map_err(|e| e.to_string())?;
            broker.spawn(spec("sleep")).map_err(|e| e.to_string())?;
            if !wait_ready(&mut broker, 2) {
                return Err("not ready".into());
            }
            let start = Instant::now();
            for e in broker.shutdown(Duration::from_millis(500)) {
                if let Event::Ended { reason, .. } = e {
                    out.push_str(&format!("ENDED {reason:?}\n"));
                }
            }
            out.push_str(&format!(
                "SHUTDOWN TOOK {} ms\n",
                start.elapsed().as_millis()
            ));
            out.push_str(&format!("LEFT {}\n", broker.len()));
        }
        "drop" => {
            let id = broker.spawn(spec("sleep")).map_err(|e| e.to_string())?;
            if !wait_ready(&mut broker, 1) {
                return Err("not ready".into());
            }
            let pid = broker.pid(id).unwrap_or(0);
            drop(broker);
            let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
            out.push_str(&format!("AFTER DROP {gone:?}\n"));
        }
        "broker_death" => {
            let id = broker.spawn(spec("sleep")).map_err(|e| e.to_string())?;
            if !wait_ready(&mut broker, 1) {
                return Err("not ready".into());
            }
            println!("RENDERER PID {}", broker.pid(id).unwrap_or(0));
            use std::io::Write;
            let _ = std::io::stdout().flush();
            // Die without any cleanup: no Drop runs.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        "restart" => {
            let restart = broker::Restart {
                max: 2,
                initial_backoff: Duration::from_millis(50),
            };
            broker
                .spawn(spec("exit3").restart(restart))
                .map_err(|e| e.to_string())?;
            let start = Instant::now();
            for e in broker.run_until_idle(Duration::from_secs(20)) {
                match e {
                    Event::Ended {
                        reason,
                        restarted_as,
                        ..
                    } => {
                        out.push_str(&format!(
                            "ENDED {reason:?} restarted={} at {} ms\n",
                            restarted_as.is_some(),
                            start.elapsed().as_millis()
                        ));
                    }
                    Event::Ready { .. } => out.push_str("READY\n"),
                    _ => {}
                }
            }
        }
        "zygote" => {
            broker
                .start_zygote(&spec("good"))
                .map_err(|e| e.to_string())?;
            let ids: Vec<RendererId> = (0..3)
                .map(|_| broker.spawn(spec("good")))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            for e in broker.run_until_idle(Duration::from_secs(20)) {
                match e {
                    Event::Ready { id, .. } if ids.contains(&id) => out.push_str("READY\n"),
                    Event::Ended { id, reason, .. } if ids.contains(&id) => {
                        out.push_str(&format!("ENDED {reason:?}\n"))
                    }
                    _ => {}
                }
            }
            for id in ids {
                out.push_str(&format!(
                    "ANSWERED {}\n",
                    broker.service().answered.get(&id).copied().unwrap_or(0)
                ));
            }
        }
        "zygote_paused" => {
            // The zygote is stopped: spawn() must return at once (the renderer arrives
            // later), not wait for the zygote's answer while no renderer is served.
            broker
                .start_zygote(&spec("good"))
                .map_err(|e| e.to_string())?;
            let me = std::process::id();
            let zygote = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
                .map_err(|e| e.to_string())?
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .find(|p| {
                    std::fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.windows(13).any(|w| w == b"--type=zygote"))
                })
                .ok_or("no zygote")?;
            let pid = nix::unistd::Pid::from_raw(zygote);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP)
                .map_err(|e| e.to_string())?;
            let spawned = broker.spawn(spec("good"));
            out.push_str(&format!("SPAWN RETURNED {}\n", spawned.is_ok()));
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT)
                .map_err(|e| e.to_string())?;
            let id = spawned.map_err(|e| e.to_string())?;
            for e in broker.run_until_idle(Duration::from_secs(20)) {
                match e {
                    Event::Ready { id: i, .. } if i == id => out.push_str("READY\n"),
                    Event::Ended { id: i, reason, .. } if i == id => {
                        out.push_str(&format!("ENDED {reason:?}\n"))
                    }
                    _ => {}
                }
            }
            out.push_str(&format!(
                "ANSWERED {}\n",
                broker.service().answered.get(&id).copied().unwrap_or(0)
            ));
        }
        "restart_through_shutdown" => {
            let restart = broker::Restart {
                max: 5,
                initial_backoff: Duration::from_millis(10),
            };
            broker
                .spawn(spec("violation_on_shutdown").restart(restart))
                .map_err(|e| e.to_string())?;
            if !wait_ready(&mut broker, 1) {
                return Err("not ready".into());
            }
            for e in broker.shutdown(Duration::from_millis(500)) {
                match e {
                    Event::Ended {
                        reason,
                        restarted_as,
                        ..
                    } => out.push_str(&format!(
                        "ENDED {reason:?} restarted={}\n",
                        restarted_as.is_some()
                    )),
                    Event::Ready { .. } => out.push_str("READY AFTER SHUTDOWN BEGAN\n"),
                    _ => {}
                }
            }
            out.push_str(&format!(
                "LEFT {} EMPTY {}\n",
                broker.len(),
                broker.is_empty()
            ));
        }
        "log_flood" => {
            let hostile = broker.spawn(spec("log_flood")).map_err(|e| e.to_string())?;
            let mut logs = 0;
            let mut ended = None;
            for e in broker.run_until_idle(Duration::from_secs(10)) {
                match e {
                    Event::Log { id, .. } if id == hostile => logs += 1,
                    Event::Ended { id, reason, .. } if id == hostile => ended = Some(reason),
                    _ => {}
                }
            }
            out.push_str(&format!("FORWARDED {logs}\nENDED {ended:?}\n"));
        }
        "outside_ids" => {
            // Two renderers: which user ids do they have outside?
            let ids: Vec<RendererId> = (0..2)
                .map(|_| broker.spawn(spec("sleep")))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            if !wait_ready(&mut broker, 2) {
                return Err("not ready".into());
            }
            for id in &ids {
                let pid = broker.pid(*id).unwrap_or(0);
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .map_err(|e| e.to_string())?;
                for field in ["Uid:", "Gid:", "Groups:"] {
                    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or("");
                    out.push_str(&format!("RENDERER {line}\n"));
                }
                broker.kill(*id, broker::EndReason::BrokerShutdown);
            }
            broker.run_until_idle(Duration::from_secs(5));
            // RLIMIT_NPROC 10 holds a thread bomb.
            let limits = sandbox::lockdown::Rlimits {
                processes: 10,
                ..Default::default()
            };
            broker
                .spawn(spec("threads").rlimits(limits))
                .map_err(|e| e.to_string())?;
            for e in broker.run_until_idle(Duration::from_secs(10)) {
                match e {
                    Event::Log { line, .. } => out.push_str(&format!("{line}\n")),
                    Event::Ended { reason, .. } => out.push_str(&format!("ENDED {reason:?}\n")),
                    _ => {}
                }
            }
        }
        other => return Err(format!("no case {other}")),
    }
    Ok(out)
}

fn run(name: &str, nobody: bool) -> String {
    this_binary(&["--case", name], nobody)
}

/// This binary with `args`, as root or as uid 65534 (then a copy it can run: the broker
/// re-executes it as its renderers); what it printed.
fn this_binary(args: &[&str], nobody: bool) -> String {
    reachable::run_self(args, nobody)
}

fn expect_hostile(name: &str, nobody: bool, want: &str) -> Result<(), String> {
    let out = run(name, nobody);
    let good_ok = out.contains("GOOD ENDED Exited(0)") && out.contains("READY GOOD");
    // The good renderer's log line carries a newline and an escape: both neutralised.
    let log_clean = out.contains("calls\u{fffd}\u{fffd}[31mFORGED");
    let answered: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("GOOD ANSWERED "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    if !out.contains(&format!("HOSTILE ENDED {want}"))
        || !good_ok
        || !log_clean
        || answered < 20
        || out.contains("GOT PAST")
    {
        return Err(format!(
            "want hostile `{want}`, good Exited(0) with ≥ 20 answers; got:\n{out}"
        ));
    }
    Ok(())
}

const CASES: &[Case] = &[
    ("garbage", || {
        expect_hostile("garbage", false, "BadMessage(\"undecodable message")
    }),
    ("truncated", || {
        expect_hostile("truncated", false, "BadMessage(\"undecodable message")
    }),
    ("oversize", || {
        expect_hostile(
            "oversize",
            false,
            "BadMessage(\"peer sent a message longer than 65536 bytes\")",
        )
    }),
    ("wrong_type", || {
        expect_hostile("wrong_type", false, "BadMessage(\"undecodable message")
    }),
    ("too_many_fds", || {
        expect_hostile(
            "too_many_fds",
            false,
            "BadMessage(\"peer sent more descriptors than a message may carry\")",
        )
    }),
    ("unexpected_fd", || {
        expect_hostile(
            "unexpected_fd",
            false,
            "BadMessage(\"message carries 1 descriptors, 0 expected\")",
        )
    }),
    ("socket_as_blob", || {
        expect_hostile("socket_as_blob", false, "BadMessage(")
    }),
    ("unsealed_blob", || {
        expect_hostile("unsealed_blob", false, "BadMessage(")
    }),
    ("flood", || expect_hostile("flood", false, "RateLimited")),
    ("never_read", || {
        expect_hostile("never_read", false, "NotReading")
    }),
    ("die_mid_conversation", || {
        expect_hostile("die_mid_conversation", false, "Exited(7)")
    }),
    ("violation", || {
        // ptrace(PTRACE_ATTACH, 1, 0, 0): the last two registers are whatever glibc's
        // variadic wrapper left there.
        expect_hostile(
            "violation",
            false,
            "SeccompViolation { nr: 101, name: Some(\"ptrace\"), args: [16, 1, 0, 0, ",
        )
    }),
    ("deadline", || {
        expect_hostile("deadline", false, "DeadlineExceeded")
    }),
    ("memory_bomb", || {
        expect_hostile("memory_bomb", false, "OutOfMemory { requested: 67108864 }")
    }),
    ("open", || expect_hostile("open", false, "Exited(0)")),
    ("forged_report", || {
        // Locked down without seccomp, reporting that seccomp was not asked for: the
        // broker verifies against what it asked, not against the renderer's word.
        expect_hostile(
            "forged_report",
            false,
            "LockdownFailed(\"the renderer reports opt-outs [NoSeccomp]; the broker asked for []",
        )
    }),
    ("forged_report_as_nobody", || {
        expect_hostile("forged_report", true, "LockdownFailed(")
    }),
    ("garbage_as_nobody", || {
        expect_hostile("garbage", true, "BadMessage(\"undecodable message")
    }),
    ("violation_as_nobody", || {
        expect_hostile("violation", true, "SeccompViolation { nr: 101")
    }),
    ("open_as_nobody", || {
        expect_hostile("open", true, "Exited(0)")
    }),
    ("shutdown_ends_every_renderer", || {
        let out = special("shutdown");
        let ended = out.matches("ENDED BrokerShutdown").count();
        if ended == 2 && out.contains("LEFT 0") {
            Ok(())
        } else {
            Err(out)
        }
    }),
    ("dropping_the_broker_kills_and_reaps", || {
        let out = special("drop");
        if out.contains("AFTER DROP Err(ESRCH)") {
            Ok(())
        } else {
            Err(out)
        }
    }),
    ("broker_death_ends_its_renderers", || {
        let out = special("broker_death");
        let pid: i32 = out
            .lines()
            .find_map(|l| l.strip_prefix("RENDERER PID "))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("no pid in:\n{out}"))?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::Error::ESRCH)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("renderer {pid} outlived its broker"))
    }),
    ("renderers_cloned_from_a_zygote_lock_down_and_work", || {
        let out = special("zygote");
        let answered_ok = out
            .lines()
            .filter_map(|l| l.strip_prefix("ANSWERED "))
            .filter(|n| n.trim().parse::<u32>().is_ok_and(|n| n >= 20))
            .count();
        if out.matches("READY").count() == 3
            && out.matches("ENDED Exited(0)").count() == 3
            && answered_ok == 3
        {
            Ok(())
        } else {
            Err(out)
        }
    }),
    ("restarts_with_backoff_up_to_the_limit", || {
        let out = special("restart");
        let ended = out.matches("ENDED Exited(3)").count();
        let restarted = out.matches("restarted=true").count();
        if ended == 3 && restarted == 2 && out.matches("READY").count() == 3 {
            Ok(())
        } else {
            Err(out)
        }
    }),
    ("never_read_as_nobody", || {
        expect_hostile("never_read", true, "NotReading")
    }),
    ("memory_bomb_as_nobody", || {
        expect_hostile("memory_bomb", true, "OutOfMemory { requested: 67108864 }")
    }),
    ("oversize_as_nobody", || {
        expect_hostile(
            "oversize",
            true,
            "BadMessage(\"peer sent a message longer than 65536 bytes\")",
        )
    }),
    ("renderers_of_a_root_broker_are_not_root_outside", || {
        outside_ids(false)
    }),
    (
        "a_root_broker_in_a_root_only_folder_starts_its_renderers",
        || {
            // The renderers run as ids of their own, which may not walk to the binary:
            // they are started through a descriptor the broker opened.
            use std::os::unix::fs::PermissionsExt;
            let dir = std::env::temp_dir().join(format!("broker-private-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| e.to_string())?;
            let exe = dir.join("broker-test");
            std::fs::copy(std::env::current_exe().map_err(|e| e.to_string())?, &exe)
                .map_err(|e| e.to_string())?;
            let out = Command::new(&exe)
                .args(["--special", "outside_ids"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .map_err(|e| e.to_string());
            let _ = std::fs::remove_dir_all(&dir);
            let out = out?;
            if out.matches("RENDERER Uid:").count() == 2 && out.contains("ENDED Exited(0)") {
                Ok(())
            } else {
                Err(out)
            }
        },
    ),
    (
        "renderers_of_an_unprivileged_broker_hold_rlimit_nproc",
        || outside_ids(true),
    ),
    ("spawning_from_the_zygote_does_not_wait_for_it", || {
        let out = special("zygote_paused");
        let answered = out
            .lines()
            .find_map(|l| l.strip_prefix("ANSWERED "))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or(0);
        if out.contains("SPAWN RETURNED true")
            && out.contains("READY")
            && out.contains("ENDED Exited(0)")
            && answered >= 20
        {
            Ok(())
        } else {
            Err(out)
        }
    }),
    ("no_restart_once_shutdown_began", || {
        let out = special("restart_through_shutdown");
        if out.contains("ENDED SeccompViolation")
            && out.contains("restarted=false")
            && !out.contains("READY AFTER")
            && out.contains("LEFT 0 EMPTY true")
        {
            Ok(())
        } else {
            Err(out)
        }
    }),
    ("fd_hoard", || {
        // At most `max_fds_in_flight` answers with descriptors go out unread, at most
        // `max_queued_fds` wait; past that the renderer is not reading.
        expect_hostile("fd_hoard", false, "NotReading")
    }),
    ("a_violation_is_read_from_the_kernel", || {
        // The broker holds the renderer's seccomp listener: the call and its arguments
        // come from the kernel, not from the renderer's SIGSYS handler.
        let out = run("violation", false);
        if out.contains("HOSTILE ENDED SeccompViolation { nr: 101, name: Some(\"ptrace\")")
            && out.contains("attested: true")
        {
            Ok(())
        } else {
            Err(out)
        }
    }),
    ("forged_violation", || {
        // A renderer's claims cannot turn a plain exit into a violation or an OOM.
        expect_hostile("forged_violation", false, "Exited(0)")
    }),
    ("forged_oom", || {
        expect_hostile("forged_oom", false, "Exited(0)")
    }),
    ("park_fds", || {
        // sendmsg carries descriptors only on the channel (fd 3): anywhere else it is
        // a violation, so nothing can be parked in flight.
        expect_hostile(
            "park_fds",
            false,
            "SeccompViolation { nr: 46, name: Some(\"sendmsg\")",
        )
    }),
    ("empty_datagram", || {
        expect_hostile(
            "empty_datagram",
            false,
            "BadMessage(\"bad frame: an empty message",
        )
    }),
    ("forged_lockdown_failed", || {
        expect_hostile(
            "forged_lockdown_failed",
            false,
            "BadMessage(\"a lockdown-failed note after the lockdown was verified",
        )
    }),
    ("cancel_flood", || {
        expect_hostile("cancel_flood", false, "RateLimited")
    }),
    ("log_lines_are_rate_limited_not_fatal", || {
        let out = special("log_flood");
        let forwarded: u32 = out
            .lines()
            .find_map(|l| l.strip_prefix("FORWARDED "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(u32::MAX);
        if (100..=400).contains(&forwarded) && out.contains("ENDED Some(Exited(0))") {
            Ok(())
        } else {
            Err(out)
        }
    }),
];

/// As root, renderers run as a user id of their own outside (one each, not root, no
/// supplementary groups), so RLIMIT_NPROC — which the kernel never applies to root —
/// holds a thread bomb; as uid 65534, as that user.
fn outside_ids(nobody: bool) -> Result<(), String> {
    let out = special_as("outside_ids", nobody);
    let uids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("RENDERER Uid:"))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    let threads: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("THREADS "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(usize::MAX);
    let ok_ids = uids.len() == 2
        && if nobody {
            uids.iter().all(|u| *u == "65534")
        } else {
            uids.iter().all(|u| *u != "0" && !u.is_empty()) && uids[0] != uids[1]
        };
    let no_groups = out
        .lines()
        .filter(|l| l.starts_with("RENDERER Groups:"))
        .all(|l| l.trim_end() == "RENDERER Groups:");
    if ok_ids && no_groups && threads <= 10 && out.contains("ENDED Exited(0)") {
        Ok(())
    } else {
        Err(out)
    }
}

fn special(name: &str) -> String {
    special_as(name, false)
}

fn special_as(name: &str, nobody: bool) -> String {
    this_binary(&["--special", name], nobody)
}

/// A renderer that does not use `renderer::run`: it locks down without seccomp and
/// sends a report that says seccomp was not asked for — which the broker did ask for.
fn forged_report_renderer() -> ! {
    use sandbox::ipc::rpc::Up;
    use sandbox::ipc::{Channel, Limits};
    use sandbox::lockdown::{lock_down, Config, OptOut};
    use sandbox::protocol::{RendererNote, Setup};
    let Ok(fd) = renderer::take_channel() else {
        std::process::exit(90)
    };
    let Ok(mut setup_channel) = Channel::<(), Setup>::from_fd(fd, Limits::default()) else {
        std::process::exit(90)
    };
    let Ok((setup, _)) = setup_channel.recv_timeout(Duration::from_secs(10)) else {
        std::process::exit(90)
    };
    let Ok(channel) = Channel::<Up<sandbox::protocol::Request<Req>, RendererNote>, ()>::from_fd(
        setup_channel.into_fd(),
        Limits::default(),
    ) else {
        std::process::exit(90)
    };
    let config = Config {
        keep_fds: vec![0, 1, 2, renderer::CHANNEL_FD],
        rlimits: setup.rlimits,
        opt_outs: vec![OptOut::NoSeccomp],
        ..Config::default()
    };
    let Ok(locked) = lock_down(&config) else {
        std::process::exit(91)
    };
    let report = RendererNote::LockedDown {
        status: Box::new(locked.status().clone()),
        listener: false,
    };
    let _ = channel.send(&Up::Notify(report), &[]);
    std::thread::sleep(Duration::from_secs(30));
    std::process::exit(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == renderer::ROLE_ARG)
        && args.last().map(String::as_str) == Some("forged_report")
    {
        forged_report_renderer();
    }
    if args.iter().any(|a| a == renderer::ZYGOTE_ARG) {
        // Every renderer cloned from the zygote is a well-behaved one.
        renderer::run_zygote::<Test>(|_locked, client| renderer_main("good", client));
    }
    if args.iter().any(|a| a == renderer::ROLE_ARG) {
        let mode = args.last().cloned().unwrap_or_default();
        renderer::run::<Test>(move |_locked, client| renderer_main(&mode, client));
    }
    if let Some(i) = args.iter().position(|a| a == "--special") {
        match run_special(args.get(i + 1).map_or("", String::as_str)) {
            Ok(out) => print!("{out}"),
            Err(e) => println!("CASE ERROR {e}"),
        }
        std::process::exit(0);
    }
    if let Some(i) = args.iter().position(|a| a == "--case") {
        match run_case(args.get(i + 1).map_or("", String::as_str)) {
            Ok(out) => print!("{out}"),
            Err(e) => println!("CASE ERROR {e}"),
        }
        std::process::exit(0);
    }
    run_cases(CASES, &args)
}

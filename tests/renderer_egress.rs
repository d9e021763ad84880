//! A renderer's allow-list of hosts: `RendererSpec::connect_to` and
//! `RendererClient::connect`. Each case runs a broker in a fresh process (this binary
//! with `--case`, as root or dropped to uid 65534) that starts loopback servers of its
//! own, spawns this binary again as the renderer, and prints what it reported.

use broker::spec::RendererSpec;
use broker::supervisor::{Broker, BrokerConfig, Event};
use sandbox::protocol::ConnectError;
use sandbox::renderer::{self, CallError, RendererClient};
use sandbox_tests::plain::{Nothing, Plain};
use sandbox_tests::{reachable, run_cases, Case};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Ping the server behind `stream`: it must answer "pong".
fn ping(mut stream: TcpStream) -> Result<(), String> {
    stream
        .write_all(b"ping")
        .map_err(|e| format!("write: {e}"))?;
    let mut got = [0u8; 4];
    stream
        .read_exact(&mut got)
        .map_err(|e| format!("read: {e}"))?;
    if &got == b"pong" {
        Ok(())
    } else {
        Err(format!("answer {got:?}"))
    }
}

fn renderer_main(client: &mut RendererClient<Plain>) -> i32 {
    let port = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0)
    };
    let (allowed, other, v6) = (port("ALLOWED"), port("OTHER"), port("V6"));
    let t = Duration::from_secs(15);
    let mut fails = Vec::new();
    for host in ["127.0.0.1", "localhost"] {
        match client.connect(host, allowed, t) {
            Ok(s) => {
                if let Err(e) = ping(s) {
                    fails.push(format!("{host}: {e}"));
                }
            }
            Err(e) => fails.push(format!("connect {host}:{allowed}: {e}")),
        }
    }
    if v6 != 0 {
        match client
            .connect("::1", v6, t)
            .map_err(|e| e.to_string())
            .and_then(ping)
        {
            Ok(()) => {}
            Err(e) => fails.push(format!("::1: {e}")),
        }
    }
    // Off the list: another open port, another spelling of an allowed host.
    for (host, p) in [
        ("127.0.0.1", other),
        ("127.0.0.2", allowed),
        ("LOCALHOST", allowed),
    ] {
        match client.connect(host, p, t) {
            Err(CallError::Connect(ConnectError::NotAllowed)) => {}
            other => fails.push(format!("{host}:{p}: {other:?}")),
        }
    }
    // The renderer itself still has no network: its preset refuses socket().
    match TcpStream::connect(("127.0.0.1", allowed)) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        other => fails.push(format!("own connect: {other:?}")),
    }
    for f in &fails {
        let _ = client.log(3, &format!("FAIL {f}"));
    }
    let _ = client.log(3, &format!("PASS {}", fails.is_empty()));
    i32::from(!fails.is_empty())
}

/// A loopback server answering "pong" to every "ping", on its own thread.
fn serve(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4];
            if conn.read_exact(&mut buf).is_ok() {
                let _ = conn.write_all(b"pong");
            }
        }
    });
}

fn run_case() -> Result<String, String> {
    let e = |e: std::io::Error| e.to_string();
    let allowed = TcpListener::bind("127.0.0.1:0").map_err(e)?;
    let other = TcpListener::bind("127.0.0.1:0").map_err(e)?;
    let port = |l: &TcpListener| l.local_addr().map(|a| a.port()).unwrap_or(0);
    let (a, o) = (port(&allowed), port(&other));
    serve(allowed);
    serve(other);
    let mut spec = RendererSpec::current_exe()
        .map_err(e)?
        .connect_to("127.0.0.1", a)
        .connect_to("localhost", a)
        .env("ALLOWED", a.to_string())
        .env("OTHER", o.to_string());
    // IPv6 loopback where the machine has it (the case says which).
    let mut out = String::new();
    match TcpListener::bind("[::1]:0") {
        Ok(v6) => {
            let p = port(&v6);
            serve(v6);
            spec = spec.connect_to("::1", p).env("V6", p.to_string());
            out.push_str("IPV6 yes\n");
        }
        Err(err) => out.push_str(&format!("IPV6 no ({err})\n")),
    }
    let mut broker = Broker::new(BrokerConfig::default(), Nothing).map_err(|e| e.to_string())?;
    broker.spawn(spec).map_err(|e| e.to_string())?;
    for ev in broker.run_until_idle(Duration::from_secs(60)) {
        match ev {
            Event::Log { line, .. } => out.push_str(&format!("LOG {line}\n")),
            Event::Ended { reason, .. } => out.push_str(&format!("ENDED {reason:?}\n")),
            Event::Ready { .. } => out.push_str("READY\n"),
        }
    }
    Ok(out)
}

fn case(nobody: bool) -> Result<(), String> {
    let out = reachable::run_self(&["--case"], nobody);
    let passed = out.contains("LOG PASS true") && out.contains("ENDED Exited(0)");
    // This machine class has IPv6 loopback: a test that silently skipped it could not
    // fail on the IPv6 path.
    if passed && out.contains("IPV6 yes") {
        Ok(())
    } else {
        Err(out)
    }
}

fn as_root() -> Result<(), String> {
    case(false)
}
fn as_nobody() -> Result<(), String> {
    case(true)
}

/// A name that resolves to nothing fails the spawn, naming it.
fn unresolvable_name_fails_the_spawn() -> Result<(), String> {
    let mut broker = Broker::new(BrokerConfig::default(), Nothing).map_err(|e| e.to_string())?;
    let spec = RendererSpec::current_exe()
        .map_err(|e| e.to_string())?
        .connect_to("no-such-host.invalid", 80);
    match broker.spawn(spec) {
        Err(e) if e.to_string().contains("no-such-host.invalid:80") => Ok(()),
        other => Err(format!("expected a refusal naming the host, got {other:?}")),
    }
}

const CASES: &[Case] = &[
    ("renderer_connect_allow_list_as_root", as_root),
    ("renderer_connect_allow_list_as_nobody", as_nobody),
    (
        "renderer_connect_unresolvable_name",
        unresolvable_name_fails_the_spawn,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == renderer::ROLE_ARG) {
        renderer::run::<Plain>(|_locked, client| renderer_main(client));
    }
    if args.iter().any(|a| a == "--case") {
        match run_case() {
            Ok(out) => print!("{out}"),
            Err(e) => println!("CASE ERROR {e}"),
        }
        std::process::exit(0);
    }
    run_cases(CASES, &args)
}

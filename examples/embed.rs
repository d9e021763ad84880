//! The smallest complete embedding: `cargo run --release -p broker --example embed`.
//! One binary is the broker and, run again with `--type=renderer`, the renderer.
use broker::{Broker, BrokerConfig, Event, RendererId, RendererSpec, Service};
use sandbox::renderer::{self, Protocol};
use serde::{Deserialize, Serialize};
use std::{os::fd::OwnedFd, time::Duration};

/// The one request: add two numbers (the broker's privilege, for the example's sake).
#[derive(Serialize, Deserialize)]
struct Add(u32, u32);
impl sandbox::ipc::Message for Add {}

struct Adding;
impl Protocol for Adding {
    type Req = Add;
    type Resp = u64;
    type Note = ();
}

/// The broker's side: every request arrives decoded and validated, with its sender.
impl Service for Adding {
    type Proto = Adding;
    fn handle(
        &mut self,
        from: RendererId,
        Add(a, b): Add,
        _: Vec<OwnedFd>,
    ) -> Result<(u64, Vec<OwnedFd>), String> {
        println!("broker: {from} asks {a} + {b}");
        Ok((u64::from(a) + u64::from(b), Vec::new()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == renderer::ROLE_ARG) {
        // Locked down before this closure runs; exits with its return value.
        renderer::run::<Adding>(|_status, client| {
            match client.call(Add(2, 40), Duration::from_secs(5)) {
                Ok(42) => 0,
                _ => 1,
            }
        });
    }
    let mut broker = Broker::new(BrokerConfig::default(), Adding)?;
    broker.spawn(RendererSpec::current_exe()?)?;
    for event in broker.run_until_idle(Duration::from_secs(10)) {
        match event {
            Event::Ready { status, .. } => println!("renderer locked down:\n{status}"),
            Event::Ended { reason, .. } => println!("renderer ended: {reason:?}"),
            Event::Log { line, .. } => println!("renderer says: {line}"),
        }
    }
    Ok(())
}

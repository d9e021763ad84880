//! The privileged side of the sandbox: it spawns renderers ([`RendererSpec`]), serves
//! their requests (the embedder's [`Service`] and the built-in [`services`]), and
//! supervises them ([`Broker`]); and the `sandbox` command line.
#![deny(missing_docs)]

pub mod cli;
pub mod services;
pub mod spec;
pub mod supervisor;

pub use spec::{RendererSpec, Restart};
pub use supervisor::{Broker, BrokerConfig, EndReason, Event, RendererId, Service};
mod sys;

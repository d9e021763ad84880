//! The privileged side of the sandbox: it spawns renderers ([`RendererSpec`]), serves
//! their requests (the embedder's [`Service`] and the built-in [`services`]), and
//! supervises them ([`Broker`]). The `sandbox` command line is its own package
//! (`cli/`), so an embedder compiles none of it.
#![deny(missing_docs)]

pub mod services;
pub mod spec;
pub mod supervisor;

pub use spec::{RendererSpec, Restart};
pub use supervisor::{Broker, BrokerConfig, EndReason, Event, RendererId, Service};
mod sys;

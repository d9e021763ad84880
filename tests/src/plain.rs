//! The protocol of renderers that ask nothing of their broker but what the framework
//! offers (files, connections, notes), and the service that answers it: what the
//! suites that test those built-in paths share.

use broker::supervisor::{RendererId, Service};
use sandbox::renderer::Protocol;
use std::os::fd::OwnedFd;

/// No embedder requests, responses or notes of its own.
pub struct Plain;

impl Protocol for Plain {
    type Req = ();
    type Resp = ();
    type Note = ();
}

/// The service for [`Plain`]: answers the (never sent) empty request with nothing.
pub struct Nothing;

impl Service for Nothing {
    type Proto = Plain;
    fn handle(
        &mut self,
        _: RendererId,
        _: (),
        _: Vec<OwnedFd>,
    ) -> Result<((), Vec<OwnedFd>), String> {
        Ok(((), Vec::new()))
    }
}

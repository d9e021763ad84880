//! The services the broker offers renderers, one module per capability. A built-in
//! service is a [`Service`] like the embedder's, and the broker serves both the same
//! way: a request decoded into its type, the renderer's id, its descriptors in, an
//! answer and descriptors out, or a reason to end the renderer.

pub mod file_calls;
pub mod files;

use crate::supervisor::{RendererId, Service};
use files::FileService;
use sandbox::ipc::Message;
use sandbox::protocol::{OpenError, OpenRequest};
use sandbox::renderer::Protocol;
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;

/// The files service's messages: an open request, and whether it opened.
pub struct FilesProtocol;

impl Protocol for FilesProtocol {
    type Req = OpenRequest;
    type Resp = Opened;
    type Note = ();
}

/// The files service's answer (the descriptor comes with [`Opened::File`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Opened {
    /// Opened: the descriptor comes along.
    File,
    /// Refused, and why.
    Refused(OpenError),
}

impl Message for Opened {
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, Opened::File))
    }
    const MAX_FDS: usize = 1;
}

impl Service for FileService {
    type Proto = FilesProtocol;

    fn handle(
        &mut self,
        _from: RendererId,
        request: OpenRequest,
        _fds: Vec<OwnedFd>,
    ) -> Result<(Opened, Vec<OwnedFd>), String> {
        Ok(match self.open(&request) {
            Ok(fd) => (Opened::File, vec![fd]),
            Err(e) => (Opened::Refused(e), Vec::new()),
        })
    }
}

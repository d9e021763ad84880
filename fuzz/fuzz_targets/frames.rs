//! The channel's frame decoding, for every message type in both directions: bytes a
//! hostile peer sent, after the version byte, decoded under the codec's size limit and
//! validated as `Channel::try_recv` does. No input may panic, hang or allocate without
//! bound (libFuzzer's -rss_limit_mb and -timeout catch the last two).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandbox::ipc::codec;
use sandbox::ipc::rpc::{Down, Up};
use sandbox::ipc::Message;
use sandbox::protocol::{
    BrokerNote, ConnectRequest, OpenRequest, RendererNote, Request, Response, Setup,
};

/// Decode `body` as `T` and run every check a receiver runs on it.
fn check<T: Message + serde::de::DeserializeOwned>(body: &[u8]) {
    if let Ok(value) = codec::decode::<T>(body) {
        let _ = value.validate();
        let _ = value.fd_count();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        // Renderer → broker, with an embedder request of bytes and of a number.
        0 => check::<Up<Request<Vec<u8>>, RendererNote>>(body),
        1 => check::<Up<Request<u64>, RendererNote>>(body),
        // Broker → renderer.
        2 => check::<Down<Response<Vec<u8>>, BrokerNote<Vec<u8>>>>(body),
        3 => check::<Setup>(body),
        4 => check::<OpenRequest>(body),
        5 => check::<ConnectRequest>(body),
        6 => {
            let _ = sandbox::lockdown::Status::decode(body);
        }
        _ => check::<RendererNote>(body),
    }
});

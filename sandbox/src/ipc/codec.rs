//! The one place bytes become values: bincode 2 (serde), standard configuration, with
//! a hard decode limit so no length prefix a peer writes can make us allocate more.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// No decode reads or allocates more than this, whatever the bytes claim.
pub const DECODE_LIMIT: usize = 1 << 20;

/// Encode `value`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| e.to_string())
}

/// Decode one `T` that must fill `bytes` exactly.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.len() > DECODE_LIMIT {
        return Err(format!("{} bytes exceed the decode limit", bytes.len()));
    }
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

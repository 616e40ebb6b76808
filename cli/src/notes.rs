//! The JSON notes the CLI keeps beside objects in the lake (replay and requeue notes; their
//! types and keys are the lake contract's): read, with "no note yet" as `None`, and written.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_core::aws::S3Store;
use sluice_core::lake::dead_letter::CONTENT_TYPE_JSON;
use sluice_core::store::ObjectStore;

use crate::error::{Error, Result};

/// Reads the object at `key`; `None` when there is none.
pub async fn read_bytes(store: &S3Store, key: &str) -> Result<Option<Vec<u8>>> {
    match store.get(key).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(sluice_core::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the note at `key`; `None` when there is none.
pub async fn read_json<T: DeserializeOwned>(store: &S3Store, key: &str) -> Result<Option<T>> {
    match read_bytes(store, key).await? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Note {
                key: key.to_string(),
                reason: e.to_string(),
            }),
        None => Ok(None),
    }
}

/// Writes the note at `key`.
pub async fn write_json<T: Serialize>(store: &S3Store, key: &str, note: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(note).map_err(|e| Error::Note {
        key: key.to_string(),
        reason: e.to_string(),
    })?;
    store.put(key, body, CONTENT_TYPE_JSON).await?;
    Ok(())
}

//! The Confluent-compatible schema registry of the distributed mode (`porch registry`).
//!
//! It serves the REST subset producers, consumers and tools of the Confluent ecosystem use
//! (see [`router`]) over one of two storages: a compacted Kafka topic ([`KafkaStorage`], the
//! distributed mode) or the embedded registry's JSON file ([`FileStorage`]). Ids, versions and
//! compatibility are decided by `porch_schemas::RegistryState`, the same code the embedded
//! registry and the codec use, so both modes give the same answers. Any Confluent-compatible
//! registry can replace this one by URL (`porch_schemas::RegistryClient`).

mod api;
mod kafka;
mod metrics;
mod storage;

pub use api::{router, AppState, CONTENT_TYPE};
pub use kafka::{KafkaStorage, DEFAULT_TOPIC};
pub use storage::{FileStorage, Storage, StorageError, StorageFuture};

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How to run the registry server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryServerConfig {
    /// Where to listen (Confluent's registry listens on 8081).
    pub listen: SocketAddr,
    /// The Kafka cluster (bootstrap servers and client properties): store the registry in
    /// `topic` there. Takes precedence over `data_dir`.
    pub kafka: Option<porch_topics::KafkaConfig>,
    /// The compacted topic holding the registry (default [`DEFAULT_TOPIC`]).
    pub topic: String,
    /// Without Kafka: keep the registry in `<data_dir>/schema-registry.json`, the file
    /// `porch up` uses.
    pub data_dir: Option<PathBuf>,
}

impl Default for RegistryServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            kafka: None,
            topic: DEFAULT_TOPIC.into(),
            data_dir: None,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the registry needs a storage: a Kafka bootstrap address or a data directory")]
    NoStorage,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Opens the storage the config names. With Kafka, the topic is created or checked and
/// reading it starts; the storage reports ready once it reached the end.
pub async fn open_storage(config: &RegistryServerConfig) -> Result<Arc<dyn Storage>, ServeError> {
    if let Some(kafka) = &config.kafka {
        return Ok(Arc::new(KafkaStorage::open(kafka, &config.topic).await?));
    }
    if let Some(dir) = &config.data_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::File(porch_schemas::RegistryError::Storage {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })
        })?;
        return Ok(Arc::new(FileStorage::open(dir)?));
    }
    Err(ServeError::NoStorage)
}

/// Runs the registry until `shutdown` completes. `/healthz` answers at once; `/readyz` and the
/// registry endpoints once the storage has been read to its end.
pub async fn serve(
    config: RegistryServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let storage = open_storage(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    serve_on(listener, storage, shutdown).await
}

/// [`serve`] on a listener the caller bound (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    storage: Arc<dyn Storage>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(%addr, storage = storage.describe(), "schema registry listening");
    axum::serve(listener, router(AppState::new(storage)))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
}

#[cfg(test)]
mod api_tests;

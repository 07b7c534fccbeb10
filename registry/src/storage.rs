//! Where the registry keeps its records. The registry's decisions (ids, versions,
//! compatibility) are made once, over [`RegistryState`]; a storage only makes records durable
//! and applies them, in order, to the state it serves.

use porch_schemas::{EmbeddedRegistry, RegistryError, RegistryRecord, RegistryState};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Why a storage could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    File(#[from] RegistryError),
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("the registry topic {topic} is not usable: {reason}")]
    Topic { topic: String, reason: String },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Internal(String),
}

pub type StorageFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>>;

/// A durable home for registry records.
pub trait Storage: Send + Sync + 'static {
    /// The registry as of the last record applied.
    fn snapshot(&self) -> Arc<RegistryState>;

    /// Makes `record` durable; once this returns `Ok`, [`Storage::snapshot`] reflects it.
    /// Callers serialise their writes (see `AppState`).
    fn append(&self, record: RegistryRecord) -> StorageFuture<'_>;

    /// Whether the storage holds every record written before the server started, so that
    /// answers are not stale and new ids do not collide with old ones.
    fn is_ready(&self) -> bool;

    /// Where the records live, for logs.
    fn describe(&self) -> String;
}

/// The embedded registry's JSON file (the embedded mode's storage).
pub struct FileStorage {
    registry: Arc<EmbeddedRegistry>,
}

impl FileStorage {
    pub fn new(registry: Arc<EmbeddedRegistry>) -> Self {
        Self { registry }
    }

    /// `<dir>/schema-registry.json`, the same file `porch up` uses.
    pub fn open(dir: &std::path::Path) -> Result<Self, StorageError> {
        Ok(Self::new(Arc::new(EmbeddedRegistry::open(dir)?)))
    }

    /// Nothing on disk (tests).
    pub fn in_memory() -> Self {
        Self::new(Arc::new(EmbeddedRegistry::in_memory()))
    }
}

impl Storage for FileStorage {
    fn snapshot(&self) -> Arc<RegistryState> {
        self.registry.snapshot()
    }

    fn append(&self, record: RegistryRecord) -> StorageFuture<'_> {
        let registry = self.registry.clone();
        Box::pin(async move {
            // The file is written and synced: keep that off the async workers.
            tokio::task::spawn_blocking(move || registry.apply(&record))
                .await
                .map_err(|e| StorageError::Internal(format!("file writer failed: {e}")))??;
            Ok(())
        })
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        match self.registry.path() {
            Some(p) => format!("file {}", p.display()),
            None => "memory".into(),
        }
    }
}

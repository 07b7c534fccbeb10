//! The Meta connector (`porch connector meta`, and inside `porch up`): listing requests for
//! Facebook and Instagram shops, sent to the tenant's catalog in each region through Meta's
//! catalog batch API, and confirmed by polling the batch's status.

pub mod config;
pub mod request_builder;
pub mod service;

pub use config::MetaConfig;

use crate::accounts::Accounts;
use crate::sink::{ConnectorStatus, Gate, RowStore, Sink};
use porch_schemas::Codec;
use std::sync::Arc;

/// The connector's name: its consumer group, dead-letter topic and status are named after it.
pub const NAME: &str = "meta";

/// The Meta connector, ready to run on a port.
pub fn sink(
    config: &MetaConfig,
    instance: &str,
    codec: Arc<Codec>,
    rows: Arc<dyn RowStore>,
    status: Arc<ConnectorStatus>,
) -> Result<Sink, String> {
    config.validate()?;
    let accounts = Arc::new(Accounts::new(rows.clone()));
    let service = service::MetaService::new(config.clone(), accounts)
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    Ok(Sink {
        name: NAME.into(),
        instance: instance.into(),
        service: Arc::new(service),
        settings: config.sink_settings(),
        codec,
        rows,
        status,
        gate: Gate::default(),
    })
}

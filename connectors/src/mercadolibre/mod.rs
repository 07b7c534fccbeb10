//! The Mercado Libre connector (`porch connector mercadolibre`, and inside `porch up`): listing
//! requests for Mercado Libre, each offer an item on the site of its region (MLB Brazil, MLA
//! Argentina…), created, updated, paused and closed through the items API with the seller's
//! OAuth tokens, and confirmed by reading the item back.

mod answer;
pub mod config;
pub mod request_builder;
pub mod service;
pub mod site;
pub mod tokens;

#[cfg(test)]
mod tests;

pub use config::MercadoLibreConfig;
pub use service::{MercadoLibreService, ITEMS_TABLE};
pub use tokens::{
    auth_key, auth_state, decode_auth_state, reauth_marks_prefix, AuthState, ReauthMark, AUTH_TABLE,
};

use crate::accounts::Accounts;
use crate::sink::{ConnectorStatus, Gate, RowStore, Sink};
use porch_schemas::Codec;
use std::sync::Arc;

/// The connector's name: its consumer group, dead-letter topic and status are named after it.
pub const NAME: &str = "mercadolibre";

/// The Mercado Libre connector, ready to run on a port.
pub fn sink(
    config: &MercadoLibreConfig,
    instance: &str,
    codec: Arc<Codec>,
    rows: Arc<dyn RowStore>,
    status: Arc<ConnectorStatus>,
) -> Result<Sink, String> {
    config.validate()?;
    let accounts = Arc::new(Accounts::new(rows.clone()));
    let service = MercadoLibreService::new(config.clone(), accounts, rows.clone())
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

//! Reading the projections: blocking store calls run off the async workers, lookups that route
//! commands (which product owns a SKU, where an offer lives) are named here once.

use crate::error::ApiError;
use crate::AppState;
use porch_processors::domain::product::{ProductState, ProductStatus};
use porch_processors::store::{decode_row, key, sku_key, tables, OfferRef, Store, StoreError};
use porch_schemas::{OfferId, ProductId, Sku, TenantId};
use serde::de::DeserializeOwned;

/// Rows read per store call while scanning.
const SCAN_PAGE: usize = 500;

/// Runs store reads on the blocking pool: a scan may take a while on a large product.
pub async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&(dyn Store + 'static)) -> Result<T, ApiError> + Send + 'static,
{
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&*store))
        .await
        .map_err(|e| ApiError::internal(&e))?
}

/// Every row under `prefix`, up to `max` rows, page by page.
pub fn scan_all<T: DeserializeOwned>(
    store: &(dyn Store + 'static),
    table: &str,
    prefix: &str,
    max: usize,
) -> Result<Vec<(String, T)>, StoreError> {
    let mut rows: Vec<(String, T)> = Vec::new();
    loop {
        let after = rows.last().map(|(k, _)| k.clone());
        let want = SCAN_PAGE.min(max - rows.len());
        let page = store.scan::<T>(table, prefix, after.as_deref(), want)?;
        let done = page.len() < want;
        rows.extend(page);
        if done || rows.len() >= max {
            return Ok(rows);
        }
    }
}

/// The prefix of every row about one product: `tenant/product/`.
pub fn product_prefix(tenant: &TenantId, product: &ProductId) -> String {
    format!("{tenant}/{product}/")
}

/// The product's row, or 404 when the tenant has no such product.
pub fn existing_product(
    store: &(dyn Store + 'static),
    tenant: &TenantId,
    product: &ProductId,
) -> Result<ProductState, ApiError> {
    store
        .get::<ProductState>(tables::PRODUCT, &key(&[tenant.as_str(), product.as_str()]))?
        .filter(|p| p.status != ProductStatus::Absent && p.product.is_some())
        .ok_or_else(|| ApiError::not_found(format!("product '{product}'")))
}

/// 404 unless the tenant's product exists or its creation was accepted: commands for a product
/// may follow its creation at once, before the product processor has applied it.
pub fn known_product(
    store: &(dyn Store + 'static),
    tenant: &TenantId,
    product: &ProductId,
) -> Result<(), ApiError> {
    let k = key(&[tenant.as_str(), product.as_str()]);
    if store.get_raw(tables::PRODUCT_ID, &k)?.is_some() {
        return Ok(());
    }
    existing_product(store, tenant, product).map(drop)
}

/// One row decoded as JSON. Where the store reads over the network the request waits for it
/// without holding a thread (the lookups that route every command are on this path); a local
/// store reads on the blocking pool.
pub async fn read<T: DeserializeOwned + Send + 'static>(
    state: &AppState,
    table: &'static str,
    key: String,
) -> Result<Option<T>, ApiError> {
    if let Some(row) = state.store.get_raw_async(table, &key) {
        let row = row.await?;
        return Ok(row.map(|b| decode_row(table, &key, &b)).transpose()?);
    }
    blocking(state, move |store| Ok(store.get::<T>(table, &key)?)).await
}

/// The product a SKU belongs to, if the tenant has the SKU.
pub async fn sku_owner(
    state: &AppState,
    tenant: &TenantId,
    sku: &Sku,
) -> Result<Option<ProductId>, ApiError> {
    read(state, tables::SKU, sku_key(tenant.as_str(), sku)).await
}

/// Where an offer lives, or 404.
pub fn offer_ref(
    store: &(dyn Store + 'static),
    tenant: &TenantId,
    offer: &OfferId,
) -> Result<OfferRef, ApiError> {
    store
        .get::<OfferRef>(tables::OFFER_REF, &key(&[tenant.as_str(), offer.as_str()]))?
        .ok_or_else(|| ApiError::not_found(format!("offer '{offer}'")))
}

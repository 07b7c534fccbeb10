//! The .avsc files of `schemas/avro/`, compiled into the binary. Each message schema names its
//! envelope (`porch.CommandEnvelope` or `porch.EventEnvelope`); `resolved` inlines it so every
//! schema handed to a registry is self-contained, as Confluent clients expect.

use serde_json::Value as Json;

macro_rules! avsc_files {
    ($($path:literal),+ $(,)?) => {
        /// (path under schemas/avro, file text)
        pub const FILES: &[(&str, &str)] = &[$(($path, include_str!(concat!("../avro/", $path)))),+];
    };
}

avsc_files!(
    "envelope/CommandEnvelope.avsc",
    "envelope/EventEnvelope.avsc",
    "product/CreateProduct.avsc",
    "product/UpdateProduct.avsc",
    "product/DeactivateProduct.avsc",
    "product/ReactivateProduct.avsc",
    "product/AddProductImage.avsc",
    "product/ProductCreated.avsc",
    "product/ProductUpdated.avsc",
    "product/ProductReady.avsc",
    "product/ProductDeactivated.avsc",
    "product/ProductReactivated.avsc",
    "product/ProductPublished.avsc",
    "variant/CreateVariants.avsc",
    "variant/UpdateVariant.avsc",
    "variant/DiscontinueVariant.avsc",
    "variant/VariantsCreated.avsc",
    "variant/VariantUpdated.avsc",
    "variant/VariantDiscontinued.avsc",
    "offer/CreateOffer.avsc",
    "offer/UpdateOffer.avsc",
    "offer/WithdrawOffer.avsc",
    "offer/OfferCreated.avsc",
    "offer/OfferUpdated.avsc",
    "offer/OfferWithdrawn.avsc",
    "inventory/SetStock.avsc",
    "inventory/ReserveStock.avsc",
    "inventory/ReleaseReservation.avsc",
    "inventory/CommitReservation.avsc",
    "inventory/StockAdjusted.avsc",
    "inventory/StockReserved.avsc",
    "inventory/ReservationReleased.avsc",
    "inventory/ReservationFailed.avsc",
    "inventory/ReservationCommitted.avsc",
    "inventory/ReservationExpired.avsc",
    "inventory/ReservationOutcome.avsc",
    "inventory/InventoryAvailable.avsc",
    "inventory/InventoryDepleted.avsc",
    "compliance/DecideCompliance.avsc",
    "compliance/ComplianceApproved.avsc",
    "compliance/ComplianceRejected.avsc",
    "compliance/ComplianceReviewRequested.avsc",
    "activation/OfferActivated.avsc",
    "activation/OfferSuspended.avsc",
    "activation/OfferEnded.avsc",
    "search/ListingVisible.avsc",
    "search/ListingHidden.avsc",
    "channel/ChannelSettingsChanged.avsc",
    "channel/ChannelResyncRequested.avsc",
    "channel/ListingRequested.avsc",
    "channel/ListingStateChanged.avsc",
    "channel/ListingOutcome.avsc",
    "outcome/CommandRejected.avsc",
);

fn file_json(path: &str) -> Json {
    let text = FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no schema file {path}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn full_name(json: &Json) -> String {
    format!(
        "{}.{}",
        json["namespace"].as_str().unwrap_or_default(),
        json["name"].as_str().unwrap_or_default()
    )
}

/// The self-contained schema text of a message, by its full name (`porch.offer.OfferCreated`).
pub fn resolved(full: &str) -> Option<String> {
    let (path, mut json) = FILES
        .iter()
        .filter(|(p, _)| !p.starts_with("envelope/"))
        .map(|(p, _)| (*p, file_json(p)))
        .find(|(_, j)| full_name(j) == full)?;
    let fields = json["fields"].as_array_mut().expect("record has fields");
    for f in fields.iter_mut() {
        if let Some(name) = f["type"].as_str() {
            if let Some(env) = name.strip_prefix("porch.") {
                if env.ends_with("Envelope") {
                    f["type"] = file_json(&format!("envelope/{env}.avsc"));
                }
            }
        }
    }
    let _ = path;
    Some(json.to_string())
}

/// Every message full name that has a schema file.
pub fn message_names() -> Vec<String> {
    FILES
        .iter()
        .filter(|(p, _)| !p.starts_with("envelope/"))
        .map(|(p, _)| full_name(&file_json(p)))
        .collect()
}

//! Commands and events: the bodies carried on the topics, each with its envelope (DESIGN §4).
//! Field names and types mirror the .avsc files in `schemas/avro/`, which are the wire contract;
//! `codec` tests round-trip every message through its schema.

use crate::module::Module;
use crate::values::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type Attributes = BTreeMap<String, String>;

/// Envelope of every command: who asked, for what, and under which correlation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub command_id: CommandId,
    pub tenant: TenantId,
    /// The seller the credential is bound to, if any.
    pub seller: Option<SellerId>,
    /// The aggregate the command addresses (product, offer, reservation or `<sku>@<region>` id).
    pub aggregate_id: String,
    pub issued_at: Micros,
    pub correlation_id: String,
    /// The lane the command travels on: none, its module's commands topic; `hot`, the hot lane
    /// of a SKU under a flash sale (`inventory.hot.requests`).
    #[serde(default)]
    pub lane: Option<String>,
    /// The aggregate's version the sender saw (its `If-Match`): the command applies only while
    /// the aggregate is still at it, else it is REJECTED with VERSION_CONFLICT. None:
    /// unconditional.
    #[serde(default)]
    pub expected_version: Option<i64>,
}

/// Envelope of every event (DESIGN §4): the event id is derived from the command (or input
/// event) that caused it, so a replayed decision yields the same ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: String,
    pub tenant: TenantId,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub occurred_at: Micros,
    pub causation_id: String,
    pub correlation_id: String,
}

// ---------------------------------------------------------------- shared records

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductData {
    pub product_id: ProductId,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub attributes: Attributes,
    pub images: Vec<String>,
    /// Per-channel overrides of title/description (channel name → field → value).
    pub channel_overrides: BTreeMap<String, Attributes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimensions {
    pub length_mm: i64,
    pub width_mm: i64,
    pub height_mm: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantData {
    pub sku: Sku,
    pub options: Attributes,
    pub weight_grams: Option<i64>,
    pub dimensions: Option<Dimensions>,
    pub gtin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferData {
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub seller: SellerId,
    pub sku: Sku,
    pub region: RegionCode,
    pub price: Money,
    pub compare_at: Option<Money>,
    pub valid_from: Option<Micros>,
    pub valid_until: Option<Micros>,
    pub channels: Vec<Channel>,
}

/// A reason with a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub message: String,
    /// The input field the reason is about, where there is one.
    pub field: Option<String>,
}

impl Reason {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }
    pub fn on_field(code: &str, field: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

/// The denormalised listing activation hands to every sink, so no sink ever joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub sku: Sku,
    pub seller: SellerId,
    pub region: RegionCode,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub image: Option<String>,
    pub options: Attributes,
    pub price: Money,
    pub compare_at: Option<Money>,
    pub available: i64,
    pub channels: Vec<Channel>,
}

// ---------------------------------------------------------------- commands

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateProduct {
    pub product: ProductData,
}

/// Changes to a product; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateProduct {
    pub product_id: ProductId,
    pub title: Option<String>,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub attributes_set: Attributes,
    pub attributes_removed: Vec<String>,
    pub images: Option<Vec<String>>,
    pub channel_overrides: Option<BTreeMap<String, Attributes>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeactivateProduct {
    pub product_id: ProductId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactivateProduct {
    pub product_id: ProductId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddProductImage {
    pub product_id: ProductId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateVariants {
    pub product_id: ProductId,
    pub variants: Vec<VariantData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateVariant {
    pub product_id: ProductId,
    pub sku: Sku,
    pub options: Option<Attributes>,
    pub weight_grams: Option<i64>,
    pub dimensions: Option<Dimensions>,
    pub gtin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscontinueVariant {
    pub product_id: ProductId,
    pub sku: Sku,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateOffer {
    pub offer: OfferData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateOffer {
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub price: Option<Money>,
    pub compare_at: Option<Money>,
    pub valid_from: Option<Micros>,
    pub valid_until: Option<Micros>,
    pub channels: Option<Vec<Channel>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawOffer {
    pub offer_id: OfferId,
    pub product_id: ProductId,
}

/// Where a stock line is: a seller's SKU at one location, which belongs to one region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StockLine {
    pub product_id: ProductId,
    pub seller: SellerId,
    pub sku: Sku,
    pub location: LocationId,
    pub region: RegionCode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetStock {
    pub line: StockLine,
    pub on_hand: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReserveStock {
    pub reservation_id: ReservationId,
    /// The location to hold at; with `region_wide`, any of the region's (its location is then
    /// not used).
    pub line: StockLine,
    pub quantity: i64,
    /// When the hold lapses by itself (ReservationExpired), micros since the epoch; none holds
    /// until released or committed.
    #[serde(default)]
    pub expires_at: Option<Micros>,
    /// Hold across the region's locations, the most available first, all or nothing.
    #[serde(default)]
    pub region_wide: bool,
}

/// An order was placed: the held units leave on hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitReservation {
    pub reservation_id: ReservationId,
    pub line: StockLine,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseReservation {
    pub reservation_id: ReservationId,
    pub line: StockLine,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecideCompliance {
    pub product_id: ProductId,
    pub region: RegionCode,
    pub approve: bool,
    pub note: Option<String>,
}

// ---------------------------------------------------------------- events

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductCreated {
    pub product: ProductData,
    /// DRAFT or READY.
    pub status: String,
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductUpdated {
    pub product: ProductData,
    pub status: String,
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductReady {
    pub product_id: ProductId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductDeactivated {
    pub product_id: ProductId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductReactivated {
    pub product_id: ProductId,
    /// The status the product returns to: DRAFT or READY.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductPublished {
    pub product_id: ProductId,
    pub channel: Channel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantsCreated {
    pub product_id: ProductId,
    pub variants: Vec<VariantData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantUpdated {
    pub product_id: ProductId,
    pub variant: VariantData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantDiscontinued {
    pub product_id: ProductId,
    pub sku: Sku,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferCreated {
    pub offer: OfferData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferUpdated {
    pub offer: OfferData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferWithdrawn {
    pub offer: OfferData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockAdjusted {
    pub line: StockLine,
    pub on_hand: i64,
    pub reserved: i64,
    /// Available across every location of the seller's SKU in the region.
    pub region_available: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReserved {
    pub reservation_id: ReservationId,
    /// One location's part of the hold (a region-wide hold is one event per location).
    pub line: StockLine,
    pub quantity: i64,
    pub region_available: i64,
    #[serde(default)]
    pub expires_at: Option<Micros>,
}

/// A hold could not be made: nothing was held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationFailed {
    pub reservation_id: ReservationId,
    pub line: StockLine,
    pub requested: i64,
    /// Available where the hold was asked (the location, or the whole region).
    pub available: i64,
    pub region_wide: bool,
}

/// A hold became a sale: on hand and reserved both fall by the held quantity at the location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationCommitted {
    pub reservation_id: ReservationId,
    pub line: StockLine,
    pub quantity: i64,
    pub on_hand: i64,
    pub region_available: i64,
}

/// What became of a reservation request (or of a hold at its expiry), for the order system that
/// asked: one record on `inventory.reservation.outcomes` per request the inventory processor
/// decided, whichever way it came (the requests topic, or the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationOutcome {
    pub reservation_id: ReservationId,
    /// The request's command id; none for an expiry.
    pub request_id: Option<String>,
    pub product_id: ProductId,
    pub seller: SellerId,
    pub sku: Sku,
    pub region: RegionCode,
    /// RESERVED, FAILED, RELEASED, COMMITTED, EXPIRED, or REJECTED (the request was refused:
    /// see `reasons`).
    pub result: String,
    /// Units held (RESERVED), or the units the hold had (RELEASED, COMMITTED, EXPIRED).
    pub quantity: i64,
    /// FAILED: what was asked and what was available.
    pub requested: Option<i64>,
    pub available: Option<i64>,
    /// RESERVED: when the hold lapses, micros since the epoch.
    pub expires_at: Option<Micros>,
    pub reasons: Vec<Reason>,
}

/// A hold lapsed at its expiry, with no command: its units are available again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationExpired {
    pub reservation_id: ReservationId,
    pub line: StockLine,
    pub quantity: i64,
    pub region_available: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationReleased {
    pub reservation_id: ReservationId,
    pub line: StockLine,
    pub quantity: i64,
    pub region_available: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryAvailable {
    pub product_id: ProductId,
    pub seller: SellerId,
    pub sku: Sku,
    pub region: RegionCode,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryDepleted {
    pub product_id: ProductId,
    pub seller: SellerId,
    pub sku: Sku,
    pub region: RegionCode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceApproved {
    pub product_id: ProductId,
    pub region: RegionCode,
    /// True when a person approved it (manual review), false when the rules did.
    pub manual: bool,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceRejected {
    pub product_id: ProductId,
    pub region: RegionCode,
    pub manual: bool,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceReviewRequested {
    pub product_id: ProductId,
    pub region: RegionCode,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferActivated {
    pub listing: Listing,
    /// When activation decided it (micros since the epoch, its clock): a change of the
    /// available quantity alone is published at most once per pace from here.
    #[serde(default)]
    pub decided_at: Option<Micros>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferSuspended {
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub seller: SellerId,
    pub sku: Sku,
    pub region: RegionCode,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferEnded {
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub seller: SellerId,
    pub sku: Sku,
    pub region: RegionCode,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingVisible {
    pub listing: Listing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingHidden {
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub region: RegionCode,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRejected {
    pub command_id: CommandId,
    pub command_type: String,
    pub product_id: ProductId,
    pub reasons: Vec<Reason>,
}

// ---------------------------------------------------------------- channels (DESIGN §8)

/// A tenant's account on one channel in one region (never its secrets).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChannelConnection {
    pub channel: Channel,
    pub region: RegionCode,
    /// The channel's own account: Meta's catalog id, Mercado Libre's seller id.
    pub account: String,
    /// False keeps the account but unpublishes everything from it.
    pub enabled: bool,
    /// The product page a listing links to, with {tenant}, {product}, {sku} and {offer} replaced.
    pub link_template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSettingsChanged {
    pub version: i64,
    pub connections: Vec<ChannelConnection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelResyncRequested {
    pub partition: i32,
    pub after_product: Option<ProductId>,
}

/// What a channel shows for one offer: the fields every channel knows, overrides applied,
/// image links absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelItem {
    pub title: String,
    pub description: String,
    pub brand: Option<String>,
    pub gtin: Option<String>,
    pub mpn: Option<String>,
    pub category: Option<String>,
    pub condition: String,
    pub availability: String,
    pub quantity: i64,
    pub price: Money,
    pub compare_at: Option<Money>,
    pub link: String,
    pub image_link: String,
    pub additional_image_links: Vec<String>,
    pub item_group_id: String,
    pub options: Attributes,
    /// The product's other overrides for the channel, passed through as channel fields.
    pub extra: Attributes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingRequested {
    pub channel: Channel,
    pub account: String,
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub sku: Sku,
    pub seller: SellerId,
    pub region: RegionCode,
    pub retailer_id: String,
    pub version: i64,
    /// UPSERT or DELETE.
    pub action: String,
    /// Boxed: it is most of the record, and events live in one enum.
    pub item: Option<Box<ChannelItem>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingStateChanged {
    pub channel: Channel,
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub region: RegionCode,
    pub retailer_id: String,
    pub from: String,
    pub to: String,
    pub version: i64,
    pub issues: Vec<Reason>,
    pub channel_item_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingOutcome {
    pub channel: Channel,
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub retailer_id: String,
    pub version: i64,
    /// LIVE, REJECTED, UNPUBLISHED or NEEDS_REAUTH.
    pub result: String,
    pub issues: Vec<Reason>,
    pub channel_item_id: Option<String>,
    pub reporter: String,
}

/// Declares the closed sets of commands and events, with each one's Avro full name and module.
/// `$module` is the last part of the record's Avro namespace; `$owner` turns it into what
/// `module()` returns, at compile time.
macro_rules! message_set {
    (
        $set:ident,
        $(#[$module_doc:meta])* module() -> $owner_ty:ty = $owner:path,
        $($variant:ident => $module:literal),+ $(,)?
    ) => {
        #[derive(Debug, Clone, PartialEq)]
        pub enum $set {
            $($variant($variant),)+
        }

        impl $set {
            /// The Avro record's full name, e.g. `porch.offer.OfferCreated`.
            pub fn full_name(&self) -> &'static str {
                match self {
                    $($set::$variant(_) => concat!("porch.", $module, ".", stringify!($variant)),)+
                }
            }
            /// The record's simple name, e.g. `OfferCreated`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $($set::$variant(_) => stringify!($variant),)+
                }
            }
            $(#[$module_doc])*
            pub fn module(&self) -> $owner_ty {
                match self {
                    $($set::$variant(_) => const { $owner($module) },)+
                }
            }
            pub const FULL_NAMES: &'static [&'static str] =
                &[$(concat!("porch.", $module, ".", stringify!($variant))),+];

            pub(crate) fn to_body(&self) -> Result<apache_avro::types::Value, apache_avro::Error> {
                match self {
                    $($set::$variant(b) => apache_avro::to_value(b),)+
                }
            }

            /// Writes the body's fields straight from the struct, as `schema` (the record's
            /// fields after its envelope) orders them: no `Value` tree in between.
            pub(crate) fn write_body(
                &self,
                schema: &apache_avro::Schema,
                names: &apache_avro::schema::NamesRef<'_>,
                out: &mut Vec<u8>,
            ) -> Result<usize, apache_avro::Error> {
                match self {
                    $($set::$variant(b) => apache_avro::write_avro_datum_ref(schema, names, b, out),)+
                }
            }

            /// Reads the body straight into its struct, with `reader` (the fields after the
            /// envelope, as they were written): no `Value` tree in between.
            pub(crate) fn read_body(
                full_name: &str,
                reader: &apache_avro::reader::datum::GenericDatumReader<'_>,
                input: &mut &[u8],
            ) -> Option<Result<Self, apache_avro::Error>> {
                $(
                    if full_name == concat!("porch.", $module, ".", stringify!($variant)) {
                        return Some(reader.read_deser::<$variant>(input).map($set::$variant));
                    }
                )+
                None
            }

            pub(crate) fn from_body(
                full_name: &str,
                value: apache_avro::types::Value,
            ) -> Option<Result<Self, apache_avro::Error>> {
                $(
                    if full_name == concat!("porch.", $module, ".", stringify!($variant)) {
                        return Some(apache_avro::from_value::<$variant>(&value).map($set::$variant));
                    }
                )+
                None
            }
        }

        $(
            impl From<$variant> for $set {
                fn from(b: $variant) -> Self {
                    $set::$variant(b)
                }
            }
        )+
    };
}

/// The module a command's namespace names. A namespace that names no module fails the build.
const fn command_module(namespace: &str) -> Module {
    match Module::named(namespace) {
        Some(m) => m,
        None => panic!("a command's namespace names no module"),
    }
}

/// The module an event's namespace names, or none for `outcome` (CommandRejected, which every
/// module's events topic carries). Any other namespace that names no module fails the build.
const fn event_module(namespace: &str) -> Option<Module> {
    match (Module::named(namespace), namespace.as_bytes()) {
        (Some(m), _) => Some(m),
        (None, b"outcome") => None,
        (None, _) => panic!("an event's namespace names no module and is not `outcome`"),
    }
}

message_set!(Command,
    /// The module that owns the command: it travels on that module's commands topic.
    module() -> Module = command_module,
    CreateProduct => "product",
    UpdateProduct => "product",
    DeactivateProduct => "product",
    ReactivateProduct => "product",
    AddProductImage => "product",
    CreateVariants => "variant",
    UpdateVariant => "variant",
    DiscontinueVariant => "variant",
    CreateOffer => "offer",
    UpdateOffer => "offer",
    WithdrawOffer => "offer",
    SetStock => "inventory",
    ReserveStock => "inventory",
    ReleaseReservation => "inventory",
    CommitReservation => "inventory",
    DecideCompliance => "compliance",
);

message_set!(Event,
    /// The module that owns the event (whose events topic it travels on); none for
    /// CommandRejected, which travels on the events topic of the module that rejected it.
    module() -> Option<Module> = event_module,
    ProductCreated => "product",
    ProductUpdated => "product",
    ProductReady => "product",
    ProductDeactivated => "product",
    ProductReactivated => "product",
    ProductPublished => "product",
    VariantsCreated => "variant",
    VariantUpdated => "variant",
    VariantDiscontinued => "variant",
    OfferCreated => "offer",
    OfferUpdated => "offer",
    OfferWithdrawn => "offer",
    StockAdjusted => "inventory",
    StockReserved => "inventory",
    ReservationReleased => "inventory",
    ReservationFailed => "inventory",
    ReservationCommitted => "inventory",
    ReservationExpired => "inventory",
    ReservationOutcome => "inventory",
    InventoryAvailable => "inventory",
    InventoryDepleted => "inventory",
    ComplianceApproved => "compliance",
    ComplianceRejected => "compliance",
    ComplianceReviewRequested => "compliance",
    OfferActivated => "activation",
    OfferSuspended => "activation",
    OfferEnded => "activation",
    ListingVisible => "search",
    ListingHidden => "search",
    ChannelSettingsChanged => "channel",
    ChannelResyncRequested => "channel",
    ListingRequested => "channel",
    ListingStateChanged => "channel",
    ListingOutcome => "channel",
    CommandRejected => "outcome",
);

/// A command with its envelope, as it travels on a `<module>.commands` topic.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRecord {
    pub envelope: CommandEnvelope,
    pub command: Command,
}

/// An event with its envelope, as it travels on a `<module>.events` topic.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub envelope: EventEnvelope,
    pub event: Event,
}

impl Command {
    /// The product whose partition the command travels on (DESIGN §4: keyed by tenant and product).
    pub fn product_id(&self) -> &ProductId {
        match self {
            Command::CreateProduct(c) => &c.product.product_id,
            Command::UpdateProduct(c) => &c.product_id,
            Command::DeactivateProduct(c) => &c.product_id,
            Command::ReactivateProduct(c) => &c.product_id,
            Command::AddProductImage(c) => &c.product_id,
            Command::CreateVariants(c) => &c.product_id,
            Command::UpdateVariant(c) => &c.product_id,
            Command::DiscontinueVariant(c) => &c.product_id,
            Command::CreateOffer(c) => &c.offer.product_id,
            Command::UpdateOffer(c) => &c.product_id,
            Command::WithdrawOffer(c) => &c.product_id,
            Command::SetStock(c) => &c.line.product_id,
            Command::ReserveStock(c) => &c.line.product_id,
            Command::ReleaseReservation(c) => &c.line.product_id,
            Command::CommitReservation(c) => &c.line.product_id,
            Command::DecideCompliance(c) => &c.product_id,
        }
    }
}

impl Event {
    /// The product the event is about; every domain topic is keyed by (tenant, product). A
    /// tenant's channel settings are about no one product.
    pub fn product_id(&self) -> Option<&ProductId> {
        Some(match self {
            Event::ProductCreated(e) => &e.product.product_id,
            Event::ProductUpdated(e) => &e.product.product_id,
            Event::ProductReady(e) => &e.product_id,
            Event::ProductDeactivated(e) => &e.product_id,
            Event::ProductReactivated(e) => &e.product_id,
            Event::ProductPublished(e) => &e.product_id,
            Event::VariantsCreated(e) => &e.product_id,
            Event::VariantUpdated(e) => &e.product_id,
            Event::VariantDiscontinued(e) => &e.product_id,
            Event::OfferCreated(e) => &e.offer.product_id,
            Event::OfferUpdated(e) => &e.offer.product_id,
            Event::OfferWithdrawn(e) => &e.offer.product_id,
            Event::StockAdjusted(e) => &e.line.product_id,
            Event::StockReserved(e) => &e.line.product_id,
            Event::ReservationReleased(e) => &e.line.product_id,
            Event::ReservationFailed(e) => &e.line.product_id,
            Event::ReservationCommitted(e) => &e.line.product_id,
            Event::ReservationExpired(e) => &e.line.product_id,
            Event::ReservationOutcome(e) => &e.product_id,
            Event::InventoryAvailable(e) => &e.product_id,
            Event::InventoryDepleted(e) => &e.product_id,
            Event::ComplianceApproved(e) => &e.product_id,
            Event::ComplianceRejected(e) => &e.product_id,
            Event::ComplianceReviewRequested(e) => &e.product_id,
            Event::OfferActivated(e) => &e.listing.product_id,
            Event::OfferSuspended(e) => &e.product_id,
            Event::OfferEnded(e) => &e.product_id,
            Event::ListingVisible(e) => &e.listing.product_id,
            Event::ListingHidden(e) => &e.product_id,
            Event::ListingRequested(e) => &e.product_id,
            Event::ListingStateChanged(e) => &e.product_id,
            Event::ListingOutcome(e) => &e.product_id,
            Event::CommandRejected(e) => &e.product_id,
            Event::ChannelSettingsChanged(_) | Event::ChannelResyncRequested(_) => return None,
        })
    }
}

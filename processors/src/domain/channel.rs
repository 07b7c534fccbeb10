//! Sales-channel listings (DESIGN §8): per offer and channel, what the channel should show, checked
//! against the channel's own rules before any call, and the listing's state as the channel
//! confirms it: PENDING → BLOCKED | SUBMITTED → LIVE | REJECTED | NEEDS_REAUTH → UNPUBLISHED.
//!
//! The view is built from other modules' events (product, variant, activation), the tenant's
//! channel settings and the outcomes the connectors report. A request goes out only when what the
//! channel should show differs from what was last asked of it, and LIVE comes only from an
//! outcome that answers the latest request.

use super::Aggregate;
use porch_schemas::media::public_image_url;
use porch_schemas::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A listing's state on one channel, as merchants see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChannelStatus {
    /// Nothing asked of the channel yet (the offer is not active, or its product not known).
    #[default]
    Pending,
    /// What the channel should show fails its rules; no call is made until it is fixed.
    Blocked,
    /// A request is on its way and not confirmed yet.
    Submitted,
    /// The channel confirmed the latest request.
    Live,
    /// The channel refused the latest request, with its issues.
    Rejected,
    /// The channel's account refused porch (a revoked or spent authorisation): the latest
    /// request waits, without calls, until the tenant connects the account again.
    NeedsReauth,
    /// The channel confirmed the listing is gone (or there was never anything to remove).
    Unpublished,
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Pending => "PENDING",
            ChannelStatus::Blocked => "BLOCKED",
            ChannelStatus::Submitted => "SUBMITTED",
            ChannelStatus::Live => "LIVE",
            ChannelStatus::Rejected => "REJECTED",
            ChannelStatus::NeedsReauth => "NEEDS_REAUTH",
            ChannelStatus::Unpublished => "UNPUBLISHED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ChannelStatus::Pending,
            ChannelStatus::Blocked,
            ChannelStatus::Submitted,
            ChannelStatus::Live,
            ChannelStatus::Rejected,
            ChannelStatus::NeedsReauth,
            ChannelStatus::Unpublished,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// What a request asks of the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Show this item (create it, or update it to this).
    Upsert,
    /// Show nothing.
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Upsert => "UPSERT",
            Action::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "UPSERT" => Some(Action::Upsert),
            "DELETE" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// The last request sent for a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub action: Action,
    pub account: String,
    pub item: Option<ChannelItem>,
}

/// One offer on one channel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChannelListing {
    /// What the channel itself holds, as last asked or confirmed (never BLOCKED).
    pub channel_status: ChannelStatus,
    /// The channel's issues with the latest request (REJECTED).
    pub channel_issues: Vec<Reason>,
    /// Pre-flight failures of what the channel should show now; BLOCKED while there are any.
    pub blocked: Vec<Reason>,
    /// The latest request's number (0: none sent).
    pub version: i64,
    /// The latest request; none once the listing settled as UNPUBLISHED without a call, so that
    /// showing it again is a new request.
    pub requested: Option<Request>,
    /// The account of the latest request: where the item is, to take it down from.
    #[serde(default)]
    pub account: String,
    /// Whether the channel may hold the item: an upsert was confirmed (or may have been applied)
    /// and no delete confirmed since.
    pub on_channel: bool,
    pub channel_item_id: Option<String>,
    /// State changes so far: the version of the listing's ListingStateChanged events.
    pub changes: i64,
}

impl ChannelListing {
    /// The state and issues merchants see.
    pub fn shown(&self) -> (ChannelStatus, &[Reason]) {
        if self.blocked.is_empty() {
            (self.channel_status, &self.channel_issues)
        } else {
            (ChannelStatus::Blocked, &self.blocked)
        }
    }

    /// Whether an upsert is on its way and not confirmed.
    fn upsert_in_flight(&self) -> bool {
        self.channel_status == ChannelStatus::Submitted
            && self
                .requested
                .as_ref()
                .is_some_and(|r| r.action == Action::Upsert)
    }
}

/// Activation's last word on an offer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfferActivation {
    /// Not activated yet.
    #[default]
    Pending,
    Active,
    Suspended(Vec<Reason>),
    Ended(Vec<Reason>),
}

/// One offer of the product, with its listing on each channel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OfferChannels {
    pub activation: OfferActivation,
    /// The listing of the offer's last activation (price, stock, channels, options).
    pub listing: Option<Listing>,
    pub channels: BTreeMap<Channel, ChannelListing>,
}

/// The channel processor's view of one product and every listing of its offers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChannelState {
    pub product: Option<ProductData>,
    pub inactive: bool,
    /// sku → gtin, from the variants.
    pub gtins: BTreeMap<Sku, String>,
    pub offers: BTreeMap<OfferId, OfferChannels>,
}

/// A tenant's channel settings as one task of the channel processor holds them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TenantChannels {
    pub version: i64,
    pub connections: Vec<ChannelConnection>,
}

impl TenantChannels {
    pub fn connection(&self, channel: Channel, region: &RegionCode) -> Option<&ChannelConnection> {
        self.connections
            .iter()
            .find(|c| c.channel == channel && &c.region == region)
    }
}

/// What a decision needs besides the product's state: who, the tenant's settings, and where
/// images are served from. Time plays no part.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelContext {
    pub tenant: TenantId,
    pub settings: TenantChannels,
    /// Public base URL of uploaded images.
    pub media_base: String,
}

// Inputs live one at a time on the stack while a record is handled; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelInput {
    /// A product, variant or activation event, or an outcome a channel reported.
    Observed(Event),
    /// The tenant's settings changed: decide every listing again.
    Resync,
}

/// The input with its context.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelDecision {
    pub input: ChannelInput,
    pub context: ChannelContext,
}

pub struct ChannelListings;

/// The channels porch lists on through a connector or adapter (the storefront is search's).
fn sells_through_channel(channel: Channel) -> bool {
    channel != Channel::Storefront
}

/// What a listing should be now (one at a time, on the stack).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Desired {
    /// Nothing to ask yet: the offer has not been active.
    Wait,
    /// Show this.
    Show(Request),
    /// Pre-flight failed: these issues, and no call.
    Blocked(Vec<Reason>),
    /// Show nothing.
    Remove,
}

fn has_text(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Fields of a channel's overrides that map onto the item; any other goes through as `extra`.
const ITEM_FIELDS: [&str; 8] = [
    "title",
    "description",
    "brand",
    "gtin",
    "mpn",
    "category",
    "condition",
    "link",
];

/// The item a channel should show for an activated listing, overrides applied.
fn item_for(
    ctx: &ChannelContext,
    state: &ChannelState,
    product: &ProductData,
    listing: &Listing,
    channel: Channel,
    connection: &ChannelConnection,
    in_stock: bool,
) -> ChannelItem {
    let empty = Attributes::new();
    let ov = product
        .channel_overrides
        .get(channel.as_str())
        .unwrap_or(&empty);
    let pick = |field: &str, fallback: Option<&String>| {
        has_text(ov.get(field)).or_else(|| has_text(fallback))
    };
    let link = pick("link", None).unwrap_or_else(|| {
        connection
            .link_template
            .as_deref()
            .map(|t| {
                t.replace("{tenant}", ctx.tenant.as_str())
                    .replace("{product}", listing.product_id.as_str())
                    .replace("{sku}", listing.sku.as_str())
                    .replace("{offer}", listing.offer_id.as_str())
            })
            .unwrap_or_default()
    });
    let mut images = product
        .images
        .iter()
        .map(|i| public_image_url(&ctx.media_base, &ctx.tenant, &product.product_id, i));
    ChannelItem {
        title: pick("title", Some(&product.title)).unwrap_or_default(),
        description: pick("description", product.description.as_ref()).unwrap_or_default(),
        brand: pick("brand", product.brand.as_ref()),
        gtin: pick("gtin", state.gtins.get(&listing.sku)),
        mpn: pick("mpn", product.attributes.get("mpn")),
        category: pick("category", product.category.as_ref()),
        condition: pick("condition", product.attributes.get("condition"))
            .unwrap_or_else(|| "new".into()),
        availability: if in_stock { "in stock" } else { "out of stock" }.into(),
        quantity: if in_stock {
            listing.available.max(0)
        } else {
            0
        },
        price: listing.price.clone(),
        compare_at: listing.compare_at.clone(),
        link,
        image_link: images.next().unwrap_or_default(),
        additional_image_links: images.take(MAX_ADDITIONAL_IMAGES).collect(),
        item_group_id: listing.product_id.to_string(),
        options: listing.options.clone(),
        extra: ov
            .iter()
            .filter(|(k, _)| !ITEM_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Meta takes up to ten additional images; more are left out, not refused.
const MAX_ADDITIONAL_IMAGES: usize = 10;

/// The channel's own required fields and limits (shared/channels/CONTRACTS.md), checked before
/// any call: every failure named by field.
pub fn preflight(channel: Channel, item: &ChannelItem) -> Vec<Reason> {
    let mut issues = Vec::new();
    let c = channel.as_str();
    let mut need = |ok: bool, field: &str, what: &str| {
        if !ok {
            issues.push(Reason::on_field(
                "CHANNEL_PREFLIGHT",
                field,
                format!("{c}: {field} {what}"),
            ));
        }
    };
    let absolute = |url: &str| url.starts_with("https://") || url.starts_with("http://");
    let chars = |s: &str| s.chars().count();
    match channel {
        Channel::Meta => {
            need(!item.title.is_empty(), "title", "is missing");
            need(
                chars(&item.title) <= 200,
                "title",
                "is longer than 200 characters",
            );
            need(!item.description.is_empty(), "description", "is missing");
            need(
                chars(&item.description) <= 9_999,
                "description",
                "is longer than 9,999 characters",
            );
            need(
                item.brand.is_some() || item.gtin.is_some() || item.mpn.is_some(),
                "brand",
                "is missing (or a gtin or mpn)",
            );
            need(
                ["new", "refurbished", "used"].contains(&item.condition.as_str()),
                "condition",
                "must be new, refurbished or used",
            );
            need(
                !item.link.is_empty(),
                "link",
                "is missing (set the channel's link template)",
            );
            need(
                item.link.is_empty() || absolute(&item.link),
                "link",
                "is not an absolute http(s) URL",
            );
            need(
                !item.image_link.is_empty(),
                "image_link",
                "is missing (add an image)",
            );
            need(
                item.image_link.is_empty() || absolute(&item.image_link),
                "image_link",
                "is not an absolute http(s) URL",
            );
            need(item.price.is_positive(), "price", "must be above zero");
        }
        Channel::MercadoLibre => {
            need(!item.title.is_empty(), "title", "is missing");
            need(
                chars(&item.title) <= 60,
                "title",
                "is longer than 60 characters",
            );
            need(
                item.extra.contains_key("category_id"),
                "category_id",
                "is missing (a Mercado Libre category override)",
            );
            need(
                ["new", "used"].contains(&item.condition.as_str()),
                "condition",
                "must be new or used",
            );
            need(
                !item.image_link.is_empty(),
                "pictures",
                "are missing (add an image)",
            );
            need(item.price.is_positive(), "price", "must be above zero");
        }
        Channel::Storefront => {}
    }
    issues
}

fn only_out_of_stock(reasons: &[Reason]) -> bool {
    !reasons.is_empty() && reasons.iter().all(|r| r.code == "OUT_OF_STOCK")
}

/// What `channel` should show for `offer` now.
fn desire(
    ctx: &ChannelContext,
    state: &ChannelState,
    offer: &OfferChannels,
    channel: Channel,
    current: &ChannelListing,
) -> Desired {
    let Some(listing) = &offer.listing else {
        return Desired::Wait;
    };
    if !listing.channels.contains(&channel) || state.inactive {
        return Desired::Remove;
    }
    let in_stock = match &offer.activation {
        OfferActivation::Active => true,
        OfferActivation::Suspended(reasons) if only_out_of_stock(reasons) => false,
        OfferActivation::Pending => return Desired::Wait,
        OfferActivation::Suspended(_) | OfferActivation::Ended(_) => return Desired::Remove,
    };
    let Some(product) = &state.product else {
        return Desired::Wait;
    };
    // A connection removed stops porch managing the listing (no account to call with); one
    // disabled keeps its account and takes the listing down.
    let connection = match ctx.settings.connection(channel, &listing.region) {
        Some(c) if c.enabled => c,
        Some(_) => return Desired::Remove,
        None => {
            return Desired::Blocked(vec![Reason::new(
                "CHANNEL_NOT_CONNECTED",
                format!(
                    "{channel}: the tenant is not connected to {channel} in {}",
                    listing.region
                ),
            )])
        }
    };
    // Moved to another account (a new catalog): taken down from the old one first.
    if current.on_channel && !current.account.is_empty() && current.account != connection.account {
        return Desired::Remove;
    }
    let item = item_for(ctx, state, product, listing, channel, connection, in_stock);
    let issues = preflight(channel, &item);
    if !issues.is_empty() {
        return Desired::Blocked(issues);
    }
    Desired::Show(Request {
        action: Action::Upsert,
        account: connection.account.clone(),
        item: Some(item),
    })
}

fn requested(
    listing: &Listing,
    channel: Channel,
    version: i64,
    request: Request,
) -> ListingRequested {
    ListingRequested {
        channel,
        account: request.account,
        offer_id: listing.offer_id.clone(),
        product_id: listing.product_id.clone(),
        sku: listing.sku.clone(),
        seller: listing.seller.clone(),
        region: listing.region.clone(),
        retailer_id: listing.offer_id.to_string(),
        version,
        action: request.action.as_str().into(),
        item: request.item.map(Box::new),
    }
}

/// The events that bring one listing to what it should be. `current` is the listing with the
/// input absorbed; `shown_before` what merchants saw before the input, so that a change the input
/// itself made (an outcome) is told too. A request parked by its account (NEEDS_REAUTH) is sent
/// again on a `resync` (the tenant's settings changed: a reconnect), not on every event.
fn transitions(
    ctx: &ChannelContext,
    state: &ChannelState,
    offer: &OfferChannels,
    channel: Channel,
    current: &ChannelListing,
    shown_before: (ChannelStatus, &[Reason]),
    resync: bool,
) -> Vec<Event> {
    let Some(listing) = &offer.listing else {
        return vec![];
    };
    let mut events: Vec<Event> = Vec::new();
    let mut next = current.clone();
    let mut blocked = Vec::new();
    let mut settled = None;
    let retry_parked = resync && current.channel_status == ChannelStatus::NeedsReauth;
    match desire(ctx, state, offer, channel, current) {
        Desired::Wait => {}
        Desired::Show(request) => {
            if retry_parked || current.requested.as_ref() != Some(&request) {
                let e: Event = requested(listing, channel, current.version + 1, request).into();
                next = evolve_listing(next, &e);
                events.push(e);
            }
        }
        Desired::Blocked(issues) => blocked = issues,
        Desired::Remove => {
            // A delete on its way, or parked until the account is connected again.
            let deleting = (current.channel_status == ChannelStatus::Submitted
                || current.channel_status == ChannelStatus::NeedsReauth && !retry_parked)
                && current
                    .requested
                    .as_ref()
                    .is_some_and(|r| r.action == Action::Delete);
            // Held by the channel (or maybe: an upsert on its way, or an older upsert confirmed
            // after a delete) and no delete on its way: take it down.
            if (current.on_channel || current.upsert_in_flight()) && !deleting {
                let request = Request {
                    action: Action::Delete,
                    account: current.account.clone(),
                    item: None,
                };
                let e: Event = requested(listing, channel, current.version + 1, request).into();
                next = evolve_listing(next, &e);
                events.push(e);
            } else if !current.on_channel
                && !deleting
                && current.requested.is_some()
                && current.channel_status != ChannelStatus::Unpublished
            {
                // Nothing the channel holds (never created, or refused): gone without a call.
                settled = Some(ChannelStatus::Unpublished);
            }
        }
    }
    let (before, before_issues) = shown_before;
    let (after, after_issues) = if !blocked.is_empty() {
        (ChannelStatus::Blocked, blocked)
    } else if let Some(status) = settled {
        (status, vec![])
    } else {
        (next.channel_status, next.channel_issues.clone())
    };
    if (before, before_issues) != (after, after_issues.as_slice()) {
        events.push(
            ListingStateChanged {
                channel,
                offer_id: listing.offer_id.clone(),
                product_id: listing.product_id.clone(),
                region: listing.region.clone(),
                retailer_id: listing.offer_id.to_string(),
                from: before.as_str().into(),
                to: after.as_str().into(),
                version: next.version,
                issues: after_issues,
                channel_item_id: next.channel_item_id.clone(),
            }
            .into(),
        );
    }
    events
}

/// Every listing of the product, decided again: `state` has the input absorbed, `previous` is
/// the view before it; `resync` when the tenant's settings changed.
fn evaluate(
    ctx: &ChannelContext,
    previous: &ChannelState,
    state: &ChannelState,
    resync: bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    for (offer_id, offer) in &state.offers {
        let mut channels: Vec<Channel> = offer.channels.keys().copied().collect();
        if let Some(l) = &offer.listing {
            channels.extend(l.channels.iter().copied());
        }
        channels.sort();
        channels.dedup();
        for channel in channels.into_iter().filter(|c| sells_through_channel(*c)) {
            let current = offer.channels.get(&channel).cloned().unwrap_or_default();
            let before = previous
                .offers
                .get(offer_id)
                .and_then(|o| o.channels.get(&channel))
                .cloned()
                .unwrap_or_default();
            events.extend(transitions(
                ctx,
                state,
                offer,
                channel,
                &current,
                before.shown(),
                resync,
            ));
        }
    }
    events
}

/// A listing after one of its own events, or after an outcome that names it.
fn evolve_listing(mut l: ChannelListing, event: &Event) -> ChannelListing {
    match event {
        Event::ListingRequested(e) => {
            l.version = e.version;
            l.account = e.account.clone();
            l.requested = Some(Request {
                action: Action::parse(&e.action).unwrap_or(Action::Upsert),
                account: e.account.clone(),
                item: e.item.as_deref().cloned(),
            });
            l.channel_status = ChannelStatus::Submitted;
            l.channel_issues.clear();
        }
        Event::ListingStateChanged(e) => {
            let to = ChannelStatus::parse(&e.to).unwrap_or_default();
            if to == ChannelStatus::Blocked {
                l.blocked = e.issues.clone();
            } else {
                l.blocked.clear();
                l.channel_status = to;
                l.channel_issues = e.issues.clone();
                match to {
                    ChannelStatus::Live => l.on_channel = true,
                    ChannelStatus::Unpublished => {
                        l.on_channel = false;
                        // Nothing asked of the channel stands: showing it again is a request.
                        l.requested = None;
                    }
                    _ => {}
                }
            }
            l.changes += 1;
        }
        Event::ListingOutcome(o) if o.version == l.version => {
            match ChannelStatus::parse(&o.result) {
                Some(ChannelStatus::Live) => {
                    l.channel_status = ChannelStatus::Live;
                    l.channel_issues.clear();
                    l.on_channel = true;
                }
                Some(ChannelStatus::Rejected) => {
                    l.channel_status = ChannelStatus::Rejected;
                    l.channel_issues = o.issues.clone();
                }
                Some(ChannelStatus::Unpublished) => {
                    l.channel_status = ChannelStatus::Unpublished;
                    l.channel_issues.clear();
                    l.on_channel = false;
                }
                Some(ChannelStatus::NeedsReauth) => {
                    l.channel_status = ChannelStatus::NeedsReauth;
                    l.channel_issues = o.issues.clone();
                }
                _ => {}
            }
            if o.channel_item_id.is_some() {
                l.channel_item_id = o.channel_item_id.clone();
            }
        }
        // An answer to an older request: the channel holds the item whatever came since.
        Event::ListingOutcome(o) if o.version < l.version && o.result == "LIVE" => {
            l.on_channel = true;
        }
        _ => {}
    }
    l
}

fn offer_entry<'a>(state: &'a mut ChannelState, offer: &OfferId) -> &'a mut OfferChannels {
    state.offers.entry(offer.clone()).or_default()
}

/// Folds an input event, or one of the processor's own, into the view.
pub fn absorb(mut state: ChannelState, event: &Event) -> ChannelState {
    match event {
        Event::ProductCreated(e) => state.product = Some(e.product.clone()),
        Event::ProductUpdated(e) => state.product = Some(e.product.clone()),
        Event::ProductDeactivated(_) => state.inactive = true,
        Event::ProductReactivated(_) => state.inactive = false,
        Event::VariantsCreated(e) => {
            for v in &e.variants {
                set_gtin(&mut state, v);
            }
        }
        Event::VariantUpdated(e) => set_gtin(&mut state, &e.variant),
        Event::OfferActivated(e) => {
            let o = offer_entry(&mut state, &e.listing.offer_id);
            o.activation = OfferActivation::Active;
            o.listing = Some(e.listing.clone());
        }
        Event::OfferSuspended(e) => {
            offer_entry(&mut state, &e.offer_id).activation =
                OfferActivation::Suspended(e.reasons.clone());
        }
        Event::OfferEnded(e) => {
            offer_entry(&mut state, &e.offer_id).activation =
                OfferActivation::Ended(e.reasons.clone());
        }
        Event::ListingRequested(e) => apply_to_listing(&mut state, &e.offer_id, e.channel, event),
        Event::ListingStateChanged(e) => {
            apply_to_listing(&mut state, &e.offer_id, e.channel, event)
        }
        Event::ListingOutcome(e) => {
            if let Some(o) = state.offers.get_mut(&e.offer_id) {
                if let Some(l) = o.channels.get_mut(&e.channel) {
                    *l = evolve_listing(std::mem::take(l), event);
                }
            }
        }
        _ => {}
    }
    state
}

fn set_gtin(state: &mut ChannelState, v: &VariantData) {
    match v.gtin.as_ref().filter(|g| !g.trim().is_empty()) {
        Some(g) => state.gtins.insert(v.sku.clone(), g.clone()),
        None => state.gtins.remove(&v.sku),
    };
}

fn apply_to_listing(state: &mut ChannelState, offer: &OfferId, channel: Channel, event: &Event) {
    let l = offer_entry(state, offer)
        .channels
        .entry(channel)
        .or_default();
    *l = evolve_listing(std::mem::take(l), event);
}

impl Aggregate for ChannelListings {
    type State = ChannelState;
    type Input = ChannelDecision;

    /// Absorbs the observed event into a copy of the view (the runtime absorbs it for real), then
    /// decides every listing of the product again. A view is never refused.
    fn decide(state: &ChannelState, input: &ChannelDecision) -> Result<Vec<Event>, Vec<Reason>> {
        Ok(match &input.input {
            ChannelInput::Observed(event) => {
                evaluate(&input.context, state, &absorb(state.clone(), event), false)
            }
            ChannelInput::Resync => evaluate(&input.context, state, state, true),
        })
    }

    fn evolve(state: ChannelState, event: &Event) -> ChannelState {
        absorb(state, event)
    }
}

#[cfg(test)]
mod tests;

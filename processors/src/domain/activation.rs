//! Step 6, activation: the buy box. Keeps its own view of the product built from the other
//! modules' events (event-carried state transfer) and decides, per offer,
//! PENDING_ACTIVATION → ACTIVE ↔ SUSPENDED (with reasons) → ENDED.

use super::product::{missing_fields, ProductStatus};
use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivationStatus {
    #[default]
    PendingActivation,
    Active,
    Suspended,
    Ended,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductView {
    pub data: ProductData,
    /// DRAFT, READY, ACTIVE or INACTIVE, as the product module last said.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferView {
    pub data: OfferData,
    pub withdrawn: bool,
    pub status: ActivationStatus,
    pub reasons: Vec<Reason>,
    /// The listing last published in OfferActivated (to tell a real change from a repeat).
    pub listing: Option<Listing>,
    /// When that OfferActivated was decided: a change of the quantity alone waits until
    /// [`QUANTITY_PACE`] after it.
    #[serde(default)]
    pub listed_at: Option<Micros>,
    /// The offer's own version in activation.events.
    pub version: i64,
}

/// How often an active listing is published again for a change of its available quantity alone
/// (a flash sale's holds, a busy shop's sales): the first change goes out at once, the ones that
/// follow within the pace go out together when it ends. Going out of stock or back in is never
/// paced (the offer is suspended or activated), nor is any other change to the listing. Search
/// and every sales channel see at most one quantity update per offer per pace.
pub const QUANTITY_PACE: Micros = 1_000_000;

/// Activation's view of one product and every offer on it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActivationState {
    pub product: Option<ProductView>,
    /// sku → discontinued
    pub variants: BTreeMap<Sku, VariantData>,
    pub discontinued: Vec<Sku>,
    /// region → compliance status (PENDING, APPROVED, REJECTED, MANUAL_REVIEW) with reasons
    pub compliance: BTreeMap<RegionCode, (String, Vec<Reason>)>,
    /// "seller/sku/region" → available
    pub stock: BTreeMap<String, i64>,
    pub offers: BTreeMap<OfferId, OfferView>,
}

// Inputs live one at a time on the stack while a record is handled; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ActivationInput {
    /// An event from product, variant, offer, inventory or compliance, with the time it is
    /// processed at (for validity windows).
    Observed { event: Event, now: Micros },
    /// Time passed: re-check validity windows.
    Tick { now: Micros },
}

pub struct Activation;

/// The key of [`ActivationState::stock`]: `seller/sku/region`.
pub fn stock_key(seller: &SellerId, sku: &Sku, region: &RegionCode) -> String {
    format!("{seller}/{sku}/{region}")
}

/// Folds an event of another module into the view. Every arm sets a value, none adds to one, so
/// absorbing an event twice is absorbing it once (the runtime absorbs the input after `decide`
/// has absorbed it into its own copy). Events the view does not need are ignored.
pub fn absorb(mut state: ActivationState, event: &Event) -> ActivationState {
    match event {
        Event::ProductCreated(e) => {
            state.product = Some(ProductView {
                data: e.product.clone(),
                status: e.status.clone(),
            })
        }
        Event::ProductUpdated(e) => {
            state.product = Some(ProductView {
                data: e.product.clone(),
                status: e.status.clone(),
            })
        }
        Event::ProductReady(_) => set_product_status(&mut state, ProductStatus::Ready.as_str()),
        Event::ProductDeactivated(_) => {
            set_product_status(&mut state, ProductStatus::Inactive.as_str())
        }
        Event::ProductReactivated(e) => set_product_status(&mut state, &e.status),
        Event::ProductPublished(_) => {
            set_product_status(&mut state, ProductStatus::Active.as_str())
        }
        Event::VariantsCreated(e) => {
            for v in &e.variants {
                state.variants.insert(v.sku.clone(), v.clone());
            }
        }
        Event::VariantUpdated(e) => {
            state
                .variants
                .insert(e.variant.sku.clone(), e.variant.clone());
        }
        Event::VariantDiscontinued(e) if !state.discontinued.contains(&e.sku) => {
            state.discontinued.push(e.sku.clone());
        }
        Event::OfferCreated(e) => {
            upsert_offer(&mut state, &e.offer);
        }
        Event::OfferUpdated(e) => {
            upsert_offer(&mut state, &e.offer);
        }
        Event::OfferWithdrawn(e) => upsert_offer(&mut state, &e.offer).withdrawn = true,
        Event::StockAdjusted(e) => set_stock(&mut state, &e.line, e.region_available),
        Event::StockReserved(e) => set_stock(&mut state, &e.line, e.region_available),
        Event::ReservationReleased(e) => set_stock(&mut state, &e.line, e.region_available),
        Event::ReservationCommitted(e) => set_stock(&mut state, &e.line, e.region_available),
        Event::ReservationExpired(e) => set_stock(&mut state, &e.line, e.region_available),
        Event::InventoryAvailable(e) => {
            state
                .stock
                .insert(stock_key(&e.seller, &e.sku, &e.region), e.available);
        }
        Event::InventoryDepleted(e) => {
            state
                .stock
                .insert(stock_key(&e.seller, &e.sku, &e.region), 0);
        }
        Event::ComplianceApproved(e) => {
            state
                .compliance
                .insert(e.region.clone(), (APPROVED.into(), e.reasons.clone()));
        }
        Event::ComplianceRejected(e) => {
            state
                .compliance
                .insert(e.region.clone(), (REJECTED.into(), e.reasons.clone()));
        }
        Event::ComplianceReviewRequested(e) => {
            state
                .compliance
                .insert(e.region.clone(), (MANUAL_REVIEW.into(), e.reasons.clone()));
        }
        _ => {}
    }
    state
}

const APPROVED: &str = "APPROVED";
const REJECTED: &str = "REJECTED";
const MANUAL_REVIEW: &str = "MANUAL_REVIEW";

fn set_product_status(state: &mut ActivationState, status: &str) {
    if let Some(product) = &mut state.product {
        product.status = status.to_string();
    }
}

fn set_stock(state: &mut ActivationState, line: &StockLine, available: i64) {
    state
        .stock
        .insert(stock_key(&line.seller, &line.sku, &line.region), available);
}

/// A new offer starts PENDING_ACTIVATION; a known one takes the new data and keeps its state.
fn upsert_offer<'a>(state: &'a mut ActivationState, offer: &OfferData) -> &'a mut OfferView {
    let view = state
        .offers
        .entry(offer.offer_id.clone())
        .or_insert_with(|| OfferView {
            data: offer.clone(),
            withdrawn: false,
            status: ActivationStatus::PendingActivation,
            reasons: vec![],
            listing: None,
            listed_at: None,
            version: 0,
        });
    view.data = offer.clone();
    view
}

/// The buy box: the listing an offer sells under at `now`, or every reason it cannot sell.
pub fn buy_box(
    state: &ActivationState,
    offer: &OfferView,
    now: Micros,
) -> Result<Listing, Vec<Reason>> {
    let o = &offer.data;
    let mut reasons = Vec::new();

    let product = state.product.as_ref();
    match product.and_then(|p| ProductStatus::parse(&p.status)) {
        Some(ProductStatus::Ready | ProductStatus::Active) => {}
        Some(ProductStatus::Draft) => {
            let missing = product.map(|p| missing_fields(&p.data)).unwrap_or_default();
            reasons.push(Reason::new(
                "PRODUCT_DRAFT",
                format!("the product is a draft (missing: {})", missing.join(", ")),
            ));
        }
        Some(ProductStatus::Inactive) => reasons.push(Reason::new(
            "PRODUCT_INACTIVE",
            "the product is deactivated",
        )),
        Some(ProductStatus::Absent) | None => reasons.push(Reason::new(
            "PRODUCT_MISSING",
            format!("product '{}' is not known yet", o.product_id),
        )),
    }

    let variant = state.variants.get(&o.sku);
    if variant.is_none() {
        reasons.push(Reason::on_field(
            "VARIANT_MISSING",
            "sku",
            format!("sku '{}' is not a variant of the product yet", o.sku),
        ));
    } else if state.discontinued.contains(&o.sku) {
        reasons.push(Reason::on_field(
            "VARIANT_DISCONTINUED",
            "sku",
            format!("sku '{}' is discontinued", o.sku),
        ));
    }

    if offer.withdrawn {
        reasons.push(Reason::new(
            "OFFER_WITHDRAWN",
            "the seller withdrew the offer",
        ));
    }
    if let Some(from) = o.valid_from.filter(|from| now < *from) {
        reasons.push(Reason::on_field(
            "NOT_YET_VALID",
            "valid_from",
            format!("the offer starts at {from}"),
        ));
    }
    if let Some(until) = o.valid_until.filter(|until| now >= *until) {
        reasons.push(Reason::on_field(
            "EXPIRED",
            "valid_until",
            format!("the offer ended at {until}"),
        ));
    }
    if !o.price.is_positive() {
        reasons.push(Reason::on_field(
            "PRICE_NOT_POSITIVE",
            "price",
            "the price must be above zero",
        ));
    }

    let available = state
        .stock
        .get(&stock_key(&o.seller, &o.sku, &o.region))
        .copied()
        .unwrap_or(0);
    if available <= 0 {
        reasons.push(Reason::new(
            "OUT_OF_STOCK",
            format!(
                "seller '{}' has no stock of '{}' in {}",
                o.seller, o.sku, o.region
            ),
        ));
    }

    match state.compliance.get(&o.region) {
        Some((status, _)) if status == APPROVED => {}
        Some((status, rejections)) if status == REJECTED => {
            let why: Vec<&str> = rejections.iter().map(|r| r.message.as_str()).collect();
            reasons.push(Reason::new(
                "COMPLIANCE_REJECTED",
                format!(
                    "compliance rejected the product in {}: {}",
                    o.region,
                    why.join("; ")
                ),
            ));
        }
        Some((status, _)) if status == MANUAL_REVIEW => reasons.push(Reason::new(
            "COMPLIANCE_REVIEW",
            format!(
                "the product awaits a person's compliance review in {}",
                o.region
            ),
        )),
        _ => reasons.push(Reason::new(
            "COMPLIANCE_PENDING",
            format!("compliance in {} has not decided yet", o.region),
        )),
    }

    match (product, variant) {
        (Some(product), Some(variant)) if reasons.is_empty() => Ok(Listing {
            offer_id: o.offer_id.clone(),
            product_id: o.product_id.clone(),
            sku: o.sku.clone(),
            seller: o.seller.clone(),
            region: o.region.clone(),
            title: product.data.title.clone(),
            description: product.data.description.clone(),
            brand: product.data.brand.clone(),
            category: product.data.category.clone(),
            image: product.data.images.first().cloned(),
            options: variant.options.clone(),
            price: o.price.clone(),
            compare_at: o.compare_at.clone(),
            available,
            channels: o.channels.clone(),
        }),
        _ => Err(reasons),
    }
}

/// The earliest moment after `now` at which a validity window opens or closes on an offer that
/// has not ended, or a paced quantity change is due: when the runtime should send a Tick.
pub fn next_deadline(state: &ActivationState, now: Micros) -> Option<Micros> {
    let live = || {
        state
            .offers
            .values()
            .filter(|o| o.status != ActivationStatus::Ended && !o.withdrawn)
    };
    let windows = live().flat_map(|o| [o.data.valid_from, o.data.valid_until]);
    let paced = live()
        .filter(|o| o.status == ActivationStatus::Active)
        .map(|o| paced_until(o, &buy_box(state, o, now).ok()?));
    windows.chain(paced).flatten().filter(|t| *t > now).min()
}

/// When an active offer whose buy box (`listing`) differs from its published listing by the
/// quantity alone may be published again; none for any other offer.
fn paced_until(offer: &OfferView, listing: &Listing) -> Option<Micros> {
    let (ActivationStatus::Active, Some(published), Some(at)) =
        (offer.status, &offer.listing, offer.listed_at)
    else {
        return None;
    };
    let quantity_alone = listing != published
        && Listing {
            available: published.available,
            ..listing.clone()
        } == *published;
    quantity_alone.then_some(at.saturating_add(QUANTITY_PACE))
}

/// What each offer's buy box at `now` changes: an ended offer stays ended; a withdrawn one ends;
/// one that qualifies is activated (again when its listing changed); one that does not is
/// suspended (again when its reasons changed).
fn evaluate(state: &ActivationState, now: Micros) -> Vec<Event> {
    state
        .offers
        .values()
        .filter_map(|offer| verdict(state, offer, now))
        .collect()
}

fn verdict(state: &ActivationState, offer: &OfferView, now: Micros) -> Option<Event> {
    let o = &offer.data;
    if offer.status == ActivationStatus::Ended {
        return None;
    }
    if offer.withdrawn {
        return Some(
            OfferEnded {
                offer_id: o.offer_id.clone(),
                product_id: o.product_id.clone(),
                seller: o.seller.clone(),
                sku: o.sku.clone(),
                region: o.region.clone(),
                reasons: vec![Reason::new(
                    "OFFER_WITHDRAWN",
                    "the seller withdrew the offer",
                )],
            }
            .into(),
        );
    }
    match buy_box(state, offer, now) {
        Ok(listing) => (offer.status != ActivationStatus::Active
            || (offer.listing.as_ref() != Some(&listing)
                && paced_until(offer, &listing).is_none_or(|due| now >= due)))
        .then(|| {
            OfferActivated {
                listing,
                decided_at: Some(now),
            }
            .into()
        }),
        Err(reasons) => (offer.status != ActivationStatus::Suspended || offer.reasons != reasons)
            .then(|| {
                OfferSuspended {
                    offer_id: o.offer_id.clone(),
                    product_id: o.product_id.clone(),
                    seller: o.seller.clone(),
                    sku: o.sku.clone(),
                    region: o.region.clone(),
                    reasons,
                }
                .into()
            }),
    }
}

impl Aggregate for Activation {
    type State = ActivationState;
    type Input = ActivationInput;

    /// Absorbs the observed event into a copy of the view (the runtime absorbs it for real through
    /// `evolve`), then runs every offer's buy box.
    fn decide(state: &ActivationState, input: &ActivationInput) -> Result<Vec<Event>, Vec<Reason>> {
        Ok(match input {
            ActivationInput::Observed { event, now } => {
                evaluate(&absorb(state.clone(), event), *now)
            }
            ActivationInput::Tick { now } => evaluate(state, *now),
        })
    }

    fn evolve(mut state: ActivationState, event: &Event) -> ActivationState {
        let (offer_id, status, reasons, listing) = match event {
            Event::OfferActivated(e) => (
                &e.listing.offer_id,
                ActivationStatus::Active,
                &Vec::new(),
                Some((&e.listing, e.decided_at)),
            ),
            Event::OfferSuspended(e) => {
                (&e.offer_id, ActivationStatus::Suspended, &e.reasons, None)
            }
            Event::OfferEnded(e) => (&e.offer_id, ActivationStatus::Ended, &e.reasons, None),
            other => return absorb(state, other),
        };
        if let Some(offer) = state.offers.get_mut(offer_id) {
            offer.status = status;
            offer.reasons = reasons.clone();
            if let Some((listing, at)) = listing {
                offer.listing = Some(listing.clone());
                offer.listed_at = at;
            }
            offer.version += 1;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::replay;
    use proptest::prelude::*;

    const NOW: Micros = 1_000;

    fn gb() -> OfferData {
        offer("o-gb", "SKU-1", "GB", 1999, "GBP")
    }

    fn in_() -> OfferData {
        offer("o-in", "SKU-1", "IN", 149_900, "INR")
    }

    fn product_created() -> Event {
        ProductCreated {
            product: product(),
            status: "READY".into(),
            missing: vec![],
        }
        .into()
    }

    fn variants_created() -> Event {
        VariantsCreated {
            product_id: pid(),
            variants: vec![variant("SKU-1")],
        }
        .into()
    }

    fn stock(region_: &str, available: i64) -> Event {
        let location_ = if region_ == "IN" { "mum" } else { "lon" };
        StockAdjusted {
            line: line("SKU-1", location_, region_),
            on_hand: available,
            reserved: 0,
            region_available: available,
        }
        .into()
    }

    fn compliance_approved(region_: &str) -> Event {
        ComplianceApproved {
            product_id: pid(),
            region: region(region_),
            manual: false,
            reasons: vec![],
        }
        .into()
    }

    /// Everything an offer in GB or IN needs, except the offers themselves.
    fn world() -> Vec<Event> {
        vec![
            product_created(),
            variants_created(),
            stock("GB", 5),
            stock("IN", 5),
            compliance_approved("GB"),
            compliance_approved("IN"),
        ]
    }

    /// Both offers created and active.
    fn both_active() -> Vec<Event> {
        let mut events = world();
        events.extend([
            OfferCreated { offer: gb() }.into(),
            OfferCreated { offer: in_() }.into(),
            OfferActivated {
                listing: listing(&gb(), 5),
                decided_at: None,
            }
            .into(),
            OfferActivated {
                listing: listing(&in_(), 5),
                decided_at: None,
            }
            .into(),
        ]);
        events
    }

    fn given(events: &[Event]) -> ActivationState {
        replay::<Activation>(events)
    }

    fn observe(state: &ActivationState, event: impl Into<Event>) -> Vec<Event> {
        Activation::decide(
            state,
            &ActivationInput::Observed {
                event: event.into(),
                now: NOW,
            },
        )
        .unwrap()
    }

    fn tick(state: &ActivationState, now: Micros) -> Vec<Event> {
        Activation::decide(state, &ActivationInput::Tick { now }).unwrap()
    }

    /// What the runtime does: absorb the input, then apply what was decided.
    fn apply(state: ActivationState, input: Option<&Event>, decided: &[Event]) -> ActivationState {
        let state = match input {
            Some(event) => Activation::evolve(state, event),
            None => state,
        };
        decided.iter().fold(state, Activation::evolve)
    }

    fn suspended(offer: &OfferData, reasons: Vec<Reason>) -> Event {
        OfferSuspended {
            offer_id: offer.offer_id.clone(),
            product_id: pid(),
            seller: offer.seller.clone(),
            sku: offer.sku.clone(),
            region: offer.region.clone(),
            reasons,
        }
        .into()
    }

    fn codes(events: &[Event]) -> Vec<(String, Vec<String>)> {
        events
            .iter()
            .map(|e| match e {
                Event::OfferActivated(a) => (format!("ACTIVATED {}", a.listing.offer_id), vec![]),
                Event::OfferSuspended(s) => (
                    format!("SUSPENDED {}", s.offer_id),
                    s.reasons.iter().map(|r| r.code.clone()).collect(),
                ),
                Event::OfferEnded(s) => (
                    format!("ENDED {}", s.offer_id),
                    s.reasons.iter().map(|r| r.code.clone()).collect(),
                ),
                other => (other.type_name().to_string(), vec![]),
            })
            .collect()
    }

    fn reason_codes(state: &ActivationState, offer: &OfferData, now: Micros) -> Vec<String> {
        let view = &state.offers[&offer.offer_id];
        buy_box(state, view, now)
            .unwrap_err()
            .into_iter()
            .map(|r| r.code)
            .collect()
    }

    #[test]
    fn an_offer_meeting_every_condition_is_activated_with_its_listing() {
        let then = observe(&given(&world()), OfferCreated { offer: gb() });
        assert_eq!(
            then,
            vec![OfferActivated {
                listing: listing(&gb(), 5),
                decided_at: Some(NOW),
            }
            .into()]
        );
    }

    #[test]
    fn each_failed_condition_names_its_reason() {
        let with = |replace: &[(usize, Option<Event>)], offer: OfferData, extra: &[Event]| {
            let mut events: Vec<Option<Event>> = world().into_iter().map(Some).collect();
            for (i, e) in replace {
                events[*i] = e.clone();
            }
            let mut events: Vec<Event> = events.into_iter().flatten().collect();
            events.push(OfferCreated { offer }.into());
            events.extend(extra.iter().cloned());
            given(&events)
        };
        let draft: Event = ProductCreated {
            product: draft_product(),
            status: "DRAFT".into(),
            missing: vec!["description".into(), "category".into()],
        }
        .into();
        let cases: Vec<(ActivationState, OfferData, &str)> = vec![
            (with(&[(0, None)], gb(), &[]), gb(), "PRODUCT_MISSING"),
            (with(&[(0, Some(draft))], gb(), &[]), gb(), "PRODUCT_DRAFT"),
            (
                with(
                    &[],
                    gb(),
                    &[ProductDeactivated { product_id: pid() }.into()],
                ),
                gb(),
                "PRODUCT_INACTIVE",
            ),
            (with(&[(1, None)], gb(), &[]), gb(), "VARIANT_MISSING"),
            (
                with(
                    &[],
                    gb(),
                    &[VariantDiscontinued {
                        product_id: pid(),
                        sku: sku("SKU-1"),
                    }
                    .into()],
                ),
                gb(),
                "VARIANT_DISCONTINUED",
            ),
            (
                with(
                    &[],
                    OfferData {
                        valid_from: Some(NOW + 1),
                        ..gb()
                    },
                    &[],
                ),
                gb(),
                "NOT_YET_VALID",
            ),
            (
                with(
                    &[],
                    OfferData {
                        valid_until: Some(NOW),
                        ..gb()
                    },
                    &[],
                ),
                gb(),
                "EXPIRED",
            ),
            (
                with(
                    &[],
                    OfferData {
                        price: money(0, "GBP"),
                        ..gb()
                    },
                    &[],
                ),
                gb(),
                "PRICE_NOT_POSITIVE",
            ),
            (with(&[(2, None)], gb(), &[]), gb(), "OUT_OF_STOCK"),
            (
                with(&[(2, Some(stock("GB", 0)))], gb(), &[]),
                gb(),
                "OUT_OF_STOCK",
            ),
            (with(&[(4, None)], gb(), &[]), gb(), "COMPLIANCE_PENDING"),
            (
                with(
                    &[(
                        4,
                        Some(
                            ComplianceRejected {
                                product_id: pid(),
                                region: region("GB"),
                                manual: false,
                                reasons: vec![Reason::new("BANNED_CATEGORY", "no")],
                            }
                            .into(),
                        ),
                    )],
                    gb(),
                    &[],
                ),
                gb(),
                "COMPLIANCE_REJECTED",
            ),
            (
                with(
                    &[(
                        4,
                        Some(
                            ComplianceReviewRequested {
                                product_id: pid(),
                                region: region("GB"),
                                reasons: vec![],
                            }
                            .into(),
                        ),
                    )],
                    gb(),
                    &[],
                ),
                gb(),
                "COMPLIANCE_REVIEW",
            ),
            (
                with(&[], gb(), &[OfferWithdrawn { offer: gb() }.into()]),
                gb(),
                "OFFER_WITHDRAWN",
            ),
        ];
        for (state, offer, code) in cases {
            assert_eq!(
                reason_codes(&state, &offer, NOW),
                vec![code.to_string()],
                "{code}"
            );
        }
    }

    #[test]
    fn every_failed_condition_is_named_at_once() {
        let state = given(&[OfferCreated {
            offer: OfferData {
                price: money(0, "GBP"),
                ..gb()
            },
        }
        .into()]);
        assert_eq!(
            reason_codes(&state, &gb(), NOW),
            [
                "PRODUCT_MISSING",
                "VARIANT_MISSING",
                "PRICE_NOT_POSITIVE",
                "OUT_OF_STOCK",
                "COMPLIANCE_PENDING"
            ]
        );
    }

    #[test]
    fn a_pending_offer_that_cannot_sell_is_suspended_once_per_reason_set() {
        let mut events = world();
        events.remove(2); // no stock in GB
        let state = given(&events);
        let input: Event = OfferCreated { offer: gb() }.into();
        let then = observe(&state, input.clone());
        assert_eq!(
            codes(&then),
            [(
                "SUSPENDED o-gb".to_string(),
                vec!["OUT_OF_STOCK".to_string()]
            )]
        );
        let state = apply(state, Some(&input), &then);
        assert_eq!(
            state.offers[&offer_id("o-gb")].status,
            ActivationStatus::Suspended
        );
        assert_eq!(tick(&state, NOW), vec![]);
        assert_eq!(observe(&state, input), vec![]);
        let review: Event = ComplianceReviewRequested {
            product_id: pid(),
            region: region("GB"),
            reasons: vec![],
        }
        .into();
        let then = observe(&state, review);
        assert_eq!(
            codes(&then),
            [(
                "SUSPENDED o-gb".to_string(),
                vec!["OUT_OF_STOCK".into(), "COMPLIANCE_REVIEW".into()]
            )]
        );
    }

    #[test]
    fn a_stock_out_in_india_suspends_only_the_india_offer() {
        let state = given(&both_active());
        let then = observe(
            &state,
            InventoryDepleted {
                product_id: pid(),
                seller: seller("s1"),
                sku: sku("SKU-1"),
                region: region("IN"),
            },
        );
        let out_of_stock = Reason::new("OUT_OF_STOCK", "seller 's1' has no stock of 'SKU-1' in IN");
        assert_eq!(then, vec![suspended(&in_(), vec![out_of_stock])]);
    }

    #[test]
    fn a_price_change_in_britain_touches_only_the_british_offer() {
        let state = given(&both_active());
        let cheaper = OfferData {
            price: money(1499, "GBP"),
            ..gb()
        };
        let then = observe(
            &state,
            OfferUpdated {
                offer: cheaper.clone(),
            },
        );
        assert_eq!(
            then,
            vec![OfferActivated {
                listing: listing(&cheaper, 5),
                decided_at: Some(NOW),
            }
            .into()]
        );
    }

    #[test]
    fn a_product_change_republishes_every_active_listing() {
        let state = given(&both_active());
        let renamed = ProductData {
            title: "Shirt".into(),
            ..product()
        };
        let then = observe(
            &state,
            ProductUpdated {
                product: renamed,
                status: "READY".into(),
                missing: vec![],
            },
        );
        let expected: Vec<Event> = [gb(), in_()]
            .iter()
            .map(|o| {
                OfferActivated {
                    listing: Listing {
                        title: "Shirt".into(),
                        ..listing(o, 5)
                    },
                    decided_at: Some(NOW),
                }
                .into()
            })
            .collect();
        assert_eq!(then, expected);
    }

    #[test]
    fn an_event_that_changes_no_listing_emits_nothing() {
        let state = given(&both_active());
        assert_eq!(
            observe(
                &state,
                ProductPublished {
                    product_id: pid(),
                    channel: Channel::Storefront
                }
            ),
            vec![]
        );
        assert_eq!(observe(&state, compliance_approved("GB")), vec![]);
        assert_eq!(tick(&state, NOW), vec![]);
    }

    #[test]
    fn a_suspended_offer_is_activated_again_when_it_can_sell() {
        let mut events = both_active();
        events.push(stock("GB", 0));
        events.push(suspended(&gb(), vec![Reason::new("OUT_OF_STOCK", "x")]));
        let state = given(&events);
        assert_eq!(
            state.offers[&offer_id("o-gb")].status,
            ActivationStatus::Suspended
        );
        let then = observe(&state, stock("GB", 2));
        assert_eq!(
            then,
            vec![OfferActivated {
                listing: listing(&gb(), 2),
                decided_at: Some(NOW),
            }
            .into()]
        );
    }

    #[test]
    fn a_change_of_quantity_alone_is_paced_and_nothing_else_is() {
        // Both offers published at NOW.
        let mut events = world();
        events.extend([
            OfferCreated { offer: gb() }.into(),
            OfferCreated { offer: in_() }.into(),
        ]);
        let state = given(&events);
        let published = observe(&state, stock("GB", 5));
        let state = apply(state, None, &published);
        let soon = NOW + QUANTITY_PACE / 2;
        let at = |state: &ActivationState, event: Event, now: Micros| {
            let decided = Activation::decide(
                state,
                &ActivationInput::Observed {
                    event: event.clone(),
                    now,
                },
            )
            .unwrap();
            (apply(state.clone(), Some(&event), &decided), decided)
        };

        // A hold within the pace: nothing now, the latest quantity when the pace ends.
        let (state, now) = at(&state, stock("GB", 4), soon);
        assert_eq!(now, vec![]);
        let (state, now) = at(&state, stock("GB", 3), soon + 1);
        assert_eq!(now, vec![]);
        assert_eq!(next_deadline(&state, soon + 1), Some(NOW + QUANTITY_PACE));
        assert_eq!(tick(&state, NOW + QUANTITY_PACE - 1), vec![]);
        let due = NOW + QUANTITY_PACE;
        let then = Activation::decide(&state, &ActivationInput::Tick { now: due }).unwrap();
        assert_eq!(
            then,
            vec![OfferActivated {
                listing: listing(&gb(), 3),
                decided_at: Some(due),
            }
            .into()]
        );
        let state = apply(state, None, &then);
        assert_eq!(next_deadline(&state, due), None);

        // After a quiet pace the first change goes out at once.
        let later = due + QUANTITY_PACE;
        let (state, then) = at(&state, stock("GB", 2), later);
        assert_eq!(then.len(), 1, "{then:?}");

        // Within the pace: going out of stock, and a price change, are not paced.
        let (state, then) = at(&state, stock("GB", 0), later + 1);
        assert_eq!(codes(&then)[0].1, vec!["OUT_OF_STOCK".to_string()]);
        let (state, then) = at(&state, stock("GB", 1), later + 2);
        assert_eq!(then.len(), 1, "back in stock at once: {then:?}");
        let cheaper = OfferData {
            price: money(1499, "GBP"),
            ..gb()
        };
        let (_, then) = at(
            &state,
            OfferUpdated {
                offer: cheaper.clone(),
            }
            .into(),
            later + 3,
        );
        assert_eq!(
            then,
            vec![OfferActivated {
                listing: listing(&cheaper, 1),
                decided_at: Some(later + 3),
            }
            .into()]
        );
    }

    #[test]
    fn a_withdrawn_offer_ends_once_and_for_good() {
        let state = given(&both_active());
        let input: Event = OfferWithdrawn { offer: gb() }.into();
        let then = observe(&state, input.clone());
        assert_eq!(
            codes(&then),
            [(
                "ENDED o-gb".to_string(),
                vec!["OFFER_WITHDRAWN".to_string()]
            )]
        );
        let state = apply(state, Some(&input), &then);
        assert_eq!(
            state.offers[&offer_id("o-gb")].status,
            ActivationStatus::Ended
        );
        assert_eq!(observe(&state, input), vec![]);
        assert_eq!(observe(&state, OfferUpdated { offer: gb() }), vec![]);
        assert_eq!(tick(&state, NOW), vec![]);
    }

    #[test]
    fn time_opens_and_closes_the_validity_window() {
        let windowed = OfferData {
            valid_from: Some(2_000),
            valid_until: Some(3_000),
            ..gb()
        };
        let input: Event = OfferCreated {
            offer: windowed.clone(),
        }
        .into();
        let state = given(&world());
        let then = observe(&state, input.clone());
        assert_eq!(
            codes(&then),
            [(
                "SUSPENDED o-gb".to_string(),
                vec!["NOT_YET_VALID".to_string()]
            )]
        );
        let state = apply(state, Some(&input), &then);
        assert_eq!(next_deadline(&state, NOW), Some(2_000));
        assert_eq!(tick(&state, 1_999), vec![]);
        let then = tick(&state, 2_000);
        assert_eq!(
            then,
            vec![OfferActivated {
                listing: listing(&windowed, 5),
                decided_at: Some(2_000),
            }
            .into()]
        );
        let state = apply(state, None, &then);
        assert_eq!(next_deadline(&state, 2_000), Some(3_000));
        let then = tick(&state, 3_000);
        assert_eq!(
            codes(&then),
            [("SUSPENDED o-gb".to_string(), vec!["EXPIRED".to_string()])]
        );
        let state = apply(state, None, &then);
        assert_eq!(next_deadline(&state, 3_000), None);
    }

    #[test]
    fn deadlines_ignore_ended_and_withdrawn_offers() {
        let mut events = world();
        events.push(
            OfferCreated {
                offer: OfferData {
                    valid_until: Some(5_000),
                    ..gb()
                },
            }
            .into(),
        );
        events.push(
            OfferCreated {
                offer: OfferData {
                    valid_from: Some(4_000),
                    ..in_()
                },
            }
            .into(),
        );
        assert_eq!(next_deadline(&given(&events), NOW), Some(4_000));
        events.push(
            OfferWithdrawn {
                offer: OfferData {
                    valid_from: Some(4_000),
                    ..in_()
                },
            }
            .into(),
        );
        assert_eq!(next_deadline(&given(&events), NOW), Some(5_000));
    }

    #[test]
    fn decide_does_not_need_the_input_absorbed_and_absorbing_twice_is_once() {
        let state = given(&world());
        let input: Event = OfferCreated { offer: gb() }.into();
        let absorbed = Activation::evolve(state.clone(), &input);
        assert_eq!(
            observe(&state, input.clone()),
            observe(&absorbed, input.clone())
        );
        assert_eq!(Activation::evolve(absorbed.clone(), &input), absorbed);
    }

    #[test]
    fn each_offer_counts_its_own_events() {
        let mut events = both_active();
        events.push(suspended(&gb(), vec![]));
        let state = given(&events);
        assert_eq!(state.offers[&offer_id("o-gb")].version, 2);
        assert_eq!(state.offers[&offer_id("o-in")].version, 1);
        assert_eq!(
            state.offers[&offer_id("o-gb")].listing,
            Some(listing(&gb(), 5))
        );
    }

    fn arb_product_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (any::<bool>(), any::<bool>()).prop_map(|(complete, update)| {
                let (p, status) = if complete {
                    (product(), "READY")
                } else {
                    (draft_product(), "DRAFT")
                };
                let missing = missing_fields(&p);
                if update {
                    ProductUpdated {
                        product: p,
                        status: status.into(),
                        missing,
                    }
                    .into()
                } else {
                    ProductCreated {
                        product: p,
                        status: status.into(),
                        missing,
                    }
                    .into()
                }
            }),
            Just(ProductReady { product_id: pid() }.into()),
            Just(ProductDeactivated { product_id: pid() }.into()),
            prop_oneof![Just("READY"), Just("DRAFT")].prop_map(|s| ProductReactivated {
                product_id: pid(),
                status: s.into()
            }
            .into()),
            Just(
                ProductPublished {
                    product_id: pid(),
                    channel: Channel::Storefront
                }
                .into()
            ),
        ]
    }

    fn arb_variant_event() -> impl Strategy<Value = Event> {
        (prop_oneof![Just("A"), Just("B")], 0u8..3).prop_map(|(s, kind)| match kind {
            0 => VariantsCreated {
                product_id: pid(),
                variants: vec![variant(s)],
            }
            .into(),
            1 => {
                let variant = VariantData {
                    options: attrs(&[("size", "L")]),
                    ..variant(s)
                };
                VariantUpdated {
                    product_id: pid(),
                    variant,
                }
                .into()
            }
            _ => VariantDiscontinued {
                product_id: pid(),
                sku: sku(s),
            }
            .into(),
        })
    }

    fn arb_offer_event() -> impl Strategy<Value = Event> {
        let offers = prop_oneof![
            Just(("o-1", "A", "GB", "GBP")),
            Just(("o-2", "A", "IN", "INR")),
            Just(("o-3", "B", "GB", "GBP")),
        ];
        // Mostly open windows and positive prices, so that offers often can sell.
        let from = proptest::option::weighted(0.3, 0i64..60);
        let until = proptest::option::weighted(0.3, 0i64..200);
        let price = prop_oneof![1 => Just(0i64), 4 => 1i64..3];
        (offers, price, from, until, 0u8..5).prop_map(
            |((id, s, r, c), price, from, until, kind)| {
                let o = OfferData {
                    valid_from: from,
                    valid_until: until,
                    ..offer(id, s, r, price, c)
                };
                match kind {
                    0 | 1 => OfferCreated { offer: o }.into(),
                    2 | 3 => OfferUpdated { offer: o }.into(),
                    _ => OfferWithdrawn { offer: o }.into(),
                }
            },
        )
    }

    fn arb_stock_event() -> impl Strategy<Value = Event> {
        let sku_ = prop_oneof![Just("A"), Just("B")];
        let region_ = prop_oneof![Just("GB"), Just("IN")];
        (sku_, region_, 0i64..3, any::<bool>()).prop_map(|(s, r, n, adjusted)| {
            if adjusted {
                let line = line(s, "loc", r);
                StockAdjusted {
                    line,
                    on_hand: n,
                    reserved: 0,
                    region_available: n,
                }
                .into()
            } else {
                let (seller, sku, region) = (seller("s1"), sku(s), region(r));
                InventoryDepleted {
                    product_id: pid(),
                    seller,
                    sku,
                    region,
                }
                .into()
            }
        })
    }

    fn arb_compliance_event() -> impl Strategy<Value = Event> {
        (prop_oneof![Just("GB"), Just("IN")], 0u8..4).prop_map(|(r, verdict)| {
            let (product_id, region, reasons) = (pid(), region(r), vec![]);
            match verdict {
                0 | 1 => compliance_approved(r),
                2 => ComplianceRejected {
                    product_id,
                    region,
                    manual: true,
                    reasons,
                }
                .into(),
                _ => ComplianceReviewRequested {
                    product_id,
                    region,
                    reasons,
                }
                .into(),
            }
        })
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            2 => arb_product_event(),
            2 => arb_variant_event(),
            5 => arb_offer_event(),
            3 => arb_stock_event(),
            2 => arb_compliance_event(),
        ]
    }

    /// Where offers o-1, o-2 and o-3 of `arb_offer_event` can sell.
    fn sellable_world() -> Vec<Event> {
        let mut world = vec![
            product_created(),
            VariantsCreated {
                product_id: pid(),
                variants: vec![variant("A"), variant("B")],
            }
            .into(),
            compliance_approved("GB"),
            compliance_approved("IN"),
        ];
        for (s, r) in [("A", "GB"), ("A", "IN"), ("B", "GB")] {
            let line = line(s, "loc", r);
            world.push(
                StockAdjusted {
                    line,
                    on_hand: 3,
                    reserved: 0,
                    region_available: 3,
                }
                .into(),
            );
        }
        world
    }

    /// Runs the steps as the runtime would (an event observed, or a tick when there is none) and
    /// checks after each that every offer's status is what its buy box says at that time.
    fn run(steps: Vec<(Option<Event>, Micros)>) -> Result<(), TestCaseError> {
        let mut state = ActivationState::default();
        let mut log = Vec::new();
        let mut now = 0;
        for (event, advance) in steps {
            now += advance;
            let input = match &event {
                Some(event) => ActivationInput::Observed {
                    event: event.clone(),
                    now,
                },
                None => ActivationInput::Tick { now },
            };
            let decided = Activation::decide(&state, &input).expect("activation never refuses");
            state = apply(state, event.as_ref(), &decided);
            log.extend(event);
            log.extend(decided);
            for offer in state.offers.values() {
                let verdict = buy_box(&state, offer, now);
                match offer.status {
                    ActivationStatus::Active => {
                        prop_assert!(
                            verdict.is_ok(),
                            "{} active but {:?}",
                            offer.data.offer_id,
                            verdict
                        );
                        // The published listing is the buy box's, or lags by its quantity
                        // alone until the pace ends, with a tick due by then.
                        if verdict.as_ref().ok() != offer.listing.as_ref() {
                            let due = verdict.as_ref().ok().and_then(|l| paced_until(offer, l));
                            prop_assert!(
                                due.is_some_and(|due| due > now
                                    && next_deadline(&state, now).is_some_and(|n| n <= due)),
                                "{} published {:?}, buy box {:?}",
                                offer.data.offer_id,
                                offer.listing,
                                verdict
                            );
                        }
                    }
                    ActivationStatus::Suspended => {
                        prop_assert_eq!(verdict.err(), Some(offer.reasons.clone()))
                    }
                    ActivationStatus::Ended => prop_assert!(offer.withdrawn),
                    ActivationStatus::PendingActivation => {
                        prop_assert!(false, "{} was never decided", offer.data.offer_id)
                    }
                }
            }
            // The decision is settled: the same input again changes nothing.
            prop_assert_eq!(Activation::decide(&state, &input), Ok(vec![]));
        }
        prop_assert_eq!(&replay::<Activation>(&log), &state);
        let row = serde_json::to_string(&state).expect("serialise");
        let back: ActivationState = serde_json::from_str(&row).expect("deserialise");
        prop_assert_eq!(back, state);
        Ok(())
    }

    proptest! {
        #[test]
        fn an_active_offer_always_satisfies_the_buy_box(
            from_a_sellable_world in any::<bool>(),
            steps in proptest::collection::vec(
                (proptest::option::of(arb_event()), prop_oneof![0i64..6, Just(QUANTITY_PACE)]),
                0..60,
            )
        ) {
            // Half the runs start where offers can sell, so that activation is exercised often.
            let prefix = if from_a_sellable_world { sellable_world() } else { vec![] };
            run(prefix.into_iter().map(|e| (Some(e), 0)).chain(steps).collect())?;
        }
    }
}

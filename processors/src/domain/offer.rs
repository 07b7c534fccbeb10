//! Step 3, the offer: ∅ → PENDING_ACTIVATION → WITHDRAWN. Activation (step 6) decides ACTIVE.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OfferState {
    pub offer: Option<OfferData>,
    pub withdrawn: bool,
    pub version: i64,
}

/// The offer module decides on its commands: CreateOffer, UpdateOffer, WithdrawOffer.
pub type OfferInput = Command;

pub struct Offer;

impl Aggregate for Offer {
    type State = OfferState;
    type Input = OfferInput;

    fn decide(state: &OfferState, input: &Command) -> Result<Vec<Event>, Vec<Reason>> {
        match input {
            Command::CreateOffer(c) => create(state, c),
            Command::UpdateOffer(c) => update(state, c),
            Command::WithdrawOffer(c) => withdraw(state, c),
            other => Err(vec![Reason::new(
                "UNSUPPORTED_COMMAND",
                format!("the offer module does not handle {}", other.type_name()),
            )]),
        }
    }

    fn evolve(mut state: OfferState, event: &Event) -> OfferState {
        match event {
            Event::OfferCreated(e) => state.offer = Some(e.offer.clone()),
            Event::OfferUpdated(e) => state.offer = Some(e.offer.clone()),
            Event::OfferWithdrawn(e) => {
                state.offer = Some(e.offer.clone());
                state.withdrawn = true;
            }
            _ => return state,
        }
        state.version += 1;
        state
    }
}

/// The rules every offer keeps: a positive price, a compare-at price in the same currency, and a
/// validity window that ends after it starts.
pub fn validate(offer: &OfferData) -> Result<(), Vec<Reason>> {
    let mut reasons = Vec::new();
    if !offer.price.is_positive() {
        reasons.push(Reason::on_field(
            "PRICE_NOT_POSITIVE",
            "price",
            "the price must be above zero",
        ));
    }
    if let Some(compare_at) = &offer.compare_at {
        if compare_at.currency() != offer.price.currency() {
            reasons.push(Reason::on_field(
                "CURRENCY_MISMATCH",
                "compare_at",
                format!(
                    "compare-at is in {} but the price is in {}",
                    compare_at.currency(),
                    offer.price.currency()
                ),
            ));
        }
    }
    if let (Some(from), Some(until)) = (offer.valid_from, offer.valid_until) {
        if until <= from {
            reasons.push(Reason::on_field(
                "INVALID_WINDOW",
                "valid_until",
                "the validity window must end after it starts",
            ));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// The offer the command addresses, or OFFER_NOT_FOUND.
fn existing<'a>(state: &'a OfferState, id: &OfferId) -> Result<&'a OfferData, Vec<Reason>> {
    match &state.offer {
        Some(offer) if offer.offer_id == *id => Ok(offer),
        _ => Err(vec![Reason::on_field(
            "OFFER_NOT_FOUND",
            "offer_id",
            format!("offer '{id}' does not exist"),
        )]),
    }
}

fn create(state: &OfferState, c: &CreateOffer) -> Result<Vec<Event>, Vec<Reason>> {
    if let Some(current) = &state.offer {
        return if *current == c.offer {
            Ok(vec![])
        } else {
            Err(vec![Reason::on_field(
                "OFFER_EXISTS",
                "offer_id",
                format!("offer '{}' already exists", c.offer.offer_id),
            )])
        };
    }
    validate(&c.offer)?;
    Ok(vec![OfferCreated {
        offer: c.offer.clone(),
    }
    .into()])
}

fn update(state: &OfferState, c: &UpdateOffer) -> Result<Vec<Event>, Vec<Reason>> {
    let current = existing(state, &c.offer_id)?;
    if state.withdrawn {
        return Err(vec![Reason::on_field(
            "OFFER_WITHDRAWN",
            "offer_id",
            format!("offer '{}' was withdrawn", c.offer_id),
        )]);
    }
    let mut next = current.clone();
    if let Some(price) = &c.price {
        next.price = price.clone();
    }
    if let Some(compare_at) = &c.compare_at {
        next.compare_at = Some(compare_at.clone());
    }
    if let Some(from) = c.valid_from {
        next.valid_from = Some(from);
    }
    if let Some(until) = c.valid_until {
        next.valid_until = Some(until);
    }
    if let Some(channels) = &c.channels {
        next.channels = channels.clone();
    }
    validate(&next)?;
    if next == *current {
        return Ok(vec![]);
    }
    Ok(vec![OfferUpdated { offer: next }.into()])
}

fn withdraw(state: &OfferState, c: &WithdrawOffer) -> Result<Vec<Event>, Vec<Reason>> {
    let current = existing(state, &c.offer_id)?;
    if state.withdrawn {
        return Ok(vec![]);
    }
    Ok(vec![OfferWithdrawn {
        offer: current.clone(),
    }
    .into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::replay;

    fn given(events: &[Event]) -> OfferState {
        replay::<Offer>(events)
    }

    fn when(state: &OfferState, command: impl Into<Command>) -> Result<Vec<Event>, Vec<Reason>> {
        Offer::decide(state, &command.into())
    }

    fn gb() -> OfferData {
        offer("o-1", "SKU-1", "GB", 1999, "GBP")
    }

    fn created() -> Event {
        OfferCreated { offer: gb() }.into()
    }

    fn patch() -> UpdateOffer {
        UpdateOffer {
            offer_id: offer_id("o-1"),
            product_id: pid(),
            price: None,
            compare_at: None,
            valid_from: None,
            valid_until: None,
            channels: None,
        }
    }

    fn codes_and_fields(reasons: Vec<Reason>) -> Vec<(String, Option<String>)> {
        reasons.into_iter().map(|r| (r.code, r.field)).collect()
    }

    #[test]
    fn an_offer_is_created() {
        assert_eq!(
            when(&given(&[]), CreateOffer { offer: gb() }),
            Ok(vec![created()])
        );
    }

    #[test]
    fn creating_an_existing_offer_is_idempotent_when_identical_and_refused_otherwise() {
        let state = given(&[created()]);
        assert_eq!(when(&state, CreateOffer { offer: gb() }), Ok(vec![]));
        let other = OfferData {
            price: money(2999, "GBP"),
            ..gb()
        };
        let refused = when(&state, CreateOffer { offer: other }).unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [("OFFER_EXISTS".into(), Some("offer_id".into()))]
        );
    }

    #[test]
    fn an_offer_needs_a_positive_price_one_currency_and_a_real_window() {
        let bad = OfferData {
            price: money(0, "GBP"),
            compare_at: Some(money(2999, "EUR")),
            valid_from: Some(10),
            valid_until: Some(10),
            ..gb()
        };
        let refused = when(&given(&[]), CreateOffer { offer: bad }).unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [
                ("PRICE_NOT_POSITIVE".into(), Some("price".into())),
                ("CURRENCY_MISMATCH".into(), Some("compare_at".into())),
                ("INVALID_WINDOW".into(), Some("valid_until".into())),
            ]
        );
    }

    #[test]
    fn an_update_emits_the_full_offer_after() {
        let state = given(&[created()]);
        let then = when(
            &state,
            UpdateOffer {
                price: Some(money(1499, "GBP")),
                compare_at: Some(money(1999, "GBP")),
                valid_until: Some(1_000),
                channels: Some(vec![Channel::Storefront, Channel::Meta]),
                ..patch()
            },
        );
        let after = OfferData {
            price: money(1499, "GBP"),
            compare_at: Some(money(1999, "GBP")),
            valid_until: Some(1_000),
            channels: vec![Channel::Storefront, Channel::Meta],
            ..gb()
        };
        assert_eq!(then, Ok(vec![OfferUpdated { offer: after }.into()]));
    }

    #[test]
    fn an_update_is_validated_on_the_merged_offer() {
        let state = given(&[OfferCreated {
            offer: OfferData {
                compare_at: Some(money(2999, "GBP")),
                valid_from: Some(100),
                ..gb()
            },
        }
        .into()]);
        let refused = when(
            &state,
            UpdateOffer {
                price: Some(money(1999, "EUR")),
                ..patch()
            },
        );
        assert_eq!(
            codes_and_fields(refused.unwrap_err())[0].0,
            "CURRENCY_MISMATCH"
        );
        let refused = when(
            &state,
            UpdateOffer {
                valid_until: Some(50),
                ..patch()
            },
        );
        assert_eq!(
            codes_and_fields(refused.unwrap_err())[0].0,
            "INVALID_WINDOW"
        );
        let refused = when(
            &state,
            UpdateOffer {
                price: Some(money(0, "GBP")),
                ..patch()
            },
        );
        assert_eq!(
            codes_and_fields(refused.unwrap_err())[0].0,
            "PRICE_NOT_POSITIVE"
        );
    }

    #[test]
    fn an_update_that_changes_nothing_emits_nothing() {
        let state = given(&[created()]);
        assert_eq!(
            when(
                &state,
                UpdateOffer {
                    price: Some(money(1999, "GBP")),
                    ..patch()
                }
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn updating_an_unknown_or_withdrawn_offer_is_refused() {
        let refused = when(&given(&[]), patch()).unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [("OFFER_NOT_FOUND".into(), Some("offer_id".into()))]
        );
        let state = given(&[created(), OfferWithdrawn { offer: gb() }.into()]);
        let refused = when(
            &state,
            UpdateOffer {
                price: Some(money(5, "GBP")),
                ..patch()
            },
        );
        assert_eq!(
            codes_and_fields(refused.unwrap_err())[0].0,
            "OFFER_WITHDRAWN"
        );
    }

    #[test]
    fn withdrawing_is_applied_once() {
        let state = given(&[created()]);
        let withdraw = WithdrawOffer {
            offer_id: offer_id("o-1"),
            product_id: pid(),
        };
        let then = when(&state, withdraw.clone()).unwrap();
        assert_eq!(then, vec![OfferWithdrawn { offer: gb() }.into()]);
        let state = then.iter().fold(state, Offer::evolve);
        assert!(state.withdrawn);
        assert_eq!(state.version, 2);
        assert_eq!(when(&state, withdraw), Ok(vec![]));
        let refused = when(
            &given(&[]),
            WithdrawOffer {
                offer_id: offer_id("o-1"),
                product_id: pid(),
            },
        );
        assert_eq!(
            codes_and_fields(refused.unwrap_err())[0].0,
            "OFFER_NOT_FOUND"
        );
    }

    #[test]
    fn a_price_change_in_one_region_is_that_offers_alone() {
        // Offers are separate aggregates per (seller, sku, region): the GB update never names IN.
        let gb_state = given(&[created()]);
        let then = when(
            &gb_state,
            UpdateOffer {
                price: Some(money(1799, "GBP")),
                ..patch()
            },
        )
        .unwrap();
        assert!(then
            .iter()
            .all(|e| matches!(e, Event::OfferUpdated(u) if u.offer.region == region("GB"))));
    }
}

//! Step 7, the search listing per offer: HIDDEN → VISIBLE ↔ HIDDEN, from activation's events.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ListingStatus {
    #[default]
    Hidden,
    Visible,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListingState {
    pub status: ListingStatus,
    pub listing: Option<Listing>,
    pub reasons: Vec<Reason>,
    pub version: i64,
}

/// The search listing reacts to activation's events (OfferActivated, OfferSuspended, OfferEnded);
/// any other event changes nothing.
pub type ListingInput = Event;

pub struct SearchListing;

impl Aggregate for SearchListing {
    type State = ListingState;
    type Input = ListingInput;

    fn decide(state: &ListingState, input: &Event) -> Result<Vec<Event>, Vec<Reason>> {
        let (offer_id, product_id, region, reasons) = match input {
            Event::OfferActivated(e) => {
                let changed = state.status == ListingStatus::Hidden
                    || state.listing.as_ref() != Some(&e.listing);
                return Ok(if changed {
                    vec![ListingVisible {
                        listing: e.listing.clone(),
                    }
                    .into()]
                } else {
                    vec![]
                });
            }
            Event::OfferSuspended(e) => (&e.offer_id, &e.product_id, &e.region, &e.reasons),
            Event::OfferEnded(e) => (&e.offer_id, &e.product_id, &e.region, &e.reasons),
            _ => return Ok(vec![]),
        };
        // A hidden listing stays hidden whatever the new reasons: search shows nothing either way.
        if state.status == ListingStatus::Hidden {
            return Ok(vec![]);
        }
        Ok(vec![ListingHidden {
            offer_id: offer_id.clone(),
            product_id: product_id.clone(),
            region: region.clone(),
            reasons: reasons.clone(),
        }
        .into()])
    }

    fn evolve(mut state: ListingState, event: &Event) -> ListingState {
        match event {
            Event::ListingVisible(e) => {
                state.status = ListingStatus::Visible;
                state.listing = Some(e.listing.clone());
                state.reasons.clear();
            }
            Event::ListingHidden(e) => {
                // The last listing is kept, so a hidden offer's page can still say what it was.
                state.status = ListingStatus::Hidden;
                state.reasons = e.reasons.clone();
            }
            _ => return state,
        }
        state.version += 1;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::replay;

    fn gb() -> OfferData {
        offer("o-gb", "SKU-1", "GB", 1999, "GBP")
    }

    fn given(events: &[Event]) -> ListingState {
        replay::<SearchListing>(events)
    }

    fn activated(available: i64) -> Event {
        OfferActivated {
            listing: listing(&gb(), available),
            decided_at: None,
        }
        .into()
    }

    fn visible(available: i64) -> Event {
        ListingVisible {
            listing: listing(&gb(), available),
        }
        .into()
    }

    fn out_of_stock() -> Vec<Reason> {
        vec![Reason::new("OUT_OF_STOCK", "none left")]
    }

    fn suspended() -> Event {
        OfferSuspended {
            offer_id: offer_id("o-gb"),
            product_id: pid(),
            seller: seller("s1"),
            sku: sku("SKU-1"),
            region: region("GB"),
            reasons: out_of_stock(),
        }
        .into()
    }

    fn ended() -> Event {
        OfferEnded {
            offer_id: offer_id("o-gb"),
            product_id: pid(),
            seller: seller("s1"),
            sku: sku("SKU-1"),
            region: region("GB"),
            reasons: vec![Reason::new("OFFER_WITHDRAWN", "withdrawn")],
        }
        .into()
    }

    fn hidden(reasons: Vec<Reason>) -> Event {
        ListingHidden {
            offer_id: offer_id("o-gb"),
            product_id: pid(),
            region: region("GB"),
            reasons,
        }
        .into()
    }

    #[test]
    fn an_activated_offer_becomes_visible() {
        assert_eq!(
            SearchListing::decide(&given(&[]), &activated(5)),
            Ok(vec![visible(5)])
        );
    }

    #[test]
    fn a_visible_listing_is_republished_only_when_it_changed() {
        let state = given(&[visible(5)]);
        assert_eq!(SearchListing::decide(&state, &activated(5)), Ok(vec![]));
        assert_eq!(
            SearchListing::decide(&state, &activated(4)),
            Ok(vec![visible(4)])
        );
    }

    #[test]
    fn a_suspended_or_ended_offer_hides_a_visible_listing() {
        let state = given(&[visible(5)]);
        assert_eq!(
            SearchListing::decide(&state, &suspended()),
            Ok(vec![hidden(out_of_stock())])
        );
        let then = SearchListing::decide(&state, &ended()).unwrap();
        assert_eq!(
            then,
            vec![hidden(vec![Reason::new("OFFER_WITHDRAWN", "withdrawn")])]
        );
    }

    #[test]
    fn a_hidden_listing_stays_hidden_quietly() {
        assert_eq!(SearchListing::decide(&given(&[]), &suspended()), Ok(vec![]));
        let state = given(&[visible(5), hidden(out_of_stock())]);
        assert_eq!(SearchListing::decide(&state, &ended()), Ok(vec![]));
    }

    #[test]
    fn a_hidden_listing_becomes_visible_again_even_unchanged() {
        let state = given(&[visible(5), hidden(out_of_stock())]);
        assert_eq!(state.status, ListingStatus::Hidden);
        assert_eq!(state.listing, Some(listing(&gb(), 5)));
        assert_eq!(
            SearchListing::decide(&state, &activated(5)),
            Ok(vec![visible(5)])
        );
    }

    #[test]
    fn other_events_change_nothing() {
        let state = given(&[visible(5)]);
        assert_eq!(
            SearchListing::decide(&state, &OfferCreated { offer: gb() }.into()),
            Ok(vec![])
        );
        assert_eq!(SearchListing::evolve(state.clone(), &activated(3)), state);
    }

    #[test]
    fn the_state_follows_its_own_events() {
        let state = given(&[visible(5), hidden(out_of_stock()), visible(2)]);
        assert_eq!(state.status, ListingStatus::Visible);
        assert_eq!(state.listing, Some(listing(&gb(), 2)));
        assert!(state.reasons.is_empty());
        assert_eq!(state.version, 3);
    }
}

//! Step 4, inventory per (seller, sku, region): ∅ → STOCK_READY ↔ OUT_OF_STOCK, built from stock
//! at each location of the region. available = on hand − reserved, never below zero.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StockStatus {
    StockReady,
    OutOfStock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LocationStock {
    pub on_hand: i64,
    pub reserved: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub location: LocationId,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InventoryState {
    pub product_id: Option<ProductId>,
    pub seller: Option<SellerId>,
    pub sku: Option<Sku>,
    pub region: Option<RegionCode>,
    pub locations: BTreeMap<LocationId, LocationStock>,
    pub reservations: BTreeMap<ReservationId, Reservation>,
    /// None until the first stock arrives.
    pub status: Option<StockStatus>,
    pub version: i64,
}

impl InventoryState {
    /// Available across every location of the region.
    pub fn available(&self) -> i64 {
        self.locations
            .values()
            .map(|l| (l.on_hand - l.reserved).max(0))
            .sum()
    }
}

/// The inventory module decides on its commands: SetStock, ReserveStock, ReleaseReservation.
pub type InventoryInput = Command;

pub struct Inventory;

impl Aggregate for Inventory {
    type State = InventoryState;
    type Input = InventoryInput;

    fn decide(state: &InventoryState, input: &Command) -> Result<Vec<Event>, Vec<Reason>> {
        match input {
            Command::SetStock(c) => set_stock(state, c),
            Command::ReserveStock(c) => reserve(state, c),
            Command::ReleaseReservation(c) => release(state, c),
            other => Err(vec![Reason::new(
                "UNSUPPORTED_COMMAND",
                format!("the inventory module does not handle {}", other.type_name()),
            )]),
        }
    }

    fn evolve(mut state: InventoryState, event: &Event) -> InventoryState {
        match event {
            Event::StockAdjusted(e) => {
                state.identify(&e.line);
                state.locations.insert(
                    e.line.location.clone(),
                    LocationStock {
                        on_hand: e.on_hand,
                        reserved: e.reserved,
                    },
                );
            }
            Event::StockReserved(e) => {
                state.identify(&e.line);
                state
                    .locations
                    .entry(e.line.location.clone())
                    .or_default()
                    .reserved += e.quantity;
                state.reservations.insert(
                    e.reservation_id.clone(),
                    Reservation {
                        location: e.line.location.clone(),
                        quantity: e.quantity,
                    },
                );
            }
            Event::ReservationReleased(e) => {
                state.identify(&e.line);
                if let Some(stock) = state.locations.get_mut(&e.line.location) {
                    stock.reserved = (stock.reserved - e.quantity).max(0);
                }
                state.reservations.remove(&e.reservation_id);
            }
            Event::InventoryAvailable(_) => state.status = Some(StockStatus::StockReady),
            Event::InventoryDepleted(_) => state.status = Some(StockStatus::OutOfStock),
            _ => return state,
        }
        state.version += 1;
        state
    }
}

impl InventoryState {
    /// Available at one location (zero at a location never stocked).
    pub fn available_at(&self, location: &LocationId) -> i64 {
        self.locations
            .get(location)
            .map_or(0, |l| (l.on_hand - l.reserved).max(0))
    }

    fn identify(&mut self, line: &StockLine) {
        self.product_id = Some(line.product_id.clone());
        self.seller = Some(line.seller.clone());
        self.sku = Some(line.sku.clone());
        self.region = Some(line.region.clone());
    }

    /// The signal a change of the region's availability to `available` calls for, if any:
    /// InventoryAvailable when it rises from nothing, InventoryDepleted when it falls to nothing
    /// (or the first stock counted is nothing).
    fn transition(&self, line: &StockLine, available: i64) -> Option<Event> {
        match (self.status, available > 0) {
            (Some(StockStatus::StockReady), true) | (Some(StockStatus::OutOfStock), false) => None,
            (_, true) => Some(
                InventoryAvailable {
                    product_id: line.product_id.clone(),
                    seller: line.seller.clone(),
                    sku: line.sku.clone(),
                    region: line.region.clone(),
                    available,
                }
                .into(),
            ),
            (_, false) => Some(
                InventoryDepleted {
                    product_id: line.product_id.clone(),
                    seller: line.seller.clone(),
                    sku: line.sku.clone(),
                    region: line.region.clone(),
                }
                .into(),
            ),
        }
    }
}

/// One aggregate is one (seller, sku, region): a line naming another is misrouted.
fn check_line(state: &InventoryState, line: &StockLine) -> Result<(), Vec<Reason>> {
    fn same<T: PartialEq>(own: &Option<T>, theirs: &T) -> bool {
        own.as_ref().is_none_or(|o| o == theirs)
    }
    if same(&state.seller, &line.seller)
        && same(&state.sku, &line.sku)
        && same(&state.region, &line.region)
    {
        Ok(())
    } else {
        Err(vec![Reason::on_field(
            "LINE_MISMATCH",
            "line",
            format!(
                "this stock is seller '{}' sku '{}' in {}, not the line given",
                state
                    .seller
                    .as_ref()
                    .map(SellerId::as_str)
                    .unwrap_or_default(),
                state.sku.as_ref().map(Sku::as_str).unwrap_or_default(),
                state
                    .region
                    .as_ref()
                    .map(RegionCode::as_str)
                    .unwrap_or_default(),
            ),
        )])
    }
}

fn set_stock(state: &InventoryState, c: &SetStock) -> Result<Vec<Event>, Vec<Reason>> {
    check_line(state, &c.line)?;
    if c.on_hand < 0 {
        return Err(vec![Reason::on_field(
            "NEGATIVE_STOCK",
            "on_hand",
            "on hand must not be negative",
        )]);
    }
    let current = state.locations.get(&c.line.location);
    let reserved = current.map_or(0, |l| l.reserved);
    if c.on_hand < reserved {
        return Err(vec![Reason::on_field(
            "BELOW_RESERVED",
            "on_hand",
            format!(
                "{reserved} are reserved at location '{}'; on hand cannot be less",
                c.line.location
            ),
        )]);
    }
    if current.is_some_and(|l| l.on_hand == c.on_hand) {
        return Ok(vec![]);
    }
    let mut after = state.clone();
    after.locations.insert(
        c.line.location.clone(),
        LocationStock {
            on_hand: c.on_hand,
            reserved,
        },
    );
    let region_available = after.available();
    let mut events: Vec<Event> = vec![StockAdjusted {
        line: c.line.clone(),
        on_hand: c.on_hand,
        reserved,
        region_available,
    }
    .into()];
    events.extend(state.transition(&c.line, region_available));
    Ok(events)
}

fn reserve(state: &InventoryState, c: &ReserveStock) -> Result<Vec<Event>, Vec<Reason>> {
    check_line(state, &c.line)?;
    if c.quantity <= 0 {
        return Err(vec![Reason::on_field(
            "INVALID_QUANTITY",
            "quantity",
            "reserve at least one",
        )]);
    }
    if let Some(existing) = state.reservations.get(&c.reservation_id) {
        return if existing.location == c.line.location && existing.quantity == c.quantity {
            Ok(vec![])
        } else {
            Err(vec![Reason::on_field(
                "RESERVATION_EXISTS",
                "reservation_id",
                format!(
                    "reservation '{}' already exists for other stock",
                    c.reservation_id
                ),
            )])
        };
    }
    let at_location = state.available_at(&c.line.location);
    if c.quantity > at_location {
        return Err(vec![Reason::on_field(
            "INSUFFICIENT_STOCK",
            "quantity",
            format!(
                "only {at_location} available at location '{}'",
                c.line.location
            ),
        )]);
    }
    let region_available = state.available() - c.quantity;
    let mut events: Vec<Event> = vec![StockReserved {
        reservation_id: c.reservation_id.clone(),
        line: c.line.clone(),
        quantity: c.quantity,
        region_available,
    }
    .into()];
    events.extend(state.transition(&c.line, region_available));
    Ok(events)
}

fn release(state: &InventoryState, c: &ReleaseReservation) -> Result<Vec<Event>, Vec<Reason>> {
    check_line(state, &c.line)?;
    let reservation = state.reservations.get(&c.reservation_id).ok_or_else(|| {
        vec![Reason::on_field(
            "RESERVATION_NOT_FOUND",
            "reservation_id",
            format!("reservation '{}' does not exist", c.reservation_id),
        )]
    })?;
    // The reservation knows its location; the command's may be a guess.
    let line = StockLine {
        location: reservation.location.clone(),
        ..c.line.clone()
    };
    let region_available = state.available() + reservation.quantity;
    let mut events: Vec<Event> = vec![ReservationReleased {
        reservation_id: c.reservation_id.clone(),
        line: line.clone(),
        quantity: reservation.quantity,
        region_available,
    }
    .into()];
    events.extend(state.transition(&line, region_available));
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::replay;
    use proptest::prelude::*;

    fn given(events: &[Event]) -> InventoryState {
        replay::<Inventory>(events)
    }

    fn when(
        state: &InventoryState,
        command: impl Into<Command>,
    ) -> Result<Vec<Event>, Vec<Reason>> {
        Inventory::decide(state, &command.into())
    }

    fn at(location_: &str) -> StockLine {
        line("SKU-1", location_, "GB")
    }

    fn adjusted(location_: &str, on_hand: i64, reserved: i64, region_available: i64) -> Event {
        StockAdjusted {
            line: at(location_),
            on_hand,
            reserved,
            region_available,
        }
        .into()
    }

    fn available(n: i64) -> Event {
        InventoryAvailable {
            product_id: pid(),
            seller: seller("s1"),
            sku: sku("SKU-1"),
            region: region("GB"),
            available: n,
        }
        .into()
    }

    fn depleted() -> Event {
        InventoryDepleted {
            product_id: pid(),
            seller: seller("s1"),
            sku: sku("SKU-1"),
            region: region("GB"),
        }
        .into()
    }

    fn reserve(id: &str, location_: &str, quantity: i64) -> ReserveStock {
        ReserveStock {
            reservation_id: reservation(id),
            line: at(location_),
            quantity,
        }
    }

    fn reserved(id: &str, location_: &str, quantity: i64, region_available: i64) -> Event {
        StockReserved {
            reservation_id: reservation(id),
            line: at(location_),
            quantity,
            region_available,
        }
        .into()
    }

    fn release(id: &str) -> ReleaseReservation {
        ReleaseReservation {
            reservation_id: reservation(id),
            line: at("lon"),
        }
    }

    fn codes_and_fields(reasons: Vec<Reason>) -> Vec<(String, Option<String>)> {
        reasons.into_iter().map(|r| (r.code, r.field)).collect()
    }

    #[test]
    fn first_stock_makes_the_sku_ready_in_its_region() {
        let then = when(
            &given(&[]),
            SetStock {
                line: at("lon"),
                on_hand: 5,
            },
        );
        assert_eq!(then, Ok(vec![adjusted("lon", 5, 0, 5), available(5)]));
    }

    #[test]
    fn first_stock_of_nothing_is_out_of_stock() {
        let then = when(
            &given(&[]),
            SetStock {
                line: at("lon"),
                on_hand: 0,
            },
        );
        assert_eq!(then, Ok(vec![adjusted("lon", 0, 0, 0), depleted()]));
    }

    #[test]
    fn stock_at_another_location_adds_to_the_region_without_a_new_signal() {
        let state = given(&[adjusted("lon", 5, 0, 5), available(5)]);
        let then = when(
            &state,
            SetStock {
                line: at("man"),
                on_hand: 3,
            },
        );
        assert_eq!(then, Ok(vec![adjusted("man", 3, 0, 8)]));
    }

    #[test]
    fn stock_falling_to_nothing_depletes_and_rising_again_makes_available() {
        let state = given(&[adjusted("lon", 5, 0, 5), available(5)]);
        let then = when(
            &state,
            SetStock {
                line: at("lon"),
                on_hand: 0,
            },
        )
        .unwrap();
        assert_eq!(then, vec![adjusted("lon", 0, 0, 0), depleted()]);
        let state = then.iter().fold(state, Inventory::evolve);
        assert_eq!(state.status, Some(StockStatus::OutOfStock));
        let then = when(
            &state,
            SetStock {
                line: at("lon"),
                on_hand: 2,
            },
        );
        assert_eq!(then, Ok(vec![adjusted("lon", 2, 0, 2), available(2)]));
    }

    #[test]
    fn setting_the_same_stock_changes_nothing() {
        let state = given(&[adjusted("lon", 5, 0, 5), available(5)]);
        assert_eq!(
            when(
                &state,
                SetStock {
                    line: at("lon"),
                    on_hand: 5
                }
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn negative_stock_and_stock_below_reservations_are_refused() {
        let state = given(&[
            adjusted("lon", 5, 0, 5),
            available(5),
            reserved("r-1", "lon", 3, 2),
        ]);
        let refused = when(
            &state,
            SetStock {
                line: at("lon"),
                on_hand: -1,
            },
        )
        .unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [("NEGATIVE_STOCK".into(), Some("on_hand".into()))]
        );
        let refused = when(
            &state,
            SetStock {
                line: at("lon"),
                on_hand: 2,
            },
        )
        .unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [("BELOW_RESERVED".into(), Some("on_hand".into()))]
        );
        assert_eq!(
            when(
                &state,
                SetStock {
                    line: at("lon"),
                    on_hand: 3
                }
            )
            .unwrap()[0],
            adjusted("lon", 3, 3, 0)
        );
    }

    #[test]
    fn a_reservation_takes_from_one_location() {
        let state = given(&[
            adjusted("lon", 5, 0, 5),
            available(5),
            adjusted("man", 1, 0, 6),
        ]);
        assert_eq!(
            when(&state, reserve("r-1", "lon", 2)),
            Ok(vec![reserved("r-1", "lon", 2, 4)])
        );
        let refused = when(&state, reserve("r-1", "man", 2)).unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [("INSUFFICIENT_STOCK".into(), Some("quantity".into()))]
        );
        let refused = when(&state, reserve("r-1", "nowhere", 1)).unwrap_err();
        assert_eq!(refused[0].code, "INSUFFICIENT_STOCK");
    }

    #[test]
    fn reserving_the_last_unit_depletes_the_region() {
        let state = given(&[adjusted("lon", 2, 0, 2), available(2)]);
        let then = when(&state, reserve("r-1", "lon", 2));
        assert_eq!(then, Ok(vec![reserved("r-1", "lon", 2, 0), depleted()]));
    }

    #[test]
    fn a_reservation_needs_a_positive_quantity() {
        let state = given(&[adjusted("lon", 2, 0, 2), available(2)]);
        for quantity in [0, -1] {
            let refused = when(&state, reserve("r-1", "lon", quantity)).unwrap_err();
            assert_eq!(
                codes_and_fields(refused),
                [("INVALID_QUANTITY".into(), Some("quantity".into()))]
            );
        }
    }

    #[test]
    fn a_repeated_reservation_is_idempotent_and_a_conflicting_one_refused() {
        let state = given(&[
            adjusted("lon", 5, 0, 5),
            available(5),
            reserved("r-1", "lon", 2, 3),
        ]);
        assert_eq!(when(&state, reserve("r-1", "lon", 2)), Ok(vec![]));
        let refused = when(&state, reserve("r-1", "lon", 3)).unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [("RESERVATION_EXISTS".into(), Some("reservation_id".into()))]
        );
    }

    #[test]
    fn releasing_returns_stock_and_makes_a_depleted_region_available() {
        let state = given(&[
            adjusted("lon", 2, 0, 2),
            available(2),
            reserved("r-1", "lon", 2, 0),
            depleted(),
        ]);
        let then = when(&state, release("r-1")).unwrap();
        let released: Event = ReservationReleased {
            reservation_id: reservation("r-1"),
            line: at("lon"),
            quantity: 2,
            region_available: 2,
        }
        .into();
        assert_eq!(then, vec![released, available(2)]);
        let state = then.iter().fold(state, Inventory::evolve);
        assert!(state.reservations.is_empty());
        assert_eq!(
            state.locations[&location("lon")],
            LocationStock {
                on_hand: 2,
                reserved: 0
            }
        );
        let refused = when(&state, release("r-1")).unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [(
                "RESERVATION_NOT_FOUND".into(),
                Some("reservation_id".into())
            )]
        );
    }

    #[test]
    fn a_release_names_the_reservations_location() {
        let state = given(&[
            adjusted("man", 2, 0, 2),
            available(2),
            reserved("r-1", "man", 1, 1),
        ]);
        let then = when(&state, release("r-1")).unwrap();
        let released_at = |r: &ReservationReleased| r.line.location == location("man");
        assert!(matches!(&then[..], [Event::ReservationReleased(r)] if released_at(r)));
    }

    #[test]
    fn a_line_for_another_seller_sku_or_region_is_refused() {
        let state = given(&[adjusted("lon", 2, 0, 2), available(2)]);
        let refused = when(
            &state,
            SetStock {
                line: line("SKU-1", "mum", "IN"),
                on_hand: 1,
            },
        )
        .unwrap_err();
        assert_eq!(refused[0].code, "LINE_MISMATCH");
    }

    #[test]
    fn the_state_knows_its_line_and_counts_its_events() {
        let state = given(&[
            adjusted("lon", 2, 0, 2),
            available(2),
            reserved("r-1", "lon", 1, 1),
        ]);
        assert_eq!(state.version, 3);
        assert_eq!(state.seller, Some(seller("s1")));
        assert_eq!(state.region, Some(region("GB")));
        assert_eq!(state.available(), 1);
        assert_eq!(state.available_at(&location("lon")), 1);
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        let loc = prop_oneof![Just("lon"), Just("man")];
        let id = prop_oneof![Just("r-1"), Just("r-2"), Just("r-3")];
        prop_oneof![
            (loc.clone(), -2i64..8).prop_map(|(l, on_hand)| SetStock {
                line: at(l),
                on_hand
            }
            .into()),
            (id.clone(), loc, -1i64..5).prop_map(|(r, l, q)| reserve(r, l, q).into()),
            id.prop_map(|r| release(r).into()),
        ]
    }

    proptest! {
        #[test]
        fn available_never_drops_below_zero_and_replay_rebuilds_the_state(
            commands in proptest::collection::vec(arb_command(), 0..40)
        ) {
            let mut state = InventoryState::default();
            let mut log = Vec::new();
            for command in &commands {
                let Ok(events) = Inventory::decide(&state, command) else { continue };
                for event in &events {
                    state = Inventory::evolve(state, event);
                    let reported = match event {
                        Event::StockAdjusted(e) => Some(e.region_available),
                        Event::StockReserved(e) => Some(e.region_available),
                        Event::ReservationReleased(e) => Some(e.region_available),
                        _ => None,
                    };
                    if let Some(reported) = reported {
                        prop_assert_eq!(reported, state.available());
                    }
                }
                log.extend(events);
                for (location, stock) in &state.locations {
                    prop_assert!(stock.on_hand - stock.reserved >= 0, "{location}: {stock:?}");
                    let held: i64 = state
                        .reservations
                        .values()
                        .filter(|r| &r.location == location)
                        .map(|r| r.quantity)
                        .sum();
                    prop_assert_eq!(held, stock.reserved);
                }
                prop_assert!(state.available() >= 0);
                if let Some(status) = state.status {
                    prop_assert_eq!(status == StockStatus::StockReady, state.available() > 0);
                }
            }
            prop_assert_eq!(state.version, log.len() as i64);
            prop_assert_eq!(&replay::<Inventory>(&log), &state);
            let row = serde_json::to_string(&state).expect("serialise");
            let back: InventoryState = serde_json::from_str(&row).expect("deserialise");
            prop_assert_eq!(back, state);
        }
    }
}

//! Step 4, inventory per (seller, sku, region): ∅ → STOCK_READY ↔ OUT_OF_STOCK, built from stock
//! at each location of the region. available = on hand − reserved, never below zero.
//!
//! A reservation holds units for an order system (DESIGN §9): at one location, or across the
//! region's locations (the most available first, all or nothing), until it is released,
//! committed (an order was placed: the units leave on hand) or it expires (the processor's timer
//! decides [`InventoryInput::Expire`]). A hold that cannot be made is an event too
//! (ReservationFailed, with what was asked and what was there), so every request has an outcome.
//! A request is applied once by its reservation id: one under way or finished lately is
//! answered by what it became, with no new event.

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

/// A hold, by location.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reservation {
    /// Units held at each location.
    #[serde(default)]
    pub holds: BTreeMap<LocationId, i64>,
    /// When it lapses, micros since the epoch (none: until released or committed).
    #[serde(default)]
    pub expires_at: Option<Micros>,
    /// Rows written before holds could span locations: one location and its quantity.
    #[serde(default, skip_serializing)]
    location: Option<LocationId>,
    #[serde(default, skip_serializing)]
    quantity: i64,
}

impl Reservation {
    /// Units held at each location (an older row's single hold included).
    pub fn held(&self) -> BTreeMap<LocationId, i64> {
        let mut held = self.holds.clone();
        if let Some(l) = &self.location {
            *held.entry(l.clone()).or_default() += self.quantity;
        }
        held
    }

    pub fn quantity(&self) -> i64 {
        self.held().values().sum()
    }
}

/// What became of a reservation that is no longer held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Finished {
    Failed,
    Released,
    Committed,
    Expired,
}

/// Reservations finished lately that a request naming them again is answered from.
pub const FINISHED_KEPT: usize = 256;

/// A reservation's own row: held, or what became of it (the inbox a repeated request is
/// answered from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldRow {
    Held(Reservation),
    Finished(Finished),
}

impl InventoryInput {
    /// The reservation the input is about, if any.
    pub fn reservation(&self) -> Option<&ReservationId> {
        match self {
            InventoryInput::Command(Command::ReserveStock(c)) => Some(&c.reservation_id),
            InventoryInput::Command(Command::ReleaseReservation(c)) => Some(&c.reservation_id),
            InventoryInput::Command(Command::CommitReservation(c)) => Some(&c.reservation_id),
            InventoryInput::Command(_) => None,
            InventoryInput::Expire { reservation_id, .. } => Some(reservation_id),
        }
    }
}

impl InventoryState {
    /// The row of reservation `id` as this state has it (none: never heard of here).
    pub fn hold_row(&self, id: &ReservationId) -> Option<HoldRow> {
        match (self.reservations.get(id), self.finished_as(id)) {
            (Some(r), _) => Some(HoldRow::Held(r.clone())),
            (None, Some(f)) => Some(HoldRow::Finished(f)),
            (None, None) => None,
        }
    }

    /// Puts reservation `id`'s row into the state, for a decision about it.
    pub fn with_hold(mut self, id: &ReservationId, row: Option<HoldRow>) -> Self {
        match row {
            Some(HoldRow::Held(r)) => {
                self.reservations.insert(id.clone(), r);
            }
            Some(HoldRow::Finished(f)) => self.finished.push_back((id.clone(), f)),
            None => {}
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InventoryState {
    pub product_id: Option<ProductId>,
    pub seller: Option<SellerId>,
    pub sku: Option<Sku>,
    pub region: Option<RegionCode>,
    pub locations: BTreeMap<LocationId, LocationStock>,
    /// Holds under way. The processor keeps each in a row of its own ([`HoldRow`]) and puts
    /// here only the one a decision is about, so that a SKU with many holds (a flash sale)
    /// costs no more per request than one with a few; never written with the aggregate's row.
    #[serde(default, skip_serializing)]
    pub reservations: BTreeMap<ReservationId, Reservation>,
    /// Reservations finished lately, oldest first (at most [`FINISHED_KEPT`]); like
    /// `reservations`, the processor keeps them in rows of their own.
    #[serde(default, skip_serializing)]
    pub finished: std::collections::VecDeque<(ReservationId, Finished)>,
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

/// What the inventory module decides on: its commands (SetStock, ReserveStock,
/// ReleaseReservation, CommitReservation), and a reservation's timer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum InventoryInput {
    Command(Command),
    /// The reservation's expiry is due at `now`.
    Expire {
        reservation_id: ReservationId,
        now: Micros,
    },
}

pub struct Inventory;

impl Aggregate for Inventory {
    type State = InventoryState;
    type Input = InventoryInput;

    fn decide(state: &InventoryState, input: &InventoryInput) -> Result<Vec<Event>, Vec<Reason>> {
        match input {
            InventoryInput::Command(Command::SetStock(c)) => set_stock(state, c),
            InventoryInput::Command(Command::ReserveStock(c)) => reserve(state, c),
            InventoryInput::Command(Command::ReleaseReservation(c)) => {
                end_hold(state, &c.reservation_id, &c.line, End::Release)
            }
            InventoryInput::Command(Command::CommitReservation(c)) => {
                end_hold(state, &c.reservation_id, &c.line, End::Commit)
            }
            InventoryInput::Command(other) => Err(vec![Reason::new(
                "UNSUPPORTED_COMMAND",
                format!("the inventory module does not handle {}", other.type_name()),
            )]),
            InventoryInput::Expire {
                reservation_id,
                now,
            } => Ok(expire(state, reservation_id, *now)),
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
                let r = state
                    .reservations
                    .entry(e.reservation_id.clone())
                    .or_default();
                *r.holds.entry(e.line.location.clone()).or_default() += e.quantity;
                r.expires_at = e.expires_at;
            }
            Event::ReservationReleased(e) => {
                state.identify(&e.line);
                state.unhold(&e.reservation_id, &e.line.location, e.quantity, 0);
                state.finish(&e.reservation_id, Finished::Released);
            }
            Event::ReservationExpired(e) => {
                state.identify(&e.line);
                state.unhold(&e.reservation_id, &e.line.location, e.quantity, 0);
                state.finish(&e.reservation_id, Finished::Expired);
            }
            Event::ReservationCommitted(e) => {
                state.identify(&e.line);
                state.unhold(&e.reservation_id, &e.line.location, e.quantity, e.quantity);
                state.finish(&e.reservation_id, Finished::Committed);
            }
            Event::ReservationFailed(e) => {
                state.identify(&e.line);
                state.finish(&e.reservation_id, Finished::Failed);
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
    /// The line this aggregate is (its location is any of the region's), once it has one.
    pub fn line_of(&self) -> Option<StockLine> {
        Some(StockLine {
            product_id: self.product_id.clone()?,
            seller: self.seller.clone()?,
            sku: self.sku.clone()?,
            location: self.locations.keys().next()?.clone(),
            region: self.region.clone()?,
        })
    }

    /// Available at one location (zero at a location never stocked).
    pub fn available_at(&self, location: &LocationId) -> i64 {
        self.locations
            .get(location)
            .map_or(0, |l| (l.on_hand - l.reserved).max(0))
    }

    /// Gives back `quantity` held for `id` at `location`, `sold` of them leaving on hand.
    fn unhold(&mut self, id: &ReservationId, location: &LocationId, quantity: i64, sold: i64) {
        if let Some(stock) = self.locations.get_mut(location) {
            stock.reserved = (stock.reserved - quantity).max(0);
            stock.on_hand = (stock.on_hand - sold).max(0);
        }
        if let Some(r) = self.reservations.get_mut(id) {
            let mut held = r.held();
            held.remove(location);
            r.holds = held;
            r.location = None;
            r.quantity = 0;
        }
    }

    /// Records what became of a reservation once none of it is held.
    fn finish(&mut self, id: &ReservationId, how: Finished) {
        if self.reservations.get(id).is_some_and(|r| r.quantity() > 0) {
            return;
        }
        self.reservations.remove(id);
        self.finished.retain(|(f, _)| f != id);
        self.finished.push_back((id.clone(), how));
        while self.finished.len() > FINISHED_KEPT {
            self.finished.pop_front();
        }
    }

    /// What became of a reservation finished lately.
    pub fn finished_as(&self, id: &ReservationId) -> Option<Finished> {
        self.finished.iter().find(|(f, _)| f == id).map(|(_, h)| *h)
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
        let same_place = c.region_wide || existing.held().contains_key(&c.line.location);
        return if same_place && existing.quantity() == c.quantity {
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
    // Asked before and finished since (failed, released, committed, expired): applied once.
    if state.finished_as(&c.reservation_id).is_some() {
        return Ok(vec![]);
    }
    let plan = match hold_plan(state, c) {
        Ok(plan) => plan,
        Err(available) => {
            return Ok(vec![ReservationFailed {
                reservation_id: c.reservation_id.clone(),
                line: c.line.clone(),
                requested: c.quantity,
                available,
                region_wide: c.region_wide,
            }
            .into()])
        }
    };
    let mut region_available = state.available();
    let mut events: Vec<Event> = Vec::new();
    for (location, quantity) in plan {
        region_available -= quantity;
        events.push(
            StockReserved {
                reservation_id: c.reservation_id.clone(),
                line: StockLine {
                    location,
                    ..c.line.clone()
                },
                quantity,
                region_available,
                expires_at: c.expires_at,
            }
            .into(),
        );
    }
    events.extend(state.transition(&c.line, region_available));
    Ok(events)
}

/// Where a reservation's units are held, or the units available where it asked when there are
/// too few. At one location; region-wide, the most available locations first (by id on a tie),
/// taking what each has until the quantity is met.
fn hold_plan(state: &InventoryState, c: &ReserveStock) -> Result<Vec<(LocationId, i64)>, i64> {
    if !c.region_wide {
        let at = state.available_at(&c.line.location);
        return if at >= c.quantity {
            Ok(vec![(c.line.location.clone(), c.quantity)])
        } else {
            Err(at)
        };
    }
    let total = state.available();
    if total < c.quantity {
        return Err(total);
    }
    let mut by_available: Vec<(LocationId, i64)> = state
        .locations
        .keys()
        .map(|l| (l.clone(), state.available_at(l)))
        .filter(|(_, a)| *a > 0)
        .collect();
    by_available.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut left = c.quantity;
    let mut plan = Vec::new();
    for (location, available) in by_available {
        if left == 0 {
            break;
        }
        let take = available.min(left);
        plan.push((location, take));
        left -= take;
    }
    Ok(plan)
}

/// How a hold ends on a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Release,
    Commit,
}

fn end_hold(
    state: &InventoryState,
    id: &ReservationId,
    line: &StockLine,
    end: End,
) -> Result<Vec<Event>, Vec<Reason>> {
    check_line(state, line)?;
    let Some(reservation) = state.reservations.get(id) else {
        // Asked again after it ended the same way: applied once. Ended otherwise: refused.
        return match (state.finished_as(id), end) {
            (Some(Finished::Released), End::Release)
            | (Some(Finished::Committed), End::Commit)
            | (Some(Finished::Expired | Finished::Failed), End::Release) => Ok(vec![]),
            (Some(how), _) => Err(vec![Reason::on_field(
                "RESERVATION_NOT_HELD",
                "reservation_id",
                format!(
                    "reservation '{id}' is no longer held: it {}",
                    match how {
                        Finished::Failed => "failed",
                        Finished::Released => "was released",
                        Finished::Committed => "was committed",
                        Finished::Expired => "expired",
                    }
                ),
            )]),
            (None, _) => Err(vec![Reason::on_field(
                "RESERVATION_NOT_FOUND",
                "reservation_id",
                format!("reservation '{id}' does not exist"),
            )]),
        };
    };
    let mut region_available = state.available();
    let mut events: Vec<Event> = Vec::new();
    for (location, quantity) in reservation.held() {
        // The reservation knows its locations; the command's may be a guess.
        let line = StockLine {
            location: location.clone(),
            ..line.clone()
        };
        let on_hand = state.locations.get(&location).map_or(0, |l| l.on_hand);
        events.push(match end {
            End::Release => {
                region_available += quantity;
                ReservationReleased {
                    reservation_id: id.clone(),
                    line,
                    quantity,
                    region_available,
                }
                .into()
            }
            End::Commit => ReservationCommitted {
                reservation_id: id.clone(),
                line,
                quantity,
                on_hand: (on_hand - quantity).max(0),
                region_available,
            }
            .into(),
        });
    }
    events.extend(state.transition(line, region_available));
    Ok(events)
}

/// A reservation's timer: it lapses if it is still held and its expiry has come.
fn expire(state: &InventoryState, id: &ReservationId, now: Micros) -> Vec<Event> {
    let (Some(reservation), Some(line)) = (state.reservations.get(id), state.line_of()) else {
        return vec![];
    };
    if reservation.expires_at.is_none_or(|at| at > now) {
        return vec![];
    }
    let mut region_available = state.available();
    let mut events: Vec<Event> = Vec::new();
    for (location, quantity) in reservation.held() {
        region_available += quantity;
        events.push(
            ReservationExpired {
                reservation_id: id.clone(),
                line: StockLine {
                    location,
                    ..line.clone()
                },
                quantity,
                region_available,
            }
            .into(),
        );
    }
    events.extend(state.transition(&line, region_available));
    events
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
        Inventory::decide(state, &InventoryInput::Command(command.into()))
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
            expires_at: None,
            region_wide: false,
        }
    }

    fn reserved(id: &str, location_: &str, quantity: i64, region_available: i64) -> Event {
        StockReserved {
            reservation_id: reservation(id),
            line: at(location_),
            quantity,
            region_available,
            expires_at: None,
        }
        .into()
    }

    fn failed(id: &str, location_: &str, requested: i64, available: i64) -> Event {
        ReservationFailed {
            reservation_id: reservation(id),
            line: at(location_),
            requested,
            available,
            region_wide: false,
        }
        .into()
    }

    fn commit(id: &str) -> CommitReservation {
        CommitReservation {
            reservation_id: reservation(id),
            line: at("lon"),
        }
    }

    fn expire(state: &InventoryState, id: &str, now: Micros) -> Vec<Event> {
        Inventory::decide(
            state,
            &InventoryInput::Expire {
                reservation_id: reservation(id),
                now,
            },
        )
        .expect("a timer is never refused")
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
        // Too few there: the request fails as an event, with what was asked and what was there.
        assert_eq!(
            when(&state, reserve("r-1", "man", 2)),
            Ok(vec![failed("r-1", "man", 2, 1)])
        );
        assert_eq!(
            when(&state, reserve("r-1", "nowhere", 1)),
            Ok(vec![failed("r-1", "nowhere", 1, 0)])
        );
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
        // Released again: applied once, nothing more. Never held: not found.
        assert_eq!(when(&state, release("r-1")), Ok(vec![]));
        let refused = when(&state, release("r-9")).unwrap_err();
        assert_eq!(
            codes_and_fields(refused),
            [(
                "RESERVATION_NOT_FOUND".into(),
                Some("reservation_id".into())
            )]
        );
    }

    #[test]
    fn a_region_wide_hold_takes_the_most_available_locations_first_all_or_nothing() {
        let state = given(&[
            adjusted("lon", 2, 0, 2),
            available(2),
            adjusted("man", 5, 0, 7),
            adjusted("bri", 1, 0, 8),
        ]);
        let wide = |id: &str, quantity| ReserveStock {
            region_wide: true,
            expires_at: Some(1_000),
            ..reserve(id, "any", quantity)
        };
        let then = when(&state, wide("r-1", 6)).unwrap();
        let held: Vec<(String, i64, i64)> = then
            .iter()
            .map(|e| match e {
                Event::StockReserved(r) => {
                    (r.line.location.to_string(), r.quantity, r.region_available)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(held, [("man".into(), 5, 3), ("lon".into(), 1, 2)]);
        let state = then.iter().fold(state, Inventory::evolve);
        assert_eq!(state.reservations[&reservation("r-1")].quantity(), 6);
        // More than the region has: nothing is held.
        let then = when(&state, wide("r-2", 3)).unwrap();
        assert!(
            matches!(&then[..], [Event::ReservationFailed(f)] if f.requested == 3 && f.available == 2 && f.region_wide)
        );
        // A release gives back every location's part.
        let then = when(&state, release("r-1")).unwrap();
        assert_eq!(then.len(), 2);
        let state = then.iter().fold(state, Inventory::evolve);
        assert_eq!(state.available(), 8);
    }

    #[test]
    fn a_commit_takes_the_held_units_off_hand_and_an_expiry_gives_them_back() {
        let state = given(&[adjusted("lon", 3, 0, 3), available(3)]);
        let held = |id: &str, q| ReserveStock {
            expires_at: Some(1_000),
            ..reserve(id, "lon", q)
        };
        let then = when(&state, held("r-1", 1)).unwrap();
        let state = then.iter().fold(state, Inventory::evolve);
        let then = when(&state, held("r-2", 2)).unwrap();
        assert!(then.contains(&depleted()), "fully held: out of stock");
        let state = then.iter().fold(state, Inventory::evolve);

        let then = when(&state, commit("r-1")).unwrap();
        let committed: Event = ReservationCommitted {
            reservation_id: reservation("r-1"),
            line: at("lon"),
            quantity: 1,
            on_hand: 2,
            region_available: 0,
        }
        .into();
        assert_eq!(then, vec![committed]);
        let state = then.iter().fold(state, Inventory::evolve);
        assert_eq!(
            state.locations[&location("lon")],
            LocationStock {
                on_hand: 2,
                reserved: 2
            }
        );
        assert_eq!(when(&state, commit("r-1")), Ok(vec![]), "committed once");

        // Not due yet: nothing. Due: it lapses, and the region has stock again.
        assert_eq!(expire(&state, "r-2", 999), vec![]);
        let then = expire(&state, "r-2", 1_000);
        let expired: Event = ReservationExpired {
            reservation_id: reservation("r-2"),
            line: at("lon"),
            quantity: 2,
            region_available: 2,
        }
        .into();
        assert_eq!(then, vec![expired, available(2)]);
        let state = then.iter().fold(state, Inventory::evolve);
        assert_eq!(expire(&state, "r-2", 2_000), vec![], "expires once");
        assert_eq!(
            when(&state, release("r-2")),
            Ok(vec![]),
            "a late release changes nothing"
        );
        let refused = when(&state, commit("r-2")).unwrap_err();
        assert_eq!(refused[0].code, "RESERVATION_NOT_HELD");
        assert!(refused[0].message.contains("expired"), "{refused:?}");
        // Asked again after it expired: applied once, not held again.
        assert_eq!(when(&state, held("r-2", 2)), Ok(vec![]));
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
            (id.clone(), loc, -1i64..5, any::<bool>(), any::<bool>()).prop_map(
                |(r, l, q, wide, expires)| ReserveStock {
                    region_wide: wide,
                    expires_at: expires.then_some(10),
                    ..reserve(r, l, q)
                }
                .into()
            ),
            id.clone().prop_map(|r| release(r).into()),
            id.prop_map(|r| commit(r).into()),
        ]
    }

    fn arb_input() -> impl Strategy<Value = InventoryInput> {
        prop_oneof![
            4 => arb_command().prop_map(InventoryInput::Command),
            1 => (prop_oneof![Just("r-1"), Just("r-2"), Just("r-3")], 0i64..20).prop_map(
                |(r, now)| InventoryInput::Expire { reservation_id: reservation(r), now }
            ),
        ]
    }

    proptest! {
        #[test]
        fn available_never_drops_below_zero_and_replay_rebuilds_the_state(
            commands in proptest::collection::vec(arb_input(), 0..40)
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
                        Event::ReservationCommitted(e) => Some(e.region_available),
                        Event::ReservationExpired(e) => Some(e.region_available),
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
                        .filter_map(|r| r.held().get(location).copied())
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
            // The aggregate's row carries no holds (they have rows of their own).
            let row = serde_json::to_string(&state).expect("serialise");
            let back: InventoryState = serde_json::from_str(&row).expect("deserialise");
            prop_assert_eq!(
                back,
                InventoryState {
                    reservations: BTreeMap::new(),
                    finished: Default::default(),
                    ..state
                }
            );
        }
    }
}

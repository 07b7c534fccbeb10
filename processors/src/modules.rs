//! The seven processors: each wires one domain core to its topics and its projection rows.

use crate::domain::activation::{self, Activation, ActivationInput, ActivationState};
use crate::domain::channel::{
    ChannelContext, ChannelDecision, ChannelInput, ChannelListings, ChannelState, TenantChannels,
};
use crate::domain::compliance::{Compliance, ComplianceInput, ComplianceState, RegionRules};
use crate::domain::inventory::{Finished, HoldRow, Inventory, InventoryInput, InventoryState};
use crate::domain::listing::{ListingState, SearchListing};
use crate::domain::offer::{Offer, OfferState};
use crate::domain::product::{Product, ProductInput, ProductState};
use crate::domain::variant::{VariantSetState, Variants};
use crate::domain::Aggregate;
use crate::runtime::{Cause, Ctx, HandleError, Input, Processor};
use crate::store::{hold_key, inventory_key, key, tables};
use porch_schemas::*;
use porch_topics::{commands_topic, events_topic};
use std::collections::{BTreeMap, HashMap};

/// Decides on `input` against the row at `row_key`, applies and emits the events, saves the
/// row. `after` tells each emitted event's aggregate id and version from the evolved state.
fn decide_and_apply<A: Aggregate>(
    ctx: &mut Ctx<'_, '_>,
    table: &str,
    row_key: &str,
    input: &A::Input,
    absorbed: Option<&Event>,
    after: impl Fn(&A::State, &Event) -> (String, i64),
) -> Result<Result<(), Vec<Reason>>, HandleError> {
    decide_and_keep::<A>(ctx, table, row_key, input, absorbed, after).map(|(r, _)| r)
}

/// A decision (applied, or refused with reasons) and the state after it.
type Decided<S> = (Result<(), Vec<Reason>>, S);

/// `decide_and_apply`, also returning the state as it is after the decision.
fn decide_and_keep<A: Aggregate>(
    ctx: &mut Ctx<'_, '_>,
    table: &str,
    row_key: &str,
    input: &A::Input,
    absorbed: Option<&Event>,
    after: impl Fn(&A::State, &Event) -> (String, i64),
) -> Result<Decided<A::State>, HandleError> {
    let state: A::State = ctx.load(table, row_key)?;
    decide_from::<A>(ctx, table, row_key, state, input, absorbed, after)
}

/// `decide_and_keep` from a state the caller loaded (and completed).
fn decide_from<A: Aggregate>(
    ctx: &mut Ctx<'_, '_>,
    table: &str,
    row_key: &str,
    state: A::State,
    input: &A::Input,
    absorbed: Option<&Event>,
    after: impl Fn(&A::State, &Event) -> (String, i64),
) -> Result<Decided<A::State>, HandleError> {
    let events = match A::decide(&state, input) {
        Ok(events) => events,
        Err(reasons) => return Ok((Err(reasons), state)),
    };
    let mut s = match absorbed {
        Some(e) => A::evolve(state.clone(), e),
        None => state.clone(),
    };
    for e in events {
        s = A::evolve(s, &e);
        let (aggregate_id, version) = after(&s, &e);
        ctx.emit(e, &aggregate_id, version)?;
    }
    if s != state {
        ctx.save(table, row_key, &s)?;
    }
    Ok((Ok(()), s))
}

/// Finishes a command: APPLIED, or REJECTED with its reasons.
fn outcome(
    ctx: &mut Ctx<'_, '_>,
    product: &ProductId,
    r: Result<(), Vec<Reason>>,
) -> Result<(), HandleError> {
    match r {
        Ok(()) => ctx.applied(product),
        Err(reasons) => ctx.reject(product, reasons),
    }
}

/// The keys of a timer table (`<due micros, 20 digits>/…`) whose time has come by `now`, the
/// first 256 in time order.
fn due_timers(ctx: &Ctx<'_, '_>, table: &str, now: Micros) -> Result<Vec<String>, HandleError> {
    Ok(ctx
        .scan(table, "", 256)?
        .into_iter()
        .map(|(k, _)| k)
        .take_while(|k| {
            k.get(..20)
                .and_then(|t| t.parse::<i64>().ok())
                .is_some_and(|t| t <= now)
        })
        .collect())
}

/// A conditional command (`If-Match`) applies only to the version its sender saw: at any other,
/// it is refused with VERSION_CONFLICT and changes nothing.
fn expected_version(c: &CommandRecord, current: i64, what: &str) -> Result<(), Vec<Reason>> {
    match c.envelope.expected_version {
        Some(expected) if expected != current => Err(vec![Reason::on_field(
            "VERSION_CONFLICT",
            "If-Match",
            format!("the {what} is at version {current}, not {expected}: read it again"),
        )]),
        _ => Ok(()),
    }
}

fn wrong_input(module: Module, what: &str) -> HandleError {
    HandleError::Poison(format!("{module} does not handle {what}"))
}

// ---------------------------------------------------------------- step 1: product

pub struct ProductProcessor;

impl Processor for ProductProcessor {
    fn name(&self) -> &'static str {
        Module::Product.as_str()
    }
    fn inputs(&self) -> Vec<String> {
        vec![
            commands_topic(Module::Product),
            events_topic(Module::Search),
        ]
    }
    fn output(&self) -> String {
        events_topic(Module::Product)
    }
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError> {
        let (tenant, product, pinput) = match input {
            Input::Command(c) if c.command.module() == Module::Product => (
                &c.envelope.tenant,
                c.command.product_id().clone(),
                ProductInput::Command(c.command.clone()),
            ),
            Input::Command(c) => return Err(wrong_input(Module::Product, c.command.full_name())),
            Input::Event(e) => match &e.event {
                Event::ListingVisible(v) => (
                    &e.envelope.tenant,
                    v.listing.product_id.clone(),
                    ProductInput::ListingVisible(v.clone()),
                ),
                _ => return Ok(()),
            },
        };
        let row = key(&[tenant.as_str(), product.as_str()]);
        let pid = product.to_string();
        let state: ProductState = ctx.load(tables::PRODUCT, &row)?;
        if let Input::Command(c) = input {
            if let Err(conflict) = expected_version(c, state.version, "product") {
                return outcome(ctx, &product, Err(conflict));
            }
        }
        let (r, _) = decide_from::<Product>(
            ctx,
            tables::PRODUCT,
            &row,
            state,
            &pinput,
            None,
            |s: &ProductState, _| (pid.clone(), s.version),
        )?;
        match input {
            Input::Command(_) => outcome(ctx, &product, r),
            Input::Event(_) => Ok(()),
        }
    }
}

// ---------------------------------------------------------------- step 2: variants

pub struct VariantProcessor;

impl Processor for VariantProcessor {
    fn name(&self) -> &'static str {
        Module::Variant.as_str()
    }
    fn inputs(&self) -> Vec<String> {
        vec![commands_topic(Module::Variant)]
    }
    fn output(&self) -> String {
        events_topic(Module::Variant)
    }
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError> {
        let Input::Command(c) = input else {
            return Ok(());
        };
        if c.command.module() != Module::Variant {
            return Err(wrong_input(Module::Variant, c.command.full_name()));
        }
        let product = c.command.product_id().clone();
        let row = key(&[c.envelope.tenant.as_str(), product.as_str()]);
        let pid = product.to_string();
        let r = decide_and_apply::<Variants>(
            ctx,
            tables::VARIANT,
            &row,
            &c.command,
            None,
            |s: &VariantSetState, _| (pid.clone(), s.version),
        )?;
        outcome(ctx, &product, r)
    }
}

// ---------------------------------------------------------------- step 3: offers

pub struct OfferProcessor;

impl Processor for OfferProcessor {
    fn name(&self) -> &'static str {
        Module::Offer.as_str()
    }
    fn inputs(&self) -> Vec<String> {
        vec![commands_topic(Module::Offer)]
    }
    fn output(&self) -> String {
        events_topic(Module::Offer)
    }
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError> {
        let Input::Command(c) = input else {
            return Ok(());
        };
        let offer_id = match &c.command {
            Command::CreateOffer(o) => o.offer.offer_id.clone(),
            Command::UpdateOffer(o) => o.offer_id.clone(),
            Command::WithdrawOffer(o) => o.offer_id.clone(),
            other => return Err(wrong_input(Module::Offer, other.full_name())),
        };
        let product = c.command.product_id().clone();
        let row = key(&[
            c.envelope.tenant.as_str(),
            product.as_str(),
            offer_id.as_str(),
        ]);
        let oid = offer_id.to_string();
        let state: OfferState = ctx.load(tables::OFFER, &row)?;
        if let Err(conflict) = expected_version(c, state.version, "offer") {
            return outcome(ctx, &product, Err(conflict));
        }
        let (r, _) = decide_from::<Offer>(
            ctx,
            tables::OFFER,
            &row,
            state,
            &c.command,
            None,
            |s: &OfferState, _| (oid.clone(), s.version),
        )?;
        outcome(ctx, &product, r)
    }
}

// ---------------------------------------------------------------- step 4: inventory

pub struct InventoryProcessor;

/// Order systems' reservation requests (ReserveStock, ReleaseReservation, CommitReservation),
/// keyed like every domain topic: the inventory processor's second input.
pub const RESERVATION_REQUESTS: &str = "inventory.reservation.requests";
/// One ReservationOutcome per reservation request decided, and per hold expired.
pub const RESERVATION_OUTCOMES: &str = "inventory.reservation.outcomes";

/// The outcome of a decision about reservation `id`: what the reservation is after it (held,
/// or how it ended), or REJECTED with the reasons the request was refused for.
fn reservation_outcome(
    id: &ReservationId,
    line: &StockLine,
    request_id: Option<String>,
    decided: &Result<(), Vec<Reason>>,
    before: &InventoryState,
    after: &InventoryState,
) -> ReservationOutcome {
    let mut outcome = ReservationOutcome {
        reservation_id: id.clone(),
        request_id,
        product_id: line.product_id.clone(),
        seller: line.seller.clone(),
        sku: line.sku.clone(),
        region: line.region.clone(),
        result: String::new(),
        quantity: 0,
        requested: None,
        available: None,
        expires_at: None,
        reasons: vec![],
    };
    // The units the hold had: from before the decision when it ended with it.
    let had = before
        .reservations
        .get(id)
        .or_else(|| after.reservations.get(id))
        .map_or(0, |r| r.quantity());
    outcome.result = match (decided, after.reservations.get(id), after.finished_as(id)) {
        (Err(reasons), _, _) => {
            outcome.reasons = reasons.clone();
            "REJECTED"
        }
        (Ok(()), Some(held), _) => {
            outcome.quantity = held.quantity();
            outcome.expires_at = held.expires_at;
            "RESERVED"
        }
        (Ok(()), None, Some(Finished::Failed)) => "FAILED",
        (Ok(()), None, Some(Finished::Released)) => {
            outcome.quantity = had;
            "RELEASED"
        }
        (Ok(()), None, Some(Finished::Committed)) => {
            outcome.quantity = had;
            "COMMITTED"
        }
        (Ok(()), None, Some(Finished::Expired)) => {
            outcome.quantity = had;
            "EXPIRED"
        }
        (Ok(()), None, None) => "REJECTED",
    }
    .to_string();
    outcome
}

/// The row of a (seller, sku, region) aggregate: `tenant/product/seller/sku/region`.
fn inventory_row(tenant: &TenantId, line: &StockLine) -> String {
    inventory_key(
        tenant,
        &line.product_id,
        &line.seller,
        &line.sku,
        &line.region,
    )
}

/// A hold's timer key: its expiry first (timers are walked in time order), then the tenant and
/// product (whose task owns it), the rest of its aggregate's row key and the reservation.
fn expiry_key(at: Micros, row: &str, id: &ReservationId) -> String {
    format!("{at:020}/{row}/{id}")
}

/// A decision about inventory: its outcome, the state it was made on, and the state after it.
type InventoryDecided = (Result<(), Vec<Reason>>, InventoryState, InventoryState);

impl InventoryProcessor {
    /// Decides on `input` against the (seller, sku, region) row of `line` and the row of the
    /// reservation the input names; keeps one timer per held reservation that expires.
    fn decide(
        &self,
        ctx: &mut Ctx<'_, '_>,
        tenant: &TenantId,
        line: &StockLine,
        input: &InventoryInput,
    ) -> Result<InventoryDecided, HandleError> {
        let row = inventory_row(tenant, line);
        let aggregate = key(&[
            line.seller.as_str(),
            line.sku.as_str(),
            line.region.as_str(),
        ]);
        let mut loaded: InventoryState = ctx.load(tables::INVENTORY, &row)?;
        // A row from before holds had rows of their own carries them: they move out now.
        let legacy = !loaded.reservations.is_empty() || !loaded.finished.is_empty();
        for (id, r) in std::mem::take(&mut loaded.reservations) {
            ctx.save(
                tables::INVENTORY_HOLD,
                &hold_key(&row, &id),
                &HoldRow::Held(r),
            )?;
        }
        for (id, f) in std::mem::take(&mut loaded.finished) {
            ctx.save(
                tables::INVENTORY_HOLD,
                &hold_key(&row, &id),
                &HoldRow::Finished(f),
            )?;
        }
        if legacy {
            ctx.save(tables::INVENTORY, &row, &loaded)?;
        }
        let before = match input.reservation() {
            Some(id) => {
                let hold: Option<HoldRow> =
                    ctx.load(tables::INVENTORY_HOLD, &hold_key(&row, id))?;
                loaded.with_hold(id, hold)
            }
            None => loaded,
        };
        let (r, after) = decide_from::<Inventory>(
            ctx,
            tables::INVENTORY,
            &row,
            before.clone(),
            input,
            None,
            |s: &InventoryState, _| (aggregate.clone(), s.version),
        )?;
        if let Some(id) = input.reservation() {
            let hold = after.hold_row(id);
            if hold != before.hold_row(id) {
                if let Some(hold) = hold {
                    ctx.save(tables::INVENTORY_HOLD, &hold_key(&row, id), &hold)?;
                }
            }
        }
        let expiry = |s: &InventoryState, id: &ReservationId| {
            s.reservations.get(id).and_then(|r| r.expires_at)
        };
        for (id, held) in &before.reservations {
            if let Some(at) = held.expires_at.filter(|at| expiry(&after, id) != Some(*at)) {
                ctx.remove(tables::RESERVATION_EXPIRY, &expiry_key(at, &row, id))?;
            }
        }
        for (id, held) in &after.reservations {
            if let Some(at) = held
                .expires_at
                .filter(|at| expiry(&before, id) != Some(*at))
            {
                ctx.put_raw(tables::RESERVATION_EXPIRY, &expiry_key(at, &row, id), b"")?;
            }
        }
        Ok((r, before, after))
    }
}

impl Processor for InventoryProcessor {
    fn name(&self) -> &'static str {
        Module::Inventory.as_str()
    }
    fn inputs(&self) -> Vec<String> {
        vec![
            commands_topic(Module::Inventory),
            RESERVATION_REQUESTS.to_string(),
            porch_topics::HOT_LANE_TOPIC.to_string(),
        ]
    }
    fn output(&self) -> String {
        events_topic(Module::Inventory)
    }
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError> {
        let Input::Command(c) = input else {
            return Ok(());
        };
        let line = match &c.command {
            Command::SetStock(s) => &s.line,
            Command::ReserveStock(s) => &s.line,
            Command::ReleaseReservation(s) => &s.line,
            Command::CommitReservation(s) => &s.line,
            other => return Err(wrong_input(Module::Inventory, other.full_name())),
        };
        let product = line.product_id.clone();
        let input = InventoryInput::Command(c.command.clone());
        let (r, before, after) = self.decide(ctx, &c.envelope.tenant, line, &input)?;
        let reservation = match &c.command {
            Command::ReserveStock(x) => Some(&x.reservation_id),
            Command::ReleaseReservation(x) => Some(&x.reservation_id),
            Command::CommitReservation(x) => Some(&x.reservation_id),
            _ => None,
        };
        if let Some(id) = reservation {
            let request = Some(c.envelope.command_id.to_string());
            let outcome = reservation_outcome(id, line, request, &r, &before, &after);
            ctx.publish(RESERVATION_OUTCOMES, outcome.into(), id.as_str())?;
        }
        // A hold that could not be made is an event (ReservationFailed) for those who read the
        // topics, and a refused command for the caller who waits on it.
        let r = match (&c.command, r) {
            (Command::ReserveStock(rs), Ok(()))
                if after.finished_as(&rs.reservation_id) == Some(Finished::Failed) =>
            {
                let available = if rs.region_wide {
                    after.available()
                } else {
                    after.available_at(&rs.line.location)
                };
                Err(vec![Reason::on_field(
                    "INSUFFICIENT_STOCK",
                    "quantity",
                    format!("{} requested, {available} available", rs.quantity),
                )])
            }
            (_, r) => r,
        };
        outcome(ctx, &product, r)
    }
    fn has_timers(&self) -> bool {
        true
    }
    /// Holds whose expiry has come lapse (ReservationExpired), with no command.
    fn punctuate(&self, ctx: &mut Ctx<'_, '_>, now: Micros) -> Result<bool, HandleError> {
        let due = due_timers(ctx, tables::RESERVATION_EXPIRY, now)?;
        for entry in &due {
            ctx.remove(tables::RESERVATION_EXPIRY, entry)?;
            let parts: Vec<&str> = entry.split('/').collect();
            let [_, tenant, product, seller, sku, region, id] = parts[..] else {
                continue;
            };
            let (Ok(tenant), Ok(product_id), Ok(seller), Ok(sku), Ok(region), Ok(id)) = (
                TenantId::parse(tenant),
                ProductId::parse(product),
                SellerId::parse(seller),
                Sku::parse(sku),
                RegionCode::parse(region),
                ReservationId::parse(id),
            ) else {
                continue;
            };
            // Unique per reservation and due time (':' is in no id).
            let tick = format!("expiry-{}:{tenant}:{id}", &entry[..20]);
            ctx.set_cause(Cause {
                id: tick.clone(),
                tenant: tenant.clone(),
                correlation_id: tick,
                command: None,
            })?;
            let line = StockLine {
                product_id,
                seller,
                sku,
                // Any: the aggregate knows where the hold is.
                location: LocationId::parse("expiry").expect("a valid location id"),
                region,
            };
            let expire = InventoryInput::Expire {
                reservation_id: id.clone(),
                now,
            };
            let (r, before, after) = self.decide(ctx, &tenant, &line, &expire)?;
            if after.finished_as(&id) == Some(Finished::Expired)
                && before.finished_as(&id) != Some(Finished::Expired)
            {
                let outcome = reservation_outcome(&id, &line, None, &r, &before, &after);
                ctx.publish(RESERVATION_OUTCOMES, outcome.into(), id.as_str())?;
            }
        }
        Ok(!due.is_empty())
    }
}

// ---------------------------------------------------------------- step 5: compliance

/// What compliance needs from the configuration: each tenant's regions and each region's rules.
#[derive(Debug, Clone, Default)]
pub struct ComplianceConfig {
    pub tenant_regions: HashMap<TenantId, Vec<RegionCode>>,
    pub rules: BTreeMap<RegionCode, RegionRules>,
}

pub struct ComplianceProcessor {
    pub config: ComplianceConfig,
}

impl Processor for ComplianceProcessor {
    fn name(&self) -> &'static str {
        Module::Compliance.as_str()
    }
    fn inputs(&self) -> Vec<String> {
        vec![
            commands_topic(Module::Compliance),
            events_topic(Module::Product),
        ]
    }
    fn output(&self) -> String {
        events_topic(Module::Compliance)
    }
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError> {
        match input {
            Input::Command(c) => {
                let Command::DecideCompliance(d) = &c.command else {
                    return Err(wrong_input(Module::Compliance, c.command.full_name()));
                };
                let r = self.decide_region(
                    ctx,
                    &c.envelope.tenant,
                    &d.product_id,
                    &d.region,
                    &ComplianceInput::Decision(d.clone()),
                )?;
                outcome(ctx, &d.product_id, r)
            }
            Input::Event(e) => {
                let product = match &e.event {
                    Event::ProductCreated(p) => &p.product,
                    Event::ProductUpdated(p) => &p.product,
                    _ => return Ok(()),
                };
                let tenant = &e.envelope.tenant;
                let regions: Vec<RegionCode> = match self.config.tenant_regions.get(tenant) {
                    Some(r) => r.clone(),
                    None => self.config.rules.keys().cloned().collect(),
                };
                for region in regions {
                    let rules = self.config.rules.get(&region).cloned().unwrap_or_default();
                    let input = ComplianceInput::ProductChanged {
                        product: product.clone(),
                        region: region.clone(),
                        rules,
                    };
                    // A product event is a fact: rule verdicts never reject it.
                    let _ =
                        self.decide_region(ctx, tenant, &product.product_id, &region, &input)?;
                }
                Ok(())
            }
        }
    }
}

impl ComplianceProcessor {
    fn decide_region(
        &self,
        ctx: &mut Ctx<'_, '_>,
        tenant: &TenantId,
        product: &ProductId,
        region: &RegionCode,
        input: &ComplianceInput,
    ) -> Result<Result<(), Vec<Reason>>, HandleError> {
        let row = key(&[tenant.as_str(), product.as_str(), region.as_str()]);
        let aggregate = key(&[product.as_str(), region.as_str()]);
        decide_and_apply::<Compliance>(
            ctx,
            tables::COMPLIANCE,
            &row,
            input,
            None,
            |s: &ComplianceState, _| (aggregate.clone(), s.version),
        )
    }
}

// ---------------------------------------------------------------- step 6: activation

/// Due timers: `<due micros, 20 digits>/<tenant>/<product>` → "".
const DEADLINES: &str = "activation_deadline";
/// `<tenant>/<product>` → its entry in DEADLINES, to move it when the deadline changes.
const DEADLINE_OF: &str = "activation_deadline_of";

pub struct ActivationProcessor;

fn offer_of(event: &Event) -> Option<&OfferId> {
    match event {
        Event::OfferActivated(e) => Some(&e.listing.offer_id),
        Event::OfferSuspended(e) => Some(&e.offer_id),
        Event::OfferEnded(e) => Some(&e.offer_id),
        _ => None,
    }
}

fn offer_version(s: &ActivationState, e: &Event) -> (String, i64) {
    let id = offer_of(e).map(|o| o.to_string()).unwrap_or_default();
    let version = offer_of(e)
        .and_then(|o| s.offers.get(o))
        .map(|o| o.version)
        .unwrap_or(0);
    (id, version)
}

impl ActivationProcessor {
    fn decide(
        &self,
        ctx: &mut Ctx<'_, '_>,
        tenant: &TenantId,
        product: &ProductId,
        input: &ActivationInput,
        absorbed: Option<&Event>,
    ) -> Result<(), HandleError> {
        let row = key(&[tenant.as_str(), product.as_str()]);
        // The view absorbs facts; a decision over facts is never refused.
        let (_, state) = decide_and_keep::<Activation>(
            ctx,
            tables::ACTIVATION,
            &row,
            input,
            absorbed,
            offer_version,
        )?;
        self.reschedule(ctx, &row, &state)
    }

    /// Keeps one timer per product at its next validity-window boundary.
    fn reschedule(
        &self,
        ctx: &mut Ctx<'_, '_>,
        row: &str,
        state: &ActivationState,
    ) -> Result<(), HandleError> {
        let next = activation::next_deadline(state, ctx.now());
        let want = next.map(|due| format!("{due:020}/{row}"));
        let have = ctx
            .get_raw(DEADLINE_OF, row)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if want == have {
            return Ok(());
        }
        if let Some(old) = have {
            ctx.remove(DEADLINES, &old)?;
            ctx.remove(DEADLINE_OF, row)?;
        }
        if let Some(new) = want {
            ctx.put_raw(DEADLINES, &new, b"")?;
            ctx.put_raw(DEADLINE_OF, row, new.as_bytes())?;
        }
        Ok(())
    }
}

impl Processor for ActivationProcessor {
    fn name(&self) -> &'static str {
        Module::Activation.as_str()
    }
    fn inputs(&self) -> Vec<String> {
        // The events of steps 1 to 5: the modules that take commands.
        Module::COMMANDED.map(events_topic).to_vec()
    }
    fn output(&self) -> String {
        events_topic(Module::Activation)
    }
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError> {
        let Input::Event(e) = input else {
            return Err(wrong_input(Module::Activation, "commands"));
        };
        let (Some(product), false) = (
            e.event.product_id().cloned(),
            matches!(e.event, Event::CommandRejected(_)),
        ) else {
            return Ok(());
        };
        let observed = ActivationInput::Observed {
            event: e.event.clone(),
            now: ctx.now(),
        };
        self.decide(ctx, &e.envelope.tenant, &product, &observed, Some(&e.event))
    }
    fn has_timers(&self) -> bool {
        true
    }
    fn punctuate(&self, ctx: &mut Ctx<'_, '_>, now: Micros) -> Result<bool, HandleError> {
        let due = due_timers(ctx, DEADLINES, now)?;
        for entry in &due {
            let mut parts = entry.splitn(3, '/').skip(1);
            let (Some(tenant), Some(product)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(tenant), Ok(product)) = (TenantId::parse(tenant), ProductId::parse(product))
            else {
                continue;
            };
            ctx.remove(DEADLINES, entry)?;
            ctx.remove(DEADLINE_OF, &key(&[tenant.as_str(), product.as_str()]))?;
            // Unique per product and due time (':' is in no tenant or product id): products due
            // at the same microsecond must not share event ids.
            let tick = format!("tick-{}:{tenant}:{product}", &entry[..20]);
            ctx.set_cause(Cause {
                id: tick.clone(),
                tenant: tenant.clone(),
                correlation_id: tick,
                command: None,
            })?;
            self.decide(ctx, &tenant, &product, &ActivationInput::Tick { now }, None)?;
        }
        Ok(!due.is_empty())
    }
}

// ---------------------------------------------------------------- step 7: search listing

pub struct ListingProcessor;

impl Processor for ListingProcessor {
    fn name(&self) -> &'static str {
        Module::Search.as_str()
    }
    fn inputs(&self) -> Vec<String> {
        vec![events_topic(Module::Activation)]
    }
    fn output(&self) -> String {
        events_topic(Module::Search)
    }
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError> {
        let Input::Event(e) = input else {
            return Err(wrong_input(Module::Search, "commands"));
        };
        let (Some(offer), Some(product)) = (offer_of(&e.event), e.event.product_id()) else {
            return Ok(());
        };
        let row = key(&[e.envelope.tenant.as_str(), product.as_str(), offer.as_str()]);
        let oid = offer.to_string();
        let _ = decide_and_apply::<SearchListing>(
            ctx,
            tables::LISTING,
            &row,
            &e.event,
            None,
            |s: &ListingState, _| (oid.clone(), s.version),
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------- channels (DESIGN §8)

/// The topic of tenants' channel settings and the channel processor's resync pages.
pub const CHANNEL_SETTINGS: &str = "channel.settings";
/// What channels confirmed, from connectors and adapters.
pub const CHANNEL_OUTCOMES: &str = "channel.outcomes";
/// Products re-decided per turn when a tenant's settings change; the rest follow in later turns.
const RESYNC_PAGE: usize = 200;

/// What the channel processor needs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct ChannelConfig {
    /// Public base URL of uploaded images, for the absolute links channels fetch.
    pub media_base: String,
}

/// The row that holds a tenant's channel settings for one partition (each task keeps its copy,
/// from the record of channel.settings on its own partition).
fn settings_key(tenant: &TenantId, partition: u32) -> String {
    key(&[tenant.as_str(), &format!("~p{partition}")])
}

/// The row that lists a product under its tenant and partition, so a settings change can walk
/// the tenant's products of one partition: `<tenant>/~p<partition>/<product>`.
fn index_prefix(tenant: &TenantId, partition: u32) -> String {
    format!("{}/", settings_key(tenant, partition))
}

pub struct ChannelProcessor {
    pub config: ChannelConfig,
}

impl ChannelProcessor {
    fn context(
        &self,
        ctx: &Ctx<'_, '_>,
        tenant: &TenantId,
        partition: u32,
    ) -> Result<ChannelContext, HandleError> {
        Ok(ChannelContext {
            tenant: tenant.clone(),
            settings: ctx.load(tables::CHANNEL_SETTINGS, &settings_key(tenant, partition))?,
            media_base: self.config.media_base.clone(),
        })
    }

    /// Decides one product's listings on `input`.
    fn decide(
        &self,
        ctx: &mut Ctx<'_, '_>,
        tenant: &TenantId,
        product: &ProductId,
        partition: u32,
        input: ChannelInput,
    ) -> Result<(), HandleError> {
        let row = key(&[tenant.as_str(), product.as_str()]);
        let absorbed = match &input {
            ChannelInput::Observed(e) => Some(e.clone()),
            ChannelInput::Resync => None,
        };
        let decision = ChannelDecision {
            input,
            context: self.context(ctx, tenant, partition)?,
        };
        let indexed = format!("{}{product}", index_prefix(tenant, partition));
        if ctx.get_raw(tables::CHANNEL_INDEX, &indexed)?.is_none() {
            ctx.put_raw(tables::CHANNEL_INDEX, &indexed, b"")?;
        }
        let _ = decide_and_apply::<ChannelListings>(
            ctx,
            tables::CHANNEL,
            &row,
            &decision,
            absorbed.as_ref(),
            listing_version,
        )?;
        Ok(())
    }

    /// A tenant's settings came to this partition: keep them if newer, then decide its products
    /// again from the start.
    fn settings_changed(
        &self,
        ctx: &mut Ctx<'_, '_>,
        tenant: &TenantId,
        partition: u32,
        changed: &ChannelSettingsChanged,
    ) -> Result<(), HandleError> {
        let k = settings_key(tenant, partition);
        let held: TenantChannels = ctx.load(tables::CHANNEL_SETTINGS, &k)?;
        if changed.version <= held.version {
            return Ok(());
        }
        ctx.save(
            tables::CHANNEL_SETTINGS,
            &k,
            &TenantChannels {
                version: changed.version,
                connections: changed.connections.clone(),
            },
        )?;
        self.resync(ctx, tenant, partition, None)
    }

    /// Decides a page of the tenant's products of this partition again, and sends itself the
    /// next page.
    fn resync(
        &self,
        ctx: &mut Ctx<'_, '_>,
        tenant: &TenantId,
        partition: u32,
        after: Option<&ProductId>,
    ) -> Result<(), HandleError> {
        let prefix = index_prefix(tenant, partition);
        let rows = ctx.scan_after(
            tables::CHANNEL_INDEX,
            &prefix,
            after.map(|p| format!("{prefix}{p}")).as_deref(),
            RESYNC_PAGE,
        )?;
        let mut last = None;
        for (k, _) in &rows {
            let Some(product) = k
                .strip_prefix(&prefix)
                .and_then(|p| ProductId::parse(p).ok())
            else {
                continue;
            };
            self.decide(ctx, tenant, &product, partition, ChannelInput::Resync)?;
            last = Some(product);
        }
        match last {
            Some(last) if rows.len() >= RESYNC_PAGE => ctx.send_to(
                CHANNEL_SETTINGS,
                partition,
                tenant.as_str(),
                ChannelResyncRequested {
                    partition: partition as i32,
                    after_product: Some(last),
                }
                .into(),
            ),
            _ => Ok(()),
        }
    }
}

/// A channel event's aggregate id and version: the listing (`offer/channel`) and its count of
/// requests or state changes.
fn listing_version(s: &ChannelState, e: &Event) -> (String, i64) {
    let (offer, channel, version) = match e {
        Event::ListingRequested(r) => (&r.offer_id, r.channel, r.version),
        Event::ListingStateChanged(c) => {
            let changes = s
                .offers
                .get(&c.offer_id)
                .and_then(|o| o.channels.get(&c.channel))
                .map(|l| l.changes)
                .unwrap_or(0);
            (&c.offer_id, c.channel, changes)
        }
        _ => return (String::new(), 0),
    };
    (format!("{offer}/{channel}"), version)
}

impl Processor for ChannelProcessor {
    fn name(&self) -> &'static str {
        Module::Channel.as_str()
    }
    fn inputs(&self) -> Vec<String> {
        vec![
            CHANNEL_SETTINGS.to_string(),
            events_topic(Module::Product),
            events_topic(Module::Variant),
            events_topic(Module::Activation),
            CHANNEL_OUTCOMES.to_string(),
        ]
    }
    fn output(&self) -> String {
        events_topic(Module::Channel)
    }
    fn handle(&self, ctx: &mut Ctx<'_, '_>, input: &Input) -> Result<(), HandleError> {
        let Input::Event(e) = input else {
            return Err(wrong_input(Module::Channel, "commands"));
        };
        let Some(partition) = ctx.partition() else {
            return Ok(());
        };
        let tenant = &e.envelope.tenant;
        match &e.event {
            Event::ChannelSettingsChanged(changed) => {
                self.settings_changed(ctx, tenant, partition, changed)
            }
            Event::ChannelResyncRequested(r) => {
                self.resync(ctx, tenant, partition, r.after_product.as_ref())
            }
            Event::CommandRejected(_) => Ok(()),
            event => match event.product_id() {
                Some(product) => self.decide(
                    ctx,
                    tenant,
                    &product.clone(),
                    partition,
                    ChannelInput::Observed(event.clone()),
                ),
                None => Ok(()),
            },
        }
    }
}

/// Every processor of the pipeline, configured.
pub fn all(
    compliance: ComplianceConfig,
    channels: ChannelConfig,
) -> Vec<std::sync::Arc<dyn Processor>> {
    vec![
        std::sync::Arc::new(ProductProcessor),
        std::sync::Arc::new(VariantProcessor),
        std::sync::Arc::new(OfferProcessor),
        std::sync::Arc::new(InventoryProcessor),
        std::sync::Arc::new(ComplianceProcessor { config: compliance }),
        std::sync::Arc::new(ActivationProcessor),
        std::sync::Arc::new(ListingProcessor),
        std::sync::Arc::new(ChannelProcessor { config: channels }),
    ]
}

/// The record types each topic carries, to register their schemas.
pub fn topic_record_types() -> Vec<(String, Vec<&'static str>)> {
    let mut out = Vec::new();
    for module in Module::COMMANDED {
        let commands: Vec<&'static str> = Command::FULL_NAMES
            .iter()
            .copied()
            .filter(|n| n.starts_with(&format!("porch.{module}.")))
            .collect();
        out.push((commands_topic(module), commands));
    }
    for requests in [RESERVATION_REQUESTS, porch_topics::HOT_LANE_TOPIC] {
        out.push((
            requests.to_string(),
            vec![
                "porch.inventory.ReserveStock",
                "porch.inventory.ReleaseReservation",
                "porch.inventory.CommitReservation",
            ],
        ));
    }
    out.push((
        RESERVATION_OUTCOMES.to_string(),
        vec!["porch.inventory.ReservationOutcome"],
    ));
    // The channel module's namespace spans three topics, each with its own records (below).
    for module in Module::ALL.into_iter().filter(|m| *m != Module::Channel) {
        let mut events: Vec<&'static str> = Event::FULL_NAMES
            .iter()
            .copied()
            .filter(|n| n.starts_with(&format!("porch.{module}.")))
            .filter(|n| *n != "porch.inventory.ReservationOutcome")
            .collect();
        events.push("porch.outcome.CommandRejected");
        out.push((events_topic(module), events));
    }
    let channel = |names: &[&'static str]| names.to_vec();
    out.push((
        CHANNEL_SETTINGS.to_string(),
        channel(&[
            "porch.channel.ChannelSettingsChanged",
            "porch.channel.ChannelResyncRequested",
        ]),
    ));
    out.push((
        events_topic(Module::Channel),
        channel(&[
            "porch.channel.ListingRequested",
            "porch.channel.ListingStateChanged",
            "porch.outcome.CommandRejected",
        ]),
    ));
    out.push((
        CHANNEL_OUTCOMES.to_string(),
        channel(&["porch.channel.ListingOutcome"]),
    ));
    out
}

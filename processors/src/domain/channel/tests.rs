use super::*;
use crate::domain::fixtures::*;
use proptest::prelude::*;

fn tenant() -> TenantId {
    TenantId::parse_tenant("acme").expect("tenant")
}

fn meta(region_: &str) -> ChannelConnection {
    ChannelConnection {
        channel: Channel::Meta,
        region: region(region_),
        account: format!("catalog-{region_}"),
        enabled: true,
        link_template: Some("https://shop.example/{product}?sku={sku}".into()),
    }
}

fn context(connections: Vec<ChannelConnection>) -> ChannelContext {
    ChannelContext {
        tenant: tenant(),
        settings: TenantChannels {
            version: 1,
            connections,
        },
        media_base: "https://media.example/porch".into(),
    }
}

fn connected() -> ChannelContext {
    context(vec![meta("GB"), meta("IN")])
}

fn on_meta(mut o: OfferData) -> OfferData {
    o.channels = vec![Channel::Storefront, Channel::Meta];
    o
}

fn gb() -> OfferData {
    on_meta(offer("o-gb", "SKU-1", "GB", 2500, "GBP"))
}

fn india() -> OfferData {
    on_meta(offer("o-in", "SKU-1", "IN", 199900, "INR"))
}

fn activated(o: &OfferData, available: i64) -> Event {
    OfferActivated {
        listing: listing(o, available),
        decided_at: None,
    }
    .into()
}

fn suspended(o: &OfferData, codes: &[&str]) -> Event {
    OfferSuspended {
        offer_id: o.offer_id.clone(),
        product_id: pid(),
        seller: seller("s1"),
        sku: o.sku.clone(),
        region: o.region.clone(),
        reasons: codes.iter().map(|c| Reason::new(c, "why")).collect(),
    }
    .into()
}

fn created(p: ProductData) -> Event {
    ProductCreated {
        product: p,
        status: "READY".into(),
        missing: vec![],
    }
    .into()
}

fn updated(p: ProductData) -> Event {
    ProductUpdated {
        product: p,
        status: "READY".into(),
        missing: vec![],
    }
    .into()
}

fn outcome(o: &OfferData, version: i64, result: &str, issues: Vec<Reason>) -> Event {
    ListingOutcome {
        channel: Channel::Meta,
        offer_id: o.offer_id.clone(),
        product_id: pid(),
        retailer_id: o.offer_id.to_string(),
        version,
        result: result.into(),
        issues,
        channel_item_id: None,
        reporter: "meta".into(),
    }
    .into()
}

/// Decides on one input and applies it as the runtime does: the input absorbed, then every
/// event emitted.
fn when(ctx: &ChannelContext, state: &ChannelState, event: Event) -> (Vec<Event>, ChannelState) {
    let input = ChannelDecision {
        input: ChannelInput::Observed(event.clone()),
        context: ctx.clone(),
    };
    let events = ChannelListings::decide(state, &input).expect("never refused");
    let mut next = ChannelListings::evolve(state.clone(), &event);
    for e in &events {
        next = ChannelListings::evolve(next, e);
    }
    (events, next)
}

fn given(ctx: &ChannelContext, events: Vec<Event>) -> ChannelState {
    events
        .into_iter()
        .fold(ChannelState::default(), |s, e| when(ctx, &s, e).1)
}

fn requests(events: &[Event]) -> Vec<&ListingRequested> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ListingRequested(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn changes(events: &[Event]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ListingStateChanged(c) => {
                Some((c.offer_id.to_string(), c.from.clone(), c.to.clone()))
            }
            _ => None,
        })
        .collect()
}

fn shown(state: &ChannelState, o: &OfferData) -> (ChannelStatus, Vec<Reason>) {
    let l = &state.offers[&o.offer_id].channels[&Channel::Meta];
    let (s, issues) = l.shown();
    (s, issues.to_vec())
}

fn with_override(field: &str, value: &str) -> ProductData {
    let mut p = product();
    p.channel_overrides
        .insert("meta".into(), attrs(&[(field, value)]));
    p
}

#[test]
fn an_activated_offer_is_requested_with_the_whole_item_and_is_submitted() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![created(with_override("title", "Linen shirt — Meta"))],
    );
    let (events, state) = when(&ctx, &state, activated(&gb(), 7));
    let r = requests(&events);
    assert_eq!(r.len(), 1);
    let r = r[0];
    assert_eq!((r.action.as_str(), r.version), ("UPSERT", 1));
    assert_eq!(r.account, "catalog-GB");
    assert_eq!(r.retailer_id, "o-gb");
    let item = r.item.as_ref().expect("an upsert carries its item");
    assert_eq!(item.title, "Linen shirt — Meta");
    assert_eq!(
        item.image_link,
        "https://media.example/porch/acme/p-1/front.jpg"
    );
    assert_eq!(item.link, "https://shop.example/p-1?sku=SKU-1");
    assert_eq!(item.price, money(2500, "GBP"));
    assert_eq!((item.availability.as_str(), item.quantity), ("in stock", 7));
    assert_eq!(item.item_group_id, "p-1");
    assert_eq!(
        changes(&events),
        vec![("o-gb".into(), "PENDING".into(), "SUBMITTED".into())]
    );
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Submitted);
}

#[test]
fn the_same_activation_again_sends_nothing() {
    let ctx = connected();
    let state = given(&ctx, vec![created(product()), activated(&gb(), 7)]);
    assert_eq!(when(&ctx, &state, activated(&gb(), 7)).0, vec![]);
}

#[test]
fn live_comes_only_from_the_outcome_of_the_latest_request() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![created(product()), activated(&gb(), 7), activated(&gb(), 6)],
    );
    let (events, state) = when(&ctx, &state, outcome(&gb(), 1, "LIVE", vec![]));
    assert_eq!(events, vec![]);
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Submitted);
    let (events, state) = when(&ctx, &state, outcome(&gb(), 2, "LIVE", vec![]));
    assert_eq!(
        changes(&events),
        vec![("o-gb".into(), "SUBMITTED".into(), "LIVE".into())]
    );
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Live);
    assert!(state.offers[&gb().offer_id].channels[&Channel::Meta].on_channel);
}

#[test]
fn a_rejection_names_the_channels_issues_and_is_not_retried() {
    let ctx = connected();
    let state = given(&ctx, vec![created(product()), activated(&gb(), 7)]);
    let issue = Reason::on_field("META_INVALID", "title", "The title is not allowed");
    let (_, state) = when(
        &ctx,
        &state,
        outcome(&gb(), 1, "REJECTED", vec![issue.clone()]),
    );
    assert_eq!(shown(&state, &gb()), (ChannelStatus::Rejected, vec![issue]));
    assert_eq!(when(&ctx, &state, activated(&gb(), 7)).0, vec![]);
    // A fix to what the channel shows is a new request.
    let (events, _) = when(
        &ctx,
        &state,
        updated(with_override("title", "Better title")),
    );
    assert_eq!(requests(&events).len(), 1);
}

#[test]
fn a_product_without_a_brand_is_blocked_for_meta_and_unblocked_by_adding_it() {
    let ctx = connected();
    let no_brand = ProductData {
        brand: None,
        ..product()
    };
    let state = given(&ctx, vec![created(no_brand)]);
    let (events, state) = when(&ctx, &state, activated(&gb(), 7));
    assert!(requests(&events).is_empty(), "no call while blocked");
    let (status, issues) = shown(&state, &gb());
    assert_eq!(status, ChannelStatus::Blocked);
    assert_eq!(issues[0].field.as_deref(), Some("brand"));
    assert!(issues[0].message.starts_with("meta: brand is missing"));
    let (events, state) = when(&ctx, &state, updated(product()));
    assert_eq!(requests(&events).len(), 1);
    assert_eq!(
        changes(&events),
        vec![("o-gb".into(), "BLOCKED".into(), "SUBMITTED".into())]
    );
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Submitted);
}

#[test]
fn a_gtin_stands_in_for_a_brand() {
    let ctx = connected();
    let mut v = variant("SKU-1");
    v.gtin = Some("4006381333931".into());
    let state = given(
        &ctx,
        vec![
            created(ProductData {
                brand: None,
                ..product()
            }),
            VariantsCreated {
                product_id: pid(),
                variants: vec![v],
            }
            .into(),
        ],
    );
    let (events, _) = when(&ctx, &state, activated(&gb(), 7));
    assert_eq!(
        requests(&events)[0].item.as_ref().unwrap().gtin.as_deref(),
        Some("4006381333931")
    );
}

#[test]
fn a_price_change_in_gb_updates_only_the_gb_item() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            activated(&india(), 3),
            outcome(&gb(), 1, "LIVE", vec![]),
            outcome(&india(), 1, "LIVE", vec![]),
        ],
    );
    let mut dearer = gb();
    dearer.price = money(3000, "GBP");
    let (events, _) = when(&ctx, &state, activated(&dearer, 7));
    let r = requests(&events);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].offer_id.as_str(), r[0].version), ("o-gb", 2));
    assert_eq!(r[0].item.as_ref().unwrap().price, money(3000, "GBP"));
}

#[test]
fn a_stock_out_in_india_shows_out_of_stock_for_india_only() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            activated(&india(), 3),
        ],
    );
    let (events, _) = when(&ctx, &state, suspended(&india(), &["OUT_OF_STOCK"]));
    let r = requests(&events);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].offer_id.as_str(), "o-in");
    let item = r[0].item.as_ref().unwrap();
    assert_eq!(
        (item.availability.as_str(), item.quantity),
        ("out of stock", 0)
    );
}

#[test]
fn deactivating_deletes_every_item_and_reactivating_brings_them_back() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            activated(&india(), 3),
            outcome(&gb(), 1, "LIVE", vec![]),
            outcome(&india(), 1, "LIVE", vec![]),
        ],
    );
    let (events, state) = when(
        &ctx,
        &state,
        ProductDeactivated { product_id: pid() }.into(),
    );
    let r = requests(&events);
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|r| r.action == "DELETE" && r.item.is_none()));
    assert_eq!(r[0].account, "catalog-GB");
    let state = given_more(&ctx, state, vec![outcome(&gb(), 2, "UNPUBLISHED", vec![])]);
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Unpublished);
    // Activation suspends the offers too: nothing more to remove.
    let (events, state) = when(&ctx, &state, suspended(&gb(), &["PRODUCT_INACTIVE"]));
    assert!(requests(&events).is_empty());
    let state = given_more(
        &ctx,
        state,
        vec![ProductReactivated {
            product_id: pid(),
            status: "READY".into(),
        }
        .into()],
    );
    let (events, _) = when(&ctx, &state, activated(&gb(), 7));
    let r = requests(&events);
    assert_eq!(
        (r.len(), r[0].action.as_str(), r[0].version),
        (1, "UPSERT", 3)
    );
}

fn given_more(ctx: &ChannelContext, state: ChannelState, events: Vec<Event>) -> ChannelState {
    events.into_iter().fold(state, |s, e| when(ctx, &s, e).1)
}

#[test]
fn a_withdrawn_offer_never_listed_is_unpublished_without_a_call() {
    let ctx = connected();
    let state = given(&ctx, vec![created(product()), activated(&gb(), 7)]);
    let state = given_more(
        &ctx,
        state,
        vec![outcome(&gb(), 1, "REJECTED", vec![Reason::new("X", "no")])],
    );
    let ended: Event = OfferEnded {
        offer_id: gb().offer_id,
        product_id: pid(),
        seller: seller("s1"),
        sku: sku("SKU-1"),
        region: region("GB"),
        reasons: vec![Reason::new("OFFER_WITHDRAWN", "withdrawn")],
    }
    .into();
    let (events, state) = when(&ctx, &state, ended);
    assert!(requests(&events).is_empty());
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Unpublished);
}

#[test]
fn a_tenant_not_connected_in_the_region_is_blocked_and_connecting_it_lists() {
    let ctx = context(vec![meta("GB")]);
    let state = given(&ctx, vec![created(product()), activated(&india(), 3)]);
    let (status, issues) = shown(&state, &india());
    assert_eq!(status, ChannelStatus::Blocked);
    assert_eq!(issues[0].code, "CHANNEL_NOT_CONNECTED");
    let resync = ChannelDecision {
        input: ChannelInput::Resync,
        context: connected(),
    };
    let events = ChannelListings::decide(&state, &resync).unwrap();
    assert_eq!(requests(&events).len(), 1);
}

/// What a resync (the tenant's settings changed) decides, applied.
fn resynced(ctx: &ChannelContext, state: &ChannelState) -> (Vec<Event>, ChannelState) {
    let input = ChannelDecision {
        input: ChannelInput::Resync,
        context: ctx.clone(),
    };
    let events = ChannelListings::decide(state, &input).expect("never refused");
    let next = events.iter().fold(state.clone(), ChannelListings::evolve);
    (events, next)
}

#[test]
fn a_request_parked_by_its_account_waits_for_a_reconnect_and_is_sent_again() {
    let ctx = connected();
    let reauth = Reason::new("NEEDS_REAUTH", "the seller must connect again");
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            outcome(&gb(), 1, "NEEDS_REAUTH", vec![reauth.clone()]),
        ],
    );
    assert_eq!(
        shown(&state, &gb()),
        (ChannelStatus::NeedsReauth, vec![reauth.clone()])
    );
    // Events that change nothing the channel shows send nothing while it waits.
    assert_eq!(when(&ctx, &state, activated(&gb(), 7)).0, vec![]);
    // The tenant connects again: the same item is asked for once more, as a new version.
    let (events, state) = resynced(&ctx, &state);
    let r = requests(&events);
    assert_eq!(
        (r.len(), r[0].version, r[0].action.as_str()),
        (1, 2, "UPSERT")
    );
    assert_eq!(
        changes(&events),
        vec![("o-gb".into(), "NEEDS_REAUTH".into(), "SUBMITTED".into())]
    );
    let state = given_more(&ctx, state, vec![outcome(&gb(), 2, "LIVE", vec![])]);
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Live);

    // A delete parked the same way is not sent again on every event, only on a reconnect.
    let (events, state) = when(
        &ctx,
        &state,
        ProductDeactivated { product_id: pid() }.into(),
    );
    assert_eq!(requests(&events)[0].action, "DELETE");
    let (_, state) = when(
        &ctx,
        &state,
        outcome(&gb(), 3, "NEEDS_REAUTH", vec![reauth]),
    );
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::NeedsReauth);
    assert!(requests(&when(&ctx, &state, suspended(&gb(), &["PRODUCT_INACTIVE"])).0).is_empty());
    let (events, _) = resynced(&ctx, &state);
    let r = requests(&events);
    assert_eq!(
        (r.len(), r[0].version, r[0].action.as_str()),
        (1, 4, "DELETE")
    );
}

#[test]
fn a_disabled_connection_unpublishes() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            outcome(&gb(), 1, "LIVE", vec![]),
        ],
    );
    let mut off = meta("GB");
    off.enabled = false;
    let resync = ChannelDecision {
        input: ChannelInput::Resync,
        context: context(vec![off, meta("IN")]),
    };
    let events = ChannelListings::decide(&state, &resync).unwrap();
    assert_eq!(requests(&events)[0].action, "DELETE");
}

#[test]
fn a_removed_connection_blocks_the_listing_without_a_call() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            outcome(&gb(), 1, "LIVE", vec![]),
        ],
    );
    let resync = ChannelDecision {
        input: ChannelInput::Resync,
        context: context(vec![meta("IN")]),
    };
    let events = ChannelListings::decide(&state, &resync).unwrap();
    assert!(requests(&events).is_empty(), "no account to call with");
    assert_eq!(
        changes(&events),
        vec![("o-gb".into(), "LIVE".into(), "BLOCKED".into())]
    );
}

#[test]
fn a_new_catalog_takes_the_item_down_from_the_old_one_first() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            outcome(&gb(), 1, "LIVE", vec![]),
        ],
    );
    let mut moved = meta("GB");
    moved.account = "catalog-gb-2".into();
    let ctx2 = context(vec![moved, meta("IN")]);
    let resync = ChannelDecision {
        input: ChannelInput::Resync,
        context: ctx2.clone(),
    };
    let events = ChannelListings::decide(&state, &resync).unwrap();
    let r = requests(&events);
    assert_eq!(
        (r[0].action.as_str(), r[0].account.as_str()),
        ("DELETE", "catalog-GB")
    );
    let mut state = state;
    for e in &events {
        state = ChannelListings::evolve(state, e);
    }
    let (events, _) = when(&ctx2, &state, outcome(&gb(), 2, "UNPUBLISHED", vec![]));
    let r = requests(&events);
    assert_eq!(
        (r[0].action.as_str(), r[0].account.as_str()),
        ("UPSERT", "catalog-gb-2")
    );
}

#[test]
fn a_rejected_listing_taken_down_and_brought_back_is_sent_again() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            outcome(&gb(), 1, "REJECTED", vec![Reason::new("X", "no")]),
            ProductDeactivated { product_id: pid() }.into(),
            suspended(&gb(), &["PRODUCT_INACTIVE"]),
        ],
    );
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Unpublished);
    let state = given_more(
        &ctx,
        state,
        vec![ProductReactivated {
            product_id: pid(),
            status: "READY".into(),
        }
        .into()],
    );
    let (events, _) = when(&ctx, &state, activated(&gb(), 7));
    assert_eq!(requests(&events).len(), 1, "the same item, asked again");
}

#[test]
fn a_late_confirmation_of_an_older_create_after_a_delete_is_deleted_again() {
    let ctx = connected();
    let state = given(
        &ctx,
        vec![
            created(product()),
            activated(&gb(), 7),
            ProductDeactivated { product_id: pid() }.into(),
            outcome(&gb(), 2, "UNPUBLISHED", vec![]),
        ],
    );
    assert_eq!(shown(&state, &gb()).0, ChannelStatus::Unpublished);
    let (events, _) = when(&ctx, &state, outcome(&gb(), 1, "LIVE", vec![]));
    let r = requests(&events);
    assert_eq!(
        (r.len(), r[0].action.as_str(), r[0].version),
        (1, "DELETE", 3)
    );
}

#[test]
fn a_storefront_only_offer_has_no_channel_listing() {
    let ctx = connected();
    let state = given(&ctx, vec![created(product())]);
    let (events, _) = when(
        &ctx,
        &state,
        activated(&offer("o-sf", "SKU-1", "GB", 2500, "GBP"), 7),
    );
    assert_eq!(events, vec![]);
}

#[test]
fn meta_preflight_names_every_failing_field() {
    let ctx = connected();
    let mut p = product();
    p.images.clear();
    p.description = Some(" ".into());
    p.channel_overrides
        .insert("meta".into(), attrs(&[("title", &"x".repeat(201))]));
    let state = given(&ctx, vec![created(p)]);
    let (_, state) = when(&ctx, &state, activated(&gb(), 7));
    let fields: Vec<String> = shown(&state, &gb())
        .1
        .iter()
        .filter_map(|r| r.field.clone())
        .collect();
    assert_eq!(fields, vec!["title", "description", "image_link"]);
}

proptest! {
    /// Whatever happened before, deciding the same input again after applying it changes nothing:
    /// a replayed record never sends a second request.
    #[test]
    fn an_input_decided_twice_sends_nothing_the_second_time(
        steps in proptest::collection::vec(0usize..8, 1..12)
    ) {
        let ctx = connected();
        let inputs = [
            created(product()),
            activated(&gb(), 7),
            activated(&india(), 2),
            suspended(&india(), &["OUT_OF_STOCK"]),
            ProductDeactivated { product_id: pid() }.into(),
            ProductReactivated { product_id: pid(), status: "READY".into() }.into(),
            outcome(&gb(), 1, "LIVE", vec![]),
            updated(with_override("title", "Other")),
        ];
        let mut state = ChannelState::default();
        for i in steps {
            let (_, next) = when(&ctx, &state, inputs[i].clone());
            let (again, after) = when(&ctx, &next, inputs[i].clone());
            prop_assert!(requests(&again).is_empty(), "{:?}", again);
            prop_assert_eq!(&after, &next);
            state = next;
        }
    }
}

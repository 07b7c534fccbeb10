//! Step 1, the product: DRAFT (incomplete) → READY (complete) → ACTIVE (published on a channel)
//! → INACTIVE (deactivated, a soft delete).

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    /// No product yet (state of an aggregate that was never created).
    #[default]
    Absent,
    Draft,
    Ready,
    Active,
    Inactive,
}

impl ProductStatus {
    /// The status as events carry it (`DRAFT`, `READY`, `ACTIVE`, `INACTIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Absent => "ABSENT",
            ProductStatus::Draft => "DRAFT",
            ProductStatus::Ready => "READY",
            ProductStatus::Active => "ACTIVE",
            ProductStatus::Inactive => "INACTIVE",
        }
    }

    /// The status named in an event; `None` for a name porch does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ABSENT" => Some(ProductStatus::Absent),
            "DRAFT" => Some(ProductStatus::Draft),
            "READY" => Some(ProductStatus::Ready),
            "ACTIVE" => Some(ProductStatus::Active),
            "INACTIVE" => Some(ProductStatus::Inactive),
            _ => None,
        }
    }

    /// Whether offers on a product in this status may sell (the buy box's product condition).
    pub fn is_sellable(self) -> bool {
        matches!(self, ProductStatus::Ready | ProductStatus::Active)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProductState {
    pub product: Option<ProductData>,
    pub status: ProductStatus,
    /// What keeps the product in DRAFT (field names).
    pub missing: Vec<String>,
    pub published_channels: Vec<Channel>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProductInput {
    /// One of CreateProduct, UpdateProduct, DeactivateProduct, ReactivateProduct, AddProductImage.
    Command(Command),
    /// A listing of this product became visible on a channel (from search.events).
    ListingVisible(ListingVisible),
}

pub struct Product;

/// The fields a product lacks to be complete (READY): `title`, `description`, `category`, in
/// that order. Blank text counts as absent.
pub fn missing_fields(product: &ProductData) -> Vec<String> {
    let blank = |v: Option<&str>| v.is_none_or(|s| s.trim().is_empty());
    let mut missing = Vec::new();
    if blank(Some(&product.title)) {
        missing.push("title".to_string());
    }
    if blank(product.description.as_deref()) {
        missing.push("description".to_string());
    }
    if blank(product.category.as_deref()) {
        missing.push("category".to_string());
    }
    missing
}

impl Aggregate for Product {
    type State = ProductState;
    type Input = ProductInput;

    fn decide(state: &ProductState, input: &ProductInput) -> Result<Vec<Event>, Vec<Reason>> {
        match input {
            ProductInput::Command(Command::CreateProduct(c)) => create(state, c),
            ProductInput::Command(Command::UpdateProduct(c)) => update(state, c),
            ProductInput::Command(Command::AddProductImage(c)) => add_image(state, c),
            ProductInput::Command(Command::DeactivateProduct(c)) => deactivate(state, c),
            ProductInput::Command(Command::ReactivateProduct(c)) => reactivate(state, c),
            ProductInput::Command(other) => Err(vec![Reason::new(
                "UNSUPPORTED_COMMAND",
                format!("the product module does not handle {}", other.type_name()),
            )]),
            ProductInput::ListingVisible(visible) => Ok(published(state, visible)),
        }
    }

    fn evolve(mut state: ProductState, event: &Event) -> ProductState {
        match event {
            Event::ProductCreated(e) => {
                state.product = Some(e.product.clone());
                state.status = status_of(&e.status);
                state.missing = e.missing.clone();
            }
            Event::ProductUpdated(e) => {
                state.product = Some(e.product.clone());
                state.status = status_of(&e.status);
                state.missing = e.missing.clone();
            }
            Event::ProductReady(_) => state.status = ProductStatus::Ready,
            Event::ProductDeactivated(_) => state.status = ProductStatus::Inactive,
            Event::ProductReactivated(e) => {
                state.status = status_of(&e.status);
                state.missing = state
                    .product
                    .as_ref()
                    .map(missing_fields)
                    .unwrap_or_default();
            }
            Event::ProductPublished(e) => {
                state.status = ProductStatus::Active;
                if !state.published_channels.contains(&e.channel) {
                    state.published_channels.push(e.channel);
                }
            }
            _ => return state,
        }
        // Published means published now: a product that leaves ACTIVE is unpublished everywhere.
        if state.status != ProductStatus::Active {
            state.published_channels.clear();
        }
        state.version += 1;
        state
    }
}

fn status_of(wire: &str) -> ProductStatus {
    ProductStatus::parse(wire).unwrap_or(ProductStatus::Draft)
}

fn not_found(id: &ProductId) -> Vec<Reason> {
    vec![Reason::on_field(
        "PRODUCT_NOT_FOUND",
        "product_id",
        format!("product '{id}' does not exist"),
    )]
}

/// The product the command addresses, or PRODUCT_NOT_FOUND.
fn existing<'a>(state: &'a ProductState, id: &ProductId) -> Result<&'a ProductData, Vec<Reason>> {
    match &state.product {
        Some(p) if state.status != ProductStatus::Absent && &p.product_id == id => Ok(p),
        _ => Err(not_found(id)),
    }
}

/// Channel overrides must name channels porch knows.
fn validate(product: &ProductData) -> Result<(), Vec<Reason>> {
    let reasons: Vec<Reason> = product
        .channel_overrides
        .keys()
        .filter(|name| Channel::parse(name).is_err())
        .map(|name| {
            Reason::on_field(
                "UNKNOWN_CHANNEL",
                &format!("channel_overrides.{name}"),
                format!("channel '{name}' is not one of storefront, meta, mercadolibre"),
            )
        })
        .collect();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

fn create(state: &ProductState, c: &CreateProduct) -> Result<Vec<Event>, Vec<Reason>> {
    if let Some(current) = &state.product {
        if state.status != ProductStatus::Absent {
            return if *current == c.product {
                Ok(vec![])
            } else {
                Err(vec![Reason::on_field(
                    "PRODUCT_EXISTS",
                    "product_id",
                    format!("product '{}' already exists", c.product.product_id),
                )])
            };
        }
    }
    validate(&c.product)?;
    let missing = missing_fields(&c.product);
    let status = if missing.is_empty() {
        ProductStatus::Ready
    } else {
        ProductStatus::Draft
    };
    Ok(vec![ProductCreated {
        product: c.product.clone(),
        status: status.as_str().to_string(),
        missing,
    }
    .into()])
}

fn update(state: &ProductState, c: &UpdateProduct) -> Result<Vec<Event>, Vec<Reason>> {
    let current = existing(state, &c.product_id)?;
    let mut next = current.clone();
    if let Some(title) = &c.title {
        next.title = title.clone();
    }
    if let Some(description) = &c.description {
        next.description = Some(description.clone());
    }
    if let Some(brand) = &c.brand {
        next.brand = Some(brand.clone());
    }
    if let Some(category) = &c.category {
        next.category = Some(category.clone());
    }
    for (k, v) in &c.attributes_set {
        next.attributes.insert(k.clone(), v.clone());
    }
    for k in &c.attributes_removed {
        next.attributes.remove(k);
    }
    if let Some(images) = &c.images {
        next.images = images.clone();
    }
    if let Some(overrides) = &c.channel_overrides {
        next.channel_overrides = overrides.clone();
    }
    if next == *current {
        return Ok(vec![]);
    }
    validate(&next)?;
    Ok(changed(state, next))
}

fn add_image(state: &ProductState, c: &AddProductImage) -> Result<Vec<Event>, Vec<Reason>> {
    let current = existing(state, &c.product_id)?;
    if c.name.trim().is_empty() {
        return Err(vec![Reason::on_field(
            "INVALID_IMAGE_NAME",
            "name",
            "an image needs a name",
        )]);
    }
    if current.images.contains(&c.name) {
        return Ok(vec![]);
    }
    let mut next = current.clone();
    next.images.push(c.name.clone());
    Ok(changed(state, next))
}

/// ProductUpdated with the product after the change, and ProductReady when it completes a draft.
/// An INACTIVE product stays INACTIVE; a READY or ACTIVE one that became incomplete is a DRAFT.
fn changed(state: &ProductState, next: ProductData) -> Vec<Event> {
    let missing = missing_fields(&next);
    let status = match (state.status, missing.is_empty()) {
        (ProductStatus::Inactive, _) => ProductStatus::Inactive,
        (_, false) => ProductStatus::Draft,
        (ProductStatus::Absent | ProductStatus::Draft, true) => ProductStatus::Ready,
        (kept, true) => kept,
    };
    let product_id = next.product_id.clone();
    let mut events: Vec<Event> = vec![ProductUpdated {
        product: next,
        status: status.as_str().to_string(),
        missing,
    }
    .into()];
    if state.status == ProductStatus::Draft && status == ProductStatus::Ready {
        events.push(ProductReady { product_id }.into());
    }
    events
}

fn deactivate(state: &ProductState, c: &DeactivateProduct) -> Result<Vec<Event>, Vec<Reason>> {
    existing(state, &c.product_id)?;
    if state.status == ProductStatus::Inactive {
        return Ok(vec![]);
    }
    Ok(vec![ProductDeactivated {
        product_id: c.product_id.clone(),
    }
    .into()])
}

fn reactivate(state: &ProductState, c: &ReactivateProduct) -> Result<Vec<Event>, Vec<Reason>> {
    let current = existing(state, &c.product_id)?;
    if state.status != ProductStatus::Inactive {
        return Err(vec![Reason::new(
            "PRODUCT_NOT_INACTIVE",
            format!(
                "product '{}' is {}; only an INACTIVE product can be reactivated",
                c.product_id,
                state.status.as_str()
            ),
        )]);
    }
    let status = if missing_fields(current).is_empty() {
        ProductStatus::Ready
    } else {
        ProductStatus::Draft
    };
    Ok(vec![ProductReactivated {
        product_id: c.product_id.clone(),
        status: status.as_str().to_string(),
    }
    .into()])
}

/// A listing became visible on the storefront: a READY product becomes ACTIVE (published), an
/// ACTIVE one records the channel if it is new. Signals about DRAFT or INACTIVE products are late
/// echoes of a state that has since changed and are ignored.
fn published(state: &ProductState, visible: &ListingVisible) -> Vec<Event> {
    let channel = Channel::Storefront;
    let is_ours = state
        .product
        .as_ref()
        .is_some_and(|p| p.product_id == visible.listing.product_id);
    let publish = is_ours
        && match state.status {
            ProductStatus::Ready => true,
            ProductStatus::Active => !state.published_channels.contains(&channel),
            _ => false,
        };
    if publish {
        vec![ProductPublished {
            product_id: visible.listing.product_id.clone(),
            channel,
        }
        .into()]
    } else {
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::replay;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn given(events: &[Event]) -> ProductState {
        replay::<Product>(events)
    }

    fn when(state: &ProductState, command: impl Into<Command>) -> Result<Vec<Event>, Vec<Reason>> {
        Product::decide(state, &ProductInput::Command(command.into()))
    }

    fn codes(reasons: Vec<Reason>) -> Vec<String> {
        reasons.into_iter().map(|r| r.code).collect()
    }

    fn created(product: ProductData) -> Event {
        let missing = missing_fields(&product);
        let status = if missing.is_empty() { "READY" } else { "DRAFT" };
        ProductCreated {
            product,
            status: status.into(),
            missing,
        }
        .into()
    }

    fn updated(product: ProductData, status: &str) -> Event {
        let missing = missing_fields(&product);
        ProductUpdated {
            product,
            status: status.into(),
            missing,
        }
        .into()
    }

    fn patch() -> UpdateProduct {
        UpdateProduct {
            product_id: pid(),
            title: None,
            description: None,
            brand: None,
            category: None,
            attributes_set: BTreeMap::new(),
            attributes_removed: vec![],
            images: None,
            channel_overrides: None,
        }
    }

    fn visible() -> ProductInput {
        ProductInput::ListingVisible(ListingVisible {
            listing: listing(&offer("o-1", "SKU-1", "GB", 1999, "GBP"), 3),
        })
    }

    fn published() -> Event {
        ProductPublished {
            product_id: pid(),
            channel: Channel::Storefront,
        }
        .into()
    }

    #[test]
    fn a_complete_product_is_created_ready() {
        let then = when(&given(&[]), CreateProduct { product: product() });
        assert_eq!(
            then,
            Ok(vec![ProductCreated {
                product: product(),
                status: "READY".into(),
                missing: vec![]
            }
            .into()])
        );
    }

    #[test]
    fn an_incomplete_product_is_created_draft_naming_what_is_missing() {
        let incomplete = ProductData {
            title: " ".into(),
            ..draft_product()
        };
        let then = when(
            &given(&[]),
            CreateProduct {
                product: incomplete.clone(),
            },
        );
        assert_eq!(
            then,
            Ok(vec![ProductCreated {
                product: incomplete,
                status: "DRAFT".into(),
                missing: vec!["title".into(), "description".into(), "category".into()],
            }
            .into()])
        );
    }

    #[test]
    fn creating_an_existing_product_is_refused_unless_identical() {
        let state = given(&[created(product())]);
        assert_eq!(
            when(&state, CreateProduct { product: product() }),
            Ok(vec![])
        );
        let other = ProductData {
            title: "Other".into(),
            ..product()
        };
        let refused = when(&state, CreateProduct { product: other }).unwrap_err();
        assert_eq!(
            refused,
            vec![Reason::on_field(
                "PRODUCT_EXISTS",
                "product_id",
                "product 'p-1' already exists"
            )]
        );
    }

    #[test]
    fn a_product_with_an_override_for_an_unknown_channel_is_refused() {
        let mut p = product();
        p.channel_overrides
            .insert("myspace".into(), attrs(&[("title", "x")]));
        let refused = when(&given(&[]), CreateProduct { product: p }).unwrap_err();
        assert_eq!(refused[0].code, "UNKNOWN_CHANNEL");
        assert_eq!(
            refused[0].field.as_deref(),
            Some("channel_overrides.myspace")
        );
    }

    #[test]
    fn commands_on_an_unknown_product_are_refused() {
        let state = given(&[]);
        for command in [
            Command::from(patch()),
            AddProductImage {
                product_id: pid(),
                name: "a.jpg".into(),
            }
            .into(),
            DeactivateProduct { product_id: pid() }.into(),
            ReactivateProduct { product_id: pid() }.into(),
        ] {
            let refused = when(&state, command).unwrap_err();
            assert_eq!(refused[0].code, "PRODUCT_NOT_FOUND");
            assert_eq!(refused[0].field.as_deref(), Some("product_id"));
        }
    }

    #[test]
    fn completing_a_draft_updates_it_and_makes_it_ready() {
        let state = given(&[created(draft_product())]);
        let then = when(
            &state,
            UpdateProduct {
                description: Some("Soft linen".into()),
                category: Some("apparel".into()),
                ..patch()
            },
        );
        assert_eq!(
            then,
            Ok(vec![
                updated(product(), "READY"),
                ProductReady { product_id: pid() }.into()
            ])
        );
    }

    #[test]
    fn an_update_merges_attributes_and_replaces_images_and_overrides() {
        let state = given(&[created(product())]);
        let overrides = BTreeMap::from([("meta".to_string(), attrs(&[("title", "Shirt")]))]);
        let then = when(
            &state,
            UpdateProduct {
                attributes_set: attrs(&[("colour", "red")]),
                attributes_removed: vec!["tax_code".into()],
                images: Some(vec!["back.jpg".into()]),
                channel_overrides: Some(overrides.clone()),
                brand: Some("Other".into()),
                ..patch()
            },
        );
        let after = ProductData {
            attributes: attrs(&[("colour", "red")]),
            images: vec!["back.jpg".into()],
            channel_overrides: overrides,
            brand: Some("Other".into()),
            ..product()
        };
        assert_eq!(then, Ok(vec![updated(after, "READY")]));
    }

    #[test]
    fn an_update_that_empties_a_ready_or_active_product_makes_it_a_draft() {
        let ready = given(&[created(product())]);
        let active = given(&[created(product()), published()]);
        for state in [ready, active] {
            let then = when(
                &state,
                UpdateProduct {
                    title: Some("".into()),
                    ..patch()
                },
            )
            .unwrap();
            let after = ProductData {
                title: "".into(),
                ..product()
            };
            assert_eq!(then, vec![updated(after, "DRAFT")]);
            let state = then.iter().fold(state, Product::evolve);
            assert_eq!(state.status, ProductStatus::Draft);
            assert_eq!(state.missing, vec!["title".to_string()]);
            assert!(state.published_channels.is_empty());
        }
    }

    #[test]
    fn an_active_product_stays_active_through_a_complete_update() {
        let state = given(&[created(product()), published()]);
        let then = when(
            &state,
            UpdateProduct {
                title: Some("Shirt".into()),
                ..patch()
            },
        );
        assert_eq!(
            then,
            Ok(vec![updated(
                ProductData {
                    title: "Shirt".into(),
                    ..product()
                },
                "ACTIVE"
            )])
        );
    }

    #[test]
    fn an_update_that_changes_nothing_emits_nothing() {
        let state = given(&[created(product())]);
        let same = UpdateProduct {
            title: Some("Linen shirt".into()),
            attributes_set: attrs(&[("tax_code", "6109")]),
            attributes_removed: vec!["absent".into()],
            ..patch()
        };
        assert_eq!(when(&state, same), Ok(vec![]));
    }

    #[test]
    fn an_inactive_product_can_be_updated_and_stays_inactive() {
        let state = given(&[
            created(draft_product()),
            ProductDeactivated { product_id: pid() }.into(),
        ]);
        let then = when(
            &state,
            UpdateProduct {
                description: Some("Soft linen".into()),
                category: Some("apparel".into()),
                ..patch()
            },
        );
        assert_eq!(then, Ok(vec![updated(product(), "INACTIVE")]));
    }

    #[test]
    fn an_image_is_appended_once() {
        let state = given(&[created(product())]);
        let add = AddProductImage {
            product_id: pid(),
            name: "side.jpg".into(),
        };
        let then = when(&state, add.clone()).unwrap();
        let after = ProductData {
            images: vec!["front.jpg".into(), "side.jpg".into()],
            ..product()
        };
        assert_eq!(then, vec![updated(after, "READY")]);
        let state = then.iter().fold(state, Product::evolve);
        assert_eq!(when(&state, add), Ok(vec![]));
        let blank = AddProductImage {
            product_id: pid(),
            name: "".into(),
        };
        assert_eq!(
            codes(when(&state, blank).unwrap_err()),
            ["INVALID_IMAGE_NAME"]
        );
    }

    #[test]
    fn deactivation_is_a_soft_delete_applied_once() {
        let state = given(&[created(product()), published()]);
        let then = when(&state, DeactivateProduct { product_id: pid() }).unwrap();
        assert_eq!(then, vec![ProductDeactivated { product_id: pid() }.into()]);
        let state = then.iter().fold(state, Product::evolve);
        assert_eq!(state.status, ProductStatus::Inactive);
        assert!(state.published_channels.is_empty());
        assert_eq!(
            when(&state, DeactivateProduct { product_id: pid() }),
            Ok(vec![])
        );
    }

    #[test]
    fn reactivation_returns_to_ready_or_draft_by_completeness() {
        let deactivated: Event = ProductDeactivated { product_id: pid() }.into();
        for (product, status) in [(product(), "READY"), (draft_product(), "DRAFT")] {
            let state = given(&[created(product), deactivated.clone()]);
            let then = when(&state, ReactivateProduct { product_id: pid() });
            assert_eq!(
                then,
                Ok(vec![ProductReactivated {
                    product_id: pid(),
                    status: status.into()
                }
                .into()])
            );
        }
    }

    #[test]
    fn only_an_inactive_product_can_be_reactivated() {
        let state = given(&[created(product())]);
        let refused = when(&state, ReactivateProduct { product_id: pid() }).unwrap_err();
        assert_eq!(codes(refused), ["PRODUCT_NOT_INACTIVE"]);
    }

    #[test]
    fn a_visible_listing_publishes_a_ready_product_on_the_storefront_once() {
        let state = given(&[created(product())]);
        let then = Product::decide(&state, &visible()).unwrap();
        assert_eq!(then, vec![published()]);
        let state = then.iter().fold(state, Product::evolve);
        assert_eq!(state.status, ProductStatus::Active);
        assert_eq!(state.published_channels, vec![Channel::Storefront]);
        assert_eq!(Product::decide(&state, &visible()), Ok(vec![]));
    }

    #[test]
    fn a_visible_listing_does_not_publish_a_draft_inactive_or_absent_product() {
        let deactivated: Event = ProductDeactivated { product_id: pid() }.into();
        for state in [
            given(&[]),
            given(&[created(draft_product())]),
            given(&[created(product()), deactivated]),
        ] {
            assert_eq!(Product::decide(&state, &visible()), Ok(vec![]));
        }
    }

    #[test]
    fn other_modules_commands_are_not_handled() {
        let refused = when(
            &given(&[]),
            DiscontinueVariant {
                product_id: pid(),
                sku: sku("A"),
            },
        );
        assert_eq!(codes(refused.unwrap_err()), ["UNSUPPORTED_COMMAND"]);
    }

    #[test]
    fn the_version_counts_the_products_own_events() {
        let state = given(&[
            created(draft_product()),
            updated(product(), "READY"),
            ProductReady { product_id: pid() }.into(),
            VariantsCreated {
                product_id: pid(),
                variants: vec![],
            }
            .into(),
        ]);
        assert_eq!(state.version, 3);
        assert_eq!(state.status, ProductStatus::Ready);
    }

    fn arb_command() -> impl Strategy<Value = ProductInput> {
        let text = prop_oneof![
            Just(None),
            Just(Some(String::new())),
            Just(Some("x".to_string()))
        ];
        prop_oneof![
            (any::<bool>()).prop_map(|complete| {
                let p = if complete { product() } else { draft_product() };
                ProductInput::Command(CreateProduct { product: p }.into())
            }),
            (
                text.clone(),
                text.clone(),
                text,
                proptest::option::of("[a-c]"),
                any::<bool>()
            )
                .prop_map(|(title, description, category, attr, remove)| {
                    let mut u = UpdateProduct {
                        title,
                        description,
                        category,
                        ..patch()
                    };
                    if let Some(a) = attr {
                        if remove {
                            u.attributes_removed.push(a);
                        } else {
                            u.attributes_set.insert(a.clone(), a);
                        }
                    }
                    ProductInput::Command(u.into())
                }),
            "[a-c]\\.jpg".prop_map(|name| ProductInput::Command(
                AddProductImage {
                    product_id: pid(),
                    name
                }
                .into()
            )),
            Just(ProductInput::Command(
                DeactivateProduct { product_id: pid() }.into()
            )),
            Just(ProductInput::Command(
                ReactivateProduct { product_id: pid() }.into()
            )),
            Just(visible()),
        ]
    }

    proptest! {
        #[test]
        fn replaying_the_emitted_events_rebuilds_the_state(
            inputs in proptest::collection::vec(arb_command(), 0..30)
        ) {
            let mut state = ProductState::default();
            let mut log = Vec::new();
            for input in &inputs {
                if let Ok(events) = Product::decide(&state, input) {
                    for e in &events {
                        state = Product::evolve(state, e);
                    }
                    log.extend(events);
                }
                // The status always agrees with completeness.
                if let Some(p) = &state.product {
                    prop_assert_eq!(&state.missing, &missing_fields(p));
                    match state.status {
                        ProductStatus::Draft => prop_assert!(!state.missing.is_empty()),
                        ProductStatus::Ready | ProductStatus::Active => {
                            prop_assert!(state.missing.is_empty())
                        }
                        _ => {}
                    }
                }
                // Deciding the same input again changes nothing.
                let repeatable = matches!(
                    input,
                    ProductInput::Command(Command::CreateProduct(_) | Command::UpdateProduct(_))
                );
                if repeatable && state.status != ProductStatus::Absent {
                    if let Ok(again) = Product::decide(&state, input) {
                        prop_assert!(again.is_empty());
                    }
                }

            }
            prop_assert_eq!(state.version, log.len() as i64);
            prop_assert_eq!(&replay::<Product>(&log), &state);
            let row = serde_json::to_string(&state).expect("serialise");
            let back: ProductState = serde_json::from_str(&row).expect("deserialise");
            prop_assert_eq!(back, state);
        }
    }
}

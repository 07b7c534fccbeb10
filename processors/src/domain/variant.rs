//! Step 2, the variants of a product: ∅ → SKU_CREATED → DISCONTINUED.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantEntry {
    pub data: VariantData,
    pub discontinued: bool,
}

/// All variants of one product (the aggregate is the product's variant set, so one command can
/// create many SKUs atomically).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VariantSetState {
    pub product_id: Option<ProductId>,
    pub variants: BTreeMap<Sku, VariantEntry>,
    pub version: i64,
}

/// The variant module decides on its commands: CreateVariants, UpdateVariant, DiscontinueVariant.
pub type VariantInput = Command;

pub struct Variants;

impl Aggregate for Variants {
    type State = VariantSetState;
    type Input = VariantInput;

    fn decide(state: &VariantSetState, input: &Command) -> Result<Vec<Event>, Vec<Reason>> {
        match input {
            Command::CreateVariants(c) => create(state, c),
            Command::UpdateVariant(c) => update(state, c),
            Command::DiscontinueVariant(c) => discontinue(state, c),
            other => Err(vec![Reason::new(
                "UNSUPPORTED_COMMAND",
                format!("the variant module does not handle {}", other.type_name()),
            )]),
        }
    }

    fn evolve(mut state: VariantSetState, event: &Event) -> VariantSetState {
        match event {
            Event::VariantsCreated(e) => {
                state.product_id = Some(e.product_id.clone());
                for v in &e.variants {
                    state.variants.insert(
                        v.sku.clone(),
                        VariantEntry {
                            data: v.clone(),
                            discontinued: false,
                        },
                    );
                }
            }
            Event::VariantUpdated(e) => {
                let discontinued = state
                    .variants
                    .get(&e.variant.sku)
                    .is_some_and(|v| v.discontinued);
                state.variants.insert(
                    e.variant.sku.clone(),
                    VariantEntry {
                        data: e.variant.clone(),
                        discontinued,
                    },
                );
            }
            Event::VariantDiscontinued(e) => {
                if let Some(v) = state.variants.get_mut(&e.sku) {
                    v.discontinued = true;
                }
            }
            _ => return state,
        }
        state.version += 1;
        state
    }
}

/// A variant set belongs to one product: a command naming another product is misrouted.
fn check_product(state: &VariantSetState, product_id: &ProductId) -> Result<(), Vec<Reason>> {
    match &state.product_id {
        Some(own) if own != product_id => Err(vec![Reason::on_field(
            "PRODUCT_MISMATCH",
            "product_id",
            format!("these variants belong to product '{own}', not '{product_id}'"),
        )]),
        _ => Ok(()),
    }
}

/// Physical facts cannot be negative.
fn validate(v: &VariantData, prefix: &str) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if v.weight_grams.is_some_and(|w| w < 0) {
        reasons.push(Reason::on_field(
            "INVALID_WEIGHT",
            &format!("{prefix}weight_grams"),
            "weight must not be negative",
        ));
    }
    if let Some(d) = &v.dimensions {
        if d.length_mm < 0 || d.width_mm < 0 || d.height_mm < 0 {
            reasons.push(Reason::on_field(
                "INVALID_DIMENSIONS",
                &format!("{prefix}dimensions"),
                "dimensions must not be negative",
            ));
        }
    }
    reasons
}

fn unknown_sku(sku: &Sku) -> Vec<Reason> {
    vec![Reason::on_field(
        "SKU_NOT_FOUND",
        "sku",
        format!("sku '{sku}' does not exist on this product"),
    )]
}

fn create(state: &VariantSetState, c: &CreateVariants) -> Result<Vec<Event>, Vec<Reason>> {
    check_product(state, &c.product_id)?;
    if c.variants.is_empty() {
        return Err(vec![Reason::on_field(
            "NO_VARIANTS",
            "variants",
            "give at least one variant",
        )]);
    }
    let mut reasons = Vec::new();
    let mut seen = BTreeSet::new();
    let mut new = Vec::new();
    for (i, v) in c.variants.iter().enumerate() {
        let field = format!("variants[{i}].sku");
        reasons.extend(validate(v, &format!("variants[{i}].")));
        if !seen.insert(&v.sku) {
            reasons.push(Reason::on_field(
                "DUPLICATE_SKU",
                &field,
                format!("sku '{}' appears more than once", v.sku),
            ));
            continue;
        }
        match state.variants.get(&v.sku) {
            // A repeat of what exists is skipped, so a retried command is harmless.
            Some(existing) if existing.data == *v => {}
            Some(_) => reasons.push(Reason::on_field(
                "SKU_EXISTS",
                &field,
                format!("sku '{}' already exists with other data", v.sku),
            )),
            None => new.push(v.clone()),
        }
    }
    if !reasons.is_empty() {
        return Err(reasons);
    }
    if new.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![VariantsCreated {
        product_id: c.product_id.clone(),
        variants: new,
    }
    .into()])
}

fn update(state: &VariantSetState, c: &UpdateVariant) -> Result<Vec<Event>, Vec<Reason>> {
    check_product(state, &c.product_id)?;
    let entry = state
        .variants
        .get(&c.sku)
        .ok_or_else(|| unknown_sku(&c.sku))?;
    if entry.discontinued {
        return Err(vec![Reason::on_field(
            "VARIANT_DISCONTINUED",
            "sku",
            format!("sku '{}' is discontinued", c.sku),
        )]);
    }
    let mut next = entry.data.clone();
    if let Some(options) = &c.options {
        next.options = options.clone();
    }
    if let Some(weight) = c.weight_grams {
        next.weight_grams = Some(weight);
    }
    if let Some(dimensions) = &c.dimensions {
        next.dimensions = Some(dimensions.clone());
    }
    if let Some(gtin) = &c.gtin {
        next.gtin = Some(gtin.clone());
    }
    let reasons = validate(&next, "");
    if !reasons.is_empty() {
        return Err(reasons);
    }
    if next == entry.data {
        return Ok(vec![]);
    }
    Ok(vec![VariantUpdated {
        product_id: c.product_id.clone(),
        variant: next,
    }
    .into()])
}

fn discontinue(state: &VariantSetState, c: &DiscontinueVariant) -> Result<Vec<Event>, Vec<Reason>> {
    check_product(state, &c.product_id)?;
    let entry = state
        .variants
        .get(&c.sku)
        .ok_or_else(|| unknown_sku(&c.sku))?;
    if entry.discontinued {
        return Ok(vec![]);
    }
    Ok(vec![VariantDiscontinued {
        product_id: c.product_id.clone(),
        sku: c.sku.clone(),
    }
    .into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::replay;
    use proptest::prelude::*;

    fn given(events: &[Event]) -> VariantSetState {
        replay::<Variants>(events)
    }

    fn when(
        state: &VariantSetState,
        command: impl Into<Command>,
    ) -> Result<Vec<Event>, Vec<Reason>> {
        Variants::decide(state, &command.into())
    }

    fn created(variants: Vec<VariantData>) -> Event {
        VariantsCreated {
            product_id: pid(),
            variants,
        }
        .into()
    }

    fn create(variants: Vec<VariantData>) -> CreateVariants {
        CreateVariants {
            product_id: pid(),
            variants,
        }
    }

    fn patch(s: &str) -> UpdateVariant {
        UpdateVariant {
            product_id: pid(),
            sku: sku(s),
            options: None,
            weight_grams: None,
            dimensions: None,
            gtin: None,
        }
    }

    fn discontinued(s: &str) -> Event {
        VariantDiscontinued {
            product_id: pid(),
            sku: sku(s),
        }
        .into()
    }

    #[test]
    fn variants_are_created_in_one_event() {
        let then = when(&given(&[]), create(vec![variant("A"), variant("B")]));
        assert_eq!(then, Ok(vec![created(vec![variant("A"), variant("B")])]));
    }

    #[test]
    fn at_least_one_variant_is_required() {
        let refused = when(&given(&[]), create(vec![])).unwrap_err();
        assert_eq!(
            refused,
            vec![Reason::on_field(
                "NO_VARIANTS",
                "variants",
                "give at least one variant"
            )]
        );
    }

    #[test]
    fn a_sku_given_twice_is_refused_naming_the_field() {
        let refused = when(&given(&[]), create(vec![variant("A"), variant("A")])).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].code, "DUPLICATE_SKU");
        assert_eq!(refused[0].field.as_deref(), Some("variants[1].sku"));
    }

    #[test]
    fn existing_identical_skus_are_skipped_and_only_new_ones_created() {
        let state = given(&[created(vec![variant("A")])]);
        assert_eq!(when(&state, create(vec![variant("A")])), Ok(vec![]));
        assert_eq!(
            when(&state, create(vec![variant("A"), variant("B")])),
            Ok(vec![created(vec![variant("B")])])
        );
    }

    #[test]
    fn an_existing_sku_with_other_data_is_refused() {
        let state = given(&[created(vec![variant("A")])]);
        let other = VariantData {
            gtin: Some("4006381333931".into()),
            ..variant("A")
        };
        let refused = when(&state, create(vec![variant("B"), other])).unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].code, "SKU_EXISTS");
        assert_eq!(refused[0].field.as_deref(), Some("variants[1].sku"));
    }

    #[test]
    fn negative_physical_facts_are_refused() {
        let bad = VariantData {
            weight_grams: Some(-1),
            dimensions: Some(Dimensions {
                length_mm: 1,
                width_mm: -2,
                height_mm: 3,
            }),
            ..variant("A")
        };
        let refused = when(&given(&[]), create(vec![bad])).unwrap_err();
        let fields: Vec<_> = refused
            .iter()
            .map(|r| (r.code.as_str(), r.field.as_deref()))
            .collect();
        assert_eq!(
            fields,
            [
                ("INVALID_WEIGHT", Some("variants[0].weight_grams")),
                ("INVALID_DIMENSIONS", Some("variants[0].dimensions"))
            ]
        );
    }

    #[test]
    fn an_update_emits_the_full_variant_after() {
        let state = given(&[created(vec![variant("A")])]);
        let then = when(
            &state,
            UpdateVariant {
                options: Some(attrs(&[("size", "L")])),
                gtin: Some("123".into()),
                ..patch("A")
            },
        );
        let after = VariantData {
            options: attrs(&[("size", "L")]),
            gtin: Some("123".into()),
            ..variant("A")
        };
        assert_eq!(
            then,
            Ok(vec![VariantUpdated {
                product_id: pid(),
                variant: after
            }
            .into()])
        );
    }

    #[test]
    fn an_update_that_changes_nothing_emits_nothing() {
        let state = given(&[created(vec![variant("A")])]);
        assert_eq!(
            when(
                &state,
                UpdateVariant {
                    weight_grams: Some(200),
                    ..patch("A")
                }
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn updating_an_unknown_or_discontinued_sku_is_refused() {
        let state = given(&[created(vec![variant("A")]), discontinued("A")]);
        let refused = when(&state, patch("B")).unwrap_err();
        assert_eq!(
            (refused[0].code.as_str(), refused[0].field.as_deref()),
            ("SKU_NOT_FOUND", Some("sku"))
        );
        let refused = when(&state, patch("A")).unwrap_err();
        assert_eq!(refused[0].code, "VARIANT_DISCONTINUED");
    }

    #[test]
    fn discontinuing_is_applied_once() {
        let state = given(&[created(vec![variant("A")])]);
        let command = DiscontinueVariant {
            product_id: pid(),
            sku: sku("A"),
        };
        assert_eq!(when(&state, command.clone()), Ok(vec![discontinued("A")]));
        let state = Variants::evolve(state, &discontinued("A"));
        assert!(state.variants[&sku("A")].discontinued);
        assert_eq!(when(&state, command), Ok(vec![]));
        let refused = when(
            &state,
            DiscontinueVariant {
                product_id: pid(),
                sku: sku("Z"),
            },
        );
        assert_eq!(refused.unwrap_err()[0].code, "SKU_NOT_FOUND");
    }

    #[test]
    fn a_command_for_another_product_is_refused() {
        let state = given(&[created(vec![variant("A")])]);
        let other = ProductId::parse("p-2").unwrap();
        let refused = when(
            &state,
            CreateVariants {
                product_id: other,
                variants: vec![variant("B")],
            },
        );
        assert_eq!(refused.unwrap_err()[0].code, "PRODUCT_MISMATCH");
    }

    #[test]
    fn the_version_counts_the_variant_sets_events() {
        let state = given(&[created(vec![variant("A"), variant("B")]), discontinued("B")]);
        assert_eq!(state.version, 2);
        assert_eq!(state.product_id, Some(pid()));
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        let s = prop_oneof![Just("A"), Just("B"), Just("C")];
        prop_oneof![
            proptest::collection::vec((s.clone(), 0i64..3), 0..3).prop_map(|vs| {
                let variants = vs
                    .into_iter()
                    .map(|(s, w)| VariantData {
                        weight_grams: Some(w),
                        ..variant(s)
                    })
                    .collect();
                create(variants).into()
            }),
            (s.clone(), 0i64..3).prop_map(|(s, w)| UpdateVariant {
                weight_grams: Some(w),
                ..patch(s)
            }
            .into()),
            s.prop_map(|s| DiscontinueVariant {
                product_id: pid(),
                sku: sku(s)
            }
            .into()),
        ]
    }

    proptest! {
        #[test]
        fn replaying_the_emitted_events_rebuilds_the_state(
            commands in proptest::collection::vec(arb_command(), 0..20)
        ) {
            let mut state = VariantSetState::default();
            let mut log = Vec::new();
            for command in &commands {
                if let Ok(events) = Variants::decide(&state, command) {
                    state = events.iter().fold(state, Variants::evolve);
                    log.extend(events);
                    // An accepted command repeated changes nothing.
                    prop_assert_eq!(Variants::decide(&state, command), Ok(vec![]));
                }
            }
            prop_assert_eq!(&replay::<Variants>(&log), &state);
        }
    }
}

//! Step 5, compliance per (product, region): PENDING → APPROVED / REJECTED / MANUAL_REVIEW, by
//! rules per region, re-run whenever the product changes; MANUAL_REVIEW ends by a person's decision.

use super::Aggregate;
use porch_schemas::*;
use serde::{Deserialize, Serialize};

/// The rules of one region, from the config file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionRules {
    /// Product attributes every product must carry in this region (e.g. `tax_code`).
    #[serde(default)]
    pub required_attributes: Vec<String>,
    /// Categories that may not be sold in this region.
    #[serde(default)]
    pub banned_categories: Vec<String>,
    /// Categories a person must approve in this region.
    #[serde(default)]
    pub review_categories: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComplianceStatus {
    #[default]
    Pending,
    Approved,
    Rejected,
    ManualReview,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ComplianceState {
    pub product_id: Option<ProductId>,
    pub region: Option<RegionCode>,
    pub status: ComplianceStatus,
    pub reasons: Vec<Reason>,
    /// The category a person decided on, and what they decided; it stands while the category
    /// stays the same.
    pub manual_decision: Option<(String, bool)>,
    /// The category seen at the last evaluation that involved a person (a review requested or a
    /// decision in force); `None` while the verdict is the rules' alone. Learnt from the events'
    /// `category:<name>` reason field (see [`category_field`]).
    pub category: Option<String>,
    pub version: i64,
    /// The reasons of the person's decision in `manual_decision` (MANUAL_APPROVAL or
    /// MANUAL_REJECTION with their note), re-emitted when the decision comes back into force.
    #[serde(default)]
    pub manual_reasons: Vec<Reason>,
}

// Inputs live one at a time on the stack while a record is handled; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ComplianceInput {
    /// The product was created or changed: evaluate it against this region's rules.
    ProductChanged {
        product: ProductData,
        region: RegionCode,
        rules: RegionRules,
    },
    /// A person's decision on a product in MANUAL_REVIEW.
    Decision(DecideCompliance),
}

pub struct Compliance;

/// The compliance events carry no category, yet a person's decision holds only for the category
/// they saw. So the reasons that involve a person (REVIEW_REQUIRED, MANUAL_APPROVAL,
/// MANUAL_REJECTION) name the input field and its value as `category:<name>`, which `evolve`
/// reads back with [`category_of`]. Rule-based reasons keep plain field names (`category`,
/// `attributes.<name>`).
pub fn category_field(category: &str) -> String {
    format!("category:{category}")
}

/// The category named by a `category:<name>` reason field among `reasons`, if any.
pub fn category_of(reasons: &[Reason]) -> Option<String> {
    reasons
        .iter()
        .filter_map(|r| r.field.as_deref()?.strip_prefix("category:"))
        .map(str::to_string)
        .next()
}

/// What the evaluation or the decision concludes, before it is compared with the state.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Approved { manual: bool, reasons: Vec<Reason> },
    Rejected { manual: bool, reasons: Vec<Reason> },
    Review { reasons: Vec<Reason> },
}

impl Verdict {
    fn status(&self) -> ComplianceStatus {
        match self {
            Verdict::Approved { .. } => ComplianceStatus::Approved,
            Verdict::Rejected { .. } => ComplianceStatus::Rejected,
            Verdict::Review { .. } => ComplianceStatus::ManualReview,
        }
    }

    fn reasons(&self) -> &[Reason] {
        match self {
            Verdict::Approved { reasons, .. }
            | Verdict::Rejected { reasons, .. }
            | Verdict::Review { reasons } => reasons,
        }
    }

    /// The event for this verdict, or none when the state already says the same.
    fn emit(
        self,
        state: &ComplianceState,
        product_id: &ProductId,
        region: &RegionCode,
    ) -> Vec<Event> {
        let unchanged = state.product_id.is_some()
            && state.status == self.status()
            && state.reasons == self.reasons();
        if unchanged {
            return vec![];
        }
        let (product_id, region) = (product_id.clone(), region.clone());
        vec![match self {
            Verdict::Approved { manual, reasons } => ComplianceApproved {
                product_id,
                region,
                manual,
                reasons,
            }
            .into(),
            Verdict::Rejected { manual, reasons } => ComplianceRejected {
                product_id,
                region,
                manual,
                reasons,
            }
            .into(),
            Verdict::Review { reasons } => ComplianceReviewRequested {
                product_id,
                region,
                reasons,
            }
            .into(),
        }]
    }
}

impl Aggregate for Compliance {
    type State = ComplianceState;
    type Input = ComplianceInput;

    fn decide(state: &ComplianceState, input: &ComplianceInput) -> Result<Vec<Event>, Vec<Reason>> {
        match input {
            ComplianceInput::ProductChanged {
                product,
                region,
                rules,
            } => Ok(evaluate(state, product, region, rules).emit(
                state,
                &product.product_id,
                region,
            )),
            ComplianceInput::Decision(d) => decision(state, d),
        }
    }

    fn evolve(mut state: ComplianceState, event: &Event) -> ComplianceState {
        let (product_id, region, status, manual, reasons) = match event {
            Event::ComplianceApproved(e) => (
                &e.product_id,
                &e.region,
                ComplianceStatus::Approved,
                e.manual,
                &e.reasons,
            ),
            Event::ComplianceRejected(e) => (
                &e.product_id,
                &e.region,
                ComplianceStatus::Rejected,
                e.manual,
                &e.reasons,
            ),
            Event::ComplianceReviewRequested(e) => (
                &e.product_id,
                &e.region,
                ComplianceStatus::ManualReview,
                false,
                &e.reasons,
            ),
            _ => return state,
        };
        state.product_id = Some(product_id.clone());
        state.region = Some(region.clone());
        state.status = status;
        state.reasons = reasons.clone();
        state.category = category_of(reasons);
        if manual {
            if let Some(category) = &state.category {
                state.manual_decision =
                    Some((category.clone(), status == ComplianceStatus::Approved));
                state.manual_reasons = reasons.clone();
            }
        }
        state.version += 1;
        state
    }
}

/// The region's rules applied to the product: missing attributes and banned categories reject;
/// a category under review needs a person, whose decision on that category stands; otherwise the
/// product is approved.
fn evaluate(
    state: &ComplianceState,
    product: &ProductData,
    region: &RegionCode,
    rules: &RegionRules,
) -> Verdict {
    let mut reasons: Vec<Reason> = rules
        .required_attributes
        .iter()
        .filter(|name| {
            product
                .attributes
                .get(*name)
                .is_none_or(|v| v.trim().is_empty())
        })
        .map(|name| {
            Reason::on_field(
                "MISSING_ATTRIBUTE",
                &format!("attributes.{name}"),
                format!("attribute '{name}' is required in {region}"),
            )
        })
        .collect();
    let category = product.category.as_deref().filter(|c| !c.trim().is_empty());
    if let Some(category) = category.filter(|c| rules.banned_categories.iter().any(|b| b == c)) {
        reasons.push(Reason::on_field(
            "BANNED_CATEGORY",
            "category",
            format!("category '{category}' may not be sold in {region}"),
        ));
    }
    if !reasons.is_empty() {
        return Verdict::Rejected {
            manual: false,
            reasons,
        };
    }
    let Some(category) = category.filter(|c| rules.review_categories.iter().any(|r| r == c)) else {
        return Verdict::Approved {
            manual: false,
            reasons: vec![],
        };
    };
    match &state.manual_decision {
        Some((decided, approve)) if decided == category => {
            let reasons = state.manual_reasons.clone();
            if *approve {
                Verdict::Approved {
                    manual: true,
                    reasons,
                }
            } else {
                Verdict::Rejected {
                    manual: true,
                    reasons,
                }
            }
        }
        _ => Verdict::Review {
            reasons: vec![Reason::on_field(
                "REVIEW_REQUIRED",
                &category_field(category),
                format!("category '{category}' needs a person's approval in {region}"),
            )],
        },
    }
}

/// A person's decision: allowed on a product in review, or to change a decision that is still in
/// force (same category).
fn decision(state: &ComplianceState, d: &DecideCompliance) -> Result<Vec<Event>, Vec<Reason>> {
    let same_aggregate = state.product_id.as_ref() == Some(&d.product_id)
        && state.region.as_ref() == Some(&d.region);
    let in_force = state.manual_decision.as_ref().map(|(c, _)| c) == state.category.as_ref();
    let category = match &state.category {
        Some(category)
            if same_aggregate && (state.status == ComplianceStatus::ManualReview || in_force) =>
        {
            category
        }
        _ => {
            return Err(vec![Reason::new(
                "NOT_IN_REVIEW",
                format!(
                    "product '{}' is not awaiting a person's decision in {}",
                    d.product_id, d.region
                ),
            )])
        }
    };
    let field = category_field(category);
    let note = d.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let verdict = if d.approve {
        let message = note.unwrap_or("approved by a person");
        Verdict::Approved {
            manual: true,
            reasons: vec![Reason::on_field("MANUAL_APPROVAL", &field, message)],
        }
    } else {
        let message = note.unwrap_or("rejected by a person");
        Verdict::Rejected {
            manual: true,
            reasons: vec![Reason::on_field("MANUAL_REJECTION", &field, message)],
        }
    };
    Ok(verdict.emit(state, &d.product_id, &d.region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::replay;

    fn rules() -> RegionRules {
        RegionRules {
            required_attributes: vec!["tax_code".into()],
            banned_categories: vec!["weapons".into()],
            review_categories: vec!["knives".into()],
        }
    }

    fn given(events: &[Event]) -> ComplianceState {
        replay::<Compliance>(events)
    }

    fn changed(state: &ComplianceState, product: ProductData) -> Result<Vec<Event>, Vec<Reason>> {
        Compliance::decide(
            state,
            &ComplianceInput::ProductChanged {
                product,
                region: region("GB"),
                rules: rules(),
            },
        )
    }

    fn decide(
        state: &ComplianceState,
        approve: bool,
        note: Option<&str>,
    ) -> Result<Vec<Event>, Vec<Reason>> {
        Compliance::decide(
            state,
            &ComplianceInput::Decision(DecideCompliance {
                product_id: pid(),
                region: region("GB"),
                approve,
                note: note.map(str::to_string),
            }),
        )
    }

    fn in_category(category: &str) -> ProductData {
        ProductData {
            category: Some(category.into()),
            ..product()
        }
    }

    fn approved(manual: bool, reasons: Vec<Reason>) -> Event {
        ComplianceApproved {
            product_id: pid(),
            region: region("GB"),
            manual,
            reasons,
        }
        .into()
    }

    fn rejected(manual: bool, reasons: Vec<Reason>) -> Event {
        ComplianceRejected {
            product_id: pid(),
            region: region("GB"),
            manual,
            reasons,
        }
        .into()
    }

    fn review(category: &str) -> Event {
        ComplianceReviewRequested {
            product_id: pid(),
            region: region("GB"),
            reasons: vec![Reason::on_field(
                "REVIEW_REQUIRED",
                &category_field(category),
                format!("category '{category}' needs a person's approval in GB"),
            )],
        }
        .into()
    }

    fn manual_approval(category: &str, note: &str) -> Event {
        approved(
            true,
            vec![Reason::on_field(
                "MANUAL_APPROVAL",
                &category_field(category),
                note,
            )],
        )
    }

    fn missing_tax_code() -> Reason {
        Reason::on_field(
            "MISSING_ATTRIBUTE",
            "attributes.tax_code",
            "attribute 'tax_code' is required in GB",
        )
    }

    #[test]
    fn a_product_meeting_the_rules_is_approved() {
        assert_eq!(
            changed(&given(&[]), product()),
            Ok(vec![approved(false, vec![])])
        );
    }

    #[test]
    fn missing_attributes_and_banned_categories_reject_with_every_reason() {
        let mut p = in_category("weapons");
        p.attributes.clear();
        let then = changed(&given(&[]), p);
        let banned = Reason::on_field(
            "BANNED_CATEGORY",
            "category",
            "category 'weapons' may not be sold in GB",
        );
        assert_eq!(
            then,
            Ok(vec![rejected(false, vec![missing_tax_code(), banned])])
        );
    }

    #[test]
    fn a_category_under_review_asks_a_person() {
        assert_eq!(
            changed(&given(&[]), in_category("knives")),
            Ok(vec![review("knives")])
        );
    }

    #[test]
    fn the_same_verdict_again_emits_nothing_and_new_reasons_emit_again() {
        let state = given(&[approved(false, vec![])]);
        assert_eq!(
            changed(
                &state,
                ProductData {
                    title: "Other".into(),
                    ..product()
                }
            ),
            Ok(vec![])
        );
        let state = given(&[rejected(false, vec![missing_tax_code()])]);
        let mut p = in_category("weapons");
        p.attributes.clear();
        assert_eq!(changed(&state, p.clone()).unwrap().len(), 1);
        p.category = Some("apparel".into());
        assert_eq!(changed(&state, p), Ok(vec![]));
    }

    #[test]
    fn a_person_approves_or_rejects_a_product_in_review() {
        let state = given(&[review("knives")]);
        assert_eq!(
            decide(&state, true, Some("blunt")),
            Ok(vec![manual_approval("knives", "blunt")])
        );
        let then = decide(&state, false, None).unwrap();
        let rejection = Reason::on_field(
            "MANUAL_REJECTION",
            "category:knives",
            "rejected by a person",
        );
        assert_eq!(then, vec![rejected(true, vec![rejection])]);
        let state = then.iter().fold(state, Compliance::evolve);
        assert_eq!(state.status, ComplianceStatus::Rejected);
        assert_eq!(state.manual_decision, Some(("knives".into(), false)));
    }

    #[test]
    fn a_decision_outside_review_is_refused() {
        for state in [
            given(&[]),
            given(&[approved(false, vec![])]),
            given(&[rejected(false, vec![missing_tax_code()])]),
        ] {
            let refused = decide(&state, true, None).unwrap_err();
            assert_eq!(refused[0].code, "NOT_IN_REVIEW");
        }
    }

    #[test]
    fn a_decision_stands_while_the_category_stays() {
        let state = given(&[review("knives"), manual_approval("knives", "blunt")]);
        assert_eq!(state.manual_decision, Some(("knives".into(), true)));
        assert_eq!(
            changed(
                &state,
                ProductData {
                    title: "Chef knife".into(),
                    ..in_category("knives")
                }
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn a_decision_in_force_can_be_changed_and_repeating_it_changes_nothing() {
        let state = given(&[review("knives"), manual_approval("knives", "blunt")]);
        assert_eq!(decide(&state, true, Some("blunt")), Ok(vec![]));
        let then = decide(&state, false, Some("too sharp")).unwrap();
        let rejection = Reason::on_field("MANUAL_REJECTION", "category:knives", "too sharp");
        assert_eq!(then, vec![rejected(true, vec![rejection])]);
    }

    #[test]
    fn a_new_category_sets_a_decision_aside() {
        let state = given(&[review("knives"), manual_approval("knives", "blunt")]);
        // Into a category the rules approve: the decision no longer applies, and cannot be changed.
        let then = changed(&state, product()).unwrap();
        assert_eq!(then, vec![approved(false, vec![])]);
        let after = then.iter().fold(state.clone(), Compliance::evolve);
        assert_eq!(
            decide(&after, false, None).unwrap_err()[0].code,
            "NOT_IN_REVIEW"
        );
        // Back into the decided category: the person's decision is in force again.
        assert_eq!(
            changed(&after, in_category("knives")),
            Ok(vec![manual_approval("knives", "blunt")])
        );
        // Into another reviewed category: a person must look again.
        let rules = RegionRules {
            review_categories: vec!["knives".into(), "axes".into()],
            ..rules()
        };
        let then = Compliance::decide(
            &state,
            &ComplianceInput::ProductChanged {
                product: in_category("axes"),
                region: region("GB"),
                rules,
            },
        );
        assert_eq!(then, Ok(vec![review("axes")]));
    }

    #[test]
    fn a_decision_returns_once_a_rule_failure_is_fixed() {
        let state = given(&[review("knives"), manual_approval("knives", "blunt")]);
        let mut p = in_category("knives");
        p.attributes.clear();
        let then = changed(&state, p).unwrap();
        assert_eq!(then, vec![rejected(false, vec![missing_tax_code()])]);
        let state = then.iter().fold(state, Compliance::evolve);
        assert_eq!(
            changed(&state, in_category("knives")),
            Ok(vec![manual_approval("knives", "blunt")])
        );
    }

    #[test]
    fn the_category_is_read_back_from_the_events() {
        assert_eq!(
            category_of(&[Reason::on_field("X", "category:a:b", "")]),
            Some("a:b".into())
        );
        assert_eq!(
            category_of(&[Reason::on_field("BANNED_CATEGORY", "category", "")]),
            None
        );
        let state = given(&[review("knives")]);
        assert_eq!(
            (state.category.as_deref(), state.status),
            (Some("knives"), ComplianceStatus::ManualReview)
        );
        assert_eq!(
            (state.product_id, state.region, state.version),
            (Some(pid()), Some(region("GB")), 1)
        );
    }
}

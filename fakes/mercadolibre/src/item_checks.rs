//! The checks an item body goes through, in Mercado Libre's order: first the JSON types of the
//! fields it knows (a wrong type is `body.invalid_field_types`, with nothing else checked), then
//! the required fields and every field's value, all reported together as causes of one
//! `validation_error`, each naming its field in `references`.

use crate::api_error::{ApiError, Cause, CauseKind};
use crate::site::Site;
use serde_json::{Map, Value};

/// The fields a `POST /items` must have.
pub(crate) const REQUIRED_ON_CREATE: [&str; 8] = [
    "title",
    "category_id",
    "price",
    "currency_id",
    "available_quantity",
    "buying_mode",
    "listing_type_id",
    "condition",
];

pub(crate) const BUYING_MODES: [&str; 3] = ["buy_it_now", "classified", "auction"];
pub(crate) const LISTING_TYPES: [&str; 7] = [
    "free",
    "bronze",
    "silver",
    "gold",
    "gold_special",
    "gold_premium",
    "gold_pro",
];
pub(crate) const CONDITIONS: [&str; 3] = ["new", "used", "not_specified"];

/// The attribute that holds a SKU when `seller_custom_field` does not.
pub(crate) const SKU_ATTRIBUTE: &str = "SELLER_SKU";

/// The JSON type a known field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Text,
    Number,
    List,
    /// Text, or null to clear it.
    TextOrNull,
}

const FIELD_TYPES: [(&str, Expected); 14] = [
    ("title", Expected::Text),
    ("category_id", Expected::Text),
    ("price", Expected::Number),
    ("currency_id", Expected::Text),
    ("available_quantity", Expected::Number),
    ("buying_mode", Expected::Text),
    ("listing_type_id", Expected::Text),
    ("condition", Expected::Text),
    ("pictures", Expected::List),
    ("attributes", Expected::List),
    ("sale_terms", Expected::List),
    ("channels", Expected::List),
    ("site_id", Expected::Text),
    ("seller_custom_field", Expected::TextOrNull),
];

/// The body as a JSON object, or 400.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ApiError::bad_request("body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "body is not valid JSON: {e}"
        ))),
    }
}

/// `body.invalid_field_types` for the known fields whose JSON type is wrong.
pub(crate) fn check_types(body: &Map<String, Value>) -> Result<(), ApiError> {
    let problems: Vec<String> = FIELD_TYPES
        .iter()
        .filter_map(|(field, expected)| {
            let value = body.get(*field)?;
            let fits = match expected {
                Expected::Text => value.is_string(),
                Expected::Number => value.is_number(),
                Expected::List => value.is_array(),
                Expected::TextOrNull => value.is_string() || value.is_null(),
            };
            (!fits).then(|| {
                format!(
                    "invalid property type: [{field}] expected {} but was {} value: {}",
                    expected_name(*expected),
                    type_name(value),
                    value_text(value)
                )
            })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_field_types(&problems))
    }
}

fn expected_name(expected: Expected) -> &'static str {
    match expected {
        Expected::Text | Expected::TextOrNull => "String",
        Expected::Number => "Number",
        Expected::List => "JSONArray",
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "Map",
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The `body.required_fields` cause when a create lacks some of [`REQUIRED_ON_CREATE`].
pub(crate) fn missing_fields(body: &Map<String, Value>) -> Option<Cause> {
    let missing: Vec<&str> = REQUIRED_ON_CREATE
        .into_iter()
        .filter(|field| body.get(*field).is_none_or(Value::is_null))
        .collect();
    (!missing.is_empty()).then(|| {
        Cause::new(
            CauseKind::RequiredFields,
            &missing,
            format!(
                "The body does not contains some or none of the following properties [{}]",
                missing.join(", ")
            ),
        )
    })
}

/// What is wrong with the values of an item (as it would be stored) of a seller on `site`.
/// Fields that are absent are not checked here ([`missing_fields`] is).
pub(crate) fn value_causes(
    item: &Map<String, Value>,
    site: Site,
    max_title_chars: usize,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let text = |field: &str| item.get(field).and_then(Value::as_str);

    if let Some(title) = text("title") {
        let chars = title.trim().chars().count();
        if chars == 0 {
            causes.push(Cause::new(
                CauseKind::TitleLength,
                &["title"],
                "title must not be empty",
            ));
        } else if chars > max_title_chars {
            causes.push(Cause::new(
                CauseKind::TitleLength,
                &["title"],
                format!("title has {chars} characters; the maximum is {max_title_chars}"),
            ));
        }
    }
    if let Some(category) = text("category_id") {
        match Site::of_id(category) {
            None => causes.push(Cause::new(
                CauseKind::CategoryInvalid,
                &["category_id"],
                format!("Category {category} does not exist"),
            )),
            Some(category_site) if category_site != site => causes.push(Cause::new(
                CauseKind::CategoryInvalid,
                &["category_id"],
                format!(
                    "Is not allowed to post in category {category}: it belongs to site {}, the \
                     seller's site is {}",
                    category_site.id(),
                    site.id()
                ),
            )),
            Some(_) => {}
        }
    }
    if let Some(site_id) = text("site_id") {
        if site_id != site.id() {
            causes.push(Cause::new(
                CauseKind::SiteInvalid,
                &["site_id"],
                format!("site_id {site_id} is not the seller's site {}", site.id()),
            ));
        }
    }
    if let Some(currency) = text("currency_id") {
        if currency != site.currency() {
            causes.push(Cause::new(
                CauseKind::CurrencyInvalid,
                &["currency_id"],
                format!(
                    "Currency {currency} is not valid for site {}; use {}",
                    site.id(),
                    site.currency()
                ),
            ));
        }
    }
    if let Some(price) = item.get("price").and_then(Value::as_f64) {
        if !(price.is_finite() && price > 0.0) {
            causes.push(Cause::new(
                CauseKind::PriceInvalid,
                &["price"],
                format!("price must be above 0, not {price}"),
            ));
        }
    }
    if let Some(quantity) = item.get("available_quantity") {
        if quantity.as_u64().is_none() {
            causes.push(Cause::new(
                CauseKind::QuantityInvalid,
                &["available_quantity"],
                format!("available_quantity must be a whole number of 0 or more, not {quantity}"),
            ));
        }
    }
    for (field, kind, allowed) in [
        (
            "buying_mode",
            CauseKind::BuyingModeInvalid,
            &BUYING_MODES[..],
        ),
        (
            "listing_type_id",
            CauseKind::ListingTypeInvalid,
            &LISTING_TYPES[..],
        ),
        ("condition", CauseKind::ConditionInvalid, &CONDITIONS[..]),
    ] {
        if let Some(value) = text(field) {
            if !allowed.contains(&value) {
                causes.push(Cause::new(
                    kind,
                    &[field],
                    format!("{field} {value} is not one of {}", allowed.join(", ")),
                ));
            }
        }
    }
    if let Some(pictures) = item.get("pictures").and_then(Value::as_array) {
        for (index, picture) in pictures.iter().enumerate() {
            if let Some(problem) = picture_problem(picture) {
                causes.push(Cause::new(
                    CauseKind::PicturesInvalid,
                    &["pictures"],
                    format!("pictures[{index}]: {problem}"),
                ));
            }
        }
    }
    if let Some(attributes) = item.get("attributes").and_then(Value::as_array) {
        for (index, attribute) in attributes.iter().enumerate() {
            if let Some(problem) = attribute_problem(attribute) {
                causes.push(Cause::new(
                    CauseKind::AttributesInvalid,
                    &["attributes"],
                    format!("attributes[{index}]: {problem}"),
                ));
            }
        }
    }
    causes
}

/// A picture is `{"source": "http(s)://…"}`, or `{"id": "…"}` for one the item already has.
fn picture_problem(picture: &Value) -> Option<&'static str> {
    let Some(fields) = picture.as_object() else {
        return Some("a picture must be an object");
    };
    match (fields.get("source"), fields.get("id")) {
        (Some(Value::String(source)), _) => {
            (!is_web_url(source)).then_some("source must be an absolute http or https URL")
        }
        (Some(_), _) => Some("source must be text"),
        (None, Some(Value::String(id))) if !id.is_empty() => None,
        (None, _) => Some("a picture needs a source URL or the id of a picture the item has"),
    }
}

fn is_web_url(text: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        text.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

/// An attribute is `{"id": "BRAND", "value_name": "Acme"}` (or `value_id`).
fn attribute_problem(attribute: &Value) -> Option<&'static str> {
    let Some(fields) = attribute.as_object() else {
        return Some("an attribute must be an object");
    };
    let id = fields.get("id").and_then(Value::as_str).unwrap_or_default();
    if id.is_empty() {
        return Some("an attribute needs an id");
    }
    let has_value = ["value_name", "value_id"].iter().any(|key| {
        fields
            .get(*key)
            .and_then(Value::as_str)
            .is_some_and(|value| !value.is_empty())
    });
    (!has_value).then_some("an attribute needs a value_name or a value_id")
}

/// The item's SKU: its `seller_custom_field`, else the value of its `SELLER_SKU` attribute —
/// the two places Mercado Libre's `seller_sku` search looks.
pub(crate) fn sku(item: &Map<String, Value>) -> Option<String> {
    let custom = item
        .get("seller_custom_field")
        .and_then(Value::as_str)
        .filter(|sku| !sku.is_empty());
    let attribute = || {
        item.get("attributes")?
            .as_array()?
            .iter()
            .find(|attribute| attribute.get("id").and_then(Value::as_str) == Some(SKU_ATTRIBUTE))?
            .get("value_name")?
            .as_str()
    };
    custom.or_else(attribute).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn shirt() -> Map<String, Value> {
        object(json!({
            "title": "Camisa de linho",
            "category_id": "MLB31447",
            "price": 129.9,
            "currency_id": "BRL",
            "available_quantity": 3,
            "buying_mode": "buy_it_now",
            "listing_type_id": "gold_special",
            "condition": "new",
            "pictures": [{"source": "https://shop.example/1.jpg"}],
            "attributes": [{"id": "BRAND", "value_name": "Porch"}],
            "seller_custom_field": "SKU-1",
        }))
    }

    fn codes(causes: &[Cause]) -> Vec<&str> {
        causes.iter().map(|cause| cause.code.as_str()).collect()
    }

    #[test]
    fn a_good_item_has_nothing_wrong() {
        assert!(check_types(&shirt()).is_ok());
        assert_eq!(missing_fields(&shirt()), None);
        assert!(value_causes(&shirt(), Site::Mlb, 60).is_empty());
    }

    #[test]
    fn wrong_types_are_listed_as_the_validator_words_them() {
        let mut item = shirt();
        item.insert("price".into(), json!("p"));
        item.insert("pictures".into(), json!({"source": "x"}));
        let error = check_types(&item).expect_err("wrong types");
        assert_eq!(error.code, "body.invalid_field_types");
        let text = error.body["error"].as_str().unwrap_or_default();
        assert!(
            text.contains("invalid property type: [price] expected Number but was String value: p"),
            "{text}"
        );
        assert!(
            text.contains("[pictures] expected JSONArray but was Map"),
            "{text}"
        );
    }

    #[test]
    fn missing_fields_are_named_in_one_cause() {
        let mut item = shirt();
        item.remove("price");
        item.insert("condition".into(), Value::Null);
        let cause = missing_fields(&item).expect("missing");
        assert_eq!(cause.code, "body.required_fields");
        assert_eq!(cause.references, vec!["item.price", "item.condition"]);
        assert!(cause.message.ends_with("[price, condition]"));
    }

    #[test]
    fn every_bad_value_is_a_cause_naming_its_field() {
        let item = object(json!({
            "title": "x".repeat(61),
            "category_id": "MLB31447",
            "price": 0,
            "currency_id": "ARS",
            "available_quantity": -1,
            "buying_mode": "haggle",
            "listing_type_id": "platinum",
            "condition": "mint",
            "pictures": [{"source": "ftp://x/1.jpg"}, {}],
            "attributes": [{"id": "BRAND"}],
        }));
        let causes = value_causes(&item, Site::Mlb, 60);
        assert_eq!(
            codes(&causes),
            vec![
                "item.title.length.invalid",
                "item.currency_id.invalid",
                "item.price.invalid",
                "item.available_quantity.invalid",
                "item.buying_mode.invalid",
                "item.listing_type_id.invalid",
                "item.condition.invalid",
                "item.pictures.invalid",
                "item.pictures.invalid",
                "item.attributes.invalid",
            ]
        );
        assert_eq!(causes[1].references, vec!["item.currency_id"]);
    }

    #[test]
    fn sixty_characters_is_still_a_title() {
        let mut item = shirt();
        item.insert("title".into(), json!("é".repeat(60)));
        assert!(value_causes(&item, Site::Mlb, 60).is_empty());
    }

    #[test]
    fn the_category_and_currency_must_be_the_sellers_sites() {
        let mut item = shirt();
        item.insert("category_id".into(), json!("MLA1055"));
        item.insert("currency_id".into(), json!("ARS"));
        let causes = value_causes(&item, Site::Mlb, 60);
        assert_eq!(
            codes(&causes),
            vec!["item.category_id.invalid", "item.currency_id.invalid"]
        );
        assert!(value_causes(&item, Site::Mla, 60).is_empty());
        item.insert("category_id".into(), json!("cat-1"));
        assert_eq!(
            codes(&value_causes(&item, Site::Mla, 60)),
            vec!["item.category_id.invalid"]
        );
    }

    #[test]
    fn the_sku_is_the_custom_field_or_the_sku_attribute() {
        assert_eq!(sku(&shirt()).as_deref(), Some("SKU-1"));
        let by_attribute = object(json!({
            "attributes": [
                {"id": "BRAND", "value_name": "P"},
                {"id": "SELLER_SKU", "value_name": "SKU-2"},
            ],
        }));
        assert_eq!(sku(&by_attribute).as_deref(), Some("SKU-2"));
        assert_eq!(sku(&object(json!({"title": "t"}))), None);
    }
}

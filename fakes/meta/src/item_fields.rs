//! The asynchronous check of one item, run when its batch finishes: Meta's required fields and
//! formats for a product item, then the test's [`RejectRule`]s. Each problem names its field at
//! the end of its message as `(field: NAME)`, the one place porch can read a field from (Meta's
//! errors carry no field key), so a merchant sees "missing brand for Meta" field by field.

use crate::config::RejectRule;
use serde_json::{Map, Value};

/// Meta's availability values.
pub const AVAILABILITY: [&str; 5] = [
    "in stock",
    "out of stock",
    "preorder",
    "available for order",
    "discontinued",
];
/// Meta's condition values.
pub const CONDITION: [&str; 3] = ["new", "refurbished", "used"];
/// How many `additional_image_link`s an item may have.
pub const MAX_ADDITIONAL_IMAGES: usize = 10;

/// `text (field: NAME)`: the fixed form every error message ends in.
pub fn with_field(text: &str, field: &str) -> String {
    format!("{text} (field: {field})")
}

/// Everything wrong with an item about to be stored; empty when it may be stored.
pub fn problems(item: &Map<String, Value>, rules: &[RejectRule]) -> Vec<String> {
    let mut found = Vec::new();
    text_between(item, "title", 200, &mut found);
    text_between(item, "description", 9_999, &mut found);
    one_of(item, "availability", &AVAILABILITY, &mut found);
    one_of(item, "condition", &CONDITION, &mut found);
    price(item, "price", true, &mut found);
    price(item, "sale_price", false, &mut found);
    url(item, "link", &mut found);
    url(item, "image_link", &mut found);
    identifier(item, &mut found);
    additional_images(item, &mut found);
    optional_text(item, "item_group_id", &mut found);
    for rule in rules.iter().filter(|rule| rule.rejects(item)) {
        found.push(with_field(&rule.message, &rule.field));
    }
    found
}

/// The field as text; `None` (and a problem noted) when it is missing or not text.
fn required_text<'a>(
    item: &'a Map<String, Value>,
    field: &str,
    found: &mut Vec<String>,
) -> Option<&'a str> {
    match item.get(field) {
        None | Some(Value::Null) => {
            found.push(with_field(&format!("The field {field} is missing."), field));
            None
        }
        Some(Value::String(text)) => Some(text),
        Some(_) => {
            found.push(with_field(
                &format!("The field {field} must be text."),
                field,
            ));
            None
        }
    }
}

fn text_between(item: &Map<String, Value>, field: &str, max: usize, found: &mut Vec<String>) {
    if let Some(text) = required_text(item, field, found) {
        let chars = text.chars().count();
        if chars == 0 || chars > max {
            found.push(with_field(
                &format!("The field {field} must be 1 to {max} characters, not {chars}."),
                field,
            ));
        }
    }
}

fn one_of(item: &Map<String, Value>, field: &str, allowed: &[&str], found: &mut Vec<String>) {
    if let Some(text) = required_text(item, field, found) {
        if !allowed.contains(&text) {
            found.push(with_field(
                &format!(
                    "The value '{text}' is not valid for {field}: use one of {}.",
                    allowed.join(", ")
                ),
                field,
            ));
        }
    }
}

fn price(item: &Map<String, Value>, field: &str, required: bool, found: &mut Vec<String>) {
    if !required && item.get(field).is_none_or(Value::is_null) {
        return;
    }
    if let Some(text) = required_text(item, field, found) {
        if !is_price(text) {
            found.push(with_field(
                &format!(
                    "The value '{text}' is not a valid {field}: use an amount and an ISO currency \
                     code, like '25.00 GBP'."
                ),
                field,
            ));
        }
    }
}

fn url(item: &Map<String, Value>, field: &str, found: &mut Vec<String>) {
    if let Some(text) = required_text(item, field, found) {
        if !is_web_url(text) {
            found.push(with_field(
                &format!("The value '{text}' is not a valid {field}: use an absolute http(s) URL."),
                field,
            ));
        }
    }
}

/// Meta needs one of brand, gtin and mpn; the problem is reported on brand, the one a merchant
/// usually fills in.
fn identifier(item: &Map<String, Value>, found: &mut Vec<String>) {
    let present = ["brand", "gtin", "mpn"].iter().any(|field| {
        item.get(*field)
            .and_then(Value::as_str)
            .is_some_and(|text| !text.trim().is_empty())
    });
    if !present {
        found.push(with_field(
            "The field brand is missing: an item needs a brand, gtin or mpn.",
            "brand",
        ));
    }
}

fn additional_images(item: &Map<String, Value>, found: &mut Vec<String>) {
    const FIELD: &str = "additional_image_link";
    let links = match item.get(FIELD) {
        None | Some(Value::Null) => return,
        Some(Value::Array(links)) => links,
        Some(_) => {
            found.push(with_field("The field must be a list of URLs.", FIELD));
            return;
        }
    };
    if links.len() > MAX_ADDITIONAL_IMAGES {
        found.push(with_field(
            &format!(
                "An item may have at most {MAX_ADDITIONAL_IMAGES} additional images, not {}.",
                links.len()
            ),
            FIELD,
        ));
    }
    if !links
        .iter()
        .all(|link| link.as_str().is_some_and(is_web_url))
    {
        found.push(with_field(
            "Every additional image must be an absolute http(s) URL.",
            FIELD,
        ));
    }
}

fn optional_text(item: &Map<String, Value>, field: &str, found: &mut Vec<String>) {
    if let Some(value) = item.get(field) {
        if !value.is_null() && !value.is_string() {
            found.push(with_field(
                &format!("The field {field} must be text."),
                field,
            ));
        }
    }
}

/// `^\d+(\.\d{1,2})? [A-Z]{3}$`, e.g. "25.00 GBP".
pub fn is_price(text: &str) -> bool {
    let Some((amount, currency)) = text.split_once(' ') else {
        return false;
    };
    let (units, cents) = match amount.split_once('.') {
        Some((units, cents)) => (units, Some(cents)),
        None => (amount, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(units)
        && cents.is_none_or(|cents| digits(cents) && cents.len() <= 2)
        && currency.len() == 3
        && currency.bytes().all(|b| b.is_ascii_uppercase())
}

/// An absolute http or https URL with a host and no white space.
pub fn is_web_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !text.chars().any(char::is_whitespace)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    fn complete() -> Value {
        json!({
            "id": "sku-1",
            "title": "Linen shirt",
            "description": "A shirt of linen.",
            "availability": "in stock",
            "condition": "new",
            "price": "25.00 GBP",
            "link": "https://shop.example/sku-1",
            "image_link": "https://shop.example/sku-1.jpg",
            "brand": "Porch",
        })
    }

    #[test]
    fn a_complete_item_has_no_problems() {
        assert_eq!(problems(&item(complete()), &[]), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_its_field_at_the_end() {
        let mut broken = complete();
        broken["title"] = json!("");
        broken["availability"] = json!("plenty");
        broken["price"] = json!("25 pounds");
        broken["link"] = json!("shop.example/sku-1");
        broken["sale_price"] = json!(20);
        if let Some(fields) = broken.as_object_mut() {
            fields.remove("brand");
            fields.remove("condition");
        }
        let found = problems(&item(broken), &[]);
        for field in [
            "title",
            "availability",
            "price",
            "link",
            "sale_price",
            "brand",
            "condition",
        ] {
            let suffix = format!("(field: {field})");
            assert!(
                found.iter().any(|message| message.ends_with(&suffix)),
                "{field} not reported in {found:?}"
            );
        }
        assert_eq!(found.len(), 7, "{found:?}");
    }

    #[test]
    fn gtin_or_mpn_stands_in_for_brand() {
        let mut with_gtin = complete();
        if let Some(fields) = with_gtin.as_object_mut() {
            fields.remove("brand");
            fields.insert("gtin".into(), json!("5012345678900"));
        }
        assert!(problems(&item(with_gtin), &[]).is_empty());
    }

    #[test]
    fn additional_images_are_at_most_ten_urls() {
        let mut many = complete();
        many["additional_image_link"] = json!(vec!["https://img.example/a.jpg"; 11]);
        assert_eq!(problems(&item(many.clone()), &[]).len(), 1);
        many["additional_image_link"] = json!(vec!["https://img.example/a.jpg"; 10]);
        assert!(problems(&item(many.clone()), &[]).is_empty());
        many["additional_image_link"] = json!(["ftp://img.example/a.jpg"]);
        assert_eq!(problems(&item(many), &[]).len(), 1);
    }

    #[test]
    fn a_rule_adds_its_message() {
        let rule = RejectRule {
            field: "title".into(),
            contains: "linen".into(),
            message: "Linen is not sold here.".into(),
        };
        assert_eq!(
            problems(&item(complete()), &[rule]),
            vec!["Linen is not sold here. (field: title)".to_owned()]
        );
    }

    #[test]
    fn prices_follow_amount_space_currency() {
        for good in ["25.00 GBP", "25 USD", "0.5 EUR", "129.99 USD"] {
            assert!(is_price(good), "{good}");
        }
        for bad in [
            "25.000 GBP",
            "25. GBP",
            ".5 GBP",
            "25.00 gbp",
            "25.00 GB",
            "25.00GBP",
            "25.00  GBP",
            "-1 GBP",
            "",
        ] {
            assert!(!is_price(bad), "{bad}");
        }
    }

    #[test]
    fn urls_are_absolute_http() {
        assert!(is_web_url("https://shop.example/a?b=c"));
        assert!(is_web_url("http://shop.example"));
        for bad in [
            "https://",
            "https:///path",
            "ftp://shop.example",
            "//shop.example",
            "https://shop.example/a b",
        ] {
            assert!(!is_web_url(bad), "{bad}");
        }
    }
}

//! Requests as Meta's `items_batch` takes them: one `{method, data}` per listing request, the
//! retailer id as `data.id`, the generic item's fields under Meta's names.

use crate::sink::SinkRequest;
use porch_processors::domain::channel::Action;
use porch_schemas::{ChannelItem, Money};
use serde_json::{json, Map, Value};

/// Option names Meta has fields of its own for; other options are not sent.
const META_OPTION_FIELDS: [&str; 6] = [
    "size",
    "color",
    "material",
    "pattern",
    "gender",
    "age_group",
];

/// Meta's price text: the amount in major units with its currency, as "129.99 USD".
pub fn price_text(m: &Money) -> String {
    let exp = u32::from(m.currency().exponent());
    let amount = m.amount_minor();
    let text = if exp == 0 {
        amount.to_string()
    } else {
        let unit = 10i64.pow(exp);
        format!(
            "{}{}.{:0width$}",
            if amount < 0 { "-" } else { "" },
            (amount / unit).abs(),
            (amount % unit).abs(),
            width = exp as usize
        )
    };
    format!("{text} {}", m.currency())
}

/// Meta's method for a request: DELETE, or for an upsert CREATE or UPDATE as the channel's
/// holding of the item says (an UPDATE creates too, with `allow_upsert`; a CREATE is sent only
/// for an item known not to be there, so a retried or replayed create is never a second one).
pub fn method(r: &SinkRequest, exists: bool) -> &'static str {
    match r.action {
        Action::Delete => "DELETE",
        Action::Upsert if exists => "UPDATE",
        Action::Upsert => "CREATE",
    }
}

/// Fields porch sets itself: a product's channel overrides (`extra`) never replace them.
const OWN_FIELDS: [&str; 18] = [
    "id",
    "title",
    "description",
    "availability",
    "condition",
    "price",
    "sale_price",
    "link",
    "image_link",
    "additional_image_link",
    "item_group_id",
    "inventory",
    "brand",
    "gtin",
    "mpn",
    "product_type",
    "retailer_id",
    "quantity_to_sell_on_facebook",
];

/// Optional fields porch sends: absent ones go as `null`, because Meta keeps every field an
/// update does not name (a sale that ended would keep its sale price).
const OPTIONAL_FIELDS: [&str; 6] = [
    "sale_price",
    "additional_image_link",
    "brand",
    "gtin",
    "mpn",
    "product_type",
];

/// The `data` of a request: the item's fields under Meta's names.
pub fn item_data(retailer_id: &str, item: &ChannelItem) -> Value {
    let mut d = Map::new();
    for k in OPTIONAL_FIELDS.iter().chain(&META_OPTION_FIELDS) {
        d.insert(k.to_string(), Value::Null);
    }
    let mut put = |k: &str, v: Value| {
        d.insert(k.to_string(), v);
    };
    put("id", json!(retailer_id));
    put("title", json!(item.title));
    put("description", json!(item.description));
    put("availability", json!(item.availability));
    put("condition", json!(item.condition));
    // A compare-at price above the price is the regular price, and the price a sale.
    match &item.compare_at {
        Some(regular) if regular.amount_minor() > item.price.amount_minor() => {
            put("price", json!(price_text(regular)));
            put("sale_price", json!(price_text(&item.price)));
        }
        _ => put("price", json!(price_text(&item.price))),
    }
    put("link", json!(item.link));
    put("image_link", json!(item.image_link));
    if !item.additional_image_links.is_empty() {
        put("additional_image_link", json!(item.additional_image_links));
    }
    put("item_group_id", json!(item.item_group_id));
    put("inventory", json!(item.quantity));
    for (k, v) in [
        ("brand", &item.brand),
        ("gtin", &item.gtin),
        ("mpn", &item.mpn),
    ] {
        if let Some(v) = v {
            put(k, json!(v));
        }
    }
    if let Some(c) = &item.category {
        put("product_type", json!(c));
    }
    for (k, v) in &item.options {
        if META_OPTION_FIELDS.contains(&k.as_str()) {
            put(k, json!(v));
        }
    }
    for (k, v) in &item.extra {
        if !OWN_FIELDS.contains(&k.as_str()) {
            put(k, json!(v));
        }
    }
    Value::Object(d)
}

/// The body of one `items_batch` call, with each request's method.
pub fn batch_body(batch: &[SinkRequest], methods: &[&str]) -> Value {
    let requests: Vec<Value> = batch
        .iter()
        .zip(methods)
        .map(|(r, method)| {
            let data = match (&r.action, &r.request.item) {
                (Action::Upsert, Some(item)) => item_data(&r.request.retailer_id, item),
                _ => json!({ "id": r.request.retailer_id }),
            };
            json!({ "method": method, "data": data })
        })
        .collect();
    json!({
        "item_type": "PRODUCT_ITEM",
        "allow_upsert": true,
        "requests": requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use porch_schemas::Currency;

    fn money(minor: i64, currency: &str) -> Money {
        Money::new(minor, Currency::parse(currency).unwrap()).unwrap()
    }

    fn item() -> ChannelItem {
        ChannelItem {
            title: "Shirt".into(),
            description: "Soft".into(),
            brand: None,
            gtin: None,
            mpn: None,
            category: None,
            condition: "new".into(),
            availability: "in stock".into(),
            quantity: 3,
            price: money(2000, "GBP"),
            compare_at: None,
            link: "https://shop.example/p".into(),
            image_link: "https://media.example/p.jpg".into(),
            additional_image_links: vec![],
            item_group_id: "p".into(),
            options: Default::default(),
            extra: [
                ("id".to_string(), "someone-else".to_string()),
                ("price".to_string(), "0.01 GBP".to_string()),
                ("color".to_string(), "sand".to_string()),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn dropped_optional_fields_are_cleared_and_overrides_never_replace_porchs_own() {
        let d = item_data("offer-1", &item());
        assert_eq!(d["id"], "offer-1");
        assert_eq!(d["price"], "20.00 GBP");
        assert_eq!(d["color"], "sand");
        for cleared in ["sale_price", "brand", "additional_image_link", "size"] {
            assert!(d[cleared].is_null(), "{cleared}: {d}");
            assert!(
                d.as_object().unwrap().contains_key(cleared),
                "{cleared} sent as null"
            );
        }
    }

    #[test]
    fn prices_are_major_units_with_their_currency() {
        assert_eq!(price_text(&money(2500, "GBP")), "25.00 GBP");
        assert_eq!(price_text(&money(199_905, "INR")), "1999.05 INR");
        assert_eq!(price_text(&money(2500, "JPY")), "2500 JPY");
    }
}

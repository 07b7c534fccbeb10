//! Listing requests as Mercado Libre's item API takes them: the fields of a new item
//! (`POST /items`), the change to a known one (`PUT /items/{id}`), and what a read must show
//! before porch calls an item LIVE.
//!
//! Mercado Libre refuses some changes outright: the category never changes by API, and after
//! the first sale the title, condition and buying mode are frozen. So an update names those
//! fields only when they differ from what the item last showed, and a change the item can no
//! longer take is refused here, naming the field, without a call.

use super::config::MercadoLibreConfig;
use super::site::Site;
use crate::sink::SinkRequest;
use porch_schemas::{ChannelItem, Money, Reason};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The code of an issue Mercado Libre (or porch on its behalf) found with an item.
pub const INVALID: &str = "MERCADOLIBRE_INVALID";
/// The code of a change to a field the item can no longer take.
pub const NOT_MODIFIABLE: &str = "MERCADOLIBRE_NOT_MODIFIABLE";

/// Fields Mercado Libre freezes after an item's first sale.
pub const FROZEN_AFTER_SALE: [&str; 3] = ["title", "condition", "buying_mode"];

/// Pictures Mercado Libre takes per item (more are left out, not refused).
const MAX_PICTURES: usize = 12;

/// Conditions Mercado Libre takes.
const CONDITIONS: [&str; 3] = ["new", "used", "not_specified"];

/// The item a request asks Mercado Libre to show, in Mercado Libre's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFields {
    /// The seller's SKU: `seller_custom_field`, and how the item is found again.
    pub sku: String,
    pub title: String,
    pub category_id: String,
    /// In major units, as Mercado Libre takes it.
    pub price: f64,
    /// Half the currency's minor unit: two prices closer than this are the same price.
    pub price_tolerance: f64,
    pub currency_id: String,
    pub quantity: u64,
    pub condition: String,
    pub listing_type_id: String,
    pub buying_mode: String,
    /// Absolute image URLs, the main one first.
    pub pictures: Vec<String>,
    /// `(id, value_name)`, ids in Mercado Libre's upper case.
    pub attributes: Vec<(String, String)>,
}

impl ItemFields {
    /// An item with stock is active; without, paused (and active again when stock is back).
    pub fn status(&self) -> &'static str {
        if self.quantity > 0 {
            "active"
        } else {
            "paused"
        }
    }
}

/// A price in major units, as Mercado Libre's `price` takes it (12990 BRL cents → 129.9).
pub fn price_value(m: &Money) -> f64 {
    m.amount_minor() as f64 / 10f64.powi(i32::from(m.currency().exponent()))
}

/// An attribute id as Mercado Libre spells them: `color` → `COLOR`, `model-number` →
/// `MODEL_NUMBER`.
fn attribute_id(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The item a request asks for, or the issues that keep it from being sent (an offer priced in
/// another currency than its site's, a category of another site…): those are REJECTED
/// without a call.
pub fn item_fields(
    r: &SinkRequest,
    config: &MercadoLibreConfig,
    site: Site,
) -> Result<ItemFields, Vec<Reason>> {
    let Some(item) = r.request.item.as_deref() else {
        return Err(vec![Reason::new(INVALID, "an upsert without its item")]);
    };
    let mut issues = Vec::new();
    let currency = item.price.currency().as_str();
    if currency != site.currency {
        issues.push(Reason::on_field(
            INVALID,
            "currency_id",
            format!(
                "the offer is priced in {currency}; Mercado Libre's site {} in {} sells in {}",
                site.id, r.request.region, site.currency
            ),
        ));
    }
    let category_id = item
        .extra
        .get("category_id")
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    if category_id.is_empty() {
        issues.push(Reason::on_field(
            INVALID,
            "category_id",
            "a Mercado Libre category (the product's category_id override) is missing",
        ));
    } else if !category_id.starts_with(site.id) {
        issues.push(Reason::on_field(
            INVALID,
            "category_id",
            format!(
                "category {category_id} is not one of site {} (its ids start with {})",
                site.id, site.id
            ),
        ));
    }
    if !CONDITIONS.contains(&item.condition.as_str()) {
        issues.push(Reason::on_field(
            INVALID,
            "condition",
            format!(
                "condition {} is not one of {}",
                item.condition,
                CONDITIONS.join(", ")
            ),
        ));
    }
    let listing_type_id = item
        .extra
        .get("listing_type_id")
        .cloned()
        .unwrap_or_else(|| config.listing_type_id.clone());
    if !issues.is_empty() {
        return Err(issues);
    }
    let exponent = i32::from(item.price.currency().exponent());
    Ok(ItemFields {
        sku: r.request.sku.to_string(),
        title: item.title.clone(),
        category_id,
        price: price_value(&item.price),
        price_tolerance: 0.5 / 10f64.powi(exponent),
        currency_id: currency.to_string(),
        quantity: u64::try_from(item.quantity).unwrap_or(0),
        condition: item.condition.clone(),
        listing_type_id,
        buying_mode: config.buying_mode.clone(),
        pictures: std::iter::once(&item.image_link)
            .chain(&item.additional_image_links)
            .filter(|u| !u.is_empty())
            .take(MAX_PICTURES)
            .cloned()
            .collect(),
        attributes: attributes_of(item, r.request.sku.as_str()),
    })
}

/// The item's attributes: brand, GTIN and MPN, its options (`color` → `COLOR`), the SKU as
/// `SELLER_SKU`, and any `attribute.<ID>` override of the product (which wins).
fn attributes_of(item: &ChannelItem, sku: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |id: String, value: &str| {
        if value.trim().is_empty() {
            return;
        }
        match out.iter_mut().find(|(known, _)| *known == id) {
            Some(known) => known.1 = value.to_string(),
            None => out.push((id, value.to_string())),
        }
    };
    for (id, value) in [
        ("BRAND", &item.brand),
        ("GTIN", &item.gtin),
        ("MPN", &item.mpn),
    ] {
        if let Some(v) = value {
            set(id.to_string(), v);
        }
    }
    for (name, value) in &item.options {
        set(attribute_id(name), value);
    }
    set("SELLER_SKU".into(), sku);
    for (name, value) in &item.extra {
        if let Some(id) = name.strip_prefix("attribute.") {
            set(attribute_id(id), value);
        }
    }
    out
}

fn attributes_json(fields: &ItemFields) -> Value {
    Value::Array(
        fields
            .attributes
            .iter()
            .map(|(id, value)| json!({ "id": id, "value_name": value }))
            .collect(),
    )
}

fn pictures_json(fields: &ItemFields) -> Value {
    Value::Array(
        fields
            .pictures
            .iter()
            .map(|url| json!({ "source": url }))
            .collect(),
    )
}

/// The body of `POST /items`.
pub fn create_body(fields: &ItemFields) -> Value {
    json!({
        "title": fields.title,
        "category_id": fields.category_id,
        "price": fields.price,
        "currency_id": fields.currency_id,
        "available_quantity": fields.quantity,
        "buying_mode": fields.buying_mode,
        "listing_type_id": fields.listing_type_id,
        "condition": fields.condition,
        "pictures": pictures_json(fields),
        "attributes": attributes_json(fields),
        "seller_custom_field": fields.sku,
    })
}

/// What the service remembers of an item it listed: what the item last showed (or was last
/// sent), so that an update names a frozen field only to change it, and a change the item can
/// no longer take is refused without a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownItem {
    pub item_id: String,
    /// The seller whose item it is.
    pub user_id: String,
    /// active, paused, closed (or a status of Mercado Libre's own, such as under_review).
    pub status: String,
    pub title: String,
    pub condition: String,
    pub buying_mode: String,
    pub category_id: String,
    pub listing_type_id: String,
    /// Units sold: above zero, the title, condition and buying mode are frozen.
    #[serde(default)]
    pub sold_quantity: u64,
    /// The picture URLs last sent (Mercado Libre shows its own copies, not these).
    #[serde(default)]
    pub pictures: Vec<String>,
}

impl KnownItem {
    /// The item as just created from `fields`.
    pub fn sent(item_id: &str, user_id: &str, fields: &ItemFields) -> Self {
        KnownItem {
            item_id: item_id.to_string(),
            user_id: user_id.to_string(),
            status: fields.status().to_string(),
            title: fields.title.clone(),
            condition: fields.condition.clone(),
            buying_mode: fields.buying_mode.clone(),
            category_id: fields.category_id.clone(),
            listing_type_id: fields.listing_type_id.clone(),
            sold_quantity: 0,
            pictures: fields.pictures.clone(),
        }
    }

    /// The item as `GET /items/{id}` showed it.
    pub fn read(item_id: &str, user_id: &str, read: &Value, pictures: Vec<String>) -> Self {
        let text = |k: &str| read[k].as_str().unwrap_or_default().to_string();
        KnownItem {
            item_id: item_id.to_string(),
            user_id: user_id.to_string(),
            status: text("status"),
            title: text("title"),
            condition: text("condition"),
            buying_mode: text("buying_mode"),
            category_id: text("category_id"),
            listing_type_id: text("listing_type_id"),
            sold_quantity: read["sold_quantity"].as_u64().unwrap_or(0),
            pictures,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.status == "closed"
    }

    /// The value the item holds for a frozen field.
    fn frozen(&self, field: &str) -> &str {
        match field {
            "title" => &self.title,
            "condition" => &self.condition,
            _ => &self.buying_mode,
        }
    }
}

fn wanted<'a>(fields: &'a ItemFields, field: &str) -> &'a str {
    match field {
        "title" => &fields.title,
        "condition" => &fields.condition,
        _ => &fields.buying_mode,
    }
}

/// The body of `PUT /items/{id}` that makes `known` show `fields`, or the issues of a change
/// the item cannot take (its category, or a frozen field after a sale): REJECTED without a
/// call.
pub fn update_body(fields: &ItemFields, known: &KnownItem) -> Result<Value, Vec<Reason>> {
    let mut issues = Vec::new();
    if fields.category_id != known.category_id {
        issues.push(Reason::on_field(
            NOT_MODIFIABLE,
            "category_id",
            format!(
                "item {} is in category {}: Mercado Libre never changes an item's category \
                 by API (list it again to move it to {})",
                known.item_id, known.category_id, fields.category_id
            ),
        ));
    }
    if known.sold_quantity > 0 {
        for field in FROZEN_AFTER_SALE {
            if wanted(fields, field) != known.frozen(field) {
                issues.push(Reason::on_field(
                    NOT_MODIFIABLE,
                    field,
                    format!(
                        "item {} has sold: Mercado Libre keeps its {field} as it was",
                        known.item_id
                    ),
                ));
            }
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let mut body = Map::new();
    body.insert("price".into(), json!(fields.price));
    body.insert("available_quantity".into(), json!(fields.quantity));
    body.insert("status".into(), json!(fields.status()));
    body.insert("attributes".into(), attributes_json(fields));
    body.insert("seller_custom_field".into(), json!(fields.sku));
    // Frozen fields only to change them: Mercado Libre may refuse one named at all once the
    // item has sold.
    for field in FROZEN_AFTER_SALE {
        if wanted(fields, field) != known.frozen(field) {
            body.insert(field.into(), json!(wanted(fields, field)));
        }
    }
    // The listing type changes once: never named again without a change.
    if fields.listing_type_id != known.listing_type_id {
        body.insert("listing_type_id".into(), json!(fields.listing_type_id));
    }
    // Pictures are processed again whenever they are sent.
    if fields.pictures != known.pictures {
        body.insert("pictures".into(), pictures_json(fields));
    }
    Ok(Value::Object(body))
}

/// The item as it will show once `body` (a PUT) is applied: what the service remembers until
/// the confirming read.
pub fn after_update(known: &KnownItem, fields: &ItemFields) -> KnownItem {
    KnownItem {
        status: fields.status().to_string(),
        title: fields.title.clone(),
        condition: fields.condition.clone(),
        buying_mode: fields.buying_mode.clone(),
        listing_type_id: fields.listing_type_id.clone(),
        pictures: fields.pictures.clone(),
        ..known.clone()
    }
}

/// The fields a read of the item shows otherwise than requested (none: the item is as asked).
/// Units sold since `sold_before` explain a lower stock (and a pause, when they were the last).
pub fn mismatches(read: &Value, fields: &ItemFields, sold_before: u64) -> Vec<&'static str> {
    let mut wrong = Vec::new();
    let text = |k: &str| read[k].as_str().unwrap_or_default();
    for (name, want) in [
        ("title", fields.title.as_str()),
        ("category_id", fields.category_id.as_str()),
        ("currency_id", fields.currency_id.as_str()),
        ("condition", fields.condition.as_str()),
        ("buying_mode", fields.buying_mode.as_str()),
        ("listing_type_id", fields.listing_type_id.as_str()),
        ("seller_custom_field", fields.sku.as_str()),
    ] {
        if text(name) != want {
            wrong.push(name);
        }
    }
    if read["price"]
        .as_f64()
        .is_none_or(|p| (p - fields.price).abs() > fields.price_tolerance)
    {
        wrong.push("price");
    }
    let sold_since = read["sold_quantity"].as_u64().unwrap_or(0) > sold_before;
    let quantity = read["available_quantity"].as_u64();
    let quantity_ok = quantity == Some(fields.quantity)
        || (sold_since && quantity.is_some_and(|q| q < fields.quantity));
    if !quantity_ok {
        wrong.push("available_quantity");
    }
    let status = text("status");
    let status_ok =
        status == fields.status() || (sold_since && status == "paused" && quantity == Some(0));
    if !status_ok {
        wrong.push("status");
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;
    use porch_schemas::Currency;

    fn money(minor: i64, currency: &str) -> Money {
        Money::new(minor, Currency::parse(currency).unwrap()).unwrap()
    }

    fn fields() -> ItemFields {
        ItemFields {
            sku: "SKU-1".into(),
            title: "Camisa de linho".into(),
            category_id: "MLB31447".into(),
            price: 129.9,
            price_tolerance: 0.005,
            currency_id: "BRL".into(),
            quantity: 3,
            condition: "new".into(),
            listing_type_id: "gold_special".into(),
            buying_mode: "buy_it_now".into(),
            pictures: vec!["https://media.example/1.jpg".into()],
            attributes: vec![("BRAND".into(), "Porch".into())],
        }
    }

    #[test]
    fn prices_go_in_major_units() {
        assert_eq!(price_value(&money(12990, "BRL")), 129.9);
        assert_eq!(price_value(&money(15000, "CLP")), 15000.0);
    }

    #[test]
    fn a_create_names_every_field_mercado_libre_requires() {
        let body = create_body(&fields());
        for k in [
            "title",
            "category_id",
            "price",
            "currency_id",
            "available_quantity",
            "buying_mode",
            "listing_type_id",
            "condition",
        ] {
            assert!(!body[k].is_null(), "{k}: {body}");
        }
        assert_eq!(body["pictures"][0]["source"], "https://media.example/1.jpg");
        assert_eq!(body["seller_custom_field"], "SKU-1");
        assert_eq!(body["attributes"][0]["id"], "BRAND");
    }

    #[test]
    fn an_update_names_frozen_fields_only_to_change_them() {
        let known = KnownItem::sent("MLB1", "7", &fields());
        let body = update_body(&fields(), &known).unwrap();
        for k in [
            "title",
            "condition",
            "buying_mode",
            "listing_type_id",
            "category_id",
        ] {
            assert!(body.get(k).is_none(), "{k} unchanged is not sent: {body}");
        }
        assert!(body.get("pictures").is_none(), "the same pictures: {body}");
        assert_eq!(body["status"], "active");
        let changed = ItemFields {
            title: "Camisa azul".into(),
            quantity: 0,
            ..fields()
        };
        let body = update_body(&changed, &known).unwrap();
        assert_eq!(body["title"], "Camisa azul");
        assert_eq!(body["status"], "paused", "no stock: paused");
    }

    #[test]
    fn a_change_the_item_cannot_take_is_refused_naming_the_field() {
        let sold = KnownItem {
            sold_quantity: 1,
            ..KnownItem::sent("MLB1", "7", &fields())
        };
        let changed = ItemFields {
            title: "Camisa azul".into(),
            condition: "used".into(),
            category_id: "MLB1055".into(),
            ..fields()
        };
        let issues = update_body(&changed, &sold).unwrap_err();
        let named: Vec<_> = issues.iter().filter_map(|i| i.field.as_deref()).collect();
        assert_eq!(named, vec!["category_id", "title", "condition"]);
        assert!(issues.iter().all(|i| i.code == NOT_MODIFIABLE));
        let price_only = ItemFields {
            price: 99.0,
            ..fields()
        };
        assert!(
            update_body(&price_only, &sold).is_ok(),
            "a sold item still takes a new price"
        );
    }

    #[test]
    fn a_read_is_compared_with_what_was_asked() {
        let read = json!({
            "title": "Camisa de linho", "category_id": "MLB31447", "currency_id": "BRL",
            "condition": "new", "buying_mode": "buy_it_now", "listing_type_id": "gold_special",
            "seller_custom_field": "SKU-1", "price": 129.9, "available_quantity": 3,
            "status": "active", "sold_quantity": 0,
        });
        assert!(mismatches(&read, &fields(), 0).is_empty());
        let mut stale = read.clone();
        stale["price"] = json!(120.0);
        stale["status"] = json!("paused");
        assert_eq!(mismatches(&stale, &fields(), 0), vec!["price", "status"]);
        let mut sold = read.clone();
        sold["available_quantity"] = json!(2);
        sold["sold_quantity"] = json!(1);
        assert!(
            mismatches(&sold, &fields(), 0).is_empty(),
            "a sale since explains a lower stock"
        );
        assert_eq!(mismatches(&sold, &fields(), 1), vec!["available_quantity"]);
    }
}

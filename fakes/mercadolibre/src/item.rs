//! One listing and what a PUT may do to it, Mercado Libre's way: the fields named are merged in
//! (attributes by id), `status` moves between `active` and `paused` and ends at `closed`, from
//! which nothing moves; the category never changes by API, the listing type changes once, and
//! after the first sale title, condition and buying mode are frozen. An item whose stock reaches
//! 0 is paused (`sub_status: ["out_of_stock"]`) and comes back when stock does.

use crate::api_error::{ApiError, Cause, CauseKind};
use crate::dates::iso8601;
use crate::item_checks::{check_types, sku, value_causes, SKU_ATTRIBUTE};
use crate::site::Site;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// An item's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Active,
    Paused,
    Closed,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Active => "active",
            ItemStatus::Paused => "paused",
            ItemStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(ItemStatus::Active),
            "paused" => Some(ItemStatus::Paused),
            "closed" => Some(ItemStatus::Closed),
            _ => None,
        }
    }
}

/// Fields the fake owns: a body that names them is not refused, but they are not stored.
const OWN_FIELDS: [&str; 10] = [
    "id",
    "seller_id",
    "status",
    "sub_status",
    "sold_quantity",
    "initial_quantity",
    "date_created",
    "last_updated",
    "permalink",
    "site_id",
];

/// Fields frozen once the item has sold.
const FROZEN_AFTER_SALE: [&str; 3] = ["title", "condition", "buying_mode"];

/// One item as the fake holds it.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    id: String,
    site: Site,
    seller_id: u64,
    /// Everything the seller sent (merged across PUTs), pictures in their stored form.
    fields: Map<String, Value>,
    status: ItemStatus,
    /// Paused because its stock ran out, not by the seller: stock coming back reactivates it.
    out_of_stock: bool,
    sold_quantity: u64,
    initial_quantity: u64,
    listing_type_changed: bool,
    created_ms: u64,
    updated_ms: u64,
}

/// What `GET /_fake/items` shows of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemSummary {
    pub id: String,
    pub seller_id: u64,
    pub site_id: Site,
    pub sku: Option<String>,
    pub status: ItemStatus,
    /// Whether the item has had a sale (its title, condition and buying mode are frozen).
    pub sold: bool,
    pub sold_quantity: u64,
    /// Whether its listing type was changed already (it may change once).
    pub listing_type_changed: bool,
    /// The item as `GET /items/{id}` answers it.
    pub item: Value,
}

impl Item {
    /// A new item from a checked `POST /items` body: `active`, or `paused` without stock.
    pub(crate) fn create(
        id: String,
        site: Site,
        seller_id: u64,
        body: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<Self, Cause> {
        let mut fields = Map::new();
        merge_into(&mut fields, body, &[])?;
        let quantity = quantity_of(&fields);
        let mut item = Self {
            id,
            site,
            seller_id,
            fields,
            status: ItemStatus::Active,
            out_of_stock: false,
            sold_quantity: 0,
            initial_quantity: quantity,
            listing_type_changed: false,
            created_ms: now_ms,
            updated_ms: now_ms,
        };
        if quantity == 0 {
            item.status = ItemStatus::Paused;
            item.out_of_stock = true;
        }
        Ok(item)
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn seller_id(&self) -> u64 {
        self.seller_id
    }

    pub(crate) fn status(&self) -> ItemStatus {
        self.status
    }

    pub(crate) fn sku(&self) -> Option<String> {
        sku(&self.fields)
    }

    /// Whether `seller_sku` finds this item.
    pub(crate) fn has_sku(&self, wanted: &str) -> bool {
        let custom = self
            .fields
            .get("seller_custom_field")
            .and_then(Value::as_str);
        let attribute = self
            .fields
            .get("attributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|attribute| attribute.get("id").and_then(Value::as_str) == Some(SKU_ATTRIBUTE))
            .filter_map(|attribute| attribute.get("value_name").and_then(Value::as_str));
        custom.into_iter().chain(attribute).any(|sku| sku == wanted)
    }

    /// Applies a `PUT` body, all of it or none of it.
    pub(crate) fn update(
        &mut self,
        body: &Map<String, Value>,
        max_title_chars: usize,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        if self.status == ItemStatus::Closed {
            return Err(ApiError::cannot_update(
                &self.id,
                self.status.as_str(),
                self.sold_quantity > 0,
            ));
        }
        check_types(body)?;
        if let Some(status) = body.get("status") {
            if !status.is_string() {
                return Err(ApiError::invalid_field_types(&[format!(
                    "invalid property type: [status] expected String but was {status}"
                )]));
            }
        }
        let mut causes = self.frozen_causes(body);
        let asked_status = match body.get("status").and_then(Value::as_str) {
            None => None,
            Some(text) => match ItemStatus::parse(text) {
                Some(status) => Some(status),
                None => {
                    causes.push(Cause::new(
                        CauseKind::StatusInvalid,
                        &["status"],
                        format!("status {text} is not one of active, paused, closed"),
                    ));
                    None
                }
            },
        };
        let mut fields = self.fields.clone();
        if let Err(cause) = merge_into(&mut fields, body, self.pictures()) {
            causes.push(cause);
        }
        causes.extend(value_causes(&fields, self.site, max_title_chars));
        let quantity = quantity_of(&fields);
        if asked_status == Some(ItemStatus::Active) && quantity == 0 {
            causes.push(Cause::new(
                CauseKind::StatusInvalid,
                &["status"],
                "an item without available_quantity cannot be active",
            ));
        }
        if !causes.is_empty() {
            return Err(ApiError::validation(causes));
        }

        if self.listing_type_differs(body) {
            self.listing_type_changed = true;
        }
        let stock_changed = body.contains_key("available_quantity");
        self.fields = fields;
        self.updated_ms = now_ms;
        match asked_status {
            Some(status) => {
                self.status = status;
                self.out_of_stock = false;
            }
            None if stock_changed && quantity == 0 && self.status == ItemStatus::Active => {
                self.status = ItemStatus::Paused;
                self.out_of_stock = true;
            }
            None if stock_changed && quantity > 0 && self.out_of_stock => {
                self.status = ItemStatus::Active;
                self.out_of_stock = false;
            }
            None => {}
        }
        Ok(())
    }

    /// Causes for fields the PUT may not change now.
    fn frozen_causes(&self, body: &Map<String, Value>) -> Vec<Cause> {
        let mut causes = Vec::new();
        if self.differs(body, "category_id") {
            causes.push(Cause::new(
                CauseKind::NotModifiable,
                &["category_id"],
                "category_id can't be modified via API",
            ));
        }
        if self.sold_quantity > 0 {
            for field in FROZEN_AFTER_SALE {
                if self.differs(body, field) {
                    causes.push(Cause::new(
                        CauseKind::NotModifiable,
                        &[field],
                        format!("{field} can't be modified: the item has sales"),
                    ));
                }
            }
        }
        if self.listing_type_changed && self.listing_type_differs(body) {
            causes.push(Cause::new(
                CauseKind::NotModifiable,
                &["listing_type_id"],
                "listing_type_id can be modified only once",
            ));
        }
        causes
    }

    fn listing_type_differs(&self, body: &Map<String, Value>) -> bool {
        self.differs(body, "listing_type_id")
    }

    /// Whether the body names `field` with a value other than the item's.
    fn differs(&self, body: &Map<String, Value>, field: &str) -> bool {
        body.get(field)
            .is_some_and(|value| self.fields.get(field) != Some(value))
    }

    fn pictures(&self) -> &[Value] {
        self.fields
            .get("pictures")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// A buyer buys `quantity` units.
    pub(crate) fn sell(&mut self, quantity: u64, now_ms: u64) -> Result<(), String> {
        if self.status != ItemStatus::Active {
            return Err(format!(
                "item {} is {}: only an active item sells",
                self.id,
                self.status.as_str()
            ));
        }
        let stock = quantity_of(&self.fields);
        if quantity == 0 || quantity > stock {
            return Err(format!(
                "item {} has {stock} units available; cannot sell {quantity}",
                self.id
            ));
        }
        let left = stock - quantity;
        self.fields
            .insert("available_quantity".into(), Value::from(left));
        self.sold_quantity += quantity;
        self.updated_ms = now_ms;
        if left == 0 {
            self.status = ItemStatus::Paused;
            self.out_of_stock = true;
        }
        Ok(())
    }

    /// The item as `GET /items/{id}` answers it.
    pub(crate) fn render(&self) -> Value {
        let mut item = self.fields.clone();
        let sub_status: Vec<&str> = if self.out_of_stock && self.status == ItemStatus::Paused {
            vec!["out_of_stock"]
        } else {
            Vec::new()
        };
        let own = json!({
            "id": self.id,
            "site_id": self.site.id(),
            "seller_id": self.seller_id,
            "status": self.status.as_str(),
            "sub_status": sub_status,
            "sold_quantity": self.sold_quantity,
            "initial_quantity": self.initial_quantity,
            "permalink": format!("https://fake.mercadolibre.example/{}", self.id),
            "date_created": iso8601(self.created_ms),
            "last_updated": iso8601(self.updated_ms),
        });
        if let Value::Object(own) = own {
            item.extend(own);
        }
        Value::Object(item)
    }

    pub(crate) fn summary(&self) -> ItemSummary {
        ItemSummary {
            id: self.id.clone(),
            seller_id: self.seller_id,
            site_id: self.site,
            sku: self.sku(),
            status: self.status,
            sold: self.sold_quantity > 0,
            sold_quantity: self.sold_quantity,
            listing_type_changed: self.listing_type_changed,
            item: self.render(),
        }
    }
}

fn quantity_of(fields: &Map<String, Value>) -> u64 {
    fields
        .get("available_quantity")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Merges a body into stored fields: attributes by id, pictures in their stored form (a
/// picture named by `id` must be one of `pictures_before`), `null` clears a field, and the
/// fields the fake owns are skipped.
fn merge_into(
    fields: &mut Map<String, Value>,
    body: &Map<String, Value>,
    pictures_before: &[Value],
) -> Result<(), Cause> {
    for (field, value) in body {
        if OWN_FIELDS.contains(&field.as_str()) {
            continue;
        }
        match (field.as_str(), value) {
            (_, Value::Null) => {
                fields.remove(field);
            }
            ("attributes", Value::Array(incoming)) => {
                let merged = merge_attributes(fields.get("attributes"), incoming);
                fields.insert(field.clone(), Value::Array(merged));
            }
            ("pictures", Value::Array(incoming)) => {
                let stored = store_pictures(incoming, pictures_before)?;
                fields.insert(field.clone(), Value::Array(stored));
            }
            _ => {
                fields.insert(field.clone(), value.clone());
            }
        }
    }
    Ok(())
}

/// The attributes after a PUT: one named again replaces the one with its id, a new one is added.
fn merge_attributes(before: Option<&Value>, incoming: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = before
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for attribute in incoming {
        let id = attribute.get("id");
        match merged
            .iter_mut()
            .find(|known| id.is_some() && known.get("id") == id)
        {
            Some(known) => *known = attribute.clone(),
            None => merged.push(attribute.clone()),
        }
    }
    merged
}

/// Pictures as the item keeps them: `{id, url, secure_url}`, the id derived from the source so
/// the same source keeps its id. A picture named by id only must be one the item has.
fn store_pictures(incoming: &[Value], before: &[Value]) -> Result<Vec<Value>, Cause> {
    incoming
        .iter()
        .map(|picture| {
            if let Some(source) = picture.get("source").and_then(Value::as_str) {
                let secure = source
                    .strip_prefix("http://")
                    .map_or_else(|| source.to_owned(), |rest| format!("https://{rest}"));
                return Ok(json!({
                    "id": picture_id(source),
                    "url": source,
                    "secure_url": secure,
                }));
            }
            let id = picture
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            before
                .iter()
                .find(|known| known.get("id").and_then(Value::as_str) == Some(id))
                .cloned()
                .ok_or_else(|| {
                    Cause::new(
                        CauseKind::PicturesInvalid,
                        &["pictures"],
                        format!("picture id {id} is not one of the item's pictures"),
                    )
                })
        })
        .collect()
}

/// FNV-1a of the source, so one source always gets one id.
fn picture_id(source: &str) -> String {
    let hash = source.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn shirt(quantity: u64) -> Item {
        let body = object(json!({
            "title": "Camisa de linho",
            "category_id": "MLB31447",
            "price": 129.9,
            "currency_id": "BRL",
            "available_quantity": quantity,
            "buying_mode": "buy_it_now",
            "listing_type_id": "gold_special",
            "condition": "new",
            "pictures": [{"source": "http://shop.example/1.jpg"}],
            "attributes": [{"id": "BRAND", "value_name": "Porch"}],
            "seller_custom_field": "SKU-1",
            "id": "MLB9",
            "status": "closed",
        }));
        Item::create("MLB1000000000".into(), Site::Mlb, 7, &body, 0).expect("an item")
    }

    fn put(item: &mut Item, body: Value) -> Result<(), ApiError> {
        item.update(&object(body), 60, 1)
    }

    fn first_code(error: &ApiError) -> &str {
        error.body["cause"][0]["code"].as_str().unwrap_or_default()
    }

    #[test]
    fn a_new_item_is_active_and_keeps_its_own_fields() {
        let rendered = shirt(3).render();
        assert_eq!(rendered["id"], "MLB1000000000");
        assert_eq!(rendered["status"], "active");
        assert_eq!(rendered["seller_id"], 7);
        assert_eq!(rendered["site_id"], "MLB");
        assert_eq!(rendered["initial_quantity"], 3);
        assert_eq!(rendered["pictures"][0]["url"], "http://shop.example/1.jpg");
        assert_eq!(
            rendered["pictures"][0]["secure_url"],
            "https://shop.example/1.jpg"
        );
        assert_eq!(rendered["date_created"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn without_stock_a_new_item_is_paused() {
        let item = shirt(0);
        assert_eq!(item.status(), ItemStatus::Paused);
        assert_eq!(item.render()["sub_status"], json!(["out_of_stock"]));
    }

    #[test]
    fn a_put_merges_attributes_by_id_and_keeps_pictures_named_by_id() {
        let mut item = shirt(3);
        let picture = item.render()["pictures"][0]["id"].clone();
        put(
            &mut item,
            json!({
                "price": 99.0,
                "attributes": [
                    {"id": "BRAND", "value_name": "Other"},
                    {"id": "SELLER_SKU", "value_name": "S"},
                ],
                "pictures": [{"id": picture}, {"source": "https://shop.example/2.jpg"}],
            }),
        )
        .expect("a good PUT");
        let rendered = item.render();
        assert_eq!(rendered["price"], 99.0);
        assert_eq!(rendered["attributes"].as_array().map(Vec::len), Some(2));
        assert_eq!(rendered["attributes"][0]["value_name"], "Other");
        assert_eq!(rendered["pictures"].as_array().map(Vec::len), Some(2));
        assert_eq!(rendered["pictures"][0]["id"], picture);
        let unknown = put(&mut item, json!({"pictures": [{"id": "nope"}]}));
        assert_eq!(
            unknown.as_ref().map_err(first_code),
            Err("item.pictures.invalid")
        );
    }

    #[test]
    fn status_goes_between_active_and_paused_and_closed_is_final() {
        let mut item = shirt(3);
        put(&mut item, json!({"status": "paused"})).expect("pause");
        assert_eq!(item.status(), ItemStatus::Paused);
        put(&mut item, json!({"status": "active"})).expect("activate");
        put(&mut item, json!({"status": "closed"})).expect("close");
        let refused = put(&mut item, json!({"price": 1.0})).expect_err("closed is final");
        assert_eq!(first_code(&refused), "item.status.not_modifiable");
        assert_eq!(item.render()["price"], 129.9, "nothing changed");
    }

    #[test]
    fn stock_running_out_pauses_and_stock_coming_back_reactivates() {
        let mut item = shirt(3);
        put(&mut item, json!({"available_quantity": 0})).expect("stock out");
        assert_eq!(item.status(), ItemStatus::Paused);
        put(&mut item, json!({"available_quantity": 5})).expect("restock");
        assert_eq!(item.status(), ItemStatus::Active);
        put(&mut item, json!({"status": "paused"})).expect("seller pause");
        put(&mut item, json!({"available_quantity": 6})).expect("restock");
        assert_eq!(
            item.status(),
            ItemStatus::Paused,
            "a seller's pause stays until the seller lifts it"
        );
    }

    #[test]
    fn after_a_sale_title_condition_and_buying_mode_are_frozen() {
        let mut item = shirt(3);
        item.sell(1, 5).expect("a sale");
        for (field, value) in [
            ("title", json!("Outra camisa")),
            ("condition", json!("used")),
            ("buying_mode", json!("classified")),
        ] {
            let refused = put(&mut item, json!({ field: value })).expect_err(field);
            assert_eq!(
                first_code(&refused),
                format!("item.{field}.not_modifiable"),
                "{field}"
            );
        }
        put(
            &mut item,
            json!({"title": "Camisa de linho", "price": 10.0}),
        )
        .expect("the same title is no change");
        assert_eq!(item.render()["sold_quantity"], 1);
        assert_eq!(item.render()["available_quantity"], 2);
    }

    #[test]
    fn the_category_never_changes_and_the_listing_type_changes_once() {
        let mut item = shirt(3);
        let refused = put(&mut item, json!({"category_id": "MLB1055"})).expect_err("category");
        assert_eq!(first_code(&refused), "item.category_id.not_modifiable");
        put(&mut item, json!({"listing_type_id": "gold_pro"})).expect("first change");
        put(&mut item, json!({"listing_type_id": "gold_pro"})).expect("no change");
        let again = put(&mut item, json!({"listing_type_id": "gold_special"})).expect_err("second");
        assert_eq!(first_code(&again), "item.listing_type_id.not_modifiable");
    }

    #[test]
    fn a_sale_needs_an_active_item_with_stock() {
        let mut item = shirt(1);
        assert!(item.sell(2, 1).is_err());
        item.sell(1, 1).expect("the last unit");
        assert_eq!(item.status(), ItemStatus::Paused);
        assert!(item.sell(1, 2).is_err());
    }

    #[test]
    fn the_sku_search_looks_at_both_places() {
        let mut item = shirt(3);
        assert!(item.has_sku("SKU-1"));
        put(
            &mut item,
            json!({
                "seller_custom_field": null,
                "attributes": [{"id": "SELLER_SKU", "value_name": "SKU-9"}],
            }),
        )
        .expect("move the sku");
        assert!(!item.has_sku("SKU-1"));
        assert!(item.has_sku("SKU-9"));
        assert_eq!(item.sku().as_deref(), Some("SKU-9"));
    }
}

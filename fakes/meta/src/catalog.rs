//! One catalog's items and what an item request does to them, Meta's way: a CREATE of an id
//! that exists updates it, an UPDATE of a new id creates it when upsert is allowed, an UPDATE
//! changes only the fields it names (null removes one) and is checked as the merged item, a
//! DELETE of an unknown id is only a warning. An item that fails its checks leaves the catalog
//! as it was. Each item gets Meta's own id when it is first stored and keeps it across updates;
//! an item deleted and stored again gets a new one.

use crate::config::RejectRule;
use crate::item_fields::{problems, with_field};
use crate::records::ItemMethod;
use crate::request_shape::ItemRequest;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ops::Bound;

/// The first Meta id the fake gives an item.
pub(crate) const FIRST_ITEM_ID: u64 = 1_000_000_000_000_000;

/// Meta's ids for items, decimal strings from one counter: never given twice while the fake
/// runs, whichever catalog the item is in.
#[derive(Debug, Clone)]
pub(crate) struct ItemIds {
    next: u64,
}

impl Default for ItemIds {
    fn default() -> Self {
        Self {
            next: FIRST_ITEM_ID,
        }
    }
}

impl ItemIds {
    fn issue(&mut self) -> String {
        let id = self.next;
        self.next += 1;
        id.to_string()
    }
}

/// Items by retailer id.
#[derive(Debug, Default, Clone)]
pub(crate) struct Catalog {
    items: BTreeMap<String, StoredItem>,
}

/// One item as the catalog holds it.
#[derive(Debug, Clone)]
struct StoredItem {
    /// Meta's id for it.
    item_id: String,
    fields: Map<String, Value>,
}

/// What one item request did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Stored {
        created: bool,
        /// The item's Meta id.
        item_id: String,
    },
    Deleted,
    /// A DELETE of an id the catalog does not have.
    NothingToDelete,
    /// Not applied, for these reasons (each ending in `(field: NAME)`).
    Rejected(Vec<String>),
}

impl Catalog {
    /// The items stored now, by retailer id.
    pub(crate) fn items(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.items.values().map(|item| &item.fields)
    }

    /// The Meta id of the item stored under `retailer_id`.
    pub(crate) fn item_id(&self, retailer_id: &str) -> Option<&str> {
        self.items
            .get(retailer_id)
            .map(|item| item.item_id.as_str())
    }

    /// `(retailer id, Meta id)` of the items stored now, in retailer-id order, starting after
    /// `after` (or at the first).
    pub(crate) fn item_ids_after<'a>(
        &'a self,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.items
            .range::<str, _>((from, Bound::Unbounded))
            .map(|(retailer_id, item)| (retailer_id.as_str(), item.item_id.as_str()))
    }

    /// Applies one request; a new item takes its Meta id from `ids`.
    pub(crate) fn apply(
        &mut self,
        request: &ItemRequest,
        allow_upsert: bool,
        rules: &[RejectRule],
        ids: &mut ItemIds,
    ) -> Outcome {
        let existing = self.items.get(&request.retailer_id);
        match request.method {
            ItemMethod::Delete => match self.items.remove(&request.retailer_id) {
                Some(_) => Outcome::Deleted,
                None => Outcome::NothingToDelete,
            },
            ItemMethod::Update if existing.is_none() && !allow_upsert => {
                Outcome::Rejected(vec![with_field(
                    &format!(
                        "(#10800) Item with retailer id {} does not exist",
                        request.retailer_id
                    ),
                    "id",
                )])
            }
            ItemMethod::Create | ItemMethod::Update => {
                let created = existing.is_none();
                let known_id = existing.map(|item| item.item_id.clone());
                let mut item = existing.map(|item| item.fields.clone()).unwrap_or_default();
                for (field, value) in &request.data {
                    if value.is_null() {
                        item.remove(field);
                    } else {
                        item.insert(field.clone(), value.clone());
                    }
                }
                let found = problems(&item, rules);
                if !found.is_empty() {
                    return Outcome::Rejected(found);
                }
                let item_id = known_id.unwrap_or_else(|| ids.issue());
                self.items.insert(
                    request.retailer_id.clone(),
                    StoredItem {
                        item_id: item_id.clone(),
                        fields: item,
                    },
                );
                Outcome::Stored { created, item_id }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(method: ItemMethod, data: Value) -> ItemRequest {
        ItemRequest {
            line: 0,
            method,
            retailer_id: data["id"].as_str().unwrap_or_default().to_owned(),
            data: data.as_object().cloned().unwrap_or_default(),
        }
    }

    fn shirt() -> Value {
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
    fn create_then_create_again_updates() {
        let mut catalog = Catalog::default();
        let mut ids = ItemIds::default();
        let first = catalog.apply(&request(ItemMethod::Create, shirt()), true, &[], &mut ids);
        let first_id = FIRST_ITEM_ID.to_string();
        assert_eq!(
            first,
            Outcome::Stored {
                created: true,
                item_id: first_id.clone()
            }
        );
        let mut cheaper = shirt();
        cheaper["price"] = json!("20.00 GBP");
        let second = catalog.apply(&request(ItemMethod::Create, cheaper), true, &[], &mut ids);
        assert_eq!(
            second,
            Outcome::Stored {
                created: false,
                item_id: first_id
            },
            "an item keeps its Meta id"
        );
        let items: Vec<_> = catalog.items().collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["price"], "20.00 GBP");
    }

    #[test]
    fn an_update_merges_and_is_checked_merged() {
        let mut catalog = Catalog::default();
        let mut ids = ItemIds::default();
        catalog.apply(&request(ItemMethod::Create, shirt()), true, &[], &mut ids);
        let partial = json!({"id": "sku-1", "availability": "out of stock"});
        let outcome = catalog.apply(&request(ItemMethod::Update, partial), true, &[], &mut ids);
        assert!(matches!(outcome, Outcome::Stored { created: false, .. }));
        let breaking = json!({"id": "sku-1", "brand": null});
        let Outcome::Rejected(found) =
            catalog.apply(&request(ItemMethod::Update, breaking), true, &[], &mut ids)
        else {
            panic!("removing the brand must be refused");
        };
        assert!(found[0].ends_with("(field: brand)"));
        let stored = catalog.items().next().cloned().unwrap_or_default();
        assert_eq!(stored["availability"], "out of stock");
        assert_eq!(stored["brand"], "Porch");
    }

    #[test]
    fn an_update_of_a_new_item_needs_upsert() {
        let mut catalog = Catalog::default();
        let mut ids = ItemIds::default();
        let refused = catalog.apply(&request(ItemMethod::Update, shirt()), false, &[], &mut ids);
        assert_eq!(
            refused,
            Outcome::Rejected(vec![
                "(#10800) Item with retailer id sku-1 does not exist (field: id)".into()
            ])
        );
        let created = catalog.apply(&request(ItemMethod::Update, shirt()), true, &[], &mut ids);
        assert!(matches!(created, Outcome::Stored { created: true, .. }));
    }

    #[test]
    fn delete_removes_or_warns() {
        let mut catalog = Catalog::default();
        let mut ids = ItemIds::default();
        let gone = json!({"id": "sku-1"});
        assert_eq!(
            catalog.apply(
                &request(ItemMethod::Delete, gone.clone()),
                true,
                &[],
                &mut ids
            ),
            Outcome::NothingToDelete
        );
        catalog.apply(&request(ItemMethod::Create, shirt()), true, &[], &mut ids);
        assert_eq!(
            catalog.apply(&request(ItemMethod::Delete, gone), true, &[], &mut ids),
            Outcome::Deleted
        );
        assert_eq!(catalog.items().count(), 0);
    }

    #[test]
    fn a_deleted_item_stored_again_gets_a_new_meta_id() {
        let mut catalog = Catalog::default();
        let mut ids = ItemIds::default();
        let mut other = shirt();
        other["id"] = json!("sku-0");
        catalog.apply(&request(ItemMethod::Create, shirt()), true, &[], &mut ids);
        catalog.apply(&request(ItemMethod::Create, other), true, &[], &mut ids);
        let first = catalog.item_id("sku-1").map(str::to_owned);
        assert_eq!(first, Some(FIRST_ITEM_ID.to_string()));
        let listed: Vec<(&str, &str)> = catalog.item_ids_after(None).collect();
        assert_eq!(
            listed,
            vec![("sku-0", "1000000000000001"), ("sku-1", "1000000000000000")],
            "in retailer-id order"
        );
        assert_eq!(catalog.item_ids_after(Some("sku-0")).count(), 1);
        catalog.apply(
            &request(ItemMethod::Delete, json!({"id": "sku-1"})),
            true,
            &[],
            &mut ids,
        );
        assert_eq!(catalog.item_id("sku-1"), None);
        let again = catalog.apply(&request(ItemMethod::Create, shirt()), true, &[], &mut ids);
        assert_eq!(
            again,
            Outcome::Stored {
                created: true,
                item_id: "1000000000000002".into()
            }
        );
    }
}

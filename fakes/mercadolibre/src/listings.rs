//! Every item the fake holds, oldest first, with the id counter. Mercado Libre never deletes a
//! listing (a closed one stays readable), so neither does the fake; ids are the site's prefix
//! and a number from one counter that a reset keeps, so an id is never given twice.

use crate::api_error::Cause;
use crate::item::{Item, ItemStatus, ItemSummary};
use crate::records::Duplicate;
use crate::search::SearchQuery;
use crate::site::Site;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// The number in the fake's first item id (`MLB1000000000`).
pub const FIRST_ITEM_NUMBER: u64 = 1_000_000_000;

#[derive(Debug, Clone)]
pub(crate) struct Listings {
    items: Vec<Item>,
    by_id: HashMap<String, usize>,
    next_number: u64,
}

impl Default for Listings {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            by_id: HashMap::new(),
            next_number: FIRST_ITEM_NUMBER,
        }
    }
}

impl Listings {
    /// Forgets every item; the counter stays.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.by_id.clear();
    }

    /// Stores a new item of `seller_id` from a checked body.
    pub(crate) fn create(
        &mut self,
        site: Site,
        seller_id: u64,
        body: &Map<String, Value>,
        now_ms: u64,
    ) -> Result<&Item, Cause> {
        let id = format!("{}{}", site.id(), self.next_number);
        let item = Item::create(id.clone(), site, seller_id, body, now_ms)?;
        self.next_number += 1;
        self.by_id.insert(id, self.items.len());
        self.items.push(item);
        Ok(&self.items[self.items.len() - 1])
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Item> {
        self.by_id.get(id).map(|&index| &self.items[index])
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Item> {
        self.by_id.get(id).map(|&index| &mut self.items[index])
    }

    /// The ids of `seller_id`'s items that `query` matches, oldest first.
    pub(crate) fn search(&self, seller_id: u64, query: &SearchQuery) -> Vec<String> {
        self.items
            .iter()
            .filter(|item| item.seller_id() == seller_id)
            .filter(|item| query.status.is_none_or(|status| item.status() == status))
            .filter(|item| {
                query
                    .seller_sku
                    .as_deref()
                    .is_none_or(|sku| item.has_sku(sku))
            })
            .map(|item| item.id().to_owned())
            .collect()
    }

    pub(crate) fn summaries(&self) -> BTreeMap<String, ItemSummary> {
        self.items
            .iter()
            .map(|item| (item.id().to_owned(), item.summary()))
            .collect()
    }

    /// SKUs with more than one item that is not closed, per seller.
    pub(crate) fn duplicates(&self) -> Vec<Duplicate> {
        let mut by_sku: BTreeMap<(u64, String), Vec<String>> = BTreeMap::new();
        for item in &self.items {
            if item.status() == ItemStatus::Closed {
                continue;
            }
            if let Some(sku) = item.sku() {
                by_sku
                    .entry((item.seller_id(), sku))
                    .or_default()
                    .push(item.id().to_owned());
            }
        }
        by_sku
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|((seller_id, sku), item_ids)| Duplicate {
                seller_id,
                sku,
                item_ids,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn body(sku: &str) -> Map<String, Value> {
        json!({
            "title": "Camisa",
            "category_id": "MLB31447",
            "price": 10,
            "currency_id": "BRL",
            "available_quantity": 1,
            "buying_mode": "buy_it_now",
            "listing_type_id": "gold_special",
            "condition": "new",
            "seller_custom_field": sku,
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn ids_count_up_and_survive_a_clear() {
        let mut listings = Listings::default();
        let first = listings
            .create(Site::Mlb, 7, &body("A"), 0)
            .expect("created")
            .id()
            .to_owned();
        assert_eq!(first, "MLB1000000000");
        let second = listings
            .create(Site::Mla, 8, &body("A"), 0)
            .expect("created")
            .id()
            .to_owned();
        assert_eq!(second, "MLA1000000001");
        listings.clear();
        assert!(listings.get(&first).is_none());
        let third = listings
            .create(Site::Mlb, 7, &body("A"), 0)
            .expect("created")
            .id()
            .to_owned();
        assert_eq!(third, "MLB1000000002");
    }

    #[test]
    fn duplicates_are_open_items_sharing_a_sku_per_seller() {
        let mut listings = Listings::default();
        for (seller, sku) in [(7, "A"), (7, "A"), (7, "B"), (8, "A"), (7, "A")] {
            listings
                .create(Site::Mlb, seller, &body(sku), 0)
                .expect("created");
        }
        let closing: Map<String, Value> = json!({"status": "closed"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        listings
            .get_mut("MLB1000000004")
            .expect("item")
            .update(&closing, 60, 1)
            .expect("closed");
        assert_eq!(
            listings.duplicates(),
            vec![Duplicate {
                seller_id: 7,
                sku: "A".into(),
                item_ids: vec!["MLB1000000000".into(), "MLB1000000001".into()],
            }]
        );
        let query = SearchQuery::parse(&HashMap::from([("seller_sku".to_owned(), "A".to_owned())]))
            .expect("query");
        assert_eq!(
            listings.search(7, &query),
            vec!["MLB1000000000", "MLB1000000001", "MLB1000000004"]
        );
    }
}

//! `GET /users/{user_id}/items/search`: a seller's item ids, filtered by SKU (`seller_sku`) and
//! `status`, paged by `offset` and `limit` up to the first 1,000 results; past those, Mercado
//! Libre wants `search_type=scan`, which pages with a `scroll_id` instead.

use crate::api_error::ApiError;
use crate::item::ItemStatus;
use serde_json::{json, Value};
use std::collections::HashMap;

pub const DEFAULT_SEARCH_LIMIT: usize = 50;
pub const MAX_SEARCH_LIMIT: usize = 100;
/// The deepest `offset + limit` a search reaches without `search_type=scan`.
pub const MAX_SEARCH_DEPTH: usize = 1_000;

const SCROLL_PREFIX: &str = "scan-";

/// A search's parameters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchQuery {
    pub(crate) seller_sku: Option<String>,
    pub(crate) status: Option<ItemStatus>,
    offset: usize,
    limit: usize,
    scan: bool,
}

impl SearchQuery {
    pub(crate) fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let number = |name: &str, default: usize| -> Result<usize, ApiError> {
            params.get(name).map_or(Ok(default), |text| {
                text.parse().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be a whole number, not {text}"))
                })
            })
        };
        let status = params
            .get("status")
            .map(|text| {
                ItemStatus::parse(text).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid status {text}: use active, paused or closed"
                    ))
                })
            })
            .transpose()?;
        let limit = number("limit", DEFAULT_SEARCH_LIMIT)?;
        if limit > MAX_SEARCH_LIMIT {
            return Err(ApiError::bad_request(format!(
                "Limit must be a lower or equal than {MAX_SEARCH_LIMIT}."
            )));
        }
        let scan = params.get("search_type").is_some_and(|kind| kind == "scan");
        let offset = if scan {
            match params.get("scroll_id") {
                None => 0,
                Some(scroll) => scroll_position(scroll)
                    .ok_or_else(|| ApiError::bad_request(format!("Invalid scroll_id {scroll}")))?,
            }
        } else {
            number("offset", 0)?
        };
        if !scan && offset + limit > MAX_SEARCH_DEPTH {
            return Err(ApiError::bad_request(format!(
                "offset + limit must not exceed {MAX_SEARCH_DEPTH}; use search_type=scan to \
                 read further"
            )));
        }
        Ok(Self {
            seller_sku: params.get("seller_sku").cloned(),
            status,
            offset,
            limit,
            scan,
        })
    }

    /// The answer for a seller whose matching item ids, oldest first, are `ids`.
    pub(crate) fn answer(&self, seller_id: u64, ids: &[String]) -> Value {
        let page: Vec<&String> = ids.iter().skip(self.offset).take(self.limit).collect();
        let mut answer = json!({
            "seller_id": seller_id.to_string(),
            "query": null,
            "paging": {
                "total": ids.len(),
                "offset": if self.scan { 0 } else { self.offset },
                "limit": self.limit,
            },
            "results": page,
        });
        if let (true, Some(fields)) = (self.scan, answer.as_object_mut()) {
            let next = self.offset + page.len();
            fields.insert(
                "scroll_id".into(),
                Value::from(format!("{SCROLL_PREFIX}{next:x}")),
            );
        }
        answer
    }
}

fn scroll_position(scroll: &str) -> Option<usize> {
    usize::from_str_radix(scroll.strip_prefix(SCROLL_PREFIX)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ids(count: usize) -> Vec<String> {
        (0..count).map(|n| format!("MLB{n}")).collect()
    }

    #[test]
    fn a_page_reports_the_total_and_its_window() {
        let query = SearchQuery::parse(&params(&[("offset", "1"), ("limit", "2")])).expect("ok");
        let answer = query.answer(7, &ids(4));
        assert_eq!(answer["seller_id"], "7");
        assert_eq!(
            answer["paging"],
            json!({"total": 4, "offset": 1, "limit": 2})
        );
        assert_eq!(answer["results"], json!(["MLB1", "MLB2"]));
        assert!(answer.get("scroll_id").is_none());
    }

    #[test]
    fn bad_parameters_are_refused() {
        for bad in [
            params(&[("limit", "101")]),
            params(&[("offset", "x")]),
            params(&[("status", "deleted")]),
            params(&[("offset", "990"), ("limit", "20")]),
            params(&[("search_type", "scan"), ("scroll_id", "nope")]),
        ] {
            assert!(SearchQuery::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scan_goes_past_a_thousand_with_scroll_ids() {
        let all = ids(1_150);
        let mut scroll: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let mut pairs = vec![("search_type", "scan"), ("limit", "100")];
            if let Some(scroll) = scroll.as_deref() {
                pairs.push(("scroll_id", scroll));
            }
            let answer = SearchQuery::parse(&params(&pairs))
                .expect("ok")
                .answer(7, &all);
            let page = answer["results"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                break;
            }
            seen.extend(page);
            scroll = answer["scroll_id"].as_str().map(str::to_owned);
        }
        assert_eq!(seen.len(), 1_150);
        assert_eq!(seen.last(), Some(&json!("MLB1149")));
    }
}

//! The catalog's `products` edge, as far as a client needs it to learn which retailer ids a
//! catalog already holds: `GET /{catalog}/products?filter=…&fields=id,retailer_id&limit=n`.
//! Meta's filter language is large; the fake understands a `retailer_id` filter with `is_any`
//! or `eq` and refuses everything else (code 100) rather than answer what Meta might not. The
//! answer lists the items stored now, in retailer-id order, a page at a time, with Graph's
//! cursor paging (`after` continues a listing; `paging.next` is given while more items match).

use crate::catalog::Catalog;
use crate::graph_error::GraphError;
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::ops::Bound;

/// Items per page when the call names no `limit`.
pub const DEFAULT_PRODUCTS_LIMIT: usize = 25;
/// The most items one page holds; a larger `limit` is cut to it.
pub const MAX_PRODUCTS_LIMIT: usize = 5_000;

/// What a `products` call asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProductsQuery {
    filter: Filter,
    fields: Fields,
    limit: usize,
    /// The retailer id the listing continues after (the decoded `after` cursor).
    after: Option<String>,
}

/// Which items a call lists.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    /// No filter: every item.
    All,
    /// `{"retailer_id": {"is_any": [...]}}` or `{"retailer_id": {"eq": "..."}}`.
    RetailerIds(BTreeSet<String>),
}

/// Which keys each listed item has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    id: bool,
    retailer_id: bool,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Page {
    /// `(retailer id, Meta id)`, in retailer-id order.
    items: Vec<(String, String)>,
    /// Whether more items match past this page.
    more: bool,
}

impl ProductsQuery {
    /// Reads the call's `filter`, `fields`, `limit` and `after`; other parameters are ignored,
    /// as Graph ignores them.
    pub(crate) fn parse(params: &HashMap<String, String>) -> Result<Self, GraphError> {
        let param = |name: &str| params.get(name).map(String::as_str);
        Ok(Self {
            filter: Filter::parse(param("filter"))?,
            fields: Fields::parse(param("fields"))?,
            limit: parse_limit(param("limit"))?,
            after: param("after").map(decode_cursor).transpose()?,
        })
    }

    /// The page of `catalog` this query asks for.
    pub(crate) fn page(&self, catalog: &Catalog) -> Page {
        let after = self.after.as_deref();
        let mut items: Vec<(String, String)> = match &self.filter {
            Filter::All => catalog
                .item_ids_after(after)
                .map(|(retailer_id, item_id)| (retailer_id.to_owned(), item_id.to_owned()))
                .take(self.limit + 1)
                .collect(),
            Filter::RetailerIds(wanted) => {
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                wanted
                    .range::<str, _>((from, Bound::Unbounded))
                    .filter_map(|retailer_id| {
                        let item_id = catalog.item_id(retailer_id)?;
                        Some((retailer_id.clone(), item_id.to_owned()))
                    })
                    .take(self.limit + 1)
                    .collect()
            }
        };
        let more = items.len() > self.limit;
        items.truncate(self.limit);
        Page { items, more }
    }

    /// The answer's body for `page`: `{"data": [...], "paging": {"cursors": {before, after},
    /// "next"?}}`, or only `{"data": []}` when nothing matched, as Graph answers an empty edge.
    /// `next_url` makes the URL of the following page from its `after` cursor; `next` is given
    /// only while more items match.
    pub(crate) fn answer(
        &self,
        page: &Page,
        next_url: impl FnOnce(&str) -> Option<String>,
    ) -> Value {
        let data: Vec<Value> = page
            .items
            .iter()
            .map(|(retailer_id, item_id)| {
                let mut entry = Map::new();
                if self.fields.id {
                    entry.insert("id".into(), json!(item_id));
                }
                if self.fields.retailer_id {
                    entry.insert("retailer_id".into(), json!(retailer_id));
                }
                Value::Object(entry)
            })
            .collect();
        let (Some((first, _)), Some((last, _))) = (page.items.first(), page.items.last()) else {
            return json!({ "data": data });
        };
        let after = encode_cursor(last);
        let next = if page.more { next_url(&after) } else { None };
        let mut paging = json!({
            "cursors": {"before": encode_cursor(first), "after": after},
        });
        if let (Some(next), Some(fields)) = (next, paging.as_object_mut()) {
            fields.insert("next".into(), json!(next));
        }
        json!({ "data": data, "paging": paging })
    }
}

impl Filter {
    fn parse(text: Option<&str>) -> Result<Self, GraphError> {
        let Some(text) = text else {
            return Ok(Filter::All);
        };
        let value: Value = serde_json::from_str(text)
            .map_err(|e| bad_filter(format_args!("is not valid JSON ({e})")))?;
        let Value::Object(fields) = value else {
            return Err(bad_filter("must be a JSON object"));
        };
        let mut fields = fields.into_iter();
        let (field, condition) = match (fields.next(), fields.next()) {
            (Some(only), None) => only,
            _ => return Err(bad_filter("must name exactly one field, retailer_id")),
        };
        if field != "retailer_id" {
            return Err(bad_filter(format_args!(
                "filters on {field}; only retailer_id is supported"
            )));
        }
        let Value::Object(operators) = condition else {
            return Err(bad_filter(
                "must give retailer_id an object with one operator, is_any or eq",
            ));
        };
        let mut operators = operators.into_iter();
        let (operator, operand) = match (operators.next(), operators.next()) {
            (Some(only), None) => only,
            _ => {
                return Err(bad_filter(
                    "must give retailer_id exactly one operator, is_any or eq",
                ))
            }
        };
        let wanted = match (operator.as_str(), operand) {
            ("eq", Value::String(id)) => BTreeSet::from([id]),
            ("eq", other) => {
                return Err(bad_filter(format_args!(
                    "operator eq needs a string, not {other}"
                )))
            }
            ("is_any", Value::Array(ids)) => ids
                .into_iter()
                .map(|id| match id {
                    Value::String(id) => Ok(id),
                    other => Err(bad_filter(format_args!(
                        "operator is_any needs a list of strings, not {other}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            ("is_any", other) => {
                return Err(bad_filter(format_args!(
                    "operator is_any needs a list of strings, not {other}"
                )))
            }
            (other, _) => {
                return Err(bad_filter(format_args!(
                    "uses operator {other}; only is_any and eq are supported on retailer_id"
                )))
            }
        };
        Ok(Filter::RetailerIds(wanted))
    }
}

fn bad_filter(reason: impl Display) -> GraphError {
    GraphError::invalid_parameter(format_args!("Param filter {reason}"))
}

impl Fields {
    /// `fields` as a comma-separated list; without it, Graph's default: `id` only.
    fn parse(text: Option<&str>) -> Result<Self, GraphError> {
        let Some(text) = text else {
            return Ok(Fields {
                id: true,
                retailer_id: false,
            });
        };
        let mut fields = Fields {
            id: false,
            retailer_id: false,
        };
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            match name {
                "id" => fields.id = true,
                "retailer_id" => fields.retailer_id = true,
                other => {
                    return Err(GraphError::invalid_parameter(format_args!(
                        "Param fields names {other}; the fake serves only id and retailer_id \
                         of a product item"
                    )))
                }
            }
        }
        Ok(fields)
    }
}

/// `limit`: a whole number from 1; more than [`MAX_PRODUCTS_LIMIT`] is cut to it.
fn parse_limit(text: Option<&str>) -> Result<usize, GraphError> {
    let Some(text) = text else {
        return Ok(DEFAULT_PRODUCTS_LIMIT);
    };
    match text.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(GraphError::invalid_parameter(format_args!(
            "Param limit must be a whole number from 1, not {text}"
        ))),
        Ok(limit) => Ok(usize::try_from(limit)
            .unwrap_or(MAX_PRODUCTS_LIMIT)
            .min(MAX_PRODUCTS_LIMIT)),
    }
}

/// A paging cursor: the retailer id it stands for, as hex (opaque, and safe in a URL).
fn encode_cursor(retailer_id: &str) -> String {
    retailer_id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Result<String, GraphError> {
    let invalid =
        || GraphError::invalid_parameter(format_args!("Param after is not a valid cursor"));
    if cursor.is_empty() || !cursor.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|at| {
            cursor
                .get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// The URL of the page after this one: this call's path and parameters (sorted by name), with
/// `after` set to `cursor`.
pub(crate) fn next_page_url(
    host: &str,
    path: &str,
    params: &HashMap<String, String>,
    cursor: &str,
) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(name, _)| name.as_str() != "after")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    pairs.push(("after", cursor));
    pairs.sort_unstable();
    let query: Vec<String> = pairs
        .into_iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect();
    format!("http://{host}{path}?{}", query.join("&"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<ProductsQuery, GraphError> {
        let params: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        ProductsQuery::parse(&params)
    }

    #[test]
    fn retailer_id_filters_are_read() {
        let is_any = query(&[("filter", r#"{"retailer_id":{"is_any":["b","a","b"]}}"#)]);
        assert_eq!(
            is_any.map(|q| q.filter),
            Ok(Filter::RetailerIds(BTreeSet::from([
                "a".into(),
                "b".into()
            ])))
        );
        let eq = query(&[("filter", r#"{"retailer_id":{"eq":"a"}}"#)]);
        assert_eq!(
            eq.map(|q| q.filter),
            Ok(Filter::RetailerIds(BTreeSet::from(["a".into()])))
        );
        let none = query(&[]).expect("no parameters");
        assert_eq!(none.filter, Filter::All);
        assert_eq!(none.limit, DEFAULT_PRODUCTS_LIMIT);
        assert_eq!(
            none.fields,
            Fields {
                id: true,
                retailer_id: false
            }
        );
    }

    #[test]
    fn other_filters_are_code_100_naming_the_parameter() {
        for filter in [
            "",
            "{",
            "[]",
            r#"{"retailer_id":"a"}"#,
            r#"{"title":{"eq":"a"}}"#,
            r#"{"retailer_id":{"neq":"a"}}"#,
            r#"{"retailer_id":{"eq":1}}"#,
            r#"{"retailer_id":{"is_any":"a"}}"#,
            r#"{"retailer_id":{"is_any":["a",2]}}"#,
            r#"{"retailer_id":{"eq":"a","is_any":["a"]}}"#,
            r#"{"retailer_id":{"eq":"a"},"title":{"eq":"b"}}"#,
            r#"{"or":[{"retailer_id":{"eq":"a"}}]}"#,
        ] {
            let error = query(&[("filter", filter)]).expect_err(filter);
            assert_eq!((error.status.as_u16(), error.code), (400, 100), "{filter}");
            assert!(
                error.message.starts_with("(#100) Param filter "),
                "{filter}: {}",
                error.message
            );
        }
    }

    #[test]
    fn limits_fields_and_cursors() {
        assert_eq!(query(&[("limit", "9000")]).map(|q| q.limit), Ok(5_000));
        for bad in ["0", "-1", "ten", ""] {
            let error = query(&[("limit", bad)]).expect_err(bad);
            assert!(error.message.contains("Param limit"), "{}", error.message);
        }
        let both = query(&[("fields", "retailer_id, id")]).map(|q| q.fields);
        assert_eq!(
            both,
            Ok(Fields {
                id: true,
                retailer_id: true
            })
        );
        assert!(query(&[("fields", "id,title")]).is_err());
        let cursor = encode_cursor("sku-ü 1");
        assert_eq!(decode_cursor(&cursor), Ok("sku-ü 1".to_owned()));
        for bad in ["", "abc", "zz", "ff"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_next_url_carries_the_call_with_the_new_cursor() {
        let params: HashMap<String, String> = [
            ("limit".to_owned(), "2".to_owned()),
            ("after".to_owned(), "61".to_owned()),
            (
                "filter".to_owned(),
                r#"{"retailer_id":{"eq":"a b"}}"#.to_owned(),
            ),
        ]
        .into();
        assert_eq!(
            next_page_url("127.0.0.1:9", "/v24.0/c/products", &params, "62"),
            "http://127.0.0.1:9/v24.0/c/products?after=62\
             &filter=%7B%22retailer_id%22%3A%7B%22eq%22%3A%22a%20b%22%7D%7D&limit=2"
        );
    }
}

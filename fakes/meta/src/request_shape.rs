//! The synchronous check of `items_batch`: only a request's shape (a known method, a retailer
//! id of 1 to 100 characters). Meta answers shape problems at once in `validation_status` and
//! leaves everything about the item's fields to the asynchronous run, so the fake does the same:
//! a request that fails here is never applied and never shows up in the batch's status.

use crate::records::ItemMethod;
use serde::Serialize;
use serde_json::{Map, Value};

/// The longest retailer id Meta accepts.
pub const MAX_RETAILER_ID_CHARS: usize = 100;

/// An item request that passed the shape check.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRequest {
    /// Its index in the batch's `requests`.
    pub line: usize,
    pub method: ItemMethod,
    pub retailer_id: String,
    pub data: Map<String, Value>,
}

/// One entry of `validation_status`: a request refused before the batch ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationStatus {
    pub retailer_id: String,
    pub errors: Vec<Message>,
    pub warnings: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub message: String,
}

/// Checks the shape of the request at `line`.
pub fn check_request(line: usize, request: &Value) -> Result<ItemRequest, ValidationStatus> {
    let data = request.get("data").and_then(Value::as_object);
    let retailer_id = data.and_then(|data| data.get("id"));
    let mut errors = Vec::new();

    let method = match request.get("method") {
        None => {
            errors.push(problem("The request has no method", "method"));
            None
        }
        Some(name) => {
            let method = name.as_str().and_then(ItemMethod::parse);
            if method.is_none() {
                errors.push(problem(
                    &format!("Invalid method {name}: must be CREATE, UPDATE or DELETE"),
                    "method",
                ));
            }
            method
        }
    };
    match (data, retailer_id) {
        (None, _) => errors.push(problem("The request has no data object", "data")),
        (Some(_), None) => errors.push(problem("The item has no id", "id")),
        (Some(_), Some(Value::String(id))) => {
            let chars = id.chars().count();
            if chars == 0 || chars > MAX_RETAILER_ID_CHARS {
                errors.push(problem(
                    &format!("The id must be 1 to {MAX_RETAILER_ID_CHARS} characters, not {chars}"),
                    "id",
                ));
            }
        }
        (Some(_), Some(_)) => errors.push(problem("The id must be text", "id")),
    }

    match (method, data, retailer_id.and_then(Value::as_str)) {
        (Some(method), Some(data), Some(id)) if errors.is_empty() => Ok(ItemRequest {
            line,
            method,
            retailer_id: id.to_owned(),
            data: data.clone(),
        }),
        _ => Err(ValidationStatus {
            retailer_id: retailer_id
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            errors,
            warnings: Vec::new(),
        }),
    }
}

fn problem(text: &str, field: &str) -> Message {
    Message {
        message: crate::item_fields::with_field(text, field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_well_formed_request_passes() {
        let request = json!({"method": "UPDATE", "data": {"id": "sku-1", "title": "T"}});
        let checked = check_request(3, &request).expect("well formed");
        assert_eq!(checked.line, 3);
        assert_eq!(checked.method, ItemMethod::Update);
        assert_eq!(checked.retailer_id, "sku-1");
        assert_eq!(checked.data["title"], "T");
    }

    #[test]
    fn shape_problems_name_their_field() {
        let cases = [
            (
                json!({"method": "UPSERT", "data": {"id": "a"}}),
                "a",
                "(field: method)",
            ),
            (json!({"data": {"id": "a"}}), "a", "(field: method)"),
            (json!({"method": "CREATE"}), "", "(field: data)"),
            (json!({"method": "CREATE", "data": {}}), "", "(field: id)"),
            (
                json!({"method": "CREATE", "data": {"id": ""}}),
                "",
                "(field: id)",
            ),
            (
                json!({"method": "CREATE", "data": {"id": 12}}),
                "",
                "(field: id)",
            ),
            (
                json!({"method": "CREATE", "data": {"id": "x".repeat(101)}}),
                "x",
                "(field: id)",
            ),
        ];
        for (request, id_start, field) in cases {
            let status = check_request(0, &request).expect_err("malformed");
            assert!(status.retailer_id.starts_with(id_start), "{request}");
            assert_eq!(status.errors.len(), 1, "{request}");
            assert!(status.errors[0].message.ends_with(field), "{request}");
        }
    }

    #[test]
    fn a_hundred_characters_is_still_an_id() {
        let request = json!({"method": "DELETE", "data": {"id": "é".repeat(100)}});
        assert!(check_request(0, &request).is_ok());
    }
}

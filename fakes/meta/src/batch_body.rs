//! Reading an `items_batch` body: the JSON object, its parameters (`item_type`, `allow_upsert`,
//! `requests`) and Meta's per-call limits. What is wrong with the call as a whole is a Graph
//! error (code 100); what is wrong with single requests goes to `validation_status` and the rest
//! of the batch still runs.

use crate::graph_error::{GraphError, MAX_REQUESTS_PER_BATCH};
use crate::request_shape::{check_request, ItemRequest, ValidationStatus};
use serde_json::{Map, Value};

/// The only item type the fake keeps.
pub const PRODUCT_ITEM: &str = "PRODUCT_ITEM";

/// A parsed `items_batch` body.
#[derive(Debug)]
pub(crate) struct BatchBody {
    fields: Map<String, Value>,
}

/// The batch's requests, split by the shape check.
#[derive(Debug)]
pub(crate) struct CheckedBatch {
    pub(crate) allow_upsert: bool,
    pub(crate) requests: Vec<ItemRequest>,
    pub(crate) validation_status: Vec<ValidationStatus>,
}

impl BatchBody {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, GraphError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => Ok(Self { fields }),
            Ok(_) => Err(GraphError::invalid_parameter(
                "The request body must be a JSON object",
            )),
            Err(e) => Err(GraphError::invalid_parameter(format_args!(
                "The request body is not valid JSON: {e}"
            ))),
        }
    }

    pub(crate) fn access_token(&self) -> Option<&str> {
        self.fields.get("access_token").and_then(Value::as_str)
    }

    /// Checks the call's parameters and each request's shape.
    pub(crate) fn check(&self) -> Result<CheckedBatch, GraphError> {
        match self.fields.get("item_type") {
            None => {
                return Err(GraphError::invalid_parameter(
                    "The parameter item_type is required",
                ))
            }
            Some(Value::String(item_type)) if item_type == PRODUCT_ITEM => {}
            Some(other) => {
                return Err(GraphError::invalid_parameter(format_args!(
                    "Param item_type must be {PRODUCT_ITEM} on this catalog, not {other}"
                )))
            }
        }
        let allow_upsert = match self.fields.get("allow_upsert") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(allow)) => *allow,
            Some(other) => {
                return Err(GraphError::invalid_parameter(format_args!(
                    "Param allow_upsert must be a boolean, not {other}"
                )))
            }
        };
        let requests = match self.fields.get("requests") {
            Some(Value::Array(requests)) if !requests.is_empty() => requests,
            Some(Value::Array(_)) => {
                return Err(GraphError::invalid_parameter(
                    "Param requests must not be empty",
                ))
            }
            Some(_) => {
                return Err(GraphError::invalid_parameter(
                    "Param requests must be a list of item requests",
                ))
            }
            None => {
                return Err(GraphError::invalid_parameter(
                    "The parameter requests is required",
                ))
            }
        };
        if requests.len() > MAX_REQUESTS_PER_BATCH {
            return Err(GraphError::invalid_parameter(format_args!(
                "Param requests has {} requests; a batch may have at most {MAX_REQUESTS_PER_BATCH}",
                requests.len()
            )));
        }
        let mut checked = CheckedBatch {
            allow_upsert,
            requests: Vec::with_capacity(requests.len()),
            validation_status: Vec::new(),
        };
        for (line, request) in requests.iter().enumerate() {
            match check_request(line, request) {
                Ok(request) => checked.requests.push(request),
                Err(status) => checked.validation_status.push(status),
            }
        }
        Ok(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value) -> Result<CheckedBatch, GraphError> {
        BatchBody::parse(body.to_string().as_bytes())?.check()
    }

    #[test]
    fn shape_problems_split_off_and_the_rest_stays() {
        let checked = check(json!({
            "item_type": "PRODUCT_ITEM",
            "requests": [
                {"method": "CREATE", "data": {"id": "a"}},
                {"method": "MERGE", "data": {"id": "b"}},
                {"method": "DELETE", "data": {"id": "c"}},
            ],
        }))
        .expect("a valid call");
        assert!(checked.allow_upsert);
        let lines: Vec<usize> = checked.requests.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![0, 2]);
        assert_eq!(checked.validation_status.len(), 1);
        assert_eq!(checked.validation_status[0].retailer_id, "b");
    }

    #[test]
    fn call_level_problems_are_code_100() {
        let too_many = vec![json!({"method": "DELETE", "data": {"id": "a"}}); 5_001];
        let bad = [
            json!({"requests": [{"method": "DELETE", "data": {"id": "a"}}]}),
            json!({"item_type": "HOTEL", "requests": [{"method": "DELETE", "data": {"id": "a"}}]}),
            json!({"item_type": "PRODUCT_ITEM"}),
            json!({"item_type": "PRODUCT_ITEM", "requests": []}),
            json!({"item_type": "PRODUCT_ITEM", "requests": "[]"}),
            json!({"item_type": "PRODUCT_ITEM", "allow_upsert": "yes", "requests": too_many[..1]}),
            json!({"item_type": "PRODUCT_ITEM", "requests": too_many}),
        ];
        for body in bad {
            let error = check(body).expect_err("refused");
            assert_eq!(error.code, 100);
        }
        let limit = check(json!({"item_type": "PRODUCT_ITEM", "requests": too_many[..5_000]}));
        assert!(limit.is_ok());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        assert!(BatchBody::parse(b"[1]").is_err());
        assert!(BatchBody::parse(b"{").is_err());
    }
}

//! Extractors whose rejections speak problem+json, naming the field serde stumbled on.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

/// JSON bodies may be at most 1 MiB.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Image uploads may be at most 5 MiB.
pub const IMAGE_BODY_LIMIT: usize = 5 * 1024 * 1024;

/// A JSON body, with the raw bytes kept for the request digest of idempotent commands.
pub struct ApiJson<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        let raw = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejection(e, JSON_BODY_LIMIT))?;
        let value = parse_json(&raw)?;
        Ok(Self { value, raw })
    }
}

/// A raw body (an image), limited by the route's body limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| body_rejection(e, IMAGE_BODY_LIMIT))
    }
}

/// Path parameters; a path that does not decode is a 400 problem, not plain text.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::bad_request("path", e.body_text()))
    }
}

/// Query parameters; a query string that does not decode is a 400 problem, not plain text.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request("query", e.body_text()))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_rejection(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(limit)
    } else {
        ApiError::bad_request("body", e.body_text())
    }
}

/// Parses JSON text into `T`: malformed JSON is a 400 at a line and column, JSON of the wrong
/// shape (unknown or missing field, wrong type, invalid value) a 422 naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end()
        .map_err(|e| ApiError::bad_request("body", syntax_message(&e)))?;
    Ok(value)
}

/// Converts an already parsed JSON value into `T`, naming the field on failure.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(json_error)
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let inner = e.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            let field = if path.is_empty() {
                "body".to_string()
            } else {
                path
            };
            ApiError::bad_request(&field, syntax_message(&inner))
        }
        Category::Data => {
            let message = without_position(&inner);
            let field = match named_field(&message) {
                Some(name) if !path.ends_with(name) => join_path(&path, name),
                _ => path,
            };
            ApiError::invalid(&field, message)
        }
    }
}

fn syntax_message(e: &serde_json::Error) -> String {
    format!(
        "malformed JSON at line {}, column {}: {}",
        e.line(),
        e.column(),
        without_position(e)
    )
}

/// serde_json appends " at line L column C"; the problem says where on its own terms.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix)
        .map(str::to_string)
        .unwrap_or(text)
}

/// The field an "unknown field `x`" or "missing field `x`" message is about.
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next()
}

fn join_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Price {
        amount_minor: i64,
        currency: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Offer {
        sku: String,
        price: Price,
        #[serde(default)]
        items: Vec<Price>,
    }

    fn field_of(json: &str) -> (StatusCode, String) {
        let e = parse_json::<Offer>(json.as_bytes()).unwrap_err();
        (e.status(), e.errors()[0].field.clone())
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(r#"{"sku":"a","price":{"amount_minor":1,"currency":"GBP","x":1}}"#),
            (StatusCode::UNPROCESSABLE_ENTITY, "price.x".into())
        );
        assert_eq!(
            field_of(r#"{"sku":"a","price":{"amount_minor":1},"items":[]}"#),
            (StatusCode::UNPROCESSABLE_ENTITY, "price.currency".into())
        );
        assert_eq!(
            field_of(r#"{"sku":"a","price":{"amount_minor":"1","currency":"GBP"}}"#),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "price.amount_minor".into()
            )
        );
        assert_eq!(field_of(r#"{"sku":"a","price":{"amount_minor":1,"currency":"GBP"},"items":[{"amount_minor":true}]}"#).1, "items[0].amount_minor");
        assert_eq!(field_of(r#"{"sku":"a","colour":"red"}"#).1, "colour");
        assert_eq!(
            field_of(r#"{"price":{"amount_minor":1,"currency":"GBP"}}"#).1,
            "sku"
        );
        assert_eq!(field_of(r#"{"sku":"a", price}"#).0, StatusCode::BAD_REQUEST);
        assert_eq!(
            field_of(r#"{"sku":"a","price":{"amount_minor":1,"currency":"GBP"}} trailing"#),
            (StatusCode::BAD_REQUEST, "body".into())
        );
        assert_eq!(field_of("").0, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
    }
}

//! Mercado Libre's error answers. Every refusal the fake gives has Mercado Libre's shape —
//! `{"message", "error", "status", "cause": [...]}` for the API, `{"error_description", "error",
//! "status", "cause"}` for the token endpoint — because porch decides retry, refresh or reject
//! from exactly these (the HTTP status, `error`, and the `code` and `references` of each cause).

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

/// One error answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}")]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    /// What the call record keeps: the first cause's code when there is one, else `error`.
    pub(crate) code: String,
    pub(crate) body: Value,
}

/// One entry of a validation error's `cause` list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Cause {
    pub(crate) department: &'static str,
    pub(crate) cause_id: u32,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) code: String,
    /// The fields at fault, as `item.<field>`.
    pub(crate) references: Vec<String>,
    pub(crate) message: String,
}

/// The causes the fake gives, with the `cause_id` and `code` Mercado Libre uses where public
/// sources show them (`body.required_fields` 369, `item.category_id.invalid` 126,
/// `item.title.length.invalid` 134, `item.status.not_modifiable` 340); the other ids are the
/// fake's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CauseKind {
    RequiredFields,
    TitleLength,
    CategoryInvalid,
    SiteInvalid,
    CurrencyInvalid,
    PriceInvalid,
    QuantityInvalid,
    BuyingModeInvalid,
    ListingTypeInvalid,
    ConditionInvalid,
    PicturesInvalid,
    AttributesInvalid,
    StatusInvalid,
    /// A field that may not change now: `item.<field>.not_modifiable`.
    NotModifiable,
}

impl CauseKind {
    fn cause_id(self) -> u32 {
        match self {
            CauseKind::RequiredFields => 369,
            CauseKind::CategoryInvalid => 126,
            CauseKind::TitleLength => 134,
            CauseKind::SiteInvalid => 127,
            CauseKind::CurrencyInvalid => 128,
            CauseKind::PriceInvalid => 129,
            CauseKind::QuantityInvalid => 130,
            CauseKind::BuyingModeInvalid => 131,
            CauseKind::ListingTypeInvalid => 132,
            CauseKind::ConditionInvalid => 133,
            CauseKind::PicturesInvalid => 135,
            CauseKind::AttributesInvalid => 136,
            CauseKind::StatusInvalid => 137,
            CauseKind::NotModifiable => 340,
        }
    }
}

impl Cause {
    /// A cause about `fields` (names without the `item.` prefix): `code` is derived from the
    /// kind and the first field, as Mercado Libre names them (`item.price.invalid`).
    pub(crate) fn new(kind: CauseKind, fields: &[&str], message: impl Into<String>) -> Self {
        let first = fields.first().copied().unwrap_or("body");
        let code = match kind {
            CauseKind::RequiredFields => "body.required_fields".to_owned(),
            CauseKind::TitleLength => "item.title.length.invalid".to_owned(),
            CauseKind::NotModifiable => format!("item.{first}.not_modifiable"),
            _ => format!("item.{first}.invalid"),
        };
        Self {
            department: "items",
            cause_id: kind.cause_id(),
            kind: "error",
            code,
            references: fields.iter().map(|field| format!("item.{field}")).collect(),
            message: message.into(),
        }
    }
}

impl ApiError {
    fn api(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            code: error.to_owned(),
            body: json!({
                "message": message,
                "error": error,
                "status": status.as_u16(),
                "cause": [],
            }),
        }
    }

    /// 400 `validation_error` listing what is wrong, field by field.
    pub(crate) fn validation(causes: Vec<Cause>) -> Self {
        Self::validation_with_message("Validation error", causes)
    }

    /// 400 for a PUT on an item in a state that allows no change, worded as Mercado Libre words
    /// it: `Cannot update item MLB1 [status:closed, has_bids:true]`.
    pub(crate) fn cannot_update(item_id: &str, status: &str, has_bids: bool) -> Self {
        Self::validation_with_message(
            format!("Cannot update item {item_id} [status:{status}, has_bids:{has_bids}]"),
            vec![Cause::new(
                CauseKind::NotModifiable,
                &["status"],
                "status is not modifiable.",
            )],
        )
    }

    fn validation_with_message(message: impl Into<String>, causes: Vec<Cause>) -> Self {
        let code = causes
            .first()
            .map(|cause| cause.code.clone())
            .unwrap_or_else(|| "validation_error".to_owned());
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            body: json!({
                "message": message.into(),
                "error": "validation_error",
                "status": 400,
                "cause": causes,
            }),
        }
    }

    /// 400 for fields of the wrong JSON type, in the listing validator's words:
    /// `[invalid property type: [price] expected Number but was String value: p]`.
    pub(crate) fn invalid_field_types(problems: &[String]) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "body.invalid_field_types".to_owned(),
            body: json!({
                "message": "body.invalid_field_types",
                "error": format!("[{}]", problems.join(", ")),
                "status": 400,
                "cause": [],
            }),
        }
    }

    /// 400 for a request the fake cannot read at all (not JSON, a bad query parameter).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::api(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn item_not_found(item_id: &str) -> Self {
        Self::api(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Item with id {item_id} not found"),
        )
    }

    pub(crate) fn unknown_resource(path: &str) -> Self {
        Self::api(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Resource {path} not found."),
        )
    }

    /// 403: the token's seller does not own what the call touches.
    pub(crate) fn forbidden() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "access_denied".to_owned(),
            body: json!({
                "status": 403,
                "error": "access_denied",
                "message": "access to the requested resource is forbidden",
                "code": "FORBIDDEN",
            }),
        }
    }

    /// 401 without an `Authorization: Bearer …` header.
    pub(crate) fn no_authorization() -> Self {
        Self::api(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authorization value not present",
        )
    }

    /// 401 for a token the fake never issued (or issued before a reset).
    pub(crate) fn invalid_token() -> Self {
        Self::api(
            StatusCode::UNAUTHORIZED,
            "not_found",
            "invalid access token",
        )
    }

    /// 401 for a token past its `expires_in`, or expired on purpose.
    pub(crate) fn expired_token() -> Self {
        Self::api(StatusCode::UNAUTHORIZED, "not_found", "expired_token")
    }

    /// 429, injected or from a seller's rate limit.
    pub(crate) fn too_many_requests() -> Self {
        Self::api(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too Many Requests",
        )
    }

    /// A server-side failure: the `nth` one is a 500, 502, 503 or 504, in turn.
    pub(crate) fn server_error(nth: u64) -> Self {
        match nth % 4 {
            0 => Self::api(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "Internal Server Error",
            ),
            1 => Self::api(StatusCode::BAD_GATEWAY, "bad_gateway", "Bad Gateway"),
            2 => Self::api(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_not_available",
                "Service not available",
            ),
            _ => Self::api(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway_timeout",
                "Gateway Timeout",
            ),
        }
    }

    /// A token endpoint refusal: 400 with the OAuth `error` and an `error_description`.
    pub(crate) fn oauth(error: &str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: error.to_owned(),
            body: json!({
                "error_description": description.into(),
                "error": error,
                "status": 400,
                "cause": [],
            }),
        }
    }

    /// The spent, revoked, expired or unknown code or refresh token, in Mercado Libre's words.
    pub(crate) fn invalid_grant() -> Self {
        Self::oauth(
            "invalid_grant",
            "Error validating grant. Your authorization code or refresh token may be expired or \
             it was already used",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_error_names_its_fields() {
        let error = ApiError::validation(vec![
            Cause::new(CauseKind::TitleLength, &["title"], "too long"),
            Cause::new(CauseKind::CurrencyInvalid, &["currency_id"], "wrong"),
        ]);
        assert_eq!(error.status, 400);
        assert_eq!(error.code, "item.title.length.invalid");
        assert_eq!(error.body["error"], "validation_error");
        assert_eq!(error.body["status"], 400);
        let cause = &error.body["cause"][1];
        assert_eq!(cause["code"], "item.currency_id.invalid");
        assert_eq!(cause["references"], json!(["item.currency_id"]));
        assert_eq!(cause["department"], "items");
        assert_eq!(cause["type"], "error");
    }

    #[test]
    fn a_closed_item_cannot_be_updated() {
        let error = ApiError::cannot_update("MLB1", "closed", false);
        assert_eq!(
            error.body["message"],
            "Cannot update item MLB1 [status:closed, has_bids:false]"
        );
        assert_eq!(error.body["cause"][0]["code"], "item.status.not_modifiable");
        assert_eq!(error.body["cause"][0]["cause_id"], 340);
    }

    #[test]
    fn server_errors_go_round_four_statuses() {
        let statuses: Vec<u16> = (0..5)
            .map(|n| ApiError::server_error(n).status.as_u16())
            .collect();
        assert_eq!(statuses, vec![500, 502, 503, 504, 500]);
    }

    #[test]
    fn oauth_errors_have_an_error_description() {
        let error = ApiError::invalid_grant();
        assert_eq!(error.status, 400);
        assert_eq!(error.body["error"], "invalid_grant");
        assert!(error.body.get("message").is_none());
        assert!(error.body["error_description"]
            .as_str()
            .is_some_and(|text| text.starts_with("Error validating grant")));
    }
}

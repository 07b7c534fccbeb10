//! Graph API error answers. Every refusal the fake gives has Meta's shape
//! (`{"error": {message, type, code, error_subcode?, is_transient, fbtrace_id}}`) and Meta's codes,
//! because porch decides retry-or-reject from exactly these (HTTP status, code, is_transient).

use axum::http::StatusCode;
use serde_json::{json, Value};

/// The limits of one `items_batch` call.
pub const MAX_REQUESTS_PER_BATCH: usize = 5_000;
/// 28 MB, read as decimal megabytes: the stricter reading, so a client that fits the fake fits
/// Meta too.
pub const MAX_BATCH_BYTES: usize = 28_000_000;

/// Graph's error `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphErrorType {
    OAuth,
    GraphMethod,
}

impl GraphErrorType {
    fn as_str(self) -> &'static str {
        match self {
            GraphErrorType::OAuth => "OAuthException",
            GraphErrorType::GraphMethod => "GraphMethodException",
        }
    }
}

/// One error answer, before it gets its trace id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} (#{code}) {message}")]
pub struct GraphError {
    pub status: StatusCode,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    pub error_type: GraphErrorType,
    pub transient: bool,
}

impl GraphError {
    fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            subcode: None,
            message: message.into(),
            error_type: GraphErrorType::OAuth,
            transient: false,
        }
    }

    /// A missing token, or one the catalog does not accept.
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        )
    }

    /// A catalog the fake does not know, as Graph words an object it cannot load.
    pub fn unknown_object(verb: &str, id: &str) -> Self {
        Self {
            subcode: Some(33),
            error_type: GraphErrorType::GraphMethod,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                100,
                format!(
                    "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be \
                     loaded due to missing permissions, or does not support this operation. \
                     Please read the Graph API documentation at \
                     https://developers.facebook.com/docs/graph-api"
                ),
            )
        }
    }

    /// A wrong or missing parameter (code 100, Graph's "invalid parameter").
    pub fn invalid_parameter(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 100, format!("(#100) {message}"))
    }

    /// A status check for a handle this catalog never issued.
    pub fn unknown_handle(handle: &str) -> Self {
        Self {
            error_type: GraphErrorType::GraphMethod,
            ..Self::invalid_parameter(format_args!(
                "Param handle '{handle}' is not a valid batch request handle for this catalog"
            ))
        }
    }

    /// A path whose version segment is not `v<digits>.<digits>`.
    pub fn unknown_path(path: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            2500,
            format!("Unknown path components: /{path}"),
        )
    }

    /// A body over [`MAX_BATCH_BYTES`].
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            1,
            format!(
                "Please reduce the amount of data you're asking for, then retry your request \
                 (the body exceeds {MAX_BATCH_BYTES} bytes)"
            ),
        )
    }

    /// The application-wide limit ([`crate::FaultKind::TooManyRequests`]).
    pub fn application_limit() -> Self {
        Self {
            transient: true,
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                4,
                "(#4) Application request limit reached",
            )
        }
    }

    /// The catalog's batch rate limit, reached or injected.
    pub fn catalog_throttled() -> Self {
        Self {
            transient: true,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                80014,
                "(#80014) There have been too many calls for this catalog. Wait a bit and try \
                 again.",
            )
        }
    }

    /// A server-side failure: the `nth` one is a 500 (code 1) when even, a 503 (code 2) when odd.
    pub fn server_error(nth: u64) -> Self {
        let error = if nth.is_multiple_of(2) {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                1,
                "An unknown error has occurred.",
            )
        } else {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                2,
                "An unexpected error has occurred. Please retry your request later.",
            )
        };
        Self {
            transient: true,
            ..error
        }
    }

    /// The answer body, with this answer's trace id.
    pub fn body(&self, fbtrace_id: &str) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.error_type.as_str(),
            "code": self.code,
            "is_transient": self.transient,
            "fbtrace_id": fbtrace_id,
        });
        if let (Some(subcode), Some(fields)) = (self.subcode, error.as_object_mut()) {
            fields.insert("error_subcode".into(), subcode.into());
        }
        json!({ "error": error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_graphs_shape() {
        let body = GraphError::unknown_object("post", "123").body("Atrace");
        let error = &body["error"];
        assert_eq!(error["code"], 100);
        assert_eq!(error["error_subcode"], 33);
        assert_eq!(error["type"], "GraphMethodException");
        assert_eq!(error["is_transient"], false);
        assert_eq!(error["fbtrace_id"], "Atrace");
        let plain = GraphError::invalid_token().body("B");
        assert!(plain["error"].get("error_subcode").is_none());
        assert_eq!(plain["error"]["type"], "OAuthException");
    }

    #[test]
    fn server_errors_alternate_between_500_and_503() {
        assert_eq!(GraphError::server_error(0).status, 500);
        assert_eq!(GraphError::server_error(0).code, 1);
        assert_eq!(GraphError::server_error(1).status, 503);
        assert_eq!(GraphError::server_error(1).code, 2);
        assert!(GraphError::server_error(1).transient);
    }
}

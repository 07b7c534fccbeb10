//! The one error type of the API: every failure leaves as `application/problem+json` (RFC 9457)
//! with the fields at fault listed, so a client never has to parse a plain-text rejection.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use porch_processors::store::StoreError;
use porch_schemas::{InvalidValue, Reason};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field a request got wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field in the request (`price.amount_minor`, `variants[0].sku`, a header or a
    /// query parameter name); empty when the whole request is at fault.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The problem document every error response carries.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

/// An error answer. Boxed, so the `Result`s that carry it stay small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    /// A header the status calls for (Retry-After on 503, WWW-Authenticate on 401).
    extra_header: Option<(HeaderName, HeaderValue)>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(Inner {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            extra_header: None,
        }))
    }

    fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    /// 422: the request is well-formed but these fields are not acceptable.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] if one.field.is_empty() => one.message.clone(),
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "The request has invalid fields",
            detail,
        )
        .with_errors(errors)
    }

    /// 422 about one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 400: the request cannot be read at all (malformed JSON, bad query string).
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request cannot be read",
            message.clone(),
        )
        .with_errors(vec![FieldError::new(field, message)])
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or unknown credential",
            detail,
        );
        e.0.extra_header = Some((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        e
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The credential may not do this",
            detail,
        )
    }

    /// 404. Another tenant's resources are reported exactly like absent ones.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("{} not found", what.into()),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            "this resource does not accept that method",
        )
    }

    /// 409: refused because of what already exists, naming the field the reason is about.
    pub fn conflict(reason: &Reason) -> Self {
        let field = reason.field.clone().unwrap_or_default();
        Self::new(
            StatusCode::CONFLICT,
            "conflict",
            "The request conflicts with existing data",
            reason.message.clone(),
        )
        .with_errors(vec![FieldError::new(field, reason.message.clone())])
    }

    /// 412: a conditional request (`If-Match`) whose aggregate is no longer at the version the
    /// client saw; nothing was changed.
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "version-conflict",
            "The resource changed since it was read",
            message.clone(),
        )
        .with_errors(vec![FieldError::new("If-Match", message)])
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "The request body is too large",
            format!("the body may be at most {limit} bytes"),
        )
        .with_errors(vec![FieldError::new(
            "body",
            format!("at most {limit} bytes"),
        )])
    }

    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
            format!("the body must be {expected}"),
        )
        .with_errors(vec![FieldError::new(
            "Content-Type",
            format!("expected {expected}"),
        )])
    }

    /// 503: shed before any work was done; the client may retry.
    pub fn overloaded() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "The service is busy",
            "too many requests in flight; retry shortly",
        );
        e.0.extra_header = Some((header::RETRY_AFTER, HeaderValue::from_static("1")));
        e
    }

    pub fn not_ready() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "The service is not ready",
            "the service is starting or stopping",
        );
        e.0.extra_header = Some((header::RETRY_AFTER, HeaderValue::from_static("1")));
        e
    }

    /// 503: a backend (store, log) did not answer. The cause is logged, not shown; a command
    /// may or may not have been accepted, so the client retries with the same Idempotency-Key.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "a backend is unavailable");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "A backend is unavailable",
            "porch could not reach its store or log; retry with the same Idempotency-Key",
        );
        e.0.extra_header = Some((header::RETRY_AFTER, HeaderValue::from_static("1")));
        e
    }

    /// 504: the request ran out of time; a command may or may not have been accepted, so the
    /// client retries with the same Idempotency-Key.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "The request took too long",
            "the request timed out; retry with the same Idempotency-Key",
        )
    }

    /// 500. The cause is logged here, once, and never shown to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error while serving a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request could not be completed",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:porch:problem:{}", self.0.slug),
            title: self.0.title.to_string(),
            status: self.0.status.as_u16(),
            detail: self.0.detail.clone(),
            errors: self.0.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.title,
            self.0.detail
        )
    }
}

impl std::error::Error for ApiError {}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // The database or the broker did not answer: nothing was decided, retry later.
            StoreError::Backend(_) | StoreError::Refused(_) | StoreError::Closed => {
                ApiError::unavailable(&e)
            }
            StoreError::Corrupt { .. } => ApiError::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.0.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some((name, value)) = self.0.extra_header {
            headers.insert(name, value);
        }
        response
    }
}

/// Collects field errors while a request is converted into domain types, so the client hears
/// of every mistake at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    /// The value, or `None` with the error recorded against `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, InvalidValue>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(FieldError::new(field, e.0));
                None
            }
        }
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Records an error unless `ok`.
    pub fn ensure(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.add(field, message);
        }
    }

    /// The 422 for what was collected (an internal error if nothing was, which would be a bug).
    pub fn into_error(self) -> ApiError {
        if self.0.is_empty() {
            ApiError::internal(&"a conversion failed without naming a field")
        } else {
            ApiError::validation(self.0)
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

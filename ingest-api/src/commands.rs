//! Submitting commands (idempotently, with their claims) and reading what became of them.

use crate::auth::{Caller, Writer};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::params::parse_number;
use crate::reads::read;
use crate::AppState;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use porch_processors::store::{
    tables, Claim, CommandState, CommandStatus, Submission, SubmitOutcome,
};
use porch_schemas::{
    now_micros, Command, CommandEnvelope, CommandId, CommandRecord, ProductId, Reason,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use utoipa::{IntoParams, ToSchema};

/// The longest a client may wait for a command's outcome.
pub const MAX_WAIT_MS: u64 = 30_000;
const MAX_HEADER_CHARS: usize = 255;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/commands/{id}", get(get_command))
}

/// What a command request carries besides its body: the headers that make it idempotent and
/// traceable, and the method and path that, with the body, make up its digest.
pub struct CommandMeta {
    method: String,
    path: String,
    idempotency_key: Option<String>,
    command_id: Option<CommandId>,
    correlation_id: Option<String>,
    /// The version the client saw, from `If-Match`.
    if_match: Option<IfMatch>,
    /// `?wait=ms`: how long to wait for the command's outcome before answering.
    wait_ms: u64,
}

/// The path and query a request's digest covers: all but `wait`, which changes how long the
/// answer takes, not what is asked.
fn digest_path(uri: &axum::http::Uri) -> String {
    let query: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && *pair != "wait" && !pair.starts_with("wait="))
        .collect();
    match query.as_slice() {
        [] => uri.path().to_string(),
        pairs => format!("{}?{}", uri.path(), pairs.join("&")),
    }
}

/// What an `If-Match` header asks: any version (`*`), or the version of an ETag this API gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfMatch {
    Any,
    Version(i64),
}

/// The ETag of an aggregate at `version`, as views carry it and `If-Match` takes it back.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a header value")
}

/// Reads `If-Match`: `*`, or one strong ETag this API gave (`"3"`). A weak ETag never matches
/// (RFC 9110 compares strongly): 412.
fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let Some(text) = header_text(headers, "if-match", "If-Match")? else {
        return Ok(None);
    };
    let text = text.trim();
    if text == "*" {
        return Ok(Some(IfMatch::Any));
    }
    if text.starts_with("W/") {
        return Err(ApiError::precondition_failed(
            "a weak ETag never matches: send the ETag the view gave",
        ));
    }
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .map(|v| Some(IfMatch::Version(v)))
        .ok_or_else(|| {
            ApiError::bad_request(
                "If-Match",
                "must be * or one ETag a view of this API gave, such as \"3\"",
            )
        })
}

impl<S: Send + Sync> FromRequestParts<S> for CommandMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let command_id = header_text(headers, "x-command-id", "X-Command-Id")?
            .map(|id| CommandId::parse(id).map_err(|e| ApiError::invalid("X-Command-Id", e.0)))
            .transpose()?;
        Ok(Self {
            method: parts.method.as_str().to_string(),
            path: digest_path(&parts.uri),
            idempotency_key: header_text(headers, "idempotency-key", "Idempotency-Key")?,
            command_id,
            correlation_id: header_text(headers, "x-correlation-id", "X-Correlation-Id")?,
            if_match: if_match(headers)?,
            wait_ms: wait_ms(
                Query::<WaitQuery>::try_from_uri(&parts.uri)
                    .ok()
                    .and_then(|q| q.0.wait)
                    .as_deref(),
            )?,
        })
    }
}

/// A header's value: 1 to 255 visible ASCII characters, or absent.
fn header_text(headers: &HeaderMap, name: &str, field: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .filter(|t| {
            !t.is_empty() && t.len() <= MAX_HEADER_CHARS && t.chars().all(|c| c.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("must be 1 to {MAX_HEADER_CHARS} visible ASCII characters"),
            )
        })?;
    Ok(Some(text.to_string()))
}

/// A command ready to submit, with the identities it claims.
pub struct NewCommand {
    pub command: Command,
    pub aggregate_id: String,
    pub claims: Vec<Claim>,
    /// The lane it travels on (none: its module's commands topic).
    pub lane: Option<String>,
    /// Whether `If-Match` makes it conditional on the aggregate's version (the product, or the
    /// offer, it changes).
    pub conditional: bool,
}

impl NewCommand {
    pub fn new(command: impl Into<Command>, aggregate_id: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            aggregate_id: aggregate_id.into(),
            claims: Vec::new(),
            lane: None,
            conditional: false,
        }
    }

    /// Takes `If-Match` into account: the command applies only at the version it names.
    pub fn conditional(mut self) -> Self {
        self.conditional = true;
        self
    }

    pub fn claiming(mut self, claims: Vec<Claim>) -> Self {
        self.claims = claims;
        self
    }

    /// Sends it on the hot lane (a SKU under a flash sale), or on its module's topic.
    pub fn on_hot_lane(mut self, hot: bool) -> Self {
        self.lane = hot.then(|| porch_topics::HOT_LANE.to_string());
        self
    }
}

/// The answer to every command: it was accepted (or had been, for a repeated request).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandAccepted {
    pub command_id: String,
    /// The product, offer, reservation or `<sku>@<region>` the command addresses.
    pub aggregate_id: String,
    pub product_id: String,
    /// Always `ACCEPTED`: follow `links.command` for the outcome.
    pub status: String,
    pub links: CommandLinks,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandLinks {
    pub command: String,
    pub product: String,
}

/// Submits a command: 202 with its id, the earlier id for a repeated idempotent request, 409 for
/// a conflicting claim or a reused Idempotency-Key.
pub async fn submit(
    state: &AppState,
    writer: &Writer,
    meta: &CommandMeta,
    body: &[u8],
    new: NewCommand,
) -> Result<Response, ApiError> {
    let caller = writer.caller();
    let command_id = meta.command_id.clone().unwrap_or_else(CommandId::generate);
    // A client's own command id is as good as an idempotency key.
    let idempotency_key = meta
        .idempotency_key
        .clone()
        .or_else(|| meta.command_id.as_ref().map(|id| id.to_string()));
    let expected_version = match (meta.if_match, new.conditional) {
        (None | Some(IfMatch::Any), _) => None,
        (Some(IfMatch::Version(v)), true) => Some(v),
        (Some(IfMatch::Version(_)), false) => return Err(ApiError::bad_request(
            "If-Match",
            "this command is not conditional: only changes to a product or an offer take If-Match",
        )),
    };
    let command_type = new.command.type_name();
    let product_id = new.command.product_id().clone();
    let record = CommandRecord {
        envelope: CommandEnvelope {
            command_id: command_id.clone(),
            tenant: caller.tenant().clone(),
            seller: caller.bound_seller().cloned(),
            aggregate_id: new.aggregate_id.clone(),
            issued_at: now_micros(),
            correlation_id: meta
                .correlation_id
                .clone()
                .unwrap_or_else(|| command_id.to_string()),
            lane: new.lane.clone(),
            expected_version,
        },
        command: new.command,
    };
    let submission = Submission {
        record,
        idempotency_key,
        request_hash: request_digest(&meta.method, &meta.path, body),
        claims: new.claims,
    };
    let (command_id, aggregate_id, product_id, replayed) =
        match state.sink.submit(submission).await? {
            SubmitOutcome::Accepted { command_id } => {
                state.metrics.command_accepted(command_type);
                (command_id, new.aggregate_id, product_id, false)
            }
            SubmitOutcome::Replayed { command_id } => {
                // The earlier request may have had ids porch generated: answer with those.
                let key =
                    porch_processors::store::key(&[caller.tenant().as_str(), command_id.as_str()]);
                let earlier: Option<CommandStatus> = read(state, tables::COMMAND, key).await?;
                let (aggregate_id, product_id) = match earlier {
                    Some(s) => (s.aggregate_id, s.product_id),
                    None => (new.aggregate_id, product_id),
                };
                (command_id, aggregate_id, product_id, true)
            }
            SubmitOutcome::Conflict(reason) => return Err(ApiError::conflict(&reason)),
        };
    if meta.wait_ms > 0 {
        let key = porch_processors::store::key(&[caller.tenant().as_str(), command_id.as_str()]);
        if let Some(status) = outcome(state, key, meta.wait_ms)
            .await?
            .filter(|s| s.status != CommandState::Accepted)
        {
            if let Some(conflict) = status.reasons.iter().find(|r| r.code == VERSION_CONFLICT) {
                return Err(ApiError::precondition_failed(conflict.message.clone()));
            }
            return Ok(Json(CommandView::from(status)).into_response());
        }
    }
    Ok(accepted(&command_id, &aggregate_id, &product_id, replayed))
}

/// The reason code of a conditional command whose aggregate had moved on.
pub const VERSION_CONFLICT: &str = "VERSION_CONFLICT";

/// A command's status, once it is applied or rejected or `wait_ms` is over (none if the command
/// is unknown).
async fn outcome(
    state: &AppState,
    key: String,
    wait_ms: u64,
) -> Result<Option<CommandStatus>, ApiError> {
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    loop {
        let status: Option<CommandStatus> = read(state, tables::COMMAND, key.clone()).await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        match status {
            Some(s) if s.status == CommandState::Accepted && !remaining.is_zero() => {
                let remaining_ms = u64::try_from(remaining.as_millis())
                    .unwrap_or(MAX_WAIT_MS)
                    .max(1);
                state.sink.changed(remaining_ms).await;
            }
            other => return Ok(other),
        }
    }
}

/// `?wait=ms`, at most [`MAX_WAIT_MS`].
fn wait_ms(wait: Option<&str>) -> Result<u64, ApiError> {
    Ok(parse_number::<u64>("wait", wait, 0, 0..=u64::MAX)?.min(MAX_WAIT_MS))
}

fn accepted(
    command_id: &CommandId,
    aggregate_id: &str,
    product_id: &ProductId,
    replayed: bool,
) -> Response {
    let location = format!("/v1/commands/{command_id}");
    let body = CommandAccepted {
        command_id: command_id.to_string(),
        aggregate_id: aggregate_id.to_string(),
        product_id: product_id.to_string(),
        status: "ACCEPTED".into(),
        links: CommandLinks {
            command: location.clone(),
            product: format!("/v1/products/{product_id}"),
        },
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// SHA-256 of method, path and body: the same Idempotency-Key with another request is a conflict.
pub fn request_digest(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReasonView {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl From<Reason> for ReasonView {
    fn from(r: Reason) -> Self {
        Self {
            code: r.code,
            message: r.message,
            field: r.field,
        }
    }
}

/// What became of a command.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandView {
    pub command_id: String,
    pub command_type: String,
    /// ACCEPTED, APPLIED or REJECTED.
    pub status: String,
    pub aggregate_id: String,
    pub product_id: String,
    /// Why it was rejected.
    pub reasons: Vec<ReasonView>,
    /// Types of the events it caused.
    pub events: Vec<String>,
    /// Microseconds since the epoch.
    pub accepted_at: i64,
    pub completed_at: Option<i64>,
}

impl From<CommandStatus> for CommandView {
    fn from(s: CommandStatus) -> Self {
        let status = match s.status {
            CommandState::Accepted => "ACCEPTED",
            CommandState::Applied => "APPLIED",
            CommandState::Rejected => "REJECTED",
        };
        Self {
            command_id: s.command_id.to_string(),
            command_type: s.command_type,
            status: status.into(),
            aggregate_id: s.aggregate_id,
            product_id: s.product_id.to_string(),
            reasons: s.reasons.into_iter().map(ReasonView::from).collect(),
            events: s.events,
            accepted_at: s.accepted_at,
            completed_at: s.completed_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Milliseconds to wait for the outcome while the command is ACCEPTED (at most 30000).
    #[param(value_type = Option<u64>)]
    wait: Option<String>,
}

/// A command's status; with `?wait=ms`, once it is applied or rejected or the wait is over.
#[utoipa::path(
    get,
    path = "/v1/commands/{id}",
    tag = "commands",
    params(("id" = String, Path, description = "command id"), WaitQuery),
    responses(
        (status = 200, body = CommandView),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_command(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Json<CommandView>, ApiError> {
    let wait_ms = wait_ms(query.wait.as_deref())?;
    let id = CommandId::parse(id).map_err(|_| ApiError::not_found("command"))?;
    let key = porch_processors::store::key(&[caller.tenant().as_str(), id.as_str()]);
    outcome(&state, key, wait_ms)
        .await?
        .map(|s| Json(s.into()))
        .ok_or_else(|| ApiError::not_found(format!("command '{id}'")))
}

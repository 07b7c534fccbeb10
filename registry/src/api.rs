//! The Confluent-compatible REST subset: what producers, consumers and tools of the Confluent
//! ecosystem call (register, look up, fetch by id, versions, compatibility, config), with
//! Confluent's error codes and content type. Only Avro schemas.

use crate::metrics::Metrics;
use crate::storage::{Storage, StorageError};
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use porch_schemas::{CompatibilityLevel, RegistryError, RegistryRecord, VersionRef};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The content type of every registry answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    /// Registrations and config changes decide from the current state and then append: one at
    /// a time, so two of them never decide from the same state.
    writes: tokio::sync::Mutex<()>,
    metrics: Metrics,
}

impl AppState {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                writes: tokio::sync::Mutex::new(()),
                metrics: Metrics::new(),
            }),
        }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }
}

/// The registry's routes, operations endpoints (`/healthz`, `/readyz`, `/metrics`) included.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_of_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_version_schema),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_against_level),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_against_version),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config).put(set_subject_config),
        )
        .route("/mode", get(mode))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_ready));
    Router::new()
        .merge(api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// A registry error as Confluent answers it: `{"error_code": 40401, "message": "…"}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn backend(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "schema registry storage failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            50001,
            "Error in the backend data store",
        )
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError::*;
        match e {
            InvalidSchema { reason, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                42201,
                format!("Invalid schema: {reason}"),
            ),
            Incompatible { subject, messages } => Self::new(
                StatusCode::CONFLICT,
                409,
                format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {}",
                    json!(messages)
                ),
            ),
            SubjectNotFound(s) => Self::new(
                StatusCode::NOT_FOUND,
                40401,
                format!("Subject '{s}' not found."),
            ),
            VersionNotFound { version, .. } => Self::new(
                StatusCode::NOT_FOUND,
                40402,
                format!("Version {version} not found."),
            ),
            SchemaNotFound(_) => Self::new(StatusCode::NOT_FOUND, 40403, "Schema not found"),
            e @ InvalidVersion(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42202, e.to_string())
            }
            e @ InvalidCompatibilityLevel(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42203, e.to_string())
            }
            e @ (Storage { .. } | Unavailable { .. } | Remote { .. }) => Self::backend(e),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::File(e) => Self::from(e),
            StorageError::Timeout(what) => {
                tracing::error!(what, "schema registry storage timed out");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    50002,
                    "Operation timed out",
                )
            }
            e => Self::backend(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        reply(
            self.status,
            &json!({"error_code": self.code, "message": self.message}),
        )
    }
}

type ApiResult = Result<Response, ApiError>;

fn reply<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    let body = serde_json::to_vec(body).expect("answers serialise");
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

fn ok<T: Serialize + ?Sized>(body: &T) -> ApiResult {
    Ok(reply(StatusCode::OK, body))
}

/// The body clients send with a schema. Real clients add `schemaType` and `references`;
/// `metadata`, `ruleSet` and the like are ignored.
#[derive(Deserialize)]
struct SchemaRequest {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<serde_json::Value>>,
}

/// The schema of a request body. Bodies are read as JSON whatever their content type says
/// (clients send `application/json` or `application/vnd.schemaregistry.v1+json`).
fn schema_of(body: &[u8]) -> Result<String, ApiError> {
    let req: SchemaRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            400,
            format!("The request body is not a schema request: {e}"),
        )
    })?;
    if let Some(t) = req.schema_type.as_deref().filter(|t| *t != "AVRO") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            format!(
                "Invalid schema: schema type {t} is not supported, this registry serves AVRO only"
            ),
        ));
    }
    if req.references.is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            "Invalid schema: schema references are not supported; register self-contained schemas",
        ));
    }
    match req.schema {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            "Invalid schema: empty schema",
        )),
    }
}

fn parse_id(id: &str) -> Result<u32, ApiError> {
    id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        )
    })
}

fn parse_level(body: &[u8]) -> Result<CompatibilityLevel, ApiError> {
    #[derive(Deserialize)]
    struct ConfigRequest {
        #[serde(default)]
        compatibility: Option<String>,
        #[serde(default, rename = "compatibilityLevel")]
        compatibility_level: Option<String>,
    }
    let req: ConfigRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            400,
            format!("The request body is not a config request: {e}"),
        )
    })?;
    let level = req
        .compatibility
        .or(req.compatibility_level)
        .unwrap_or_default();
    Ok(level.parse()?)
}

async fn root() -> ApiResult {
    ok(&json!({}))
}

async fn schema_types() -> ApiResult {
    ok(&["AVRO"])
}

/// `GET /schemas/ids/{id}` (`?subject=` is accepted: ids are global here).
async fn schema_by_id(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    let st = app.storage().snapshot();
    let schema = st.schema(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        )
    })?;
    ok(&json!({ "schema": schema }))
}

async fn raw_schema_by_id(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    let st = app.storage().snapshot();
    let schema = st.schema(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        )
    })?;
    Ok(raw(schema))
}

/// A schema as its own JSON document.
fn raw(schema: &str) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        schema.to_string(),
    )
        .into_response()
}

async fn versions_of_id(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    let st = app.storage().snapshot();
    if st.schema(id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        ));
    }
    let found: Vec<_> = st
        .subject_versions_of(id)
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    ok(&found)
}

async fn subjects_of_id(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    let st = app.storage().snapshot();
    if st.schema(id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        ));
    }
    let mut subjects: Vec<_> = st
        .subject_versions_of(id)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    subjects.dedup();
    ok(&subjects)
}

/// `GET /subjects` (`?subjectPrefix=` filters).
async fn subjects(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let st = app.storage().snapshot();
    let prefix = q.get("subjectPrefix").map(String::as_str).unwrap_or("");
    let subjects: Vec<_> = st.subjects().filter(|s| s.starts_with(prefix)).collect();
    ok(&subjects)
}

async fn versions(State(app): State<AppState>, Path(subject): Path<String>) -> ApiResult {
    let st = app.storage().snapshot();
    let versions: Vec<_> = st.versions(&subject)?.iter().map(|v| v.version).collect();
    ok(&versions)
}

/// `{subject, version, id, schema}` of one version.
fn describe_version(
    app: &AppState,
    subject: &str,
    version: &str,
) -> Result<serde_json::Value, ApiError> {
    let version: VersionRef = version.parse()?;
    let st = app.storage().snapshot();
    let v = st.version(subject, version)?;
    Ok(json!({
        "subject": subject,
        "version": v.version,
        "id": v.id,
        "schema": st.schema(v.id).unwrap_or_default(),
    }))
}

async fn version(
    State(app): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult {
    ok(&describe_version(&app, &subject, &version)?)
}

async fn raw_version_schema(
    State(app): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> ApiResult {
    let v = describe_version(&app, &subject, &version)?;
    Ok(raw(v["schema"].as_str().unwrap_or_default()))
}

/// `POST /subjects/{subject}`: which version of the subject is this schema?
async fn lookup(
    State(app): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let schema = schema_of(&body)?;
    let st = app.storage().snapshot();
    let v = st.lookup(&subject, &schema)?;
    ok(&json!({
        "subject": subject,
        "version": v.version,
        "id": v.id,
        "schema": st.schema(v.id).unwrap_or_default(),
    }))
}

/// `POST /subjects/{subject}/versions`: register, or find, a schema; answers its id.
async fn register(
    State(app): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let outcome = |o: &str| {
        app.inner
            .metrics
            .registrations
            .with_label_values(&[o])
            .inc()
    };
    let schema = schema_of(&body).inspect_err(|_| outcome("invalid"))?;
    let _one_writer = app.inner.writes.lock().await;
    let planned = app
        .storage()
        .snapshot()
        .plan_registration(&subject, &schema);
    let (version, record) = planned.inspect_err(|e| {
        outcome(match e {
            RegistryError::Incompatible { .. } => "incompatible",
            _ => "invalid",
        })
    })?;
    match record {
        None => outcome("existing"),
        Some(record) => {
            app.storage()
                .append(record)
                .await
                .inspect_err(|_| outcome("failed"))?;
            outcome("new");
            tracing::info!(
                subject,
                version = version.version,
                id = version.id,
                "registered a schema"
            );
        }
    }
    ok(&json!({ "id": version.id }))
}

fn compatibility_reply(messages: Vec<String>) -> ApiResult {
    ok(&json!({ "is_compatible": messages.is_empty(), "messages": messages }))
}

/// `POST /compatibility/subjects/{subject}/versions/{version}`: would this schema pass the
/// subject's level against that one version?
async fn check_against_version(
    State(app): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let version: VersionRef = version.parse()?;
    let schema = schema_of(&body)?;
    let st = app.storage().snapshot();
    match st.compatibility_problems(&subject, &schema, Some(version)) {
        // Nothing to be incompatible with: registering it would be accepted.
        Err(RegistryError::SubjectNotFound(_)) if version == VersionRef::Latest => {
            compatibility_reply(vec![])
        }
        result => compatibility_reply(result?),
    }
}

/// `POST /compatibility/subjects/{subject}/versions`: against every version the level names.
async fn check_against_level(
    State(app): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let schema = schema_of(&body)?;
    let st = app.storage().snapshot();
    match st.compatibility_problems(&subject, &schema, None) {
        Err(RegistryError::SubjectNotFound(_)) => compatibility_reply(vec![]),
        result => compatibility_reply(result?),
    }
}

async fn global_config(State(app): State<AppState>) -> ApiResult {
    let level = app.storage().snapshot().global_compatibility();
    ok(&json!({ "compatibilityLevel": level }))
}

/// `GET /config/{subject}`: the subject's own level; the global one only with
/// `?defaultToGlobal=true`, as Confluent answers.
async fn subject_config(
    State(app): State<AppState>,
    Path(subject): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let st = app.storage().snapshot();
    let level = match st.subject_compatibility(&subject) {
        Some(level) => level,
        None if q.get("defaultToGlobal").is_some_and(|v| v == "true") => st.global_compatibility(),
        None => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                40408,
                format!("Subject '{subject}' does not have subject-level compatibility configured"),
            ))
        }
    };
    ok(&json!({ "compatibilityLevel": level }))
}

async fn set_config(app: &AppState, subject: Option<String>, body: &[u8]) -> ApiResult {
    let level = parse_level(body)?;
    let _one_writer = app.inner.writes.lock().await;
    app.storage()
        .append(RegistryRecord::Config {
            subject: subject.clone(),
            level: Some(level),
        })
        .await?;
    tracing::info!(subject, %level, "set a compatibility level");
    ok(&json!({ "compatibility": level }))
}

async fn set_global_config(State(app): State<AppState>, body: Bytes) -> ApiResult {
    set_config(&app, None, &body).await
}

async fn set_subject_config(
    State(app): State<AppState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    set_config(&app, Some(subject), &body).await
}

/// porch's registry always accepts writes.
async fn mode() -> ApiResult {
    ok(&json!({ "mode": "READWRITE" }))
}

async fn readyz(State(app): State<AppState>) -> Response {
    if app.storage().is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("reading {}", app.storage().describe()),
        )
            .into_response()
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let storage = app.storage();
    let text = app
        .inner
        .metrics
        .render(&storage.snapshot(), storage.is_ready());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        "HTTP 405 Method Not Allowed",
    )
}

/// Registry answers wait until the storage has been read to its end: before that, ids could
/// be missing or issued twice.
async fn require_ready(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if app.storage().is_ready() {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            50003,
            "The registry is still reading its storage; retry shortly",
        )
        .into_response()
    }
}

/// Counts and times every request by its route (not its path: subjects are unbounded).
async fn observe(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let m = &app.inner.metrics;
    m.latency
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .inc();
    response
}

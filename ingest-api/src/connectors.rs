//! Operating connectors as Kafka Connect's REST API does (DESIGN §8): each connector's state,
//! lag, last error and counts by outcome, summed over its running instances; pause, resume,
//! restart and redrive of its dead-letter topic. Operator key only: a connector serves every
//! tenant. Instances write their status rows and read the control row, so this works the same
//! whether they run inside `porch up` or as processes of their own.

use crate::auth::Operator;
use crate::channels::reauth_of;
use crate::error::{ApiError, Problem};
use crate::extract::ApiPath;
use crate::reads::{blocking, read, scan_all};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use porch_connectors::accounts::{ChannelAccounts, ACCOUNTS_TABLE};
use porch_connectors::mercadolibre::{reauth_marks_prefix, ReauthMark};
use porch_connectors::sink::status::{
    combine, status_prefix, ControlRow, StatusRow, StatusSnapshot, CONTROL_TABLE, STATUS_TABLE,
};
use porch_processors::store::RowWrite;
use porch_schemas::{now_micros, TenantId};
use serde::Serialize;
use std::sync::OnceLock;
use utoipa::ToSchema;

/// The connectors porch runs.
pub const CONNECTORS: [&str; 3] = [
    porch_connectors::meta::NAME,
    porch_connectors::mercadolibre::NAME,
    "search",
];

/// The most sellers in NEEDS_REAUTH a connector's status lists.
const MAX_REAUTH_SHOWN: usize = 1_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/connectors", get(list_connectors))
        .route("/v1/connectors/{name}", get(get_connector))
        .route("/v1/connectors/{name}/{action}", post(act))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceView {
    pub instance: String,
    /// RUNNING, PAUSED or FAILED.
    pub state: String,
    pub lag: u64,
    /// When it last wrote its status, micros since the epoch.
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorView {
    pub name: String,
    /// RUNNING, PAUSED, FAILED or UNASSIGNED (no instance running).
    pub state: String,
    /// Records of its input not done yet.
    pub lag: u64,
    pub in_flight: u64,
    pub last_error: Option<String>,
    /// Requests by what became of them: live, rejected, unpublished, needs_reauth,
    /// dead_lettered, superseded.
    #[schema(value_type = Object)]
    pub outcomes: std::collections::BTreeMap<String, u64>,
    /// Calls retried, by class: rate_limited, throttled, server_error, timeout, network, auth.
    #[schema(value_type = Object)]
    pub retries: std::collections::BTreeMap<String, u64>,
    /// Calls made, by kind.
    #[schema(value_type = Object)]
    pub calls: std::collections::BTreeMap<String, u64>,
    pub paused: bool,
    pub instances: Vec<InstanceView>,
    /// Accounts the channel refused porch's authorisation for (NEEDS_REAUTH): their listings
    /// wait until the tenant connects them again.
    pub needs_reauth: Vec<ReauthView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReauthView {
    pub tenant: String,
    /// The channel's account (Mercado Libre: the seller's user id).
    pub account: String,
    pub reason: String,
    /// Since when, milliseconds since the Unix epoch.
    pub since_ms: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorList {
    pub connectors: Vec<ConnectorView>,
}

fn known(name: &str) -> Result<&'static str, ApiError> {
    CONNECTORS
        .iter()
        .find(|c| **c == name)
        .copied()
        .ok_or_else(|| ApiError::not_found(format!("connector '{name}'")))
}

async fn control_of(state: &AppState, name: &'static str) -> Result<ControlRow, ApiError> {
    Ok(read::<ControlRow>(state, CONTROL_TABLE, name.to_string())
        .await?
        .unwrap_or_default())
}

async fn view_of(state: &AppState, name: &'static str) -> Result<ConnectorView, ApiError> {
    let control = control_of(state, name).await?;
    let rows: Vec<StatusRow> = blocking(state, move |store| {
        Ok(scan_all::<StatusRow>(
            store,
            STATUS_TABLE,
            &status_prefix(name),
            1_000,
        )?)
    })
    .await?
    .into_iter()
    .map(|(_, r)| r)
    .collect();
    let StatusSnapshot {
        state: s,
        lag,
        in_flight,
        last_error,
        outcomes,
        retries,
        calls,
    } = combine(&rows, now_micros());
    Ok(ConnectorView {
        name: name.to_string(),
        state: state_text(s),
        lag,
        in_flight,
        last_error,
        outcomes,
        retries,
        calls,
        paused: control.paused,
        instances: rows
            .iter()
            .map(|r| InstanceView {
                instance: r.instance.clone(),
                state: state_text(r.state),
                lag: r.lag,
                updated_at: r.updated_at,
            })
            .collect(),
        needs_reauth: if name == porch_connectors::mercadolibre::NAME {
            mercadolibre_reauth(state).await?
        } else {
            vec![]
        },
    })
}

/// Mercado Libre sellers marked NEEDS_REAUTH whose tenant has not set a new grant since.
async fn mercadolibre_reauth(state: &AppState) -> Result<Vec<ReauthView>, ApiError> {
    let prefix = reauth_marks_prefix();
    let marks: Vec<(String, ReauthMark)> = blocking(state, move |store| {
        Ok(scan_all::<ReauthMark>(
            store,
            STATUS_TABLE,
            &prefix,
            MAX_REAUTH_SHOWN,
        )?)
    })
    .await?;
    let mut shown = Vec::new();
    for (key, mark) in marks {
        let Some((tenant, user)) = key
            .strip_prefix(&reauth_marks_prefix())
            .and_then(|k| k.split_once('/'))
        else {
            continue;
        };
        let Ok(t) = TenantId::parse(tenant) else {
            continue;
        };
        let accounts: ChannelAccounts = read(state, ACCOUNTS_TABLE, tenant.to_string())
            .await?
            .unwrap_or_default();
        let grant = accounts
            .accounts
            .iter()
            .filter_map(|a| a.mercadolibre.as_ref())
            .find(|g| g.user_id == user);
        // A seller connected again since the mark is not waiting any more.
        let Some(grant) = grant else { continue };
        if reauth_of(state, &t, grant).await?.is_none() {
            continue;
        }
        shown.push(ReauthView {
            tenant: tenant.to_string(),
            account: user.to_string(),
            reason: mark.why,
            since_ms: mark.since_ms,
        });
    }
    Ok(shown)
}

fn state_text(s: porch_connectors::sink::ConnectorState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Every connector with its status (operator key).
#[utoipa::path(
    get,
    path = "/v1/connectors",
    tag = "connectors",
    responses((status = 200, body = ConnectorList), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn list_connectors(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<ConnectorList>, ApiError> {
    let mut connectors = Vec::new();
    for name in CONNECTORS {
        connectors.push(view_of(&state, name).await?);
    }
    Ok(Json(ConnectorList { connectors }))
}

/// One connector's status (operator key).
#[utoipa::path(
    get,
    path = "/v1/connectors/{name}",
    tag = "connectors",
    params(("name" = String, Path, description = "meta or search")),
    responses((status = 200, body = ConnectorView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn get_connector(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ConnectorView>, ApiError> {
    Ok(Json(view_of(&state, known(&name)?).await?))
}

/// Pauses (no calls at all until resumed), resumes, restarts (in-flight work dropped, the input
/// read again from the committed positions, a FAILED connector running again) or redrives (its
/// dead-letter topic read once more, up to its end now) a connector (operator key).
#[utoipa::path(
    post,
    path = "/v1/connectors/{name}/{action}",
    tag = "connectors",
    params(("name" = String, Path, description = "meta or search"), ("action" = String, Path, description = "pause, resume, restart or redrive")),
    responses((status = 202, body = ConnectorView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub async fn act(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath((name, action)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ConnectorView>), ApiError> {
    let name = known(&name)?;
    let change: fn(&mut ControlRow) = match action.as_str() {
        "pause" => |c| c.paused = true,
        "resume" => |c| c.paused = false,
        "restart" => |c| c.restarts += 1,
        "redrive" => |c| c.redrives += 1,
        _ => return Err(ApiError::not_found(format!("action '{action}'"))),
    };
    {
        static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
        let _held = LOCK.get_or_init(Default::default).lock().await;
        let mut control = control_of(&state, name).await?;
        change(&mut control);
        let row = RowWrite {
            table: CONTROL_TABLE.into(),
            key: name.to_string(),
            value: Some(serde_json::to_vec(&control).map_err(|e| ApiError::internal(&e))?),
        };
        state.sink.write(vec![row], vec![]).await?;
    }
    tracing::info!(connector = name, action, "connector control changed");
    Ok((StatusCode::ACCEPTED, Json(view_of(&state, name).await?)))
}

//! How an API call ends: an answer (Mercado Libre's error body when it fails) or, for a timeout,
//! no answer at all — and in every case one [`CallRecord`].

use crate::api_error::ApiError;
use crate::config::FaultKind;
use crate::dates::now_ms;
use crate::records::{CallKind, CallRecord};
use crate::world::SharedWorld;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    status: StatusCode,
    body: Value,
    /// A PUT answered `{}` on purpose.
    empty: bool,
}

impl Reply {
    pub(crate) fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            empty: false,
        }
    }

    pub(crate) fn created(body: Value) -> Self {
        Self {
            status: StatusCode::CREATED,
            body,
            empty: false,
        }
    }

    /// 200 `{}`: Mercado Libre's answer to a PUT it applied but did not describe.
    pub(crate) fn empty() -> Self {
        Self {
            status: StatusCode::OK,
            body: json!({}),
            empty: true,
        }
    }
}

/// An API call on its way to an answer. The world fills in whom it was for and which item it
/// touched as it learns them.
#[derive(Debug)]
pub(crate) struct Call {
    kind: CallKind,
    method: &'static str,
    path: String,
    at_ms: u64,
    fault: Option<FaultKind>,
    pub(crate) user_id: Option<u64>,
    pub(crate) item_id: Option<String>,
    pub(crate) grant_type: Option<String>,
}

impl Call {
    pub(crate) fn arrived(kind: CallKind, method: &'static str, path: &str) -> Self {
        Self {
            kind,
            method,
            path: path.to_owned(),
            at_ms: now_ms(),
            fault: None,
            user_id: None,
            item_id: None,
            grant_type: None,
        }
    }

    /// Answers with `result`.
    pub(crate) fn answer(self, world: &SharedWorld, result: Result<Reply, ApiError>) -> Response {
        let (status, body, error, empty) = match result {
            Ok(reply) => (reply.status, reply.body, None, reply.empty),
            Err(error) => (error.status, error.body, Some(error.code), false),
        };
        let retry_after = world.with(|world| {
            world.record(self.record(Some(status), error, empty));
            world.config().retry_after_secs
        });
        tracing::debug!(kind = ?self.kind, path = %self.path, %status, "api call answered");
        let mut response = (status, Json(body)).into_response();
        if let (StatusCode::TOO_MANY_REQUESTS, Some(seconds)) = (status, retry_after) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// Answers with the injected `fault`; a timeout answers nothing ([`Call::hang_up`]).
    pub(crate) async fn answer_fault(mut self, world: &SharedWorld, fault: FaultKind) -> Response {
        self.fault = Some(fault);
        match fault {
            FaultKind::TooManyRequests => self.answer(world, Err(ApiError::too_many_requests())),
            FaultKind::ServerError => {
                let error = world.with(|world| world.next_server_error());
                self.answer(world, Err(error))
            }
            FaultKind::Timeout => self.hang_up(world).await,
        }
    }

    /// A timeout: recorded at once, then the request is held `hang_ms` and the connection
    /// closed without an answer. A client with a shorter timeout gives up first.
    pub(crate) async fn hang_up(mut self, world: &SharedWorld) -> Response {
        self.fault = Some(FaultKind::Timeout);
        let hang = world.with(|world| {
            world.record(self.record(None, None, false));
            Duration::from_millis(world.config().hang_ms)
        });
        tracing::debug!(kind = ?self.kind, path = %self.path, "api call left unanswered");
        tokio::time::sleep(hang).await;
        dropped_connection()
    }

    fn record(&self, status: Option<StatusCode>, error: Option<String>, empty: bool) -> CallRecord {
        CallRecord {
            kind: self.kind,
            method: self.method.to_owned(),
            path: self.path.clone(),
            user_id: self.user_id,
            status: status.map(|status| status.as_u16()),
            fault: self.fault,
            empty_answer: empty,
            error,
            item_id: self.item_id.clone(),
            grant_type: self.grant_type.clone(),
            at_ms: self.at_ms,
        }
    }
}

/// A response whose body fails before its first byte: the server then closes the connection
/// without writing even the status line, which the client sees as a broken connection.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(std::future::ready(Err::<Bytes, std::io::Error>(
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the fake mercado libre drops this answer",
        ),
    )));
    Response::new(Body::from_stream(failing))
}

//! How a Graph call ends: an answer (with the usage header, which Meta puts on every answer,
//! and a Graph error body when it fails) or, for a timeout, no answer at all — and in every case
//! one [`CallRecord`].

use crate::config::FaultKind;
use crate::graph_error::GraphError;
use crate::records::{now_ms, CallKind, CallRecord};
use crate::usage::{Usage, USAGE_HEADER};
use crate::world::SharedWorld;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::time::Duration;

/// A Graph call on its way to an answer.
#[derive(Debug)]
pub(crate) struct Call {
    kind: CallKind,
    catalog: String,
    at_ms: u64,
    fault: Option<FaultKind>,
    handle: Option<String>,
}

impl Call {
    pub(crate) fn arrived(kind: CallKind, catalog: &str) -> Self {
        Self {
            kind,
            catalog: catalog.to_owned(),
            at_ms: now_ms(),
            fault: None,
            handle: None,
        }
    }

    pub(crate) fn catalog(&self) -> &str {
        &self.catalog
    }

    /// The batch handle this call issued or asked about.
    pub(crate) fn about(mut self, handle: Option<String>) -> Self {
        self.handle = handle;
        self
    }

    /// Answers with `result`, reporting the catalog's current usage.
    pub(crate) fn answer(self, world: &SharedWorld, result: Result<Value, GraphError>) -> Response {
        self.answer_with_usage(world, result, None)
    }

    /// Answers with the injected `fault`; a timeout answers nothing ([`Call::hang_up`]).
    pub(crate) async fn answer_fault(mut self, world: &SharedWorld, fault: FaultKind) -> Response {
        self.fault = Some(fault);
        match fault {
            FaultKind::TooManyRequests => {
                let retry_after = world.with(|world| world.config().retry_after_secs);
                let mut response =
                    self.answer_with_usage(world, Err(GraphError::application_limit()), None);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                response
            }
            FaultKind::CatalogThrottled => {
                let usage = world.with(|world| world.throttled_usage());
                self.answer_with_usage(world, Err(GraphError::catalog_throttled()), Some(usage))
            }
            FaultKind::ServerError => {
                let error = world.with(|world| world.next_server_error());
                self.answer_with_usage(world, Err(error), None)
            }
            FaultKind::Timeout => self.hang_up(world).await,
        }
    }

    fn answer_with_usage(
        self,
        world: &SharedWorld,
        result: Result<Value, GraphError>,
        usage: Option<Usage>,
    ) -> Response {
        let (status, body, error_code) = match result {
            Ok(body) => (StatusCode::OK, Some(body), None),
            Err(error) => (error.status, None, Some(error)),
        };
        let (body, usage, business_id) = world.with(|world| {
            let body = match (&error_code, body) {
                (Some(error), _) => error.body(&world.fbtrace_id()),
                (None, body) => body.unwrap_or(Value::Null),
            };
            let usage = usage.unwrap_or_else(|| world.usage(&self.catalog));
            let business_id = world.config().business_id.clone();
            world.record(self.record(Some(status), error_code.as_ref().map(|e| e.code)));
            (body, usage, business_id)
        });
        tracing::debug!(kind = ?self.kind, catalog = %self.catalog, %status, "graph call answered");
        let mut response = (status, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&usage.header_value(&business_id)) {
            response.headers_mut().insert(USAGE_HEADER, value);
        }
        response
    }

    /// A timeout: recorded at once, then the request is held `hang_ms` and the connection
    /// closed without an answer. A client with a shorter timeout gives up first.
    pub(crate) async fn hang_up(mut self, world: &SharedWorld) -> Response {
        self.fault = Some(FaultKind::Timeout);
        let hang = world.with(|world| {
            world.record(self.record(None, None));
            Duration::from_millis(world.config().hang_ms)
        });
        tracing::debug!(kind = ?self.kind, catalog = %self.catalog, "graph call left unanswered");
        tokio::time::sleep(hang).await;
        dropped_connection()
    }

    fn record(&self, status: Option<StatusCode>, error_code: Option<i64>) -> CallRecord {
        CallRecord {
            kind: self.kind,
            catalog: self.catalog.clone(),
            status: status.map(|status| status.as_u16()),
            fault: self.fault,
            error_code,
            handle: self.handle.clone(),
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
            "the fake meta drops this answer",
        ),
    )));
    Response::new(Body::from_stream(failing))
}

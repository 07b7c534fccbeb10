//! The order every API call goes through, as at Mercado Libre's front door: latency, then an
//! injected fault (if one is drawn), then the access token, the seller's rate limit, the call's
//! parameters, and only then the work itself.

use crate::answer::{Call, Reply};
use crate::api_error::ApiError;
use crate::world::{SharedWorld, World};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use std::time::Duration;

/// Serves one call: waits `latency_ms`, answers a drawn fault, or does `work` under the lock.
pub(crate) async fn serve(
    world: &SharedWorld,
    mut call: Call,
    work: impl FnOnce(&mut World, &mut Call) -> Result<Reply, ApiError>,
) -> Response {
    wait_latency(world).await;
    match world.with(World::draw_fault) {
        None => {
            let result = world.with(|world| work(world, &mut call));
            call.answer(world, result)
        }
        Some(fault) => call.answer_fault(world, fault).await,
    }
}

pub(crate) async fn wait_latency(world: &SharedWorld) {
    let latency = world.with(|world| world.config().latency_ms);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
}

/// The token from `Authorization: Bearer …`, the only place Mercado Libre takes it from now.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_token_comes_from_a_bearer_header_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer APP_USR-1"),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("APP_USR-1"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  APP_USR-2 "),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("APP_USR-2"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcg=="),
        );
        assert_eq!(bearer(&headers), None);
    }
}

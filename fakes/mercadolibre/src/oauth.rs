//! `POST /oauth/token`: the connect flow (`grant_type=authorization_code`) and the refresh
//! (`grant_type=refresh_token`), with parameters in a form body as Mercado Libre documents
//! them (a JSON body, or the query, are read too: clients send both).

use crate::answer::Call;
use crate::front_door::serve;
use crate::records::CallKind;
use crate::world::SharedWorld;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;

type Params = HashMap<String, String>;

pub(crate) fn routes() -> Router<SharedWorld> {
    Router::new().route("/oauth/token", post(token))
}

async fn token(
    State(world): State<SharedWorld>,
    Query(query): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call::arrived(CallKind::Token, "POST", "/oauth/token");
    let mut params = query;
    params.extend(body_params(&headers, &body));
    serve(&world, call, |world, call| world.token(call, &params)).await
}

/// The body's parameters: a JSON object when the content type says JSON, else a form.
fn body_params(headers: &HeaderMap, body: &[u8]) -> Params {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if !is_json {
        return form_decode(body);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => fields
            .into_iter()
            .filter_map(|(key, value)| match value {
                Value::String(text) => Some((key, text)),
                Value::Number(number) => Some((key, number.to_string())),
                _ => None,
            })
            .collect(),
        _ => Params::new(),
    }
}

/// `application/x-www-form-urlencoded`: `a=1&b=x%2By` → `{a: "1", b: "x+y"}`.
fn form_decode(body: &[u8]) -> Params {
    body.split(|byte| *byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|byte| *byte == b'=') {
            Some(at) => (percent_decode(&pair[..at]), percent_decode(&pair[at + 1..])),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

fn percent_decode(text: &[u8]) -> String {
    let mut decoded = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some((&first, after)) = rest.split_first() {
        match (first, after) {
            (b'+', _) => {
                decoded.push(b' ');
                rest = after;
            }
            (b'%', [high, low, tail @ ..]) => match (hex_value(*high), hex_value(*low)) {
                (Some(high), Some(low)) => {
                    decoded.push(high << 4 | low);
                    rest = tail;
                }
                _ => {
                    decoded.push(b'%');
                    rest = after;
                }
            },
            (byte, _) => {
                decoded.push(byte);
                rest = after;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_form_decodes_pluses_and_percents() {
        let params =
            form_decode(b"grant_type=refresh_token&client_secret=a%2Bb+c&empty=&flag&bad=%zz%4");
        assert_eq!(params["grant_type"], "refresh_token");
        assert_eq!(params["client_secret"], "a+b c");
        assert_eq!(params["empty"], "");
        assert_eq!(params["flag"], "");
        assert_eq!(params["bad"], "%zz%4");
        assert_eq!(percent_decode(b"%C3%A9"), "é");
    }

    #[test]
    fn a_json_body_is_read_when_the_content_type_says_so() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let params = body_params(
            &headers,
            br#"{"grant_type": "authorization_code", "client_id": 123}"#,
        );
        assert_eq!(params["grant_type"], "authorization_code");
        assert_eq!(params["client_id"], "123");
        assert!(body_params(&HeaderMap::new(), b"client_id=1").contains_key("client_id"));
    }
}

//! Mercado Libre's answers, classified: `{message, error, status, cause: [...]}` for the API.
//! A 429, a 5xx, a timeout or a broken connection is worth another try (with backoff and
//! jitter: Mercado Libre publishes no limit and sends no Retry-After, though one is honoured if
//! sent); a 400 with causes is the channel refusing the item, field by field (REJECTED, never
//! retried); a PUT on a closed item says the item is gone for good; a 404 says there is no such
//! item; a 403 or another refusal of the call itself is nothing the item did (the request goes
//! to the dead letters, to be redriven once the account is fixed).

use super::request_builder::{INVALID, NOT_MODIFIABLE};
use crate::sink::{CallError, RetryClass};
use porch_schemas::Reason;
use serde_json::Value;
use std::time::Duration;

/// How one try of a call ended, when it did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Failure {
    /// Worth another try.
    Retry(CallError),
    /// The channel refused the request: REJECTED with these issues.
    Refused(Vec<Reason>),
    /// A change to a closed item: nothing about it may change again.
    Closed,
    /// No such item.
    NotFound,
    /// The seller's account cannot be used until the seller connects it again.
    NeedsReauth(String),
    /// The call itself was refused; trying it again cannot help.
    Permanent(String),
}

impl Failure {
    pub(super) fn message(&self) -> String {
        match self {
            Failure::Retry(e) => e.to_string(),
            Failure::Refused(issues) => issues
                .iter()
                .map(|i| i.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            Failure::Closed => "the item is closed".into(),
            Failure::NotFound => "no such item".into(),
            Failure::NeedsReauth(why) | Failure::Permanent(why) => why.clone(),
        }
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Permanent(why) => Failure::Permanent(why),
            retry => Failure::Retry(retry),
        }
    }
}

/// An answer as read off the wire.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub text: String,
}

impl Answer {
    /// The JSON of a 2xx (an empty body is `{}`), or the failure the answer says.
    pub(super) fn json(self, token: &str) -> Result<Value, Failure> {
        if (200..300).contains(&self.status) {
            if self.text.trim().is_empty() {
                return Ok(Value::Object(Default::default()));
            }
            return serde_json::from_str(&self.text).map_err(|_| {
                Failure::Retry(CallError::retry(
                    RetryClass::ServerError,
                    format!(
                        "Mercado Libre answered HTTP {} with a body that is not JSON",
                        self.status
                    ),
                ))
            });
        }
        Err(classify(self.status, self.retry_after, &self.text, token))
    }
}

/// What a refusal (any status but 2xx) means.
pub(super) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    text: &str,
    token: &str,
) -> Failure {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let error = body["error"].as_str().unwrap_or("");
    let message = body["message"].as_str().unwrap_or("");
    // Mercado Libre does not quote tokens back; should it ever, they stop here.
    let summary = redact(
        &format!("Mercado Libre answered HTTP {status} ({error}): {message}"),
        token,
    );
    let retry = |class| {
        Failure::Retry(CallError::Retry {
            class,
            after: retry_after,
            message: summary.clone(),
        })
    };
    match status {
        429 => retry(RetryClass::RateLimited),
        500..=599 => retry(RetryClass::ServerError),
        401 => retry(RetryClass::Auth),
        404 => Failure::NotFound,
        400 | 422 => {
            let causes = causes_of(&body);
            let closed = causes
                .iter()
                .any(|c| c["code"] == "item.status.not_modifiable")
                && message.contains("status:closed");
            if closed {
                return Failure::Closed;
            }
            if !causes.is_empty() {
                return Failure::Refused(causes.iter().copied().flat_map(issues_of).collect());
            }
            if message == "body.invalid_field_types" {
                return Failure::Refused(type_issues(error));
            }
            Failure::Permanent(summary)
        }
        _ => Failure::Permanent(summary),
    }
}

/// The causes that are errors (Mercado Libre sends warnings alongside them, which refuse
/// nothing); all of them when none is marked an error.
fn causes_of(body: &Value) -> Vec<&Value> {
    let all: Vec<&Value> = body["cause"].as_array().into_iter().flatten().collect();
    let errors: Vec<&Value> = all
        .iter()
        .copied()
        .filter(|c| c["type"].as_str().is_none_or(|t| t == "error"))
        .collect();
    if errors.is_empty() {
        all
    } else {
        errors
    }
}

/// One issue per field a cause names (`references: ["item.title"]`), or one naming the field
/// its code does (`item.title.not_modifiable`).
fn issues_of(cause: &Value) -> Vec<Reason> {
    let code = cause["code"].as_str().unwrap_or("invalid");
    let message = format!(
        "{code}: {}",
        cause["message"]
            .as_str()
            .unwrap_or("refused by Mercado Libre")
    );
    let porch_code = if code.ends_with(".not_modifiable") {
        NOT_MODIFIABLE
    } else {
        INVALID
    };
    let mut fields: Vec<String> = cause["references"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .map(|r| r.strip_prefix("item.").unwrap_or(r).to_string())
        .collect();
    if fields.is_empty() {
        fields.extend(
            code.strip_prefix("item.")
                .and_then(|rest| rest.split('.').next())
                .map(String::from),
        );
    }
    if fields.is_empty() {
        return vec![Reason::new(porch_code, message)];
    }
    fields
        .iter()
        .map(|f| Reason::on_field(porch_code, f, message.clone()))
        .collect()
}

/// `body.invalid_field_types`: `[invalid property type: [price] expected Number but was …]`,
/// one issue per field in brackets.
fn type_issues(error: &str) -> Vec<Reason> {
    let issues: Vec<Reason> = error
        .split("invalid property type: [")
        .skip(1)
        .filter_map(|rest| rest.split(']').next())
        .map(|field| {
            Reason::on_field(
                INVALID,
                field,
                format!("body.invalid_field_types: {field} has the wrong JSON type"),
            )
        })
        .collect();
    if issues.is_empty() {
        vec![Reason::new(
            INVALID,
            format!("body.invalid_field_types: {error}"),
        )]
    } else {
        issues
    }
}

/// `text` with every occurrence of the credential masked.
pub(super) fn redact(text: &str, secret: &str) -> String {
    if secret.len() < 8 {
        return text.to_string();
    }
    text.replace(secret, "***")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(status: u16, body: Value) -> Failure {
        classify(status, None, &body.to_string(), "APP_USR-token-value")
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        let class = |f: Failure| match f {
            Failure::Retry(CallError::Retry { class, .. }) => Some(class),
            _ => None,
        };
        let busy = json!({"message": "Too Many Requests", "error": "too_many_requests", "status": 429, "cause": []});
        assert_eq!(class(refusal(429, busy)), Some(RetryClass::RateLimited));
        for status in [500, 502, 503, 504] {
            assert_eq!(
                class(refusal(status, json!({"error": "x"}))),
                Some(RetryClass::ServerError)
            );
        }
        let after = classify(429, Some(Duration::from_secs(3)), "{}", "");
        assert!(matches!(
            after,
            Failure::Retry(CallError::Retry { after: Some(a), .. }) if a == Duration::from_secs(3)
        ));
    }

    #[test]
    fn validation_causes_name_their_fields() {
        let body = json!({
            "message": "Validation error", "error": "validation_error", "status": 400,
            "cause": [
                {"department": "items", "cause_id": 369, "type": "error", "code": "body.required_fields",
                 "references": ["item.price", "item.condition"], "message": "missing"},
                {"department": "items", "cause_id": 340, "type": "error", "code": "item.title.not_modifiable",
                 "references": ["item.title"], "message": "title can't be modified"},
                {"type": "warning", "code": "item.pictures.small", "references": ["item.pictures"], "message": "small"},
            ]
        });
        let Failure::Refused(issues) = refusal(400, body) else {
            panic!("a refusal")
        };
        let named: Vec<(&str, &str)> = issues
            .iter()
            .map(|i| (i.code.as_str(), i.field.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            named,
            vec![
                (INVALID, "price"),
                (INVALID, "condition"),
                (NOT_MODIFIABLE, "title")
            ]
        );
        assert!(issues[2].message.contains("item.title.not_modifiable"));
    }

    #[test]
    fn wrong_types_name_their_fields() {
        let body = json!({"message": "body.invalid_field_types",
            "error": "[invalid property type: [price] expected Number but was String value: p]",
            "status": 400, "cause": []});
        let Failure::Refused(issues) = refusal(400, body) else {
            panic!("a refusal")
        };
        assert_eq!(issues[0].field.as_deref(), Some("price"));
    }

    #[test]
    fn a_closed_item_not_found_and_forbidden_are_told_apart() {
        let closed = json!({"message": "Cannot update item MLB1 [status:closed, has_bids:false]",
            "error": "validation_error", "status": 400,
            "cause": [{"code": "item.status.not_modifiable", "references": ["item.status"], "message": "status is not modifiable."}]});
        assert_eq!(refusal(400, closed), Failure::Closed);
        assert_eq!(
            refusal(404, json!({"error": "not_found"})),
            Failure::NotFound
        );
        assert!(matches!(
            refusal(403, json!({"error": "access_denied", "message": "forbidden"})),
            Failure::Permanent(m) if m.contains("403")
        ));
        assert!(matches!(
            refusal(
                400,
                json!({"error": "bad_request", "message": "body must be a JSON object"})
            ),
            Failure::Permanent(_)
        ));
    }

    #[test]
    fn a_token_quoted_back_is_masked() {
        let f = refusal(
            403,
            json!({"error": "forbidden", "message": "token APP_USR-token-value is not allowed"}),
        );
        assert!(!f.message().contains("APP_USR-token-value"), "{f:?}");
    }
}

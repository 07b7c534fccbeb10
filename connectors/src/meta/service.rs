//! Meta's catalog batch API as a channel service: `items_batch` to send a batch, then
//! `check_batch_request_status` until the batch has finished; LIVE and REJECTED come only from
//! that confirmation, never from the batch call's 2xx. Every answer is classified here: HTTP 429
//! and Graph's rate-limit codes (80014 among them) are throttling, 5xx and transient errors are
//! server errors, a refused token is retried as an auth failure, and any other refusal is
//! permanent. The `X-Business-Use-Case-Usage` header holds every call back while Meta says the
//! business is at its limit.

use super::config::MetaConfig;
use super::request_builder::{batch_body, method};
use crate::accounts::Accounts;
use crate::sink::{
    Attempt, CallError, ChannelService, Exhausted, ItemResult, OnChannel, Retrier, RetryClass,
    SinkRequest,
};
use porch_processors::domain::channel::Action;
use porch_processors::store::BoxFuture;
use porch_schemas::{Channel, Reason};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Retailer ids asked about per products lookup (they go into the URL).
const LOOKUP_CHUNK: usize = 100;

pub struct MetaService {
    config: MetaConfig,
    http: reqwest::Client,
    accounts: Arc<Accounts>,
}

/// What `items_batch` answered.
struct Accepted {
    handles: Vec<String>,
    /// Retailer id → the synchronous validation errors of its request.
    invalid: HashMap<String, Vec<Reason>>,
}

/// What one poll of a batch's status said.
enum Polled {
    Running,
    Finished(Confirmation),
    /// Meta ended the batch in error (or canceled it): sent again.
    Ended(String),
}

/// What the status of a finished batch said.
#[derive(Default)]
struct Confirmation {
    /// Retailer id → its errors.
    errors: HashMap<String, Vec<Reason>>,
}

impl MetaService {
    pub fn new(config: MetaConfig, accounts: Arc<Accounts>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(10_000)))
            .build()?;
        Ok(MetaService {
            config,
            http,
            accounts,
        })
    }

    fn url(&self, catalog: &str, edge: &str) -> String {
        format!(
            "{}/{}/{edge}",
            self.config.graph_url.trim_end_matches('/'),
            catalog
        )
    }

    /// The access token of the batch's account, or an auth failure to retry (an operator may be
    /// connecting it right now).
    async fn token(&self, r: &SinkRequest) -> Result<String, CallError> {
        let accounts = self.accounts.of(&r.tenant).await.map_err(|e| {
            CallError::retry(
                RetryClass::ServerError,
                format!("reading the channel accounts: {e}"),
            )
        })?;
        accounts
            .get(Channel::Meta, &r.request.region)
            .and_then(|a| a.access_token.clone())
            .filter(|t| !t.is_empty())
            .map(|t| t.expose().to_string())
            .ok_or_else(|| {
                CallError::retry(
                    RetryClass::Auth,
                    format!(
                        "tenant {} has no Meta access token for {}",
                        r.tenant, r.request.region
                    ),
                )
            })
    }

    /// Each request's method on this try: an upsert of an item whose presence is unknown (a
    /// create sent before without an answer, or an earlier try of this call that may have been
    /// applied) asks the catalog first; if it cannot be asked, the upsert is an UPDATE, which
    /// creates too and is never a second create.
    async fn methods(
        &self,
        batch: &[SinkRequest],
        attempt: Attempt,
        token: &str,
        retrier: &Retrier,
    ) -> Vec<&'static str> {
        let unsure = |r: &SinkRequest| {
            r.action == Action::Upsert
                && match r.on_channel {
                    OnChannel::Present => false,
                    OnChannel::Unknown => true,
                    OnChannel::Absent => attempt.ambiguous,
                }
        };
        let asked: Vec<&str> = batch
            .iter()
            .filter(|r| unsure(r))
            .map(|r| r.request.retailer_id.as_str())
            .collect();
        let existing = if asked.is_empty() {
            Some(HashSet::new())
        } else {
            self.existing(&batch[0].request.account, &asked, token, retrier)
                .await
        };
        batch
            .iter()
            .map(|r| {
                let exists = match r.on_channel {
                    OnChannel::Present => true,
                    _ if !unsure(r) => false,
                    _ => existing
                        .as_ref()
                        .is_none_or(|e| e.contains(&r.request.retailer_id)),
                };
                method(r, exists)
            })
            .collect()
    }

    /// Which of `ids` the catalog holds now (its products edge, filtered by retailer id), or
    /// `None` when it cannot be asked (its retries spent).
    async fn existing(
        &self,
        catalog: &str,
        ids: &[&str],
        token: &str,
        retrier: &Retrier,
    ) -> Option<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let filter = serde_json::json!({ "retailer_id": { "is_any": chunk } }).to_string();
            let limit = chunk.len().to_string();
            let body = retrier
                .call("products", |_| async {
                    let resp = self
                        .http
                        .get(self.url(catalog, "products"))
                        .bearer_auth(token)
                        .query(&[
                            ("filter", filter.as_str()),
                            ("fields", "id,retailer_id"),
                            ("limit", limit.as_str()),
                        ])
                        .send()
                        .await
                        .map_err(|e| CallError::from_transport(&e))?;
                    self.answer(resp, retrier, None, token).await
                })
                .await
                .ok()?;
            for item in body["data"].as_array().into_iter().flatten() {
                if let Some(id) = item["retailer_id"].as_str() {
                    found.insert(id.to_string());
                }
            }
        }
        Some(found)
    }

    async fn send_batch(
        &self,
        batch: &[SinkRequest],
        attempt: Attempt,
        retrier: &Retrier,
    ) -> Result<Accepted, CallError> {
        let first = &batch[0];
        let token = self.token(first).await?;
        let methods = self.methods(batch, attempt, &token, retrier).await;
        let url = self.url(&first.request.account, "items_batch");
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&token)
            .json(&batch_body(batch, &methods))
            .send()
            .await
            .map_err(|e| CallError::from_transport(&e))?;
        let body = self
            .answer(resp, retrier, Some(&first.tenant), &token)
            .await?;
        let handles: Vec<String> = body["handles"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        // Without a handle nothing can be confirmed: never LIVE on a bare 2xx.
        if handles.is_empty() {
            return Err(CallError::retry(
                RetryClass::ServerError,
                "Meta accepted the batch without a handle to confirm it by",
            ));
        }
        let mut invalid = HashMap::new();
        for v in body["validation_status"].as_array().into_iter().flatten() {
            let Some(id) = v["retailer_id"].as_str() else {
                continue;
            };
            let issues = issues_of(&v["errors"]);
            if !issues.is_empty() {
                invalid.insert(id.to_string(), issues);
            }
        }
        Ok(Accepted { handles, invalid })
    }

    /// Polls one handle's status once.
    async fn poll(
        &self,
        r: &SinkRequest,
        handle: &str,
        retrier: &Retrier,
    ) -> Result<Polled, CallError> {
        let token = self.token(r).await?;
        let url = self.url(&r.request.account, "check_batch_request_status");
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&token)
            .query(&[("handle", handle), ("load_ids_of_invalid_requests", "true")])
            .send()
            .await
            .map_err(|e| CallError::from_transport(&e))?;
        let body = self.answer(resp, retrier, Some(&r.tenant), &token).await?;
        let status = &body["data"][0];
        match status["status"].as_str().unwrap_or_default() {
            "finished" => {}
            ended @ ("error" | "canceled") => {
                return Ok(Polled::Ended(format!(
                    "Meta ended batch {handle} as {ended}"
                )))
            }
            _ => return Ok(Polled::Running),
        }
        let mut errors: HashMap<String, Vec<Reason>> = HashMap::new();
        for e in status["errors"].as_array().into_iter().flatten() {
            if let Some(id) = e["id"].as_str() {
                errors.entry(id.to_string()).or_default().push(issue_of(e));
            }
        }
        for id in status["ids_of_invalid_requests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
        {
            errors.entry(id.to_string()).or_insert_with(|| {
                vec![Reason::new(
                    "META_INVALID",
                    "Meta refused the item without saying why",
                )]
            });
        }
        Ok(Polled::Finished(Confirmation { errors }))
    }

    /// A Graph answer: the JSON of a 2xx, or the call's error, classified. The usage header is
    /// read on every answer.
    async fn answer(
        &self,
        resp: reqwest::Response,
        retrier: &Retrier,
        tenant: Option<&porch_schemas::TenantId>,
        token: &str,
    ) -> Result<Value, CallError> {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let usage = resp
            .headers()
            .get("x-business-use-case-usage")
            .and_then(|v| v.to_str().ok())
            .and_then(business_usage);
        let cap = Duration::from_millis(self.config.max_throttle_ms);
        if let Some(u) = &usage {
            if u.percent >= 100 {
                retrier
                    .throttle
                    .hold_for(u.wait.max(Duration::from_secs(1)).min(cap));
            } else if u.percent >= 95 {
                retrier.throttle.hold_for(Duration::from_millis(250));
            }
        }
        let text = resp
            .text()
            .await
            .map_err(|e| CallError::from_transport(&e))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() && body.get("error").is_none() {
            return Ok(body);
        }
        let err = &body["error"];
        let code = err["code"].as_i64().unwrap_or(0);
        let message = err["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("HTTP {status} without a Graph error"));
        // Graph quotes a malformed token back in its message: it never goes further than here.
        let message = format!(
            "Meta answered HTTP {} (code {code}): {}",
            status.as_u16(),
            redact(&message, token)
        );
        let throttled_for = usage
            .filter(|u| u.percent >= 100)
            .map(|u| u.wait)
            .filter(|w| !w.is_zero());
        let class = if status.as_u16() == 429 {
            RetryClass::RateLimited
        } else if matches!(code, 4 | 17 | 32 | 613 | 80000..=80014) {
            RetryClass::Throttled
        } else if status.is_server_error()
            || err["is_transient"].as_bool() == Some(true)
            || matches!(code, 1 | 2)
        {
            RetryClass::ServerError
        } else if matches!(code, 102 | 190) {
            if let Some(tenant) = tenant {
                self.accounts.forget(tenant);
            }
            RetryClass::Auth
        } else {
            return Err(CallError::Permanent(message));
        };
        Err(CallError::Retry {
            class,
            after: retry_after.or(throttled_for).map(|a| a.min(cap)),
            message,
        })
    }

    async fn submit_batch(&self, batch: &[SinkRequest], retrier: &Retrier) -> Vec<ItemResult> {
        let failed = |e: &Exhausted| {
            batch
                .iter()
                .map(|_| ItemResult::Failed(e.clone()))
                .collect()
        };
        let mut resent = 0;
        loop {
            // A batch sent again after Meta ended the last one may have been applied in part.
            let accepted = retrier
                .call("items_batch", |attempt| {
                    let attempt = Attempt {
                        ambiguous: attempt.ambiguous || resent > 0,
                        ..attempt
                    };
                    self.send_batch(batch, attempt, retrier)
                })
                .await;
            // A refusal of the whole call (a permission, a catalog, a setting) is nothing the
            // items did: they go to the dead letters, to be redriven once it is fixed.
            let accepted = match accepted {
                Ok(a) => a,
                Err(e) => return failed(&e),
            };
            let mut confirmation = Confirmation::default();
            let mut ended = None;
            for handle in &accepted.handles {
                match self.wait_finished(&batch[0], handle, retrier).await {
                    Ok(Ok(c)) => confirmation.errors.extend(c.errors),
                    Ok(Err(why)) => ended = Some(why),
                    Err(e) => return failed(&e),
                }
            }
            if let Some(why) = ended {
                resent += 1;
                if resent >= retrier.policy.max_attempts {
                    return failed(&Exhausted {
                        attempts: resent,
                        class: Some(RetryClass::ServerError),
                        last: why,
                    });
                }
                retrier.status.retried(RetryClass::ServerError);
                retrier.status.set_last_error(&why);
                continue;
            }
            return batch
                .iter()
                .map(|r| {
                    let id = &r.request.retailer_id;
                    if let Some(issues) = accepted.invalid.get(id) {
                        return ItemResult::Rejected(issues.clone());
                    }
                    if let Some(issues) = confirmation.errors.get(id) {
                        return ItemResult::Rejected(issues.clone());
                    }
                    match r.action {
                        Action::Upsert => ItemResult::Live {
                            channel_item_id: None,
                        },
                        Action::Delete => ItemResult::Unpublished,
                    }
                })
                .collect();
        }
    }

    /// Polls a handle until its batch finished (`Err` inside: Meta ended it in error), waiting
    /// longer between polls as it goes.
    async fn wait_finished(
        &self,
        r: &SinkRequest,
        handle: &str,
        retrier: &Retrier,
    ) -> Result<Result<Confirmation, String>, Exhausted> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(self.config.poll_interval_ms);
        let mut polls = 0;
        loop {
            tokio::time::sleep(wait).await;
            polls += 1;
            match retrier
                .call("status", |_| self.poll(r, handle, retrier))
                .await?
            {
                Polled::Finished(c) => return Ok(Ok(c)),
                Polled::Ended(why) => return Ok(Err(why)),
                Polled::Running => {}
            }
            if started.elapsed() >= Duration::from_millis(self.config.max_poll_ms) {
                return Err(Exhausted {
                    attempts: polls,
                    class: Some(RetryClass::Timeout),
                    last: format!(
                        "Meta's batch {handle} did not finish within {} s",
                        self.config.max_poll_ms / 1000
                    ),
                });
            }
            // Most batches finish within a few polls: the waits grow gently at first.
            wait = wait
                .mul_f64(1.5)
                .min(Duration::from_millis(self.config.max_poll_interval_ms));
        }
    }
}

impl ChannelService for MetaService {
    fn channel(&self) -> Channel {
        Channel::Meta
    }

    fn submit<'a>(
        &'a self,
        batch: &'a [SinkRequest],
        retrier: &'a Retrier,
    ) -> BoxFuture<'a, Vec<ItemResult>> {
        Box::pin(async move {
            if batch.is_empty() {
                return vec![];
            }
            self.submit_batch(batch, retrier).await
        })
    }
}

/// `text` with every occurrence of the credential masked.
fn redact(text: &str, token: &str) -> String {
    if token.len() < 8 {
        return text.to_string();
    }
    text.replace(token, "***")
}

/// A Graph error about one item as an issue, with the field it names (Meta writes the field into
/// the message; a `field` key is taken when there is one).
fn issue_of(e: &Value) -> Reason {
    let message = e["message"].as_str().unwrap_or("invalid item").to_string();
    let field = e["field"]
        .as_str()
        .map(String::from)
        .or_else(|| field_named_in(&message));
    Reason {
        code: "META_INVALID".into(),
        message,
        field,
    }
}

fn issues_of(errors: &Value) -> Vec<Reason> {
    errors
        .as_array()
        .into_iter()
        .flatten()
        .map(issue_of)
        .collect()
}

/// The field a message names: "… (field: brand)", "field 'brand' …", or "… missing: brand.".
fn field_named_in(message: &str) -> Option<String> {
    let clean = |s: &str| {
        let f: String = s
            .trim_start_matches(['\'', '"', ' '])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!f.is_empty()).then_some(f)
    };
    if let Some(rest) = message.split("(field:").nth(1) {
        return clean(rest);
    }
    if let Some(rest) = message.split("missing:").nth(1) {
        return clean(rest);
    }
    ["field '", "field \""]
        .iter()
        .find_map(|q| message.split(q).nth(1))
        .and_then(clean)
}

/// Meta's usage of the business's rate limits, from `X-Business-Use-Case-Usage`: the highest of
/// its percentages and the longest time to regain access.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Usage {
    percent: u64,
    wait: Duration,
}

fn business_usage(header: &str) -> Option<Usage> {
    let v: BTreeMap<String, Value> = serde_json::from_str(header).ok()?;
    let mut usage = Usage {
        percent: 0,
        wait: Duration::ZERO,
    };
    for entries in v.values() {
        for e in entries.as_array().into_iter().flatten() {
            for k in ["call_count", "total_cputime", "total_time"] {
                usage.percent = usage.percent.max(e[k].as_u64().unwrap_or(0));
            }
            let minutes = e["estimated_time_to_regain_access"].as_u64().unwrap_or(0);
            usage.wait = usage.wait.max(Duration::from_secs(minutes * 60));
        }
    }
    Some(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_header_gives_the_highest_share_and_the_longest_wait() {
        let h = r#"{"123":[{"type":"catalog_batch","call_count":100,"total_cputime":4,"total_time":9,"estimated_time_to_regain_access":2}],"456":[{"type":"ads_management","call_count":40,"total_cputime":3,"total_time":2,"estimated_time_to_regain_access":0}]}"#;
        assert_eq!(
            business_usage(h),
            Some(Usage {
                percent: 100,
                wait: Duration::from_secs(120)
            })
        );
        assert_eq!(business_usage("not json"), None);
    }

    #[test]
    fn the_field_a_message_names_is_found() {
        assert_eq!(
            field_named_in("The field brand is missing. (field: brand)").as_deref(),
            Some("brand")
        );
        assert_eq!(
            field_named_in("Invalid value for field 'price'").as_deref(),
            Some("price")
        );
        assert_eq!(
            field_named_in("A required field is missing: image_link.").as_deref(),
            Some("image_link")
        );
        assert_eq!(field_named_in("Something else"), None);
    }
}

//! One accepted `items_batch` call and its handle's life: `scheduled`, then `dispatched` and
//! `started`, then `finished` on the status poll drawn for it. Its requests run only then, in
//! request order — so a test sees exactly Meta's gap between "accepted" and "applied", and
//! porch cannot count an item LIVE before the confirmation.

use crate::catalog::{Catalog, ItemIds, Outcome};
use crate::config::RejectRule;
use crate::records::AppliedRequest;
use crate::request_shape::ItemRequest;
use serde::Serialize;
use serde_json::{json, Value};

/// The message of a DELETE that found nothing.
pub const NOTHING_DELETED: &str = "Item does not exist, nothing deleted";

#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) catalog: String,
    pub(crate) handle: String,
    requests: Vec<ItemRequest>,
    allow_upsert: bool,
    polls_to_finish: u32,
    polls: u32,
    report: Option<Report>,
}

/// What a finished batch reports.
#[derive(Debug, Clone, Default)]
struct Report {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    invalid_ids: Vec<String>,
}

/// One error or warning of a finished batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The request's index in the batch.
    pub line: usize,
    pub id: String,
    pub message: String,
}

impl Batch {
    pub(crate) fn new(
        catalog: String,
        handle: String,
        requests: Vec<ItemRequest>,
        allow_upsert: bool,
        polls_to_finish: u32,
    ) -> Self {
        Self {
            catalog,
            handle,
            requests,
            allow_upsert,
            polls_to_finish,
            polls: 0,
            report: None,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.report.is_some()
    }

    /// Counts a status poll; true when this poll is the one the batch finishes on.
    pub(crate) fn poll(&mut self) -> bool {
        self.polls = self.polls.saturating_add(1);
        !self.is_finished() && self.polls >= self.polls_to_finish
    }

    /// Applies the requests to `catalog` in order (new items take their Meta ids from `ids`) and
    /// keeps the report. Returns what was applied.
    pub(crate) fn run(
        &mut self,
        catalog: &mut Catalog,
        rules: &[RejectRule],
        ids: &mut ItemIds,
        at_ms: u64,
    ) -> Vec<AppliedRequest> {
        let mut report = Report::default();
        let mut applied = Vec::new();
        for request in &self.requests {
            let problem = |message: String| Problem {
                line: request.line,
                id: request.retailer_id.clone(),
                message,
            };
            match catalog.apply(request, self.allow_upsert, rules, ids) {
                Outcome::Stored { created, item_id } => {
                    applied.push(self.applied(request, created, Some(item_id), at_ms));
                }
                Outcome::Deleted => applied.push(self.applied(request, false, None, at_ms)),
                Outcome::NothingToDelete => report.warnings.push(problem(NOTHING_DELETED.into())),
                Outcome::Rejected(messages) => {
                    report.errors.extend(messages.into_iter().map(problem));
                    if !report.invalid_ids.contains(&request.retailer_id) {
                        report.invalid_ids.push(request.retailer_id.clone());
                    }
                }
            }
        }
        self.report = Some(report);
        applied
    }

    fn applied(
        &self,
        request: &ItemRequest,
        created: bool,
        item_id: Option<String>,
        at_ms: u64,
    ) -> AppliedRequest {
        AppliedRequest {
            catalog: self.catalog.clone(),
            method: request.method,
            retailer_id: request.retailer_id.clone(),
            data: Value::Object(request.data.clone()),
            handle: self.handle.clone(),
            at_ms,
            created,
            item_id,
        }
    }

    /// The handle's status as `check_batch_request_status` reports it (one element of `data`).
    pub(crate) fn status(&self, load_ids_of_invalid_requests: bool) -> Value {
        let empty = Report::default();
        let report = self.report.as_ref().unwrap_or(&empty);
        let mut status = json!({
            "handle": self.handle,
            "status": self.phase(),
            "errors_total_count": report.errors.len(),
            "errors": report.errors,
            "warnings_total_count": report.warnings.len(),
            "warnings": report.warnings,
        });
        if let (true, Some(fields)) = (load_ids_of_invalid_requests, status.as_object_mut()) {
            fields.insert("ids_of_invalid_requests".into(), json!(report.invalid_ids));
        }
        status
    }

    fn phase(&self) -> &'static str {
        match (self.is_finished(), self.polls) {
            (true, _) => "finished",
            (false, 0 | 1) => "scheduled",
            (false, 2) => "dispatched",
            (false, _) => "started",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ItemMethod;
    use serde_json::json;

    fn delete(line: usize, id: &str) -> ItemRequest {
        ItemRequest {
            line,
            method: ItemMethod::Delete,
            retailer_id: id.into(),
            data: json!({"id": id}).as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn the_status_moves_on_with_each_poll_and_finishes_on_the_drawn_one() {
        let mut batch = Batch::new("c".into(), "h".into(), vec![delete(0, "a")], true, 4);
        assert_eq!(batch.status(false)["status"], "scheduled");
        let phases: Vec<(bool, String)> = (0..4)
            .map(|_| {
                let finishes = batch.poll();
                if finishes {
                    batch.run(&mut Catalog::default(), &[], &mut ItemIds::default(), 0);
                }
                let status = batch.status(false)["status"].as_str().map(str::to_owned);
                (finishes, status.unwrap_or_default())
            })
            .collect();
        assert_eq!(
            phases,
            vec![
                (false, "scheduled".into()),
                (false, "dispatched".into()),
                (false, "started".into()),
                (true, "finished".into()),
            ]
        );
        assert!(!batch.poll(), "a finished batch never runs again");
    }

    #[test]
    fn errors_and_ids_show_once_finished() {
        let mut batch = Batch::new("c".into(), "h".into(), vec![delete(2, "gone")], true, 1);
        let before = batch.status(true);
        assert_eq!(before["warnings_total_count"], 0);
        assert_eq!(before["ids_of_invalid_requests"], json!([]));
        assert!(batch.poll());
        let applied = batch.run(&mut Catalog::default(), &[], &mut ItemIds::default(), 0);
        assert!(applied.is_empty());
        let after = batch.status(false);
        assert_eq!(
            after["warnings"],
            json!([{"line": 2, "id": "gone", "message": NOTHING_DELETED}])
        );
        assert!(after.get("ids_of_invalid_requests").is_none());
    }
}

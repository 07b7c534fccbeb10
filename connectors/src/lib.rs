//! Sinks that turn porch's events into something outside the log: the embedded search index
//! behind `GET /v1/search` and, later, the channel connectors (DESIGN §1, §3).

pub mod search;

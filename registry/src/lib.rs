//! The Confluent-compatible schema registry of the distributed mode.

//! The ScyllaDB (CQL) backend of the store.

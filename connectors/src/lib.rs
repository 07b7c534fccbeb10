//! Sinks that turn porch's events into something outside the log (DESIGN §1, §3, §8): the
//! embedded search index behind `GET /v1/search`, and the channel connectors (Meta, Mercado
//! Libre) on the shared sink machinery of [`sink`].

pub mod accounts;
pub mod mercadolibre;
pub mod meta;
pub mod search;
pub mod sink;

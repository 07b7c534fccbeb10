//! The pure domain cores: one module per aggregate, each `decide` + `evolve`, no I/O, no clock.

pub mod activation;
pub mod channel;
pub mod compliance;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod inventory;
pub mod listing;
pub mod offer;
pub mod product;
pub mod variant;

use porch_schemas::{Event, Reason};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;

/// An aggregate: it decides on an input given its state, and its state is the fold of its events.
pub trait Aggregate {
    /// The state, persisted as the aggregate's projection row.
    type State: Default + Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send;
    /// What the aggregate decides on (its commands, or the events it reacts to).
    type Input;
    /// The events the input causes, or the reasons it is refused. An empty list means the input
    /// changes nothing (an idempotent repeat, a signal that does not apply).
    fn decide(state: &Self::State, input: &Self::Input) -> Result<Vec<Event>, Vec<Reason>>;
    /// The state after one of this aggregate's events (or an input event it absorbs).
    fn evolve(state: Self::State, event: &Event) -> Self::State;
}

/// Folds events into a state, as a replay from the changelog does.
pub fn replay<A: Aggregate>(events: &[Event]) -> A::State {
    events
        .iter()
        .fold(A::State::default(), |s, e| A::evolve(s, e))
}

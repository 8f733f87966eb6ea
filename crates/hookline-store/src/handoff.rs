//! The store's side of the handoff: where a publish on this process hands its deliveries straight to the local
//! dispatcher, which owns the accounting (`hookline_dispatch::Handoff`), and where the store tells it that work
//! may be due, which is all the store decides of the dispatcher's waking.
//!
//! A publish that finds room writes those deliveries already leased to the dispatcher and, once the commit is on
//! disk, hands them over in memory: the dispatcher neither claims them with a write of its own nor reads the event
//! and the endpoint back. Deliveries it has no room for are written due, for a claim to find. Nothing is lost in a
//! crash: a leased delivery falls due again when its lease runs out, and the embedded store releases every lease
//! when it opens.

use std::time::Duration;

use hookline_core::id::EndpointId;

use crate::deliveries::ClaimedDelivery;

/// What a publish may ask of the local dispatcher.
pub trait HandoffSink: Send + Sync {
    /// How long a lease taken for the dispatcher lasts.
    fn lease_length(&self) -> Duration;

    /// For each endpoint in turn, whether the dispatcher takes one more of its deliveries; each `true` is a place
    /// kept until `hand` or `unreserve`.
    fn reserve(&self, endpoints: &mut dyn Iterator<Item = &EndpointId>) -> Vec<bool>;

    /// Gives back places whose deliveries were never committed.
    fn unreserve(&self, endpoints: &mut dyn Iterator<Item = &EndpointId>);

    /// Hands over committed deliveries, each in a place `reserve` kept.
    fn hand(&self, deliveries: Vec<ClaimedDelivery>);

    /// Deliveries may have fallen due in the database: a publish wrote some it did not hand over, a delivery was
    /// retried by hand or its endpoint enabled again, or (on PostgreSQL) another node did one of these. The
    /// dispatcher decides when it looks; the store only tells it.
    fn work_due(&self);
}

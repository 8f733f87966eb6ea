//! Deliveries handed from a publish straight to this process's dispatcher, and the dispatcher's count of the
//! deliveries that wait for an attempt. The store sees only its narrow side, `hookline_store::HandoffSink`.
//!
//! A publish that finds room in the local dispatcher writes those deliveries already leased to it and, once the
//! commit is on disk, hands them over in memory: the dispatcher neither claims them with a write of its own nor
//! reads the event and the endpoint back. Deliveries it has no room for are written due, for a claim to find.
//! Nothing is lost in a crash: a leased delivery falls due again when its lease runs out, and the embedded store
//! releases every lease when it opens.
//!
//! The store also tells the dispatcher through it when deliveries may be due in the database; when to look is the
//! claim loop's to decide.
//!
//! The handoff also keeps the dispatcher's count of deliveries that wait for an attempt, however they came (a
//! publish or a claim), since that count is what decides whether a publish may hand over another.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hookline_core::id::EndpointId;
use tokio::sync::Notify;

use hookline_store::{ClaimedDelivery, HandoffSink};

/// Shared by the dispatcher and, as a `HandoffSink`, the store; see the module documentation.
pub struct Handoff {
    lease_length: Duration,
    per_endpoint: u32,
    capacity: u32,
    state: Mutex<State>,
    arrived: Notify,
    room_made: Notify,
    work_due: Notify,
}

#[derive(Default)]
struct State {
    closed: bool,
    /// A claim waits until no more than this many deliveries are queued: publishes hand nothing over meanwhile,
    /// so deliveries due in the store are not overtaken for ever by new ones.
    room_wanted: Option<u32>,
    /// Per endpoint the dispatcher has a lane for: deliveries reserved by a publish, handed over, or waiting in
    /// the lane for an attempt to start. A publish leases only to endpoints listed here.
    queued: HashMap<EndpointId, u32>,
    total: u32,
    handed: Vec<ClaimedDelivery>,
}

impl Handoff {
    /// A handoff whose leases last `lease_length`, taking at most `per_endpoint` waiting deliveries of one
    /// endpoint and `capacity` in all.
    pub fn new(lease_length: Duration, per_endpoint: u32, capacity: u32) -> Handoff {
        Handoff {
            lease_length,
            per_endpoint,
            capacity,
            state: Mutex::default(),
            arrived: Notify::new(),
            room_made: Notify::new(),
            work_due: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Deliveries handed over since the last call.
    pub fn take(&self) -> Vec<ClaimedDelivery> {
        std::mem::take(&mut self.state().handed)
    }

    /// Resolves when deliveries have been handed over (at once if some were since the last wait).
    pub async fn arrived(&self) {
        self.arrived.notified().await
    }

    /// Resolves when the store has said that deliveries may be due in the database (at once if it has since the
    /// last wait): the claim loop's one signal from outside the dispatcher.
    pub async fn work_due_in_store(&self) {
        self.work_due.notified().await
    }

    /// A delivery of `endpoint` that a claim took now waits in its lane; publishes may lease to the endpoint.
    pub fn joined(&self, endpoint: &EndpointId) {
        let mut state = self.state();
        *state.queued.entry(endpoint.clone()).or_default() += 1;
        state.total += 1;
    }

    /// Makes sure publishes may lease to `endpoint` while there is room.
    pub fn track(&self, endpoint: &EndpointId) {
        self.state().queued.entry(endpoint.clone()).or_default();
    }

    /// A waiting delivery of `endpoint` has started its attempt (or was given back): its place is free.
    pub fn started(&self, endpoint: &EndpointId) {
        let mut state = self.state();
        state.leave(endpoint);
        if state.room_wanted.is_some_and(|most| state.total <= most) {
            state.room_wanted = None;
            self.room_made.notify_one();
        }
    }

    /// Asks for `room` places to be left to a claim; `room_made` resolves once they are free.
    pub fn want_room(&self, room: u32) {
        let mut state = self.state();
        let most = self.capacity.saturating_sub(room);
        if state.total <= most {
            self.room_made.notify_one();
        } else {
            state.room_wanted = Some(most);
        }
    }

    /// Resolves when the room `want_room` asked for is free.
    pub async fn room_made(&self) {
        self.room_made.notified().await
    }

    /// Stops leasing to `endpoint` if none of its deliveries wait, so that idle endpoints are not kept forever.
    pub fn forget(&self, endpoint: &EndpointId) {
        let mut state = self.state();
        if state.queued.get(endpoint) == Some(&0) {
            state.queued.remove(endpoint);
        }
    }

    /// Deliveries reserved, handed over or waiting, in all.
    pub fn queued(&self) -> usize {
        self.state().total as usize
    }

    /// Stops all further handoffs and returns what was handed over but not taken.
    pub fn close(&self) -> Vec<ClaimedDelivery> {
        let mut state = self.state();
        state.closed = true;
        std::mem::take(&mut state.handed)
    }
}

impl HandoffSink for Handoff {
    fn lease_length(&self) -> Duration {
        self.lease_length
    }

    fn reserve(&self, endpoints: &mut dyn Iterator<Item = &EndpointId>) -> Vec<bool> {
        let mut state = self.state();
        let state = &mut *state;
        endpoints
            .map(|endpoint| {
                if state.closed || state.room_wanted.is_some() || state.total >= self.capacity {
                    return false;
                }
                match state.queued.get_mut(endpoint) {
                    Some(queued) if *queued < self.per_endpoint => {
                        *queued += 1;
                        state.total += 1;
                        true
                    }
                    _ => false,
                }
            })
            .collect()
    }

    fn unreserve(&self, endpoints: &mut dyn Iterator<Item = &EndpointId>) {
        let mut state = self.state();
        for endpoint in endpoints {
            state.leave(endpoint);
        }
    }

    fn hand(&self, deliveries: Vec<ClaimedDelivery>) {
        if deliveries.is_empty() {
            return;
        }
        self.state().handed.extend(deliveries);
        self.arrived.notify_one();
    }

    fn work_due(&self) {
        self.work_due.notify_one();
    }
}

impl State {
    fn leave(&mut self, endpoint: &EndpointId) {
        if let Some(queued) = self.queued.get_mut(endpoint)
            && *queued > 0
        {
            *queued -= 1;
            self.total = self.total.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_kept_per_endpoint_and_in_all() {
        let handoff = Handoff::new(Duration::from_secs(35), 2, 3);
        let (a, b, unknown) = (EndpointId::generate(), EndpointId::generate(), EndpointId::generate());
        handoff.track(&a);
        handoff.track(&b);
        assert_eq!(handoff.reserve(&mut [&a, &a, &a, &unknown].into_iter()), [true, true, false, false]);
        assert_eq!(handoff.reserve(&mut [&b, &b].into_iter()), [true, false], "three in all");
        handoff.unreserve(&mut [&b].into_iter());
        handoff.started(&a);
        assert_eq!(handoff.queued(), 1);
        handoff.forget(&a);
        assert_eq!(handoff.reserve(&mut [&a].into_iter()), [true], "an endpoint with deliveries waiting is kept");
        handoff.forget(&b);
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [false], "an idle endpoint is forgotten");
        handoff.joined(&b);
        assert_eq!(handoff.queued(), 3);
        handoff.track(&b);
        handoff.want_room(2);
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [false], "room is kept for a claim");
        handoff.started(&b);
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [false], "two of three still wait");
        handoff.started(&a);
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [true], "half the capacity is free");
        handoff.close();
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [false], "a closed handoff takes nothing");
    }
}

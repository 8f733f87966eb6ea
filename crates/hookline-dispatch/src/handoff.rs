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

use hookline_core::id::{EndpointId, TenantId};
use tokio::sync::Notify;

use hookline_store::{ClaimedDelivery, HandoffSink};

/// Shared by the dispatcher and, as a `HandoffSink`, the store; see the module documentation.
pub struct Handoff {
    lease_length: Duration,
    per_endpoint: u32,
    per_tenant: u32,
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
    /// Per endpoint the dispatcher knows: deliveries reserved by a publish, handed over, or waiting for an
    /// attempt to start, and how many may be. A publish leases only to endpoints listed here.
    queued: HashMap<EndpointId, Place>,
    /// The same, summed per tenant: one tenant's waiting deliveries must leave room for the others'.
    per_tenant: HashMap<TenantId, u32>,
    total: u32,
    handed: Vec<ClaimedDelivery>,
}

/// One endpoint's count of waiting deliveries, and its bound: `per_endpoint`, or the lower limit of an endpoint
/// that keeps timing out (see `fair`).
struct Place {
    tenant: TenantId,
    queued: u32,
    allowed: u32,
}

impl Handoff {
    /// A handoff whose leases last `lease_length`, taking at most `per_endpoint` waiting deliveries of one
    /// endpoint, `per_tenant` of one tenant's and `capacity` in all.
    pub fn new(lease_length: Duration, per_endpoint: u32, per_tenant: u32, capacity: u32) -> Handoff {
        Handoff {
            lease_length,
            per_endpoint,
            per_tenant,
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

    /// A delivery of `endpoint` (of `tenant`) that a claim took now waits for an attempt; publishes may lease to
    /// the endpoint.
    pub fn joined(&self, endpoint: &EndpointId, tenant: &TenantId) {
        let mut state = self.state();
        state.track(endpoint, tenant, self.per_endpoint).queued += 1;
        *state.per_tenant.entry(tenant.clone()).or_default() += 1;
        state.total += 1;
    }

    /// Makes sure publishes may lease to `endpoint` (of `tenant`) while there is room.
    pub fn track(&self, endpoint: &EndpointId, tenant: &TenantId) {
        self.state().track(endpoint, tenant, self.per_endpoint);
    }

    /// Lets publishes hand over at most `allowed` waiting deliveries of `endpoint` (of those it tracks).
    pub fn limit(&self, endpoint: &EndpointId, allowed: u32) {
        if let Some(place) = self.state().queued.get_mut(endpoint) {
            place.allowed = allowed.min(self.per_endpoint);
        }
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
        if let Some(place) = state.queued.get(endpoint)
            && place.queued == 0
        {
            let tenant = place.tenant.clone();
            state.queued.remove(endpoint);
            if state.per_tenant.get(&tenant) == Some(&0) {
                state.per_tenant.remove(&tenant);
            }
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
                let Some(place) = state.queued.get_mut(endpoint) else { return false };
                if place.queued >= place.allowed {
                    return false;
                }
                let of_tenant = match state.per_tenant.get_mut(&place.tenant) {
                    Some(of_tenant) => of_tenant,
                    None => state.per_tenant.entry(place.tenant.clone()).or_default(),
                };
                if *of_tenant >= self.per_tenant {
                    return false;
                }
                place.queued += 1;
                *of_tenant += 1;
                state.total += 1;
                true
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
    fn track(&mut self, endpoint: &EndpointId, tenant: &TenantId, allowed: u32) -> &mut Place {
        self.queued.entry(endpoint.clone()).or_insert_with(|| Place { tenant: tenant.clone(), queued: 0, allowed })
    }

    fn leave(&mut self, endpoint: &EndpointId) {
        if let Some(place) = self.queued.get_mut(endpoint)
            && place.queued > 0
        {
            place.queued -= 1;
            if let Some(of_tenant) = self.per_tenant.get_mut(&place.tenant) {
                *of_tenant = of_tenant.saturating_sub(1);
            }
            self.total = self.total.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        name.parse().expect("a valid tenant id")
    }

    #[test]
    fn places_are_kept_per_endpoint_and_in_all() {
        let handoff = Handoff::new(Duration::from_secs(35), 2, 3, 3);
        let (a, b, unknown) = (EndpointId::generate(), EndpointId::generate(), EndpointId::generate());
        let acme = tenant("acme");
        handoff.track(&a, &acme);
        handoff.track(&b, &acme);
        assert_eq!(handoff.reserve(&mut [&a, &a, &a, &unknown].into_iter()), [true, true, false, false]);
        assert_eq!(handoff.reserve(&mut [&b, &b].into_iter()), [true, false], "three in all");
        handoff.unreserve(&mut [&b].into_iter());
        handoff.started(&a);
        assert_eq!(handoff.queued(), 1);
        handoff.forget(&a);
        assert_eq!(handoff.reserve(&mut [&a].into_iter()), [true], "an endpoint with deliveries waiting is kept");
        handoff.forget(&b);
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [false], "an idle endpoint is forgotten");
        handoff.joined(&b, &acme);
        assert_eq!(handoff.queued(), 3);
        handoff.track(&b, &acme);
        handoff.want_room(2);
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [false], "room is kept for a claim");
        handoff.started(&b);
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [false], "two of three still wait");
        handoff.started(&a);
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [true], "half the capacity is free");
        handoff.close();
        assert_eq!(handoff.reserve(&mut [&b].into_iter()), [false], "a closed handoff takes nothing");
    }

    #[test]
    fn one_tenant_and_a_throttled_endpoint_leave_room_for_the_others() {
        let handoff = Handoff::new(Duration::from_secs(35), 4, 3, 8);
        let (a, b, c) = (EndpointId::generate(), EndpointId::generate(), EndpointId::generate());
        let (slow, quick) = (tenant("slow"), tenant("quick"));
        handoff.track(&a, &slow);
        handoff.track(&b, &slow);
        handoff.track(&c, &quick);
        assert_eq!(handoff.reserve(&mut [&a, &a, &b, &b].into_iter()), [true, true, true, false], "three a tenant");
        assert_eq!(handoff.reserve(&mut [&c, &c, &c].into_iter()), [true, true, true], "the other tenant's own three");
        handoff.started(&a);
        handoff.started(&a);
        handoff.limit(&a, 1);
        assert_eq!(handoff.reserve(&mut [&a, &a].into_iter()), [true, false], "a throttled endpoint takes its limit");
        handoff.limit(&a, 100);
        assert_eq!(handoff.reserve(&mut [&a].into_iter()), [true], "back up to the endpoint's bound, not beyond");
        assert_eq!(handoff.reserve(&mut [&a].into_iter()), [false], "the tenant's three are taken again");
    }
}

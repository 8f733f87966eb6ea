//! The dispatcher's attempts shared fairly: between tenants, between a tenant's endpoints, and away from
//! endpoints that keep timing out.
//!
//! An attempt holds its slot until the receiver answers or the timeout ends it. Served first come, first served,
//! a tenant whose receivers accept connections and never answer held every slot of the dispatcher, a timeout at a
//! time, while every other tenant's deliveries to healthy receivers waited behind it. `FairQueue` holds the
//! deliveries claimed (or handed over by publishes) that wait for a slot, and decides which starts next. Its
//! invariants:
//! - at most `total` attempts are in flight, and at most `per_tenant` of one tenant's, so the others always find
//!   room however slow one tenant's receivers are;
//! - a freed slot goes to the next tenant in turn with a delivery ready, and within it to the next endpoint in
//!   turn: round robin at both levels, so a tenant with many endpoints gets no more than one with a single one;
//! - an endpoint has at most `limit` attempts in flight, from `per_endpoint` down to 1: halved when an attempt
//!   times out (once per round: an attempt started before the last halving does not halve it again) and doubled
//!   when one is answered, so a silent endpoint ends up holding one slot until it answers again;
//! - a delivery waits only as long as its lease allows (`start_by`): one that could no longer be attempted and
//!   recorded within its lease, and those beyond two rounds of a lowered limit, are given back to the store
//!   instead (released, due again), so a lease never runs out while its delivery waits here.
//!
//! It decides and counts; it does no I/O. The claim loop starts attempts with `next`, and each attempt's task,
//! once it has called `finish`, goes on with the next one `next` gives, whoever's it is.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use hookline_core::id::{DeliveryId, EndpointId, TenantId};
use hookline_core::time::Timestamp;
use hookline_store::{Busy, ClaimedDelivery, Endpoint};
use hookline_verify::{Scheme, SecretError, Signer};
use tokio::time::Instant;

use crate::handoff::Handoff;

/// How many attempts may be in flight: in all, per tenant, per endpoint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shares {
    pub total: usize,
    pub per_tenant: usize,
    pub per_endpoint: u32,
}

/// How an attempt ended, as far as sharing is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pace {
    /// The receiver answered, or the attempt failed without waiting for it (refused, not resolved, blocked).
    Answered,
    /// No answer within the delivery timeout: the attempt held its slot for the whole of it.
    TimedOut,
}

/// A delivery taken from the queue to attempt now, with what its task needs.
pub(crate) struct Start {
    pub delivery: ClaimedDelivery,
    pub body: Bytes,
    pub signers: Arc<SignerCache>,
    pub ticket: Ticket,
}

/// Handed back to `finish` when the attempt that `next` started has ended.
pub(crate) struct Ticket {
    endpoint: EndpointId,
    tenant: TenantId,
    started: Instant,
}

/// The endpoints beyond this many known are forgotten when idle.
const KEEP_ENDPOINTS: usize = 4096;

pub(crate) struct FairQueue {
    shares: Shares,
    handoff: Arc<Handoff>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_flight: usize,
    /// Tenants in turn; one is in it (once) while `queued` says so.
    ready: VecDeque<TenantId>,
    tenants: HashMap<TenantId, TenantShare>,
    endpoints: HashMap<EndpointId, EndpointShare>,
    given_back: Vec<ClaimedDelivery>,
}

#[derive(Default)]
struct TenantShare {
    in_flight: usize,
    queued: bool,
    /// Its endpoints in turn; one is in it (once) while its `queued` says so.
    ready: VecDeque<EndpointId>,
}

struct EndpointShare {
    tenant: TenantId,
    in_flight: u32,
    limit: u32,
    lowered_at: Option<Instant>,
    queued: bool,
    waiting: VecDeque<Waiting>,
    signers: Arc<SignerCache>,
}

struct Waiting {
    delivery: ClaimedDelivery,
    body: Bytes,
    start_by: Instant,
}

impl EndpointShare {
    fn ready(&self) -> bool {
        !self.waiting.is_empty() && self.in_flight < self.limit
    }
}

impl FairQueue {
    pub(crate) fn new(shares: Shares, handoff: Arc<Handoff>) -> FairQueue {
        FairQueue { shares, handoff, state: Mutex::default() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Queues a delivery that must start by `start_by` (or be given back). Its place in the handoff's count is
    /// taken already: by the publish that handed it over, or by the caller for a claimed one.
    pub(crate) fn push(&self, delivery: ClaimedDelivery, body: Bytes, start_by: Instant) {
        let mut state = self.state();
        let state = &mut *state;
        let endpoint_id = delivery.endpoint.id.clone();
        let endpoint = state.endpoints.entry(endpoint_id.clone()).or_insert_with(|| {
            self.handoff.track(&endpoint_id, &delivery.endpoint.tenant);
            EndpointShare {
                tenant: delivery.endpoint.tenant.clone(),
                in_flight: 0,
                limit: self.shares.per_endpoint,
                lowered_at: None,
                queued: false,
                waiting: VecDeque::new(),
                signers: Arc::default(),
            }
        });
        if endpoint.limit < self.shares.per_endpoint && endpoint.waiting.len() >= 2 * endpoint.limit as usize {
            // Two rounds of a lowered limit wait already: this one would not start within its lease.
            self.handoff.started(&endpoint_id);
            state.given_back.push(delivery);
            return;
        }
        endpoint.waiting.push_back(Waiting { delivery, body, start_by });
        let tenant = endpoint.tenant.clone();
        if endpoint.ready() && !endpoint.queued {
            endpoint.queued = true;
            state.tenants.entry(tenant.clone()).or_default().ready.push_back(endpoint_id);
        }
        self.requeue_tenant(state, &tenant);
    }

    /// Puts `tenant` in turn if it has an endpoint in turn and room for another attempt.
    fn requeue_tenant(&self, state: &mut State, tenant: &TenantId) {
        if let Some(share) = state.tenants.get_mut(tenant)
            && !share.queued
            && !share.ready.is_empty()
            && share.in_flight < self.shares.per_tenant
        {
            share.queued = true;
            state.ready.push_back(tenant.clone());
        }
    }

    /// The next delivery to attempt now, if a slot is free for one; its slot is taken until `finish`.
    /// Deliveries past their `start_by` are given back on the way.
    pub(crate) fn next(&self, now: Instant) -> Option<Start> {
        let mut expired = Vec::new();
        let start = self.take_next(now, &mut expired);
        // The handoff's places are freed outside the queue's lock: a publish's reservation waits on the handoff's.
        for endpoint in expired.iter().chain(start.as_ref().map(|start| &start.ticket.endpoint)) {
            self.handoff.started(endpoint);
        }
        start
    }

    /// `next` under the queue's lock; the endpoints of deliveries given back on the way go in `expired`.
    fn take_next(&self, now: Instant, expired: &mut Vec<EndpointId>) -> Option<Start> {
        let mut state = self.state();
        let state = &mut *state;
        if state.in_flight >= self.shares.total {
            return None;
        }
        while let Some(tenant_id) = state.ready.pop_front() {
            let Some(tenant) = state.tenants.get_mut(&tenant_id) else { continue };
            tenant.queued = false;
            if tenant.in_flight >= self.shares.per_tenant {
                continue;
            }
            while let Some(endpoint_id) = tenant.ready.pop_front() {
                let Some(endpoint) = state.endpoints.get_mut(&endpoint_id) else { continue };
                endpoint.queued = false;
                while endpoint.ready() {
                    let Some(waiting) = endpoint.waiting.pop_front() else { break };
                    if waiting.start_by <= now {
                        expired.push(endpoint_id.clone());
                        state.given_back.push(waiting.delivery);
                        continue;
                    }
                    endpoint.in_flight += 1;
                    tenant.in_flight += 1;
                    state.in_flight += 1;
                    if endpoint.ready() {
                        endpoint.queued = true;
                        tenant.ready.push_back(endpoint_id.clone());
                    }
                    if !tenant.ready.is_empty() && tenant.in_flight < self.shares.per_tenant {
                        tenant.queued = true;
                        state.ready.push_back(tenant_id.clone());
                    }
                    return Some(Start {
                        delivery: waiting.delivery,
                        body: waiting.body,
                        signers: Arc::clone(&endpoint.signers),
                        ticket: Ticket { endpoint: endpoint_id, tenant: tenant_id, started: now },
                    });
                }
            }
        }
        None
    }

    /// Frees the slot of an attempt that ended at `now`, and moves its endpoint's limit by how it ended.
    pub(crate) fn finish(&self, ticket: Ticket, pace: Pace, now: Instant) {
        let mut state = self.state();
        let state = &mut *state;
        state.in_flight = state.in_flight.saturating_sub(1);
        if let Some(tenant) = state.tenants.get_mut(&ticket.tenant) {
            tenant.in_flight = tenant.in_flight.saturating_sub(1);
        }
        if let Some(endpoint) = state.endpoints.get_mut(&ticket.endpoint) {
            endpoint.in_flight = endpoint.in_flight.saturating_sub(1);
            match pace {
                Pace::TimedOut if endpoint.lowered_at.is_none_or(|lowered| ticket.started >= lowered) => {
                    endpoint.limit = (endpoint.limit / 2).max(1);
                    endpoint.lowered_at = Some(now);
                    self.handoff.limit(&ticket.endpoint, endpoint.limit);
                    let keep = 2 * endpoint.limit as usize;
                    if endpoint.waiting.len() > keep {
                        for waiting in endpoint.waiting.split_off(keep) {
                            self.handoff.started(&ticket.endpoint);
                            state.given_back.push(waiting.delivery);
                        }
                    }
                }
                Pace::TimedOut => {}
                Pace::Answered if endpoint.limit < self.shares.per_endpoint => {
                    endpoint.limit = (endpoint.limit * 2).min(self.shares.per_endpoint);
                    self.handoff.limit(&ticket.endpoint, endpoint.limit);
                }
                Pace::Answered => {}
            }
            if endpoint.ready() && !endpoint.queued {
                endpoint.queued = true;
                state.tenants.entry(ticket.tenant.clone()).or_default().ready.push_back(ticket.endpoint.clone());
            }
        }
        self.requeue_tenant(state, &ticket.tenant);
        if let Some(tenant) = state.tenants.get(&ticket.tenant)
            && tenant.in_flight == 0
            && tenant.ready.is_empty()
        {
            state.tenants.remove(&ticket.tenant);
        }
    }

    /// Whether an attempt could start now if a delivery were waiting for it.
    pub(crate) fn slot_free(&self) -> bool {
        self.state().in_flight < self.shares.total
    }

    /// What a claim should skip: endpoints with deliveries waiting here, throttled ones at their lowered limit,
    /// and tenants at their share. A claim takes at most `per_endpoint` of each other endpoint, so an endpoint
    /// at its full limit with none waiting gets a round ready to start as its attempts end.
    pub(crate) fn busy(&self) -> Busy {
        let state = self.state();
        let full = self.shares.per_endpoint;
        let endpoints = state
            .endpoints
            .iter()
            .filter(|(_, endpoint)| {
                !endpoint.waiting.is_empty() || (endpoint.limit < full && endpoint.in_flight >= endpoint.limit)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let tenants = state
            .tenants
            .iter()
            .filter(|(_, tenant)| tenant.in_flight >= self.shares.per_tenant)
            .map(|(id, _)| id.clone())
            .collect();
        Busy { endpoints, tenants }
    }

    /// Deliveries given back since the last call: their leases are to be released.
    pub(crate) fn take_given_back(&self) -> Vec<ClaimedDelivery> {
        std::mem::take(&mut self.state().given_back)
    }

    /// Everything still waiting, and what was given back: at shutdown, to release.
    pub(crate) fn take_all(&self) -> Vec<ClaimedDelivery> {
        let mut state = self.state();
        let state = &mut *state;
        let mut all = std::mem::take(&mut state.given_back);
        for (id, endpoint) in &mut state.endpoints {
            for waiting in endpoint.waiting.drain(..) {
                self.handoff.started(id);
                all.push(waiting.delivery);
            }
        }
        all
    }

    /// Forgets idle endpoints once many are known (a throttled one only an hour after its limit last fell), so
    /// that the map does not grow with every endpoint ever served; the handoff stops leasing to them.
    pub(crate) fn forget_idle_endpoints(&self, now: Instant) {
        let mut state = self.state();
        if state.endpoints.len() <= KEEP_ENDPOINTS {
            return;
        }
        let full = self.shares.per_endpoint;
        state.endpoints.retain(|id, endpoint| {
            let throttled = endpoint.limit < full
                && endpoint.lowered_at.is_some_and(|lowered| now.duration_since(lowered).as_secs() < 3600);
            let keep = endpoint.in_flight > 0 || !endpoint.waiting.is_empty() || throttled;
            if !keep {
                self.handoff.forget(id);
            }
            keep
        });
    }

    #[cfg(test)]
    fn limit_of(&self, endpoint: &EndpointId) -> Option<u32> {
        self.state().endpoints.get(endpoint).map(|endpoint| endpoint.limit)
    }
}

/// An endpoint's signers, prepared again only when its secrets or schemes changed.
#[derive(Default)]
pub(crate) struct SignerCache(Mutex<Option<PreparedSigners>>);

struct PreparedSigners {
    secret: String,
    previous: Option<String>,
    schemes: Vec<Scheme>,
    signers: Result<Arc<[Signer]>, SecretError>,
}

impl SignerCache {
    /// The signers for `endpoint` as it is at `now`; the error says why its secret cannot sign.
    pub(crate) fn signers(&self, endpoint: &Endpoint, now: Timestamp) -> Result<Arc<[Signer]>, SecretError> {
        let previous = endpoint.previous_secret_at(now).map(|previous| previous.secret.as_str());
        let mut prepared = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(prepared) = &*prepared
            && prepared.secret == endpoint.secret
            && prepared.previous.as_deref() == previous
            && prepared.schemes == endpoint.signing
        {
            return prepared.signers.clone();
        }
        let signers = endpoint
            .signing
            .iter()
            .map(|scheme| signer(*scheme, &endpoint.secret, previous))
            .collect::<Result<Vec<_>, _>>()
            .map(Arc::from);
        *prepared = Some(PreparedSigners {
            secret: endpoint.secret.clone(),
            previous: previous.map(str::to_owned),
            schemes: endpoint.signing.clone(),
            signers: signers.clone(),
        });
        signers
    }
}

/// How a scheme signs while a rotation's grace period lasts. Standard Webhooks carries a signature per secret, so
/// it signs with both. Heron and herald carry one, which receivers compare with the one secret they hold: they go
/// on signing with the previous secret until the grace period ends, so a receiver that changed nothing keeps
/// verifying, and one that checks both secrets never fails.
fn signer(scheme: Scheme, secret: &str, previous: Option<&str>) -> Result<Signer, SecretError> {
    match (scheme, previous) {
        (_, None) => Signer::new(scheme, secret),
        (Scheme::Standard, Some(previous)) => Signer::standard_rotating(secret, previous),
        (Scheme::Heron | Scheme::Herald, Some(previous)) => Signer::new(scheme, previous),
    }
}

/// The deliveries' ids, for a release.
pub(crate) fn leases(deliveries: &[ClaimedDelivery]) -> Vec<(DeliveryId, i64)> {
    deliveries.iter().map(|delivery| (delivery.id.clone(), delivery.lease)).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hookline_core::body::Format;
    use hookline_core::json::Escape;

    use super::*;

    const LATER: Duration = Duration::from_secs(60);

    fn queue(total: usize, per_tenant: usize, per_endpoint: u32) -> FairQueue {
        let handoff = Arc::new(Handoff::new(Duration::from_secs(50), per_endpoint, 1024, 1024));
        FairQueue::new(Shares { total, per_tenant, per_endpoint }, handoff)
    }

    fn endpoint(tenant: &str) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            id: EndpointId::generate(),
            tenant: tenant.parse().unwrap(),
            url: "http://example.com/hook".into(),
            topics: Vec::new(),
            description: String::new(),
            enabled: true,
            format: Format::Envelope,
            signing: Vec::new(),
            secret: String::new(),
            retry_schedule: None,
            headers: Vec::new(),
            previous_secret: None,
            disabled: None,
            created: Timestamp::from_unix_millis(0),
            updated: Timestamp::from_unix_millis(0),
        })
    }

    fn delivery(endpoint: &Arc<Endpoint>) -> ClaimedDelivery {
        ClaimedDelivery {
            id: DeliveryId::generate(),
            lease: 1,
            attempts: 0,
            format: Format::Envelope,
            escape: Escape::Utf8,
            event_id: hookline_core::id::EventId::generate(),
            topic: "pdf.processed".parse().unwrap(),
            event_created: Timestamp::from_unix_millis(0),
            data: Arc::from("{}"),
            meta: None,
            endpoint: Arc::clone(endpoint),
            cause: hookline_core::attempt::Cause::Schedule,
        }
    }

    fn push(queue: &FairQueue, endpoint: &Arc<Endpoint>, count: usize, start_by: Instant) {
        for _ in 0..count {
            queue.push(delivery(endpoint), Bytes::new(), start_by);
        }
    }

    /// Starts attempts until the queue gives none; the tenants of what started, in order, and the tickets.
    fn start_all(queue: &FairQueue, now: Instant) -> (Vec<String>, Vec<Ticket>) {
        let mut started = (Vec::new(), Vec::new());
        while let Some(start) = queue.next(now) {
            started.0.push(start.delivery.endpoint.tenant.to_string());
            started.1.push(start.ticket);
        }
        started
    }

    #[test]
    fn one_tenant_takes_at_most_its_share_and_slots_go_round_the_tenants() {
        let queue = queue(6, 4, 64);
        let now = Instant::now();
        let (slow, quick) = (endpoint("slow"), endpoint("quick"));
        push(&queue, &slow, 10, now + LATER);
        let (tenants, slow_tickets) = start_all(&queue, now);
        assert_eq!(tenants.len(), 4, "the slow tenant alone gets its share, no more");
        push(&queue, &quick, 10, now + LATER);
        let (tenants, quick_tickets) = start_all(&queue, now);
        assert_eq!(tenants, ["quick", "quick"], "the rest of the slots go to the other tenant");
        // A freed slot goes to the tenants in turn, whoever freed it.
        for ticket in slow_tickets.into_iter().chain(quick_tickets).take(4) {
            queue.finish(ticket, Pace::Answered, now);
        }
        let (tenants, _) = start_all(&queue, now);
        assert_eq!(tenants.len(), 4);
        assert!(tenants.windows(2).all(|pair| pair[0] != pair[1]), "taken in turn: {tenants:?}");
    }

    #[test]
    fn a_tenants_endpoints_take_turns() {
        let queue = queue(3, 3, 64);
        let now = Instant::now();
        let (first, second) = (endpoint("acme"), endpoint("acme"));
        push(&queue, &first, 5, now + LATER);
        push(&queue, &second, 5, now + LATER);
        let mut endpoints = Vec::new();
        while let Some(start) = queue.next(now) {
            endpoints.push(start.delivery.endpoint.id.clone());
        }
        assert_eq!(endpoints, [first.id.clone(), second.id.clone(), first.id.clone()]);
    }

    #[test]
    fn an_endpoint_that_keeps_timing_out_gets_fewer_slots_until_it_answers() {
        let queue = queue(1024, 1024, 8);
        let mut now = Instant::now();
        let silent = endpoint("acme");
        push(&queue, &silent, 8, now + LATER);
        let (_, round) = start_all(&queue, now);
        assert_eq!(round.len(), 8);
        now += Duration::from_secs(5);
        // A whole round timing out halves the limit once, not once per attempt.
        for ticket in round {
            queue.finish(ticket, Pace::TimedOut, now);
        }
        assert_eq!(queue.limit_of(&silent.id), Some(4));
        let mut limits = Vec::new();
        for _ in 0..4 {
            push(&queue, &silent, 8, now + LATER);
            let (_, round) = start_all(&queue, now);
            now += Duration::from_secs(5);
            for ticket in round {
                queue.finish(ticket, Pace::TimedOut, now);
            }
            limits.push(queue.limit_of(&silent.id).unwrap());
            queue.take_given_back();
        }
        assert_eq!(limits, [2, 1, 1, 1], "down to one slot, never none");
        push(&queue, &silent, 1, now + LATER);
        let (_, round) = start_all(&queue, now);
        assert_eq!(round.len(), 1);
        for ticket in round {
            queue.finish(ticket, Pace::Answered, now);
        }
        assert_eq!(queue.limit_of(&silent.id), Some(2), "an answer doubles it");
    }

    #[test]
    fn deliveries_that_cannot_start_within_their_lease_are_given_back() {
        let queue = queue(1, 1, 64);
        let now = Instant::now();
        let acme = endpoint("acme");
        push(&queue, &acme, 1, now + LATER);
        push(&queue, &acme, 2, now + Duration::from_secs(1));
        let start = queue.next(now).expect("a slot is free");
        assert!(queue.next(now).is_none(), "the only slot is taken");
        let later = now + Duration::from_secs(2);
        queue.finish(start.ticket, Pace::Answered, later);
        assert!(queue.next(later).is_none(), "both waited past their start_by");
        assert_eq!(queue.take_given_back().len(), 2);
        assert!(queue.take_all().is_empty());
    }

    #[test]
    fn a_lowered_limit_gives_back_what_would_wait_too_long() {
        let queue = queue(1024, 1024, 4);
        let now = Instant::now();
        let silent = endpoint("acme");
        push(&queue, &silent, 20, now + LATER);
        let (_, round) = start_all(&queue, now);
        assert_eq!(round.len(), 4);
        queue.finish(round.into_iter().next().unwrap(), Pace::TimedOut, now);
        assert_eq!(queue.limit_of(&silent.id), Some(2));
        assert_eq!(queue.take_given_back().len(), 12, "two rounds of the new limit are kept");
        push(&queue, &silent, 1, now + LATER);
        assert_eq!(queue.take_given_back().len(), 1, "and no more are taken");
        assert_eq!(queue.take_all().len(), 4);
    }

    #[test]
    fn busy_are_endpoints_waiting_or_full_and_tenants_at_their_share() {
        let queue = queue(100, 2, 64);
        let now = Instant::now();
        let (first, second, other) = (endpoint("slow"), endpoint("slow"), endpoint("quick"));
        push(&queue, &first, 1, now + LATER);
        push(&queue, &second, 1, now + LATER);
        push(&queue, &other, 1, now + LATER);
        let (_, tickets) = start_all(&queue, now);
        assert_eq!(tickets.len(), 3);
        let busy = queue.busy();
        assert_eq!(
            busy.tenants,
            std::slice::from_ref(&first.tenant),
            "the slow tenant is at its share, the quick one has room"
        );
        assert!(busy.endpoints.is_empty(), "no endpoint is at its limit or has deliveries waiting");
        push(&queue, &other, 1, now + LATER);
        assert_eq!(queue.busy().endpoints, std::slice::from_ref(&other.id));
    }

    /// The headers `signers` put on one request.
    fn signed(signers: &[Signer]) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        for signer in signers {
            signer.sign("evt_1", 1_700_000_000, b"{}", &mut headers);
        }
        headers
    }

    #[test]
    fn during_a_grace_period_standard_signs_with_both_secrets_and_heron_with_the_previous_one() {
        let (old, new) = ("whsec_b2xkIHNlY3JldCBvbGQgc2VjcmV0", "whsec_bmV3IHNlY3JldCBuZXcgc2VjcmV0");
        let until = Timestamp::from_unix_millis(10_000);
        let rotating = Endpoint {
            signing: vec![Scheme::Heron, Scheme::Herald, Scheme::Standard],
            secret: new.into(),
            previous_secret: Some(hookline_store::PreviousSecret { secret: old.into(), until }),
            ..Arc::unwrap_or_clone(endpoint("acme"))
        };
        let only = |secret: &str| {
            let endpoint = Endpoint { secret: secret.into(), previous_secret: None, ..rotating.clone() };
            signed(&SignerCache::default().signers(&endpoint, until).unwrap())
        };
        let (old_alone, new_alone) = (only(old), only(new));
        let cache = SignerCache::default();
        let during = signed(&cache.signers(&rotating, Timestamp::from_unix_millis(9_999)).unwrap());
        let value = |headers: &[(&str, String)], name: &str| {
            headers.iter().find(|(header, _)| *header == name).map(|(_, value)| value.clone()).unwrap()
        };
        for header in ["heron-signature", "x-herald-signature"] {
            assert_eq!(value(&during, header), value(&old_alone, header), "{header} keeps the old secret");
        }
        let both = format!("{} {}", value(&new_alone, "webhook-signature"), value(&old_alone, "webhook-signature"));
        assert_eq!(value(&during, "webhook-signature"), both);
        // The cache notices the grace period's end by itself.
        assert_eq!(signed(&cache.signers(&rotating, until).unwrap()), new_alone);
        assert_ne!(old_alone, new_alone);
    }
}

//! Publishing on the embedded store: one write on the writer thread stores the event and its deliveries, and
//! leases those the local dispatcher has room for to it, to be handed over once the group commits.

use std::sync::{Arc, LazyLock};

use hookline_core::id::DeliveryId;
use rusqlite::{Connection, params_from_iter};

use super::{Event, Published, event_cells, replayed};
use crate::deliveries::{self, ClaimedDelivery, NewDelivery, lease_token};
use crate::endpoints::{Endpoint, EndpointCache, TARGETS};
use crate::rows::values_statement;
use crate::sql::{read_flag, ready};
use crate::sqlite::engine::Isolation;
use crate::sqlite::{Local, SqliteSql};
use crate::tenants::tenant_exists;
use crate::{HandoffSink, SqliteBackend, StoreError};

/// The statements a publish writes with, made from the events' and deliveries' column lists.
static TARGET_IDS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT e.id {TARGETS} AND t.topic = ?1 AND e.tenant_id = ?2"));
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| values_statement("events", &super::COLUMNS, ""));
static INSERT_DELIVERY: LazyLock<String> =
    LazyLock::new(|| values_statement("deliveries", &deliveries::NEW_COLUMNS, ""));

/// Publishes `event`. Deliveries the local dispatcher has room for are written leased to it and handed over
/// once committed; the others are written due.
pub(crate) async fn publish(store: &SqliteBackend, event: Event) -> Result<Option<Published>, StoreError> {
    let local = Arc::clone(&store.local);
    let endpoints = Arc::clone(&store.endpoints);
    let handoff = store.handoff();
    let returned = handoff.clone();
    let (published, _) = store
        .engine
        .write_as(
            Isolation::ChecksFirst,
            move |connection| publish_event(connection, &local, &endpoints, handoff.as_deref(), event),
            move |answer, committed| {
                let Some(handoff) = returned else { return };
                if let Ok((_, handed)) = answer {
                    let handed = std::mem::take(handed);
                    if committed {
                        handoff.hand(handed);
                    } else {
                        handoff.unreserve(&mut handed.iter().map(|delivery| &delivery.endpoint.id));
                    }
                }
            },
        )
        .await?;
    Ok(published)
}

/// The publish write: the event, and a delivery per subscribed endpoint. Returns the deliveries leased to
/// `handoff`, whose places are kept until the caller hands them over (or gives the places back).
fn publish_event(
    connection: &Connection,
    local: &Local,
    endpoints: &EndpointCache,
    handoff: Option<&dyn HandoffSink>,
    event: Event,
) -> Result<(Option<Published>, Vec<ClaimedDelivery>), StoreError> {
    let sql = &mut SqliteSql::writer(connection, local);
    if !ready(tenant_exists(sql, &event.tenant))? {
        return Ok((None, Vec::new()));
    }
    if let Some(key) = &event.idempotency_key
        && let Some(existing) = ready(replayed(sql, &event.tenant, key))?
    {
        return Ok((Some(existing), Vec::new()));
    }
    let topic_known = ready(crate::sql::one(
        sql,
        "SELECT EXISTS (SELECT 1 FROM topics WHERE name = $1)",
        &[&event.topic.as_str()],
        read_flag,
    ))?;
    if !topic_known {
        return Err(StoreError::UnknownTopic { name: event.topic.to_string() });
    }
    // Every read and check comes before the first change: the write runs without a savepoint of its own.
    let targets = connection
        .prepare_cached(&TARGET_IDS)?
        .query_map([event.topic.as_str(), event.tenant.as_str()], |row| row.get::<_, String>(0))?
        .filter(|id| id.as_ref().map_or(true, |id| event.route.takes(id)))
        .map(|id| endpoints.endpoint(sql, local.endpoints_generation(), &id?))
        .collect::<Result<Vec<_>, _>>()?;
    connection.prepare_cached(&INSERT_EVENT)?.execute(params_from_iter(event_cells(&event)))?;
    let leased = match handoff {
        Some(handoff) => handoff.reserve(&mut targets.iter().map(|endpoint| &endpoint.id)),
        None => vec![false; targets.len()],
    };
    let inserted = insert_deliveries(connection, &event, &targets, &leased, handoff);
    let handed = match inserted {
        Ok(handed) => handed,
        Err(error) => {
            if let Some(handoff) = handoff {
                let reserved = targets.iter().zip(&leased).filter(|(_, leased)| **leased);
                handoff.unreserve(&mut reserved.map(|(endpoint, _)| &endpoint.id));
            }
            return Err(error);
        }
    };
    let due = (targets.len() - handed.len()) as u64;
    if due > 0 {
        // A claim is a write queued behind this one, so it finds these deliveries committed.
        local.work_due();
    }
    Ok((Some(Published { event, deliveries: targets.len() as u64, replayed: false, due }), handed))
}

/// Writes a delivery of `event` to each of `targets`: leased to `handoff` where `leased` says so (and returned,
/// ready to send), due now otherwise.
fn insert_deliveries(
    connection: &Connection,
    event: &Event,
    targets: &[Arc<Endpoint>],
    leased: &[bool],
    handoff: Option<&dyn HandoffSink>,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let created = event.created.unix_millis();
    let lease = lease_token();
    let lease_until =
        handoff.map(|handoff| event.created.saturating_add(handoff.lease_length()).unix_millis()).unwrap_or(created);
    let mut insert = connection.prepare_cached(&INSERT_DELIVERY)?;
    let mut handed = Vec::new();
    let mut shared: Option<(Arc<str>, Option<Arc<str>>)> = None;
    for (endpoint, leased) in targets.iter().zip(leased) {
        let id = DeliveryId::generate_at(event.created);
        let escape = hookline_core::body::escape_for(&endpoint.signing);
        let (next_attempt_at, lease) = if *leased { (lease_until, Some(lease)) } else { (created, None) };
        let delivery = NewDelivery {
            id: id.as_str(),
            tenant: event.tenant.as_str(),
            event: event.id.as_str(),
            endpoint: endpoint.id.as_str(),
            topic: event.topic.as_str(),
            format: endpoint.format.as_str(),
            escape,
            next_attempt_at,
            lease,
            created,
            origin: event.route.origin,
        };
        insert.execute(params_from_iter(delivery.cells()))?;
        if let Some(lease) = lease {
            let (data, meta) = shared
                .get_or_insert_with(|| (Arc::from(event.data.as_str()), event.meta.as_deref().map(Arc::from)))
                .clone();
            handed.push(ClaimedDelivery {
                id,
                lease,
                attempts: 0,
                format: endpoint.format,
                escape,
                event_id: event.id.clone(),
                topic: event.topic.clone(),
                event_created: event.created,
                data,
                meta,
                endpoint: Arc::clone(endpoint),
                cause: event.route.origin.first_cause(),
            });
        }
    }
    Ok(handed)
}

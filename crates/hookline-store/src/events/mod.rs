//! Events: what a platform publishes, stored once with one delivery per enabled endpoint of its tenant
//! subscribed to its topic, in one transaction; idempotent per tenant by key.
//!
//! Publishing is where the backends differ most, so each writes it its own way beside the other: the embedded
//! store on its writer thread, handing deliveries straight to the local dispatcher (`sqlite.rs`); PostgreSQL in
//! batches of publishes written with set-based statements (`postgres.rs`). Reads are shared.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use hookline_core::attempt::Origin;
use hookline_core::id::{EndpointId, EventId, TenantId};
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;

use crate::rows::{Cell, Column};
use crate::sql::{Columns, ListQuery, PageRequest, Sql, in_id_list, json_list, millis, parse_field, read_text};
use crate::{Backend, Page, Store, StoreError};

#[derive(Clone, Debug)]
pub struct Event {
    pub id: EventId,
    pub tenant: TenantId,
    pub topic: TopicName,
    pub created: Timestamp,
    /// Canonical compact JSON, as published.
    pub data: String,
    pub meta: Option<String>,
    pub idempotency_key: Option<String>,
    /// Where a new event goes; an event read back has the default (every subscribed endpoint).
    pub route: Route,
}

/// Which endpoints a new event makes deliveries for, and why.
#[derive(Clone, Debug)]
pub struct Route {
    /// Only this endpoint (a test event), if it is enabled and subscribed to the topic; else every one that is.
    pub only: Option<EndpointId>,
    /// What the deliveries say made them.
    pub origin: Origin,
}

impl Default for Route {
    fn default() -> Route {
        Route { only: None, origin: Origin::Publish }
    }
}

impl Route {
    /// Whether the event goes to `endpoint`, one of those subscribed to its topic.
    pub(crate) fn takes(&self, endpoint: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.as_str() == endpoint)
    }
}

/// A validated event to store and fan out.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub tenant: TenantId,
    pub topic: TopicName,
    pub data: String,
    pub meta: Option<String>,
    pub idempotency_key: Option<String>,
    pub route: Route,
}

/// The answer to a publish: the event, how many deliveries it made, and whether it already existed.
#[derive(Clone, Debug)]
pub struct Published {
    pub event: Event,
    pub deliveries: u64,
    pub replayed: bool,
    /// How many of the deliveries were written due, for a dispatcher's claim to find; the others went straight
    /// to this process's dispatcher (see `HandoffSink`).
    pub due: u64,
}

/// Filters for listing events.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub topic: Option<TopicName>,
    pub after: Option<Timestamp>,
}

/// An event's columns, in the order `event_row` reads them.
macro_rules! event_columns {
    () => {
        "id, tenant_id, topic, created_at, data, meta, idempotency_key"
    };
}
pub(crate) use event_columns;

const SELECT_EVENT: &str = concat!("SELECT ", event_columns!(), " FROM events");

/// The columns a new event is inserted with, in the order `event_cells` gives them (`event_columns!` reads
/// them in the same order).
pub(crate) const COLUMNS: [Column; 7] = [
    Column::text("id"),
    Column::text("tenant_id"),
    Column::text("topic"),
    Column::integer("created_at"),
    Column::text("data"),
    Column::text("meta"),
    Column::text("idempotency_key"),
];

/// A new event's values for `COLUMNS`.
pub(crate) fn event_cells(event: &Event) -> [Cell<'_>; COLUMNS.len()] {
    [
        Cell::Text(Some(event.id.as_str())),
        Cell::Text(Some(event.tenant.as_str())),
        Cell::Text(Some(event.topic.as_str())),
        Cell::Integer(Some(event.created.unix_millis())),
        Cell::Text(Some(&event.data)),
        Cell::Text(event.meta.as_deref()),
        Cell::Text(event.idempotency_key.as_deref()),
    ]
}

pub(crate) fn event_row(row: &dyn Columns) -> Result<Event, StoreError> {
    Ok(Event {
        id: parse_field(&row.text(0)?)?,
        tenant: parse_field(&row.text(1)?)?,
        topic: parse_field(&row.text(2)?)?,
        created: millis(row, 3)?,
        data: row.text(4)?,
        meta: row.optional_text(5)?,
        idempotency_key: row.optional_text(6)?,
        route: Route::default(),
    })
}

/// Events already made with an idempotency key, each with how many deliveries it made, as replayed answers
/// (`replayed_row`); each publish says which keys (`WHERE` follows).
macro_rules! replayed_select {
    () => {
        concat!(
            "SELECT ",
            $crate::events::event_columns!(),
            ", (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = events.id) FROM events WHERE "
        )
    };
}
pub(crate) use replayed_select;

/// A row of `replayed_select!`.
pub(crate) fn replayed_row(row: &dyn Columns) -> Result<Published, StoreError> {
    let deliveries = row.integer(COLUMNS.len())?.max(0) as u64;
    Ok(Published { event: event_row(row)?, deliveries, replayed: true, due: 0 })
}

/// The event a publish with this idempotency key already made for the tenant, as a replayed answer.
pub(crate) async fn replayed(
    sql: &mut impl Sql,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<Published>, StoreError> {
    let statement = concat!(replayed_select!(), "tenant_id = $1 AND idempotency_key = $2");
    sql.first(statement, &[&tenant.as_str(), &key], replayed_row).await
}

/// Removes events with their deliveries and attempts, children first: for retention and for a deleted tenant's
/// rows, a batch per write.
pub(crate) async fn remove_events(sql: &mut impl Sql, ids: &[String]) -> Result<crate::Purged, StoreError> {
    if ids.is_empty() {
        return Ok(crate::Purged::default());
    }
    let listed = in_id_list(sql.dialect(), 1);
    let events = json_list(ids)?;
    // The deliveries' ids first, so that each delete finds its rows through its own key; a delete of attempts
    // joined to deliveries was planned on PostgreSQL as a scan of every attempt.
    let deliveries =
        sql.query(&format!("SELECT id FROM deliveries WHERE event_id {listed}"), &[&events], read_text).await?;
    let mut removed = crate::Purged::default();
    if !deliveries.is_empty() {
        let deliveries = json_list(&deliveries)?;
        removed.attempts =
            sql.execute(&format!("DELETE FROM attempts WHERE delivery_id {listed}"), &[&deliveries]).await?;
        removed.deliveries = sql.execute(&format!("DELETE FROM deliveries WHERE id {listed}"), &[&deliveries]).await?;
    }
    removed.events = sql.execute(&format!("DELETE FROM events WHERE id {listed}"), &[&events]).await?;
    Ok(removed)
}

impl Store {
    /// Stores an event and one delivery per enabled endpoint of its tenant subscribed to its topic, in one
    /// transaction. With an idempotency key already used by the tenant, returns the original event instead.
    /// `None` when the tenant does not exist.
    pub async fn publish(&self, new: NewEvent) -> Result<Option<Published>, StoreError> {
        let now = self.clock.now();
        let NewEvent { tenant, topic, data, meta, idempotency_key, route } = new;
        let id = EventId::generate_at(now);
        let event = Event { id, tenant, topic, created: now, data, meta, idempotency_key, route };
        match &self.backend {
            Backend::Sqlite(backend) => sqlite::publish(backend, event).await,
            Backend::Postgres(backend) => backend.publisher.publish(event).await,
        }
    }

    pub async fn list_events(
        &self,
        tenant: TenantId,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let query = list_query(&tenant, filter, page.cursor);
        reading!(self, |sql| query.page(sql, page.limit, event_row, |event| event.id.to_string()).await)
    }

    pub async fn get_event(&self, tenant: TenantId, id: EventId) -> Result<Option<Event>, StoreError> {
        reading!(self, |sql| {
            let statement = concat!("SELECT ", event_columns!(), " FROM events WHERE id = $1 AND tenant_id = $2");
            sql.first(statement, &[&id.as_str(), &tenant.as_str()], event_row).await
        })
    }
}

/// A page of a tenant's events, newest first, through `events_by_tenant` or, for a topic, `events_by_topic`.
fn list_query(tenant: &TenantId, filter: EventFilter, cursor: Option<String>) -> ListQuery {
    let mut query = ListQuery::new(SELECT_EVENT, tenant);
    query.filter("id", "<", cursor);
    query.filter("topic", "=", filter.topic.map(|topic| topic.to_string()));
    query.filter("created_at", ">", filter.after.map(|after| after.unix_millis()));
    // Ids begin with their time: this bounds the walk down the index where the events after `after` end, which
    // the condition on the time alone does not.
    let first_after =
        filter.after.map(|after| EventId::first_at(after.saturating_add(std::time::Duration::from_millis(1))));
    query.filter("id", ">=", first_after.map(|id| id.to_string()));
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_in_the_order_they_are_inserted() {
        assert_eq!(event_columns!(), crate::rows::column_list(&COLUMNS));
    }

    #[test]
    fn every_filter_of_the_events_list_reads_an_index_in_order_within_bounds() {
        let connection = crate::sqlite::migrated_in_memory();
        let topic = || Some("pdf.processed".parse::<TopicName>().unwrap());
        let after = || Some(Timestamp::from_unix_millis(1_700_000_000_000));
        let cases = [
            (EventFilter::default(), "USING INDEX events_by_tenant (tenant_id=?)"),
            (EventFilter { topic: topic(), after: None }, "USING INDEX events_by_topic (tenant_id=? AND topic=?)"),
            (EventFilter { topic: None, after: after() }, "USING INDEX events_by_tenant (tenant_id=? AND id>?)"),
            (EventFilter { topic: topic(), after: after() }, "events_by_topic (tenant_id=? AND topic=? AND id>?)"),
        ];
        for (filter, expected) in cases {
            let statement = list_query(&"acme".parse::<TenantId>().unwrap(), filter.clone(), None)
                .statement(crate::sql::Dialect::Sqlite, true);
            let mut explain = connection.prepare(&format!("EXPLAIN QUERY PLAN {statement}")).unwrap();
            let values = vec!["x"; explain.parameter_count()];
            let plan: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(values), |row| row.get(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(plan.iter().any(|step| step.contains(expected)), "{filter:?} should use {expected}: {plan:?}");
            assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{filter:?} sorts: {plan:?}");
        }
    }
}

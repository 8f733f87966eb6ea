//! The delivery queue: one delivery per event and endpoint, leased to a dispatcher for each attempt, moved on by
//! the attempt's outcome (done, or due again at the retry's time), released untouched at shutdown, cancelled
//! when its endpoint is deleted, and sent again by hand.
//!
//! Listing, reading, retrying, cancelling and finding the next due time are shared. Claiming, recording outcomes
//! and releasing are the dispatcher's hot path and are written for each database (`sqlite.rs`, `postgres.rs`):
//! SQLite runs them on its one writer, PostgreSQL as set-based statements that several nodes run at once.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::sync::Arc;

use hookline_core::attempt::{Cause, Origin};
use hookline_core::body::Format;
use hookline_core::id::{DeliveryId, EndpointId, EventId, TenantId};
use hookline_core::json::Escape;
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;

use crate::attempts::{Attempt, attempt_at, attempt_columns};
use crate::endpoints::{Endpoint, TARGETS};
use crate::rows::{Cell, Column};
use crate::sql::{
    Columns, ListQuery, PageRequest, Sql, in_id_list, json_ids, json_list, millis, narrow, paginate, parse_field,
    read_text,
};
use crate::{Backend, Page, Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            "cancelled" => Some(DeliveryStatus::Cancelled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant: TenantId,
    pub event: EventId,
    pub endpoint: EndpointId,
    pub topic: TopicName,
    pub format: Format,
    pub escape: Escape,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// Why it was made.
    pub origin: Origin,
}

/// Filters for listing deliveries.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub endpoint: Option<EndpointId>,
    pub event: Option<EventId>,
    pub status: Option<DeliveryStatus>,
    pub topic: Option<TopicName>,
    /// What the last attempt's answer was.
    pub answer: Option<Answer>,
    /// Made at or after this time…
    pub since: Option<Timestamp>,
    /// …and before this one.
    pub until: Option<Timestamp>,
}

/// A class of the last attempt's answer, as the delivery log filters by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status of the class (2 for 2xx … 5 for 5xx).
    Class(u16),
    /// An attempt was made and got no HTTP answer (a timeout, a refused connection, a blocked address).
    None,
}

impl Answer {
    /// `2xx`, `3xx`, `4xx`, `5xx` or `none`.
    pub fn parse(text: &str) -> Option<Answer> {
        match text {
            "none" => Some(Answer::None),
            "2xx" | "3xx" | "4xx" | "5xx" => Some(Answer::Class(u16::from(text.as_bytes()[0] - b'0'))),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Class(2) => "2xx",
            Answer::Class(3) => "3xx",
            Answer::Class(4) => "4xx",
            Answer::Class(_) => "5xx",
            Answer::None => "none",
        }
    }

    /// Whether a delivery whose last attempt answered `status` (and made `attempts`) is of this class.
    pub fn holds(self, status: Option<u16>, attempts: u32) -> bool {
        match (self, status) {
            (Answer::Class(class), Some(status)) => status / 100 == class,
            (Answer::None, None) => attempts > 0,
            _ => false,
        }
    }
}

impl DeliveryFilter {
    /// Whether the filters a walk applies (status, topic, answer) hold for a delivery.
    fn keeps(&self, status: &str, topic: &str, last_status: Option<u16>, attempts: u32) -> bool {
        self.status.is_none_or(|wanted| wanted.as_str() == status)
            && self.topic.as_ref().is_none_or(|wanted| wanted.as_str() == topic)
            && self.answer.is_none_or(|wanted| wanted.holds(last_status, attempts))
    }

    /// The ids a time window bounds the list to: every index of the list is ordered by id, and ids by time.
    fn id_bounds(&self) -> (Option<String>, Option<String>) {
        let at = |time: Option<Timestamp>| time.map(|time| DeliveryId::first_at(time).to_string());
        (at(self.since), at(self.until))
    }
}

/// A delivery the dispatcher has leased, with everything needed to send it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: DeliveryId,
    pub lease: i64,
    pub attempts: u32,
    pub format: Format,
    pub escape: Escape,
    pub event_id: EventId,
    pub topic: TopicName,
    pub event_created: Timestamp,
    /// Shared by the deliveries of an event that one publish hands over; a claim reads it for each delivery.
    pub data: Arc<str>,
    pub meta: Option<Arc<str>>,
    pub endpoint: Arc<Endpoint>,
    /// What makes this attempt.
    pub cause: Cause,
}

/// What a dispatcher asks of the queue: see `Store::claim_due`.
#[derive(Clone, Debug)]
pub struct Claim {
    pub now: Timestamp,
    pub lease_until: Timestamp,
    pub limit: u32,
    pub per_endpoint: u32,
    pub busy: Busy,
}

/// What a dispatcher has no room for now: a claim skips their deliveries, and the next due time ignores them.
#[derive(Clone, Debug, Default)]
pub struct Busy {
    /// Endpoints at their concurrency limit, or with claimed deliveries still waiting for a slot.
    pub endpoints: Vec<EndpointId>,
    /// Tenants at their share of the dispatcher's slots: none of their endpoints is claimed from.
    pub tenants: Vec<TenantId>,
}

impl Busy {
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && self.tenants.is_empty()
    }
}

/// What a retry by hand did, with the delivery as it is after it.
#[derive(Clone, Debug)]
pub enum Retried {
    /// Due now: a dispatcher sends it.
    Queued(Delivery),
    /// An attempt is under way (its lease holds): that attempt is the retry.
    InFlight(Delivery),
    /// Its endpoint was deleted (the delivery is cancelled, or is about to be): nothing would send it.
    EndpointDeleted(Delivery),
}

impl Retried {
    pub fn delivery(&self) -> &Delivery {
        match self {
            Retried::Queued(delivery) | Retried::InFlight(delivery) | Retried::EndpointDeleted(delivery) => delivery,
        }
    }
}

/// What to do with a delivery after an attempt.
#[derive(Clone, Debug)]
pub enum NextStep {
    Done(DeliveryStatus),
    RetryAt(Timestamp),
}

/// One attempt's outcome, to record and to move its delivery on.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    pub delivery: DeliveryId,
    /// The delivery's endpoint as the attempt found it, its event and topic: what its health and the
    /// operational events it may cause need.
    pub endpoint: Arc<Endpoint>,
    pub event: EventId,
    pub topic: TopicName,
    pub lease: i64,
    pub attempt: Attempt,
    pub next: NextStep,
}

/// A delivery's columns, in the order `delivery_row` reads them.
macro_rules! delivery_columns {
    () => {
        "id, tenant_id, event_id, endpoint_id, topic, status, attempts, next_attempt_at, last_status, last_error, \
         created_at, updated_at, format, text_escape, origin"
    };
}

const SELECT_DELIVERY: &str = concat!("SELECT ", delivery_columns!(), " FROM deliveries");

/// The columns a new delivery is inserted with, in the order `NewDelivery::cells` gives them.
pub(crate) const NEW_COLUMNS: [Column; 14] = [
    Column::text("id"),
    Column::text("tenant_id"),
    Column::text("event_id"),
    Column::text("endpoint_id"),
    Column::text("topic"),
    Column::text("format"),
    Column::text("text_escape"),
    Column::text("status"),
    Column::integer("next_attempt_at"),
    Column::integer("lease"),
    Column::integer("created_at"),
    Column::integer("updated_at"),
    Column::text("origin"),
    Column::text("cause"),
];

/// A delivery a publish makes: pending, due at `next_attempt_at`, leased to the local dispatcher if `lease`.
pub(crate) struct NewDelivery<'a> {
    pub(crate) id: &'a str,
    pub(crate) tenant: &'a str,
    pub(crate) event: &'a str,
    pub(crate) endpoint: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) format: &'a str,
    pub(crate) escape: Escape,
    pub(crate) next_attempt_at: i64,
    pub(crate) lease: Option<i64>,
    pub(crate) created: i64,
    pub(crate) origin: Origin,
}

impl<'a> NewDelivery<'a> {
    /// Its values for `NEW_COLUMNS`.
    pub(crate) fn cells(&self) -> [Cell<'a>; NEW_COLUMNS.len()] {
        [
            Cell::Text(Some(self.id)),
            Cell::Text(Some(self.tenant)),
            Cell::Text(Some(self.event)),
            Cell::Text(Some(self.endpoint)),
            Cell::Text(Some(self.topic)),
            Cell::Text(Some(self.format)),
            Cell::Text(Some(escape_name(self.escape))),
            Cell::Text(Some(DeliveryStatus::Pending.as_str())),
            Cell::Integer(Some(self.next_attempt_at)),
            Cell::Integer(self.lease),
            Cell::Integer(Some(self.created)),
            Cell::Integer(Some(self.created)),
            Cell::Text(Some(self.origin.as_str())),
            Cell::Text(stored_cause(self.origin.first_cause())),
        ]
    }
}

/// A claimed delivery's own columns and its event's (`d` and `v`), in the order `claimed_with` reads them.
macro_rules! claimed_delivery_columns {
    () => {
        "d.id, d.lease, d.attempts, d.format, d.text_escape, v.id, v.topic, v.created_at, v.data, v.meta, d.cause"
    };
}
pub(crate) use claimed_delivery_columns;

/// How many columns `claimed_delivery_columns!` has: the endpoint's, when a query joins them, come after.
pub(crate) const CLAIMED_DELIVERY_WIDTH: usize = 11;

/// A cause as a delivery stores it: `NULL` for the schedule, which is what an outcome leaves.
pub(crate) fn stored_cause(cause: Cause) -> Option<&'static str> {
    (cause != Cause::Schedule).then_some(cause.as_str())
}

fn parse_origin(text: &str) -> Result<Origin, StoreError> {
    Origin::parse(text).ok_or_else(|| StoreError::Corrupt { detail: format!("delivery origin {text:?}") })
}

fn parse_status(text: &str) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::parse(text).ok_or_else(|| StoreError::Corrupt { detail: format!("delivery status {text:?}") })
}

pub(crate) fn escape_name(escape: Escape) -> &'static str {
    match escape {
        Escape::Ascii => "ascii",
        Escape::Utf8 => "utf8",
    }
}

fn parse_escape(text: &str) -> Result<Escape, StoreError> {
    match text {
        "ascii" => Ok(Escape::Ascii),
        "utf8" => Ok(Escape::Utf8),
        other => Err(StoreError::Corrupt { detail: format!("escape style {other:?}") }),
    }
}

fn delivery_row(row: &dyn Columns) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: parse_field(&row.text(0)?)?,
        tenant: parse_field(&row.text(1)?)?,
        event: parse_field(&row.text(2)?)?,
        endpoint: parse_field(&row.text(3)?)?,
        topic: parse_field(&row.text(4)?)?,
        status: parse_status(&row.text(5)?)?,
        attempts: narrow(row.integer(6)?, "attempt count")?,
        next_attempt: row.optional_integer(7)?.map(Timestamp::from_unix_millis),
        last_status: row.optional_integer(8)?.map(|status| narrow(status, "status code")).transpose()?,
        last_error: row.optional_text(9)?,
        created: millis(row, 10)?,
        updated: millis(row, 11)?,
        format: parse_field(&row.text(12)?)?,
        escape: parse_escape(&row.text(13)?)?,
        origin: parse_origin(&row.text(14)?)?,
    })
}

/// How many columns `delivery_columns!` has.
const DELIVERY_WIDTH: usize = 15;

fn delivery_and_attempt(row: &dyn Columns) -> Result<(Delivery, Option<Attempt>), StoreError> {
    Ok((delivery_row(row)?, attempt_at(row, DELIVERY_WIDTH)?))
}

/// The columns of `claimed_delivery_columns!`, for a delivery to `endpoint`.
pub(crate) fn claimed_with(row: &dyn Columns, endpoint: Arc<Endpoint>) -> Result<ClaimedDelivery, StoreError> {
    Ok(ClaimedDelivery {
        id: parse_field(&row.text(0)?)?,
        lease: row.integer(1)?,
        attempts: narrow(row.integer(2)?, "attempt count")?,
        format: parse_field(&row.text(3)?)?,
        escape: parse_escape(&row.text(4)?)?,
        event_id: parse_field(&row.text(5)?)?,
        topic: parse_field(&row.text(6)?)?,
        event_created: millis(row, 7)?,
        data: Arc::from(row.text(8)?),
        meta: row.optional_text(9)?.map(Arc::from),
        endpoint,
        cause: row
            .optional_text(10)?
            .map(|cause| crate::attempts::parse_cause(&cause))
            .transpose()?
            .unwrap_or(Cause::Schedule),
    })
}

/// A fresh lease token. Several nodes claim from one database, so tokens are random rather than counted.
pub(crate) fn lease_token() -> i64 {
    rand::random::<i64>()
}

/// The status and next due time (unix milliseconds) a delivery takes after an attempt.
pub(crate) fn next_state(next: &NextStep) -> (&'static str, Option<i64>) {
    match next {
        NextStep::Done(status) => (status.as_str(), None),
        NextStep::RetryAt(when) => (DeliveryStatus::Pending.as_str(), Some(when.unix_millis())),
    }
}

/// Cancels up to `batch` pending deliveries of a deleted endpoint; their log stays. Fewer than `batch` means none
/// is left.
pub(crate) async fn cancel_for_endpoint(
    sql: &mut impl Sql,
    endpoint: &str,
    now: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    sql.execute(
        "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, lease = NULL,
            last_error = 'endpoint deleted', updated_at = $1
         WHERE id IN (SELECT id FROM deliveries WHERE endpoint_id = $2 AND status = 'pending' LIMIT $3)",
        &[&now.unix_millis(), &endpoint, &i64::from(batch)],
    )
    .await
}

/// A page of a tenant's deliveries, newest first. Most lists are read through an index that holds their rows and
/// only them (see `list_query`). The pending and the succeeded have none: every delivery would enter and leave such
/// an index, and the publish and outcome paths would pay for it (with one per status, a fifth of the fan-out-10
/// throughput, measured). So those two read at most `scan` deliveries for a page:
/// - the pending, when no more than `scan` of the tenant's or endpoint's wait (the usual case: those being sent and
///   those waiting for a retry), are read whole through the per-endpoint due index and sorted: the page is full;
/// - otherwise, and for the succeeded, the tenant's or endpoint's deliveries are walked newest first, `scan` of
///   them, keeping those of the status: the page may then hold fewer than its limit, even none, with a cursor that
///   goes on from the last delivery walked.
async fn list(
    sql: &mut impl Sql,
    tenant: &TenantId,
    filter: DeliveryFilter,
    page: PageRequest,
    scan: u32,
) -> Result<Page<Delivery>, StoreError> {
    let cursor_of = |delivery: &Delivery| delivery.id.to_string();
    // An event's deliveries are few: every filter is a condition of the one read. Otherwise a topic or an answer,
    // or the pending and the succeeded, have no index of their own: they are walked.
    let walked = filter.event.is_none()
        && (filter.topic.is_some()
            || filter.answer.is_some()
            || matches!(filter.status, Some(DeliveryStatus::Pending | DeliveryStatus::Succeeded)));
    if !walked {
        return list_query(tenant, filter, page.cursor).page(sql, page.limit, delivery_row, cursor_of).await;
    }
    let bounded = filter.since.is_some() || filter.until.is_some();
    if filter.status == Some(DeliveryStatus::Pending) && filter.topic.is_none() && filter.answer.is_none() && !bounded {
        // How many wait, up to `scan` and one, counted in the due index alone (and regardless of the cursor, so
        // that every page of a list is read the same way): a pending row read whole is one random page of the table.
        let endpoint = filter.endpoint.as_ref().map(|endpoint| endpoint.to_string());
        let cap = i64::from(scan) + 1;
        let counted = match &endpoint {
            Some(endpoint) => {
                let values: [&dyn crate::sql::Value; 3] = [&endpoint.as_str(), &tenant.as_str(), &cap];
                sql.query(pending_count(true), &values, |_| Ok(())).await?
            }
            None => sql.query(pending_count(false), &[&tenant.as_str(), &cap], |_| Ok(())).await?,
        };
        if counted.len() <= scan as usize {
            let query = pending_query(tenant, filter.endpoint.as_ref(), page.cursor.clone());
            let mut waiting = query.rows(sql, cap, false, delivery_row).await?;
            // More may have come between the two reads: then they are walked, as a part of them could be missing.
            if waiting.len() <= scan as usize {
                waiting.sort_unstable_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
                return Ok(paginate(waiting, page.limit, cursor_of));
            }
        }
    }
    walk(sql, tenant, &filter, page, scan).await
}

/// The list of a tenant's (or an endpoint's) deliveries with an index of their own: the tenant's
/// (`deliveries_by_tenant`), an endpoint's, an event's, the failed or cancelled ones of either
/// (`deliveries_failed_by_tenant`, …).
fn list_query(tenant: &TenantId, filter: DeliveryFilter, cursor: Option<String>) -> ListQuery {
    let mut query = ListQuery::new(SELECT_DELIVERY, tenant);
    query.filter("id", "<", cursor);
    let (since, until) = filter.id_bounds();
    query.filter("id", ">=", since);
    query.filter("id", "<", until);
    query.filter("endpoint_id", "=", filter.endpoint.map(|endpoint| endpoint.to_string()));
    query.filter("event_id", "=", filter.event.map(|event| event.to_string()));
    query.filter_literal("status", filter.status.map(|status| status.as_str()));
    // Only with an event (see `list`): its few deliveries are filtered as they are read.
    query.filter("topic", "=", filter.topic.map(|topic| topic.to_string()));
    match filter.answer {
        Some(Answer::Class(class)) => {
            query.filter("last_status", ">=", Some(i64::from(class) * 100));
            query.filter("last_status", "<", Some(i64::from(class) * 100 + 100));
        }
        Some(Answer::None) => query.condition("last_status IS NULL AND attempts > 0"),
        None => {}
    }
    query
}

/// Up to a limit of the pending deliveries of a tenant (`$1`, the limit `$2`) or of one of its endpoints (`$1`,
/// the tenant `$2`, the limit `$3`), one row each, read from the per-endpoint due index alone.
fn pending_count(of_endpoint: bool) -> &'static str {
    if of_endpoint {
        "SELECT 1 FROM deliveries WHERE endpoint_id = $1 AND status = 'pending'
            AND endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $2) LIMIT $3"
    } else {
        "SELECT 1 FROM deliveries WHERE status = 'pending'
            AND endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $1) LIMIT $2"
    }
}

/// The pending deliveries of a tenant or an endpoint, in no order, through the per-endpoint due index: a tenant's
/// through each of its endpoints, so that another tenant's backlog is not read.
fn pending_query(tenant: &TenantId, endpoint: Option<&EndpointId>, cursor: Option<String>) -> ListQuery {
    let mut query = ListQuery::new(SELECT_DELIVERY, tenant);
    query.through("deliveries_endpoint_due");
    query.filter("id", "<", cursor);
    match endpoint {
        Some(endpoint) => query.filter("endpoint_id", "=", Some(endpoint.to_string())),
        None => query.condition("endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $1)"),
    }
    query.filter_literal("status", Some(DeliveryStatus::Pending.as_str()));
    query
}

/// The walk of `list`: the tenant's or endpoint's deliveries newest first (within the filter's time window), at
/// most `scan` of them, keeping those the filter's status, topic and answer hold for, until a page and one more
/// are kept, and then those read whole. The walk goes in steps, each four times the last, so that a page of a
/// common status (the succeeded) stops after a few hundred.
async fn walk(
    sql: &mut impl Sql,
    tenant: &TenantId,
    filter: &DeliveryFilter,
    page: PageRequest,
    scan: u32,
) -> Result<Page<Delivery>, StoreError> {
    let limit = page.limit as usize;
    let (mut kept, mut walked, mut cursor) = (Vec::new(), 0, page.cursor);
    let mut step = (page.limit + 1).max(WALK_STEP);
    let ended = loop {
        let take = step.min(scan - walked);
        let rows = walk_query(tenant, filter, cursor.clone()).rows(sql, i64::from(take), true, walked_row).await?;
        walked += rows.len() as u32;
        let ended = rows.len() < take as usize;
        cursor = rows.last().map(|row| row.id.clone()).or(cursor);
        kept.extend(
            rows.into_iter()
                .filter(|row| filter.keeps(&row.status, &row.topic, row.last_status, row.attempts))
                .map(|row| row.id),
        );
        if ended || kept.len() > limit || walked >= scan {
            break ended;
        }
        step = step.saturating_mul(4);
    };
    let next_cursor = if kept.len() > limit {
        kept.truncate(limit);
        kept.last().cloned()
    } else if ended {
        None
    } else {
        cursor
    };
    let mut data = Vec::new();
    if !kept.is_empty() {
        // Read again as they are now: one that has moved on since the walk is left out.
        let statement = format!("{SELECT_DELIVERY} WHERE id {} AND tenant_id = $2", in_id_list(sql.dialect(), 1));
        let values: [&dyn crate::sql::Value; 2] = [&json_list(&kept)?, &tenant.as_str()];
        data = sql.query(&statement, &values, delivery_row).await?;
        data.retain(|delivery| {
            filter.keeps(delivery.status.as_str(), delivery.topic.as_str(), delivery.last_status, delivery.attempts)
        });
        data.sort_unstable_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
    }
    Ok(Page { data, next_cursor })
}

/// The first step of a walk, at least.
const WALK_STEP: u32 = 128;

/// What a walk reads of each delivery to filter it.
struct Walked {
    id: String,
    status: String,
    topic: String,
    last_status: Option<u16>,
    attempts: u32,
}

/// What a walk filters by, of a tenant's or endpoint's deliveries (within the filter's time window), newest first.
fn walk_query(tenant: &TenantId, filter: &DeliveryFilter, cursor: Option<String>) -> ListQuery {
    let mut query = ListQuery::new("SELECT id, status, topic, last_status, attempts FROM deliveries", tenant);
    query.through(if filter.endpoint.is_some() { "deliveries_by_endpoint" } else { "deliveries_by_tenant" });
    query.filter("id", "<", cursor);
    let (since, until) = filter.id_bounds();
    query.filter("id", ">=", since);
    query.filter("id", "<", until);
    query.filter("endpoint_id", "=", filter.endpoint.as_ref().map(|endpoint| endpoint.to_string()));
    query
}

fn walked_row(row: &dyn Columns) -> Result<Walked, StoreError> {
    Ok(Walked {
        id: row.text(0)?,
        status: row.text(1)?,
        topic: row.text(2)?,
        last_status: row.optional_integer(3)?.and_then(|status| u16::try_from(status).ok()),
        attempts: u32::try_from(row.integer(4)?).unwrap_or(u32::MAX),
    })
}

async fn load_delivery(sql: &mut impl Sql, tenant: &TenantId, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
    let statement = concat!("SELECT ", delivery_columns!(), " FROM deliveries WHERE id = $1 AND tenant_id = $2");
    sql.first(statement, &[&id.as_str(), &tenant.as_str()], delivery_row).await
}

impl Store {
    /// At start-up, makes due now the deliveries whose leases a previous run of this node left: on the embedded
    /// store every lease (only one process can hold its directory), on PostgreSQL this node's own (its identity
    /// is kept in its directory), while the leases of a node that never comes back run out. Only pending
    /// deliveries due within `LEASE_HORIZON` can hold one, so the due index finds them, and a store of millions
    /// of deliveries waiting for a late retry opens without reading them all.
    pub(crate) async fn release_left_leases(&self) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let horizon = now.saturating_add(crate::LEASE_HORIZON).unix_millis();
        let now = now.unix_millis();
        let node = match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(backend) => Some(backend.node.clone()),
        };
        writing!(self, |sql| {
            // The one difference: PostgreSQL's leases name their node, whose own are the ones released.
            let (least, node_reset, node_match) = match sql.dialect() {
                crate::sql::Dialect::Sqlite => ("MIN", "", ""),
                crate::sql::Dialect::Postgres => ("LEAST", ", lease_node = NULL", " AND lease_node = $3"),
            };
            let statement = format!(
                "UPDATE deliveries SET lease = NULL{node_reset}, next_attempt_at = {least}(next_attempt_at, $1)
                 WHERE status = 'pending' AND lease IS NOT NULL AND next_attempt_at <= $2{node_match}"
            );
            match &node {
                Some(node) => sql.execute(&statement, &[&now, &horizon, &node.as_str()]).await,
                None => sql.execute(&statement, &[&now, &horizon]).await,
            }
        })
    }

    pub async fn list_deliveries(
        &self,
        tenant: TenantId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let scan = self.list_scan;
        reading!(self, |sql| list(sql, &tenant, filter, page, scan).await)
    }

    /// A delivery with all its attempts, oldest first.
    pub async fn get_delivery(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        // One statement, so that the delivery and its attempts come from one snapshot of the database.
        let statement = concat!(
            "SELECT d.*, ",
            attempt_columns!(),
            " FROM (SELECT ",
            delivery_columns!(),
            " FROM deliveries WHERE id = $1 AND tenant_id = $2) d
             LEFT JOIN attempts a ON a.delivery_id = d.id ORDER BY a.number"
        );
        let rows =
            reading!(self, |sql| sql.query(statement, &[&id.as_str(), &tenant.as_str()], delivery_and_attempt).await)?;
        let mut rows = rows.into_iter();
        let Some((delivery, first)) = rows.next() else { return Ok(None) };
        let attempts = first.into_iter().chain(rows.filter_map(|(_, attempt)| attempt)).collect();
        Ok(Some((delivery, attempts)))
    }

    /// Makes a delivery due now, whatever its state (a manual "send again"); `None` when unknown.
    pub async fn retry_delivery(&self, tenant: TenantId, id: DeliveryId) -> Result<Option<Retried>, StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            // A delivery whose lease still holds is being attempted: it is left to that attempt; one whose endpoint
            // was deleted stays as it is, since nothing would send it.
            let queued = sql
                .execute(
                    "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1, cause = 'retry'
                     WHERE id = $2 AND tenant_id = $3 AND (lease IS NULL OR next_attempt_at < $1)
                        AND endpoint_id IN (SELECT id FROM endpoints WHERE deleted_at IS NULL)",
                    &[&now, &id.as_str(), &tenant.as_str()],
                )
                .await?;
            match load_delivery(sql, &tenant, &id).await? {
                None => Ok(None),
                Some(delivery) if queued > 0 => {
                    sql.work_due().await?;
                    Ok(Some(Retried::Queued(delivery)))
                }
                Some(delivery) => {
                    let live = "SELECT id FROM endpoints WHERE id = $1 AND deleted_at IS NULL";
                    let endpoint = delivery.endpoint.as_str();
                    if sql.first(live, &[&endpoint], read_text).await?.is_some() {
                        Ok(Some(Retried::InFlight(delivery)))
                    } else {
                        Ok(Some(Retried::EndpointDeleted(delivery)))
                    }
                }
            }
        })
    }

    /// Sends an event again: a new delivery of it, due now, for each enabled endpoint of its tenant now subscribed
    /// to its topic, or for those of them `only` names; `None` when the event is unknown. The deliveries say they
    /// are a resend, and so does their first attempt.
    pub async fn resend_event(
        &self,
        tenant: TenantId,
        event: EventId,
        only: Option<Vec<EndpointId>>,
    ) -> Result<Option<Vec<Delivery>>, StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            let statement = "SELECT topic FROM events WHERE id = $1 AND tenant_id = $2";
            let Some(topic) = sql.first(statement, &[&event.as_str(), &tenant.as_str()], read_text).await? else {
                return Ok(None);
            };
            let targets = sql
                .query(
                    &format!(
                        "SELECT e.id, e.format, e.signing {TARGETS} AND t.topic = $1 AND e.tenant_id = $2 ORDER BY e.id"
                    ),
                    &[&topic, &tenant.as_str()],
                    |row| Ok((row.text(0)?, row.text(1)?, row.text(2)?)),
                )
                .await?;
            let insert = crate::rows::one_row_statement("deliveries", &NEW_COLUMNS);
            let mut made = Vec::new();
            for (endpoint, format, signing) in targets {
                if only.as_ref().is_some_and(|only| !only.iter().any(|listed| listed.as_str() == endpoint)) {
                    continue;
                }
                let id = DeliveryId::generate_at(Timestamp::from_unix_millis(now));
                let escape = crate::endpoints::escape_for_signing(&signing)?;
                let delivery = NewDelivery {
                    id: id.as_str(),
                    tenant: tenant.as_str(),
                    event: event.as_str(),
                    endpoint: &endpoint,
                    topic: &topic,
                    format: &format,
                    escape,
                    next_attempt_at: now,
                    lease: None,
                    created: now,
                    origin: Origin::Resend,
                };
                let cells = delivery.cells();
                let values: Vec<&dyn crate::sql::Value> =
                    cells.iter().map(|cell| cell as &dyn crate::sql::Value).collect();
                sql.execute(&insert, &values).await?;
                let at = Timestamp::from_unix_millis(now);
                made.push(Delivery {
                    id,
                    tenant: tenant.clone(),
                    event: event.clone(),
                    endpoint: parse_field(&endpoint)?,
                    topic: parse_field(&topic)?,
                    format: parse_field(&format)?,
                    escape,
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    next_attempt: Some(at),
                    last_status: None,
                    last_error: None,
                    created: at,
                    updated: at,
                    origin: Origin::Resend,
                });
            }
            if !made.is_empty() {
                sql.work_due().await?;
            }
            Ok(Some(made))
        })
    }

    // ----- the dispatcher's queue -----

    /// Leases up to `claim.limit` due deliveries of enabled endpoints until `claim.lease_until`, the earliest due
    /// first, at most `claim.per_endpoint` of one endpoint, none of `claim.busy`'s endpoints or tenants.
    /// A claim moves a delivery's due time to the lease's end, so a lease its node never settles (the node
    /// died) makes the delivery due again then. No two claims take the same delivery while its lease holds.
    pub async fn claim_due(&self, claim: Claim) -> Result<Vec<ClaimedDelivery>, StoreError> {
        match &self.backend {
            Backend::Sqlite(backend) => sqlite::claim_due(backend, claim).await,
            Backend::Postgres(backend) => postgres::claim_due(backend, claim).await,
        }
    }

    /// Records attempts and moves their deliveries on, in one commit. An outcome whose lease was lost (another
    /// claim took the delivery) is dropped, so each attempt's outcome is recorded once. The batch is shared, so
    /// a caller can try it again after a failure without copying it.
    pub async fn record_outcomes(&self, outcomes: Arc<[AttemptOutcome]>) -> Result<usize, StoreError> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        match &self.backend {
            Backend::Sqlite(backend) => sqlite::record_outcomes(backend, outcomes, self.health, now).await,
            Backend::Postgres(backend) => {
                let recorded = postgres::record_outcomes(backend, Arc::clone(&outcomes), now).await?;
                // The endpoints' health in a transaction of its own, after the attempts' commit: a crash between
                // the two loses one batch's counts, never an attempt.
                let policy = self.health;
                let held: Vec<&AttemptOutcome> =
                    outcomes.iter().filter(|outcome| recorded.contains(outcome.delivery.as_str())).collect();
                if !held.is_empty() {
                    let outcomes = Arc::clone(&outcomes);
                    writing!(self, |sql| {
                        let held: Vec<&AttemptOutcome> =
                            outcomes.iter().filter(|outcome| recorded.contains(outcome.delivery.as_str())).collect();
                        crate::health::record(sql, &held, &policy, now).await
                    })?;
                }
                Ok(held.len())
            }
        }
    }

    /// Gives leased deliveries back to the queue untouched (shutdown, or a claim beyond an endpoint's cap).
    pub async fn release(&self, leases: Vec<(DeliveryId, i64)>) -> Result<(), StoreError> {
        if leases.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        match &self.backend {
            Backend::Sqlite(backend) => sqlite::release(backend, leases, now).await,
            Backend::Postgres(backend) => postgres::release(backend, leases, now).await,
        }
    }

    /// When the next pending delivery of an enabled endpoint that `busy` does not name (nor its tenant) falls
    /// due, if any. A leased delivery falls due when its lease expires.
    pub async fn next_due(&self, busy: Busy) -> Result<Option<Timestamp>, StoreError> {
        let endpoints = json_ids(&busy.endpoints)?;
        let tenants = json_ids(&busy.tenants)?;
        reading!(self, |sql| {
            let next = if busy.is_empty() {
                let earliest = "SELECT d.next_attempt_at FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                     WHERE d.status = 'pending' AND e.enabled ORDER BY d.next_attempt_at LIMIT 1";
                sql.first(earliest, &[], |row| row.optional_integer(0)).await?
            } else {
                // Walking the due index would step over every due delivery of a busy endpoint (a slow one piles
                // them up): each other endpoint is asked for its earliest through its own index instead.
                let dialect = sql.dialect();
                let earliest = format!(
                    "SELECT MIN((SELECT MIN(d.next_attempt_at) FROM deliveries d
                                 WHERE d.endpoint_id = e.id AND d.status = 'pending'))
                     FROM endpoints e WHERE e.enabled AND NOT (e.id {}) AND NOT (e.tenant_id {})",
                    in_id_list(dialect, 1),
                    in_id_list(dialect, 2)
                );
                sql.first(&earliest, &[&endpoints, &tenants], |row| row.optional_integer(0)).await?
            };
            Ok(next.flatten().map(Timestamp::from_unix_millis))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_counts_match_the_column_lists() {
        assert_eq!(delivery_columns!().split(',').count(), super::DELIVERY_WIDTH);
        assert_eq!(claimed_delivery_columns!().split(',').count(), super::CLAIMED_DELIVERY_WIDTH);
    }

    /// SQLite's plan for `query`, one step per line.
    fn plan(query: ListQuery, ordered: bool) -> String {
        explain(&query.statement(crate::sql::Dialect::Sqlite, ordered))
    }

    fn explain(statement: &str) -> String {
        let connection = crate::sqlite::migrated_in_memory();
        let mut explain = connection.prepare(&format!("EXPLAIN QUERY PLAN {statement}")).unwrap();
        // The plan does not depend on the values.
        let values = vec!["x"; explain.parameter_count()];
        let steps = explain.query_map(rusqlite::params_from_iter(values), |row| row.get::<_, String>(3)).unwrap();
        steps.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// Checks that `plan` reads `index` and never the whole table, and whether it sorts.
    fn assert_reads(plan: &str, index: &str, sorts: bool, what: &str) {
        let used = plan
            .lines()
            .any(|step| step.split(" USING INDEX ").nth(1).and_then(|rest| rest.split(' ').next()) == Some(index));
        assert!(used, "{what} should use {index}:\n{plan}");
        assert_eq!(plan.contains("TEMP B-TREE"), sorts, "{what}:\n{plan}");
        assert!(
            !plan.lines().any(|step| step.starts_with("SCAN deliveries") && !step.contains("INDEX")),
            "{what}:\n{plan}"
        );
    }

    #[test]
    fn every_filter_of_the_deliveries_list_reads_an_index_that_holds_its_rows() {
        let tenant = || "acme".parse::<TenantId>().unwrap();
        let endpoint = || Some("ep_00000000000000000000000000".parse::<EndpointId>().unwrap());
        let event = || Some("evt_00000000000000000000000000".parse::<EventId>().unwrap());
        let cases = [
            (DeliveryFilter::default(), "deliveries_by_tenant"),
            (DeliveryFilter { endpoint: endpoint(), ..Default::default() }, "deliveries_by_endpoint"),
            (DeliveryFilter { event: event(), ..Default::default() }, "deliveries_by_event"),
            (
                DeliveryFilter { event: event(), status: Some(DeliveryStatus::Pending), ..Default::default() },
                "deliveries_by_event",
            ),
            (
                DeliveryFilter { status: Some(DeliveryStatus::Failed), ..Default::default() },
                "deliveries_failed_by_tenant",
            ),
            (
                DeliveryFilter { status: Some(DeliveryStatus::Cancelled), ..Default::default() },
                "deliveries_cancelled_by_tenant",
            ),
            (
                DeliveryFilter { endpoint: endpoint(), status: Some(DeliveryStatus::Failed), ..Default::default() },
                "deliveries_failed_by_endpoint",
            ),
        ];
        for cursor in [None, Some("del_00000000000000000000000000".to_owned())] {
            for (filter, index) in cases.clone() {
                let what = format!("{filter:?}");
                assert_reads(&plan(list_query(&tenant(), filter, cursor.clone()), true), index, false, &what);
            }
            // The pending of a tenant through its endpoints' due index, in the index's order: no sort.
            for endpoint in [None, endpoint()] {
                let pending = plan(pending_query(&tenant(), endpoint.as_ref(), cursor.clone()), false);
                assert_reads(&pending, "deliveries_endpoint_due", false, &format!("pending of {endpoint:?}"));
            }
        }
        // How many are pending is counted in the due index alone, without a row of the table.
        for of_endpoint in [false, true] {
            let counted = explain(pending_count(of_endpoint));
            let covering = "SEARCH deliveries USING COVERING INDEX deliveries_endpoint_due";
            assert!(counted.lines().any(|step| step.starts_with(covering)), "count of {of_endpoint}:\n{counted}");
        }
        let window = |filter: DeliveryFilter| DeliveryFilter {
            since: Some(Timestamp::from_unix_millis(1_893_456_000_000)),
            until: Some(Timestamp::from_unix_millis(1_893_457_000_000)),
            ..filter
        };
        for cursor in [None, Some("del_00000000000000000000000000".to_owned())] {
            // A time window is a range of ids in the same index, whatever else filters the list.
            for (filter, index) in cases.clone() {
                let what = format!("{filter:?} in a window");
                assert_reads(&plan(list_query(&tenant(), window(filter), cursor.clone()), true), index, false, &what);
            }
            // The walk for the pending and the succeeded, a topic and an answer, in a window or not.
            for filter in [DeliveryFilter::default(), window(DeliveryFilter::default())] {
                let walk = plan(walk_query(&tenant(), &filter, cursor.clone()), true);
                assert_reads(&walk, "deliveries_by_tenant", false, &format!("walk of {filter:?}"));
                let of_endpoint = DeliveryFilter { endpoint: endpoint(), ..filter };
                let walk = plan(walk_query(&tenant(), &of_endpoint, cursor.clone()), true);
                assert_reads(&walk, "deliveries_by_endpoint", false, &format!("walk of {of_endpoint:?}"));
            }
        }
    }

    /// On PostgreSQL, a list of a tenant's or an endpoint's pending deliveries cannot read through the due index,
    /// which holds every tenant's: on a store of ten million the planner preferred it (its order is the table's)
    /// and read the whole store's backlog. Here it is left the only index that could serve the list, as those
    /// statistics made it, and the plan must still not name it.
    #[tokio::test]
    async fn a_list_of_pending_deliveries_on_postgres_cannot_read_every_tenants_due_index() {
        let Some((admin, mut client, database)) = crate::postgres::fresh_database("pending_plan").await else {
            return;
        };
        crate::postgres::migrate(&mut client).await.unwrap();
        client
            .batch_execute(
                "BEGIN; SET LOCAL enable_seqscan = off;
                 DROP INDEX deliveries_by_tenant, deliveries_by_event, deliveries_by_endpoint, deliveries_endpoint_due,
                     deliveries_failed_by_tenant, deliveries_failed_by_endpoint, deliveries_cancelled_by_tenant,
                     deliveries_cancelled_by_endpoint",
            )
            .await
            .unwrap();
        let tenant: TenantId = "acme".parse().unwrap();
        let endpoint: EndpointId = "ep_00000000000000000000000000".parse().unwrap();
        let mut plans = Vec::new();
        for of_endpoint in [None, Some(&endpoint)] {
            let statement = pending_query(&tenant, of_endpoint, None).statement(crate::sql::Dialect::Postgres, false);
            let limit = 2_001_i64;
            let rows = match of_endpoint {
                Some(endpoint) => {
                    let values: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                        [&tenant.as_str(), &endpoint.as_str(), &limit];
                    client.query(&format!("EXPLAIN {statement}"), &values).await
                }
                None => client.query(&format!("EXPLAIN {statement}"), &[&tenant.as_str(), &limit]).await,
            };
            let steps: Vec<String> = rows.unwrap().iter().map(|row| row.get(0)).collect();
            plans.push(steps.join("\n"));
        }
        client.batch_execute("ROLLBACK").await.unwrap();
        for plan in plans {
            // "Index Scan using <index> on <table>", "Index Only Scan using …", "Bitmap Index Scan on <index>".
            let names = plan
                .lines()
                .filter_map(|line| line.split(" using ").nth(1).or_else(|| line.split("Bitmap Index Scan on ").nth(1)))
                .filter_map(|rest| rest.split_whitespace().next());
            for name in names {
                // An index of a partition has its partitioned table's index as its parent; the endpoints' have none.
                let parent = client
                    .query_opt(
                        "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = $1::text::regclass",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .map(|row| row.get::<_, String>(0));
                assert_ne!(parent.as_deref(), Some("deliveries_due"), "{name} is a part of the due index:\n{plan}");
            }
        }
        drop(client);
        admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await.unwrap();
    }
}

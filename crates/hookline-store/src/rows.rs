//! Mapping between rows and records: column lists, row readers and the text forms of list-valued columns.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hookline_core::Scheme;
use hookline_core::json::Escape;
use hookline_core::retry::RetrySchedule;
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;

use crate::StoreError;
use crate::model::*;

/// A result row of either database, read by column index. The record readers below are written once against
/// this, so both backends map rows to records with the same code.
pub(crate) trait Columns {
    fn text(&self, index: usize) -> Result<String, StoreError>;
    fn optional_text(&self, index: usize) -> Result<Option<String>, StoreError>;
    fn integer(&self, index: usize) -> Result<i64, StoreError>;
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError>;
    fn flag(&self, index: usize) -> Result<bool, StoreError>;
}

/// Reads a stored integer into a narrower type, calling a value out of range damage.
fn narrow<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt { detail: format!("{what} {value} is out of range") })
}

pub(crate) const ENDPOINT_COLUMNS: &str =
    "id, tenant_id, url, topics, description, enabled, format, signing, secret, retry_schedule, created_at, updated_at";
pub(crate) const EVENT_COLUMNS: &str = "id, tenant_id, topic, created_at, data, meta, idempotency_key";
pub(crate) const DELIVERY_COLUMNS: &str = "id, tenant_id, event_id, endpoint_id, topic, status, attempts, \
     next_attempt_at, last_status, last_error, created_at, updated_at, format, text_escape";

pub(crate) const ATTEMPT_COLUMNS: &str = "number, started_at, duration_ms, url, request_headers, response_status, \
     response_headers, response_body, error_kind, error_detail, response_headers_omitted";
/// A claimed delivery's own columns and its event's (`d` and `v`), in the order `claimed_with` reads them.
macro_rules! claimed_delivery_columns {
    () => {
        "d.id, d.lease, d.attempts, d.format, d.text_escape, v.id, v.topic, v.created_at, v.data, v.meta"
    };
}
pub(crate) const CLAIMED_DELIVERY_COLUMNS: &str = claimed_delivery_columns!();
/// A claimed delivery with its event (`v`) and its endpoint (`e`).
pub(crate) const CLAIMED_COLUMNS: &str = concat!(
    claimed_delivery_columns!(),
    ", e.id, e.tenant_id, e.url, e.topics, e.description, e.enabled, e.format, e.signing, e.secret, \
     e.retry_schedule, e.created_at, e.updated_at"
);

pub(crate) fn parse_field<T: FromStr>(text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|error: T::Err| StoreError::Corrupt { detail: error.to_string() })
}

fn millis(row: &dyn Columns, index: usize) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_unix_millis(row.integer(index)?))
}

pub(crate) fn join_topics(topics: &[TopicName]) -> String {
    topics.iter().map(TopicName::as_str).collect::<Vec<_>>().join(",")
}

pub(crate) fn join_schemes(schemes: &[Scheme]) -> String {
    schemes.iter().map(|scheme| scheme.as_str()).collect::<Vec<_>>().join(",")
}

pub(crate) fn split_schemes(text: &str) -> Result<Vec<Scheme>, StoreError> {
    text.split(',').map(parse_field).collect()
}

pub(crate) fn join_schedule(delays: &[Duration]) -> String {
    delays.iter().map(|delay| delay.as_millis().to_string()).collect::<Vec<_>>().join(",")
}

/// A stored schedule; one that is no longer valid is damaged data, not the default.
fn split_schedule(text: &str) -> Result<RetrySchedule, StoreError> {
    let delays = if text.is_empty() {
        Vec::new()
    } else {
        text.split(',').map(|millis| parse_field::<u64>(millis).map(Duration::from_millis)).collect::<Result<_, _>>()?
    };
    RetrySchedule::exact(delays)
        .map_err(|error| StoreError::Corrupt { detail: format!("retry schedule {text:?}: {error}") })
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

pub(crate) fn headers_json(headers: &[(String, String)]) -> String {
    // Serialising strings cannot fail.
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_headers(text: &str) -> Result<Vec<(String, String)>, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt { detail: format!("headers: {error}") })
}

pub(crate) fn topic_row(row: &dyn Columns) -> Result<Topic, StoreError> {
    Ok(Topic {
        name: parse_field(&row.text(0)?)?,
        description: row.text(1)?,
        deprecated: row.flag(2)?,
        created: millis(row, 3)?,
    })
}

pub(crate) fn tenant_row(row: &dyn Columns) -> Result<Tenant, StoreError> {
    Ok(Tenant { id: parse_field(&row.text(0)?)?, name: row.text(1)?, created: millis(row, 2)? })
}

/// Reads the endpoint columns starting at `offset`.
fn endpoint_at(row: &dyn Columns, offset: usize) -> Result<Endpoint, StoreError> {
    Ok(Endpoint {
        id: parse_field(&row.text(offset)?)?,
        tenant: parse_field(&row.text(offset + 1)?)?,
        url: row.text(offset + 2)?,
        topics: row.text(offset + 3)?.split(',').map(parse_field).collect::<Result<_, _>>()?,
        description: row.text(offset + 4)?,
        enabled: row.flag(offset + 5)?,
        format: parse_field(&row.text(offset + 6)?)?,
        signing: split_schemes(&row.text(offset + 7)?)?,
        secret: row.text(offset + 8)?,
        retry_schedule: row.optional_text(offset + 9)?.as_deref().map(split_schedule).transpose()?,
        created: millis(row, offset + 10)?,
        updated: millis(row, offset + 11)?,
    })
}

pub(crate) fn endpoint_row(row: &dyn Columns) -> Result<Endpoint, StoreError> {
    endpoint_at(row, 0)
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
    })
}

fn parse_status(text: &str) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::parse(text).ok_or_else(|| StoreError::Corrupt { detail: format!("delivery status {text:?}") })
}

pub(crate) fn delivery_row(row: &dyn Columns) -> Result<Delivery, StoreError> {
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
    })
}

pub(crate) fn attempt_row(row: &dyn Columns) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        number: narrow(row.integer(0)?, "attempt number")?,
        started: millis(row, 1)?,
        duration_ms: row.integer(2)?.max(0) as u64,
        url: row.text(3)?,
        request_headers: parse_headers(&row.text(4)?)?,
        response_status: row.optional_integer(5)?.map(|status| narrow(status, "status code")).transpose()?,
        response_headers: parse_headers(&row.text(6)?)?,
        response_body: row.optional_text(7)?,
        error: row
            .optional_text(8)?
            .map(|kind| {
                AttemptError::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt { detail: format!("attempt error {kind:?}") })
            })
            .transpose()?,
        error_detail: row.optional_text(9)?,
        response_headers_omitted: narrow(row.integer(10)?, "omitted header count")?,
    })
}

pub(crate) fn claimed_row(row: &dyn Columns) -> Result<ClaimedDelivery, StoreError> {
    claimed_with(row, Arc::new(endpoint_at(row, 10)?))
}

/// The columns of `CLAIMED_DELIVERY_COLUMNS`, for a delivery to `endpoint`.
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
    })
}

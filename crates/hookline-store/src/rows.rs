//! Mapping between rows and records: column lists, row readers and the text forms of list-valued columns.

use std::str::FromStr;
use std::time::Duration;

use hookline_core::Scheme;
use hookline_core::json::Escape;
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;
use rusqlite::Row;

use crate::StoreError;
use crate::model::*;

/// Row readers return the row's own error outside and a damaged-field error inside.
pub(crate) type RowResult<T> = rusqlite::Result<Result<T, StoreError>>;

pub(crate) const ENDPOINT_COLUMNS: &str =
    "id, tenant_id, url, topics, description, enabled, format, signing, secret, retry_schedule, created_at, updated_at";
pub(crate) const ENDPOINT_COLUMNS_E: &str = "e.id, e.tenant_id, e.url, e.topics, e.description, e.enabled, e.format, \
     e.signing, e.secret, e.retry_schedule, e.created_at, e.updated_at";
pub(crate) const EVENT_COLUMNS: &str = "id, tenant_id, topic, created_at, data, meta, idempotency_key";
pub(crate) const DELIVERY_COLUMNS: &str = "id, tenant_id, event_id, endpoint_id, topic, status, attempts, \
     next_attempt_at, last_status, last_error, created_at, updated_at, format, text_escape";

pub(crate) fn parse_field<T: FromStr>(text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|error: T::Err| StoreError::Corrupt { detail: error.to_string() })
}

fn millis(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    Ok(Timestamp::from_unix_millis(row.get(index)?))
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

fn split_schedule(text: &str) -> Result<Vec<Duration>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(|millis| parse_field::<u64>(millis).map(Duration::from_millis)).collect()
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

pub(crate) fn topic_row(row: &Row<'_>) -> RowResult<Topic> {
    let name: String = row.get(0)?;
    let description = row.get(1)?;
    let deprecated = row.get(2)?;
    let created = millis(row, 3)?;
    Ok(parse_field(&name).map(|name| Topic { name, description, deprecated, created }))
}

pub(crate) fn tenant_row(row: &Row<'_>) -> RowResult<Tenant> {
    let id: String = row.get(0)?;
    let name = row.get(1)?;
    let created = millis(row, 2)?;
    Ok(parse_field(&id).map(|id| Tenant { id, name, created }))
}

/// Reads the endpoint columns starting at `offset`.
fn endpoint_at(row: &Row<'_>, offset: usize) -> RowResult<Endpoint> {
    let id: String = row.get(offset)?;
    let tenant: String = row.get(offset + 1)?;
    let url = row.get(offset + 2)?;
    let topics: String = row.get(offset + 3)?;
    let description = row.get(offset + 4)?;
    let enabled = row.get(offset + 5)?;
    let format: String = row.get(offset + 6)?;
    let signing: String = row.get(offset + 7)?;
    let secret = row.get(offset + 8)?;
    let schedule: Option<String> = row.get(offset + 9)?;
    let created = millis(row, offset + 10)?;
    let updated = millis(row, offset + 11)?;
    Ok((|| {
        Ok(Endpoint {
            id: parse_field(&id)?,
            tenant: parse_field(&tenant)?,
            url,
            topics: topics.split(',').map(parse_field).collect::<Result<_, _>>()?,
            description,
            enabled,
            format: parse_field(&format)?,
            signing: split_schemes(&signing)?,
            secret,
            retry_schedule: schedule.as_deref().map(split_schedule).transpose()?,
            created,
            updated,
        })
    })())
}

pub(crate) fn endpoint_row(row: &Row<'_>) -> RowResult<Endpoint> {
    endpoint_at(row, 0)
}

pub(crate) fn event_row(row: &Row<'_>) -> RowResult<Event> {
    let id: String = row.get(0)?;
    let tenant: String = row.get(1)?;
    let topic: String = row.get(2)?;
    let created = millis(row, 3)?;
    let data = row.get(4)?;
    let meta = row.get(5)?;
    let idempotency_key = row.get(6)?;
    Ok((|| {
        Ok(Event {
            id: parse_field(&id)?,
            tenant: parse_field(&tenant)?,
            topic: parse_field(&topic)?,
            created,
            data,
            meta,
            idempotency_key,
        })
    })())
}

pub(crate) fn delivery_row(row: &Row<'_>) -> RowResult<Delivery> {
    let id: String = row.get(0)?;
    let tenant: String = row.get(1)?;
    let event: String = row.get(2)?;
    let endpoint: String = row.get(3)?;
    let topic: String = row.get(4)?;
    let status: String = row.get(5)?;
    let attempts = row.get(6)?;
    let next_attempt: Option<i64> = row.get(7)?;
    let last_status = row.get(8)?;
    let last_error = row.get(9)?;
    let created = millis(row, 10)?;
    let updated = millis(row, 11)?;
    let format: String = row.get(12)?;
    let escape: String = row.get(13)?;
    Ok((|| {
        Ok(Delivery {
            format: parse_field(&format)?,
            escape: parse_escape(&escape)?,
            id: parse_field(&id)?,
            tenant: parse_field(&tenant)?,
            event: parse_field(&event)?,
            endpoint: parse_field(&endpoint)?,
            topic: parse_field(&topic)?,
            status: DeliveryStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt { detail: format!("delivery status {status:?}") })?,
            attempts,
            next_attempt: next_attempt.map(Timestamp::from_unix_millis),
            last_status,
            last_error,
            created,
            updated,
        })
    })())
}

pub(crate) fn attempt_row(row: &Row<'_>) -> RowResult<Attempt> {
    let number = row.get(0)?;
    let started = millis(row, 1)?;
    let duration_ms: i64 = row.get(2)?;
    let url = row.get(3)?;
    let request_headers: String = row.get(4)?;
    let response_status = row.get(5)?;
    let response_headers: String = row.get(6)?;
    let response_body = row.get(7)?;
    let error: Option<String> = row.get(8)?;
    let error_detail = row.get(9)?;
    Ok((|| {
        Ok(Attempt {
            number,
            started,
            duration_ms: duration_ms.max(0) as u64,
            url,
            request_headers: parse_headers(&request_headers)?,
            response_status,
            response_headers: parse_headers(&response_headers)?,
            response_body,
            error: error
                .map(|kind| {
                    AttemptError::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt { detail: format!("attempt error {kind:?}") })
                })
                .transpose()?,
            error_detail,
        })
    })())
}

pub(crate) fn claimed_row(row: &Row<'_>) -> RowResult<ClaimedDelivery> {
    let id: String = row.get(0)?;
    let lease = row.get(1)?;
    let attempts = row.get(2)?;
    let format: String = row.get(3)?;
    let escape: String = row.get(4)?;
    let event_id: String = row.get(5)?;
    let topic: String = row.get(6)?;
    let event_created = millis(row, 7)?;
    let data = row.get(8)?;
    let meta = row.get(9)?;
    let endpoint = endpoint_at(row, 10)?;
    Ok((|| {
        Ok(ClaimedDelivery {
            id: parse_field(&id)?,
            lease,
            attempts,
            format: parse_field(&format)?,
            escape: parse_escape(&escape)?,
            event_id: parse_field(&event_id)?,
            topic: parse_field(&topic)?,
            event_created,
            data,
            meta,
            endpoint: endpoint?,
        })
    })())
}

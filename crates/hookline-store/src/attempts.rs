//! Attempts: the delivery log. Each attempt of a delivery is recorded once, with its request, the response's
//! status, headers and body (each capped by the dispatcher), and why it failed, if it did.

use hookline_core::attempt::{AttemptError, Cause};
use hookline_core::time::Timestamp;

use crate::StoreError;
use crate::rows::{Cell, Column};
use crate::sql::{Columns, millis, narrow};

/// One attempt as recorded in the delivery log.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub number: u32,
    pub started: Timestamp,
    pub duration_ms: u64,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub response_status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    /// How many response headers were not kept, past the count or size an attempt keeps.
    pub response_headers_omitted: u32,
    pub response_body: Option<String>,
    pub error: Option<AttemptError>,
    pub error_detail: Option<String>,
    /// What made it.
    pub cause: Cause,
}

/// An attempt's columns in the table aliased `a`, in the order `attempt_at` reads them.
macro_rules! attempt_columns {
    () => {
        "a.number, a.started_at, a.duration_ms, a.url, a.request_headers, a.response_status, a.response_headers, \
         a.response_body, a.error_kind, a.error_detail, a.response_headers_omitted, a.cause"
    };
}
pub(crate) use attempt_columns;

/// The columns an attempt is inserted with, in the order `AttemptRow::cells` gives them (`attempt_columns!`
/// reads the same after the delivery's id).
pub(crate) const COLUMNS: [Column; 13] = [
    Column::text("delivery_id"),
    Column::integer("number"),
    Column::integer("started_at"),
    Column::integer("duration_ms"),
    Column::text("url"),
    Column::text("request_headers"),
    Column::integer("response_status"),
    Column::text("response_headers"),
    Column::text("response_body"),
    Column::text("error_kind"),
    Column::text("error_detail"),
    Column::integer("response_headers_omitted"),
    Column::text("cause"),
];

/// An attempt's headers as stored, written before the write that stores them: on the embedded store, serialising
/// them on the writer thread held up every commit behind it.
pub(crate) struct StoredHeaders {
    request: String,
    response: String,
}

impl StoredHeaders {
    pub(crate) fn of(attempt: &Attempt) -> StoredHeaders {
        StoredHeaders {
            request: headers_json(&attempt.request_headers),
            response: headers_json(&attempt.response_headers),
        }
    }
}

/// An attempt of `delivery` as it is inserted, with its headers as stored.
pub(crate) struct AttemptRow<'a> {
    delivery: &'a str,
    attempt: &'a Attempt,
    headers: &'a StoredHeaders,
}

impl<'a> AttemptRow<'a> {
    pub(crate) fn new(delivery: &'a str, attempt: &'a Attempt, headers: &'a StoredHeaders) -> AttemptRow<'a> {
        AttemptRow { delivery, attempt, headers }
    }

    /// Its values for `COLUMNS`.
    pub(crate) fn cells(&self) -> [Cell<'_>; COLUMNS.len()] {
        let attempt = self.attempt;
        [
            Cell::Text(Some(self.delivery)),
            Cell::Integer(Some(i64::from(attempt.number))),
            Cell::Integer(Some(attempt.started.unix_millis())),
            Cell::Integer(Some(attempt.duration_ms.min(i64::MAX as u64) as i64)),
            Cell::Text(Some(&attempt.url)),
            Cell::Text(Some(&self.headers.request)),
            Cell::Integer(attempt.response_status.map(i64::from)),
            Cell::Text(Some(&self.headers.response)),
            Cell::Text(attempt.response_body.as_deref()),
            Cell::Text(attempt.error.map(|error| error.as_str())),
            Cell::Text(attempt.error_detail.as_deref()),
            Cell::Integer(Some(i64::from(attempt.response_headers_omitted))),
            Cell::Text(Some(attempt.cause.as_str())),
        ]
    }
}

/// Headers as stored: a JSON array of name and value pairs, in the order they were sent or received.
pub(crate) fn headers_json(headers: &[(String, String)]) -> String {
    // Serialising strings cannot fail.
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn parse_headers(text: &str) -> Result<Vec<(String, String)>, StoreError> {
    // Most endpoints have no headers of their own, and a PostgreSQL claim reads an endpoint per delivery.
    if text == "[]" {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt { detail: format!("headers: {error}") })
}

/// The attempt in `attempt_columns!` from column `offset` of the row; `None` where an outer join found none.
pub(crate) fn attempt_at(row: &dyn Columns, offset: usize) -> Result<Option<Attempt>, StoreError> {
    let column = |index: usize| offset + index;
    let Some(number) = row.optional_integer(column(0))? else { return Ok(None) };
    Ok(Some(Attempt {
        number: narrow(number, "attempt number")?,
        started: millis(row, column(1))?,
        duration_ms: row.integer(column(2))?.max(0) as u64,
        url: row.text(column(3))?,
        request_headers: parse_headers(&row.text(column(4))?)?,
        response_status: row.optional_integer(column(5))?.map(|status| narrow(status, "status code")).transpose()?,
        response_headers: parse_headers(&row.text(column(6))?)?,
        response_body: row.optional_text(column(7))?,
        error: row
            .optional_text(column(8))?
            .map(|kind| {
                AttemptError::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt { detail: format!("attempt error {kind:?}") })
            })
            .transpose()?,
        error_detail: row.optional_text(column(9))?,
        response_headers_omitted: narrow(row.integer(column(10))?, "omitted header count")?,
        cause: parse_cause(&row.text(column(11))?)?,
    }))
}

pub(crate) fn parse_cause(text: &str) -> Result<Cause, StoreError> {
    Cause::parse(text).ok_or_else(|| StoreError::Corrupt { detail: format!("attempt cause {text:?}") })
}

#[cfg(test)]
mod tests {
    #[test]
    fn attempts_are_read_in_the_order_they_are_inserted() {
        let read: Vec<&str> = attempt_columns!().split(", ").map(|column| column.trim_start_matches("a.")).collect();
        let inserted: Vec<&str> = super::COLUMNS[1..].iter().map(|column| column.name).collect();
        assert_eq!(read, inserted);
    }
}

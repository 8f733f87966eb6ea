//! Attempts: the delivery log. Each attempt of a delivery is recorded once, with its request, the response's
//! status, headers and body (each capped by the dispatcher), and why it failed, if it did.

use hookline_core::attempt::AttemptError;
use hookline_core::id::DeliveryId;
use hookline_core::time::Timestamp;

use crate::StoreError;
use crate::sql::{Columns, Sql, millis, narrow};

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
}

const SELECT_ATTEMPTS: &str = "SELECT number, started_at, duration_ms, url, request_headers, response_status, \
     response_headers, response_body, error_kind, error_detail, response_headers_omitted \
     FROM attempts WHERE delivery_id = $1 ORDER BY number";

/// Headers as stored: a JSON array of name and value pairs, in the order they were sent or received.
pub(crate) fn headers_json(headers: &[(String, String)]) -> String {
    // Serialising strings cannot fail.
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_headers(text: &str) -> Result<Vec<(String, String)>, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt { detail: format!("headers: {error}") })
}

fn attempt_row(row: &dyn Columns) -> Result<Attempt, StoreError> {
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

/// Every attempt of a delivery, oldest first.
pub(crate) async fn attempts_of(sql: &mut impl Sql, delivery: &DeliveryId) -> Result<Vec<Attempt>, StoreError> {
    sql.query(SELECT_ATTEMPTS, &[&delivery.as_str()], attempt_row).await
}

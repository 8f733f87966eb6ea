//! Attempts: the delivery log. Each attempt of a delivery is recorded once, with its request, the response's
//! status, headers and body (each capped by the dispatcher), and why it failed, if it did.

use hookline_core::attempt::AttemptError;
use hookline_core::time::Timestamp;

use crate::StoreError;
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
}

/// An attempt's columns in the table aliased `a`, in the order `attempt_at` reads them.
macro_rules! attempt_columns {
    () => {
        "a.number, a.started_at, a.duration_ms, a.url, a.request_headers, a.response_status, a.response_headers, \
         a.response_body, a.error_kind, a.error_detail, a.response_headers_omitted"
    };
}
pub(crate) use attempt_columns;

/// Headers as stored: a JSON array of name and value pairs, in the order they were sent or received.
pub(crate) fn headers_json(headers: &[(String, String)]) -> String {
    // Serialising strings cannot fail.
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_headers(text: &str) -> Result<Vec<(String, String)>, StoreError> {
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
    }))
}

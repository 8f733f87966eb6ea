//! The rules both backends keep, written once: pagination, subscription checks, endpoint patches, lease tokens,
//! a delivery's state after an attempt, and list queries with optional filters.

use hookline_core::topic::TopicName;

use crate::model::{DeliveryStatus, Endpoint, EndpointPatch, NextStep, Page};
use crate::rows::split_schemes;
use crate::{DeliveryFilter, StoreError};

/// Creates and locks a node's data directory: only one process may use it at a time.
pub(crate) fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let dir_error = |source| StoreError::DataDir { path: data_dir.to_owned(), source };
    std::fs::create_dir_all(data_dir).map_err(dir_error)?;
    let lock = std::fs::File::create(data_dir.join("hookline.lock")).map_err(dir_error)?;
    if lock.try_lock().is_err() {
        return Err(StoreError::Locked { path: data_dir.to_owned() });
    }
    Ok(lock)
}

/// Cuts a list fetched with one row too many into a page and the cursor that continues it.
pub(crate) fn paginate<T>(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { data: items, next_cursor }
}

/// Every topic must exist; a topic not already subscribed (`current`) must not be deprecated.
/// `deprecated` looks a topic up: `None` when it does not exist.
pub(crate) fn check_subscribable(
    topics: &[TopicName],
    current: &[TopicName],
    mut deprecated: impl FnMut(&TopicName) -> Result<Option<bool>, StoreError>,
) -> Result<(), StoreError> {
    for topic in topics {
        match deprecated(topic)? {
            None => return Err(StoreError::UnknownTopic { name: topic.to_string() }),
            Some(true) if !current.contains(topic) => {
                return Err(StoreError::DeprecatedTopic { name: topic.to_string() });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Applies the fields a patch sets and stamps the endpoint as updated at `now`.
pub(crate) fn apply_patch(endpoint: &mut Endpoint, patch: EndpointPatch, now: hookline_core::time::Timestamp) {
    fn set<T>(field: &mut T, value: Option<T>) {
        if let Some(value) = value {
            *field = value;
        }
    }
    set(&mut endpoint.topics, patch.topics);
    set(&mut endpoint.url, patch.url);
    set(&mut endpoint.description, patch.description);
    set(&mut endpoint.enabled, patch.enabled);
    set(&mut endpoint.format, patch.format);
    set(&mut endpoint.signing, patch.signing);
    set(&mut endpoint.secret, patch.secret);
    set(&mut endpoint.retry_schedule, patch.retry_schedule);
    endpoint.updated = now;
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

/// How a delivery's body escapes text, from the stored signing column of its endpoint.
pub(crate) fn escape_for_signing(signing: &str) -> Result<&'static str, StoreError> {
    let schemes = split_schemes(signing)?;
    Ok(crate::rows::escape_name(hookline_core::body::escape_for(&schemes)))
}

/// Deleting a tenant removes its rows children first, so no cascade has to find them row by row.
/// `$1` is the tenant's id.
pub(crate) const TENANT_CHILDREN_DELETES: [&str; 6] = [
    "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE tenant_id = $1)",
    "DELETE FROM deliveries WHERE tenant_id = $1",
    "DELETE FROM events WHERE tenant_id = $1",
    "DELETE FROM endpoint_topics WHERE endpoint_id IN (SELECT id FROM endpoints WHERE tenant_id = $1)",
    "DELETE FROM endpoints WHERE tenant_id = $1",
    "DELETE FROM api_keys WHERE tenant_id = $1",
];

/// A value bound to a list query.
pub(crate) enum ListValue {
    Text(String),
    Integer(i64),
}

impl From<String> for ListValue {
    fn from(text: String) -> Self {
        ListValue::Text(text)
    }
}

impl From<i64> for ListValue {
    fn from(number: i64) -> Self {
        ListValue::Integer(number)
    }
}

/// A tenant's list, newest first, with the filters the caller set.
pub(crate) struct ListQuery {
    select: String,
    conditions: Vec<(&'static str, &'static str)>,
    values: Vec<ListValue>,
}

impl ListQuery {
    pub(crate) fn new(select: String, tenant: hookline_core::id::TenantId) -> ListQuery {
        ListQuery { select, conditions: vec![("tenant_id", "=")], values: vec![ListValue::Text(tenant.to_string())] }
    }

    pub(crate) fn filter<V: Into<ListValue>>(
        &mut self,
        column: &'static str,
        operator: &'static str,
        value: Option<V>,
    ) {
        if let Some(value) = value {
            self.conditions.push((column, operator));
            self.values.push(value.into());
        }
    }

    pub(crate) fn delivery_filter(&mut self, filter: DeliveryFilter, cursor: Option<String>) {
        self.filter("id", "<", cursor);
        self.filter("endpoint_id", "=", filter.endpoint.map(|endpoint| endpoint.to_string()));
        self.filter("event_id", "=", filter.event.map(|event| event.to_string()));
        self.filter("status", "=", filter.status.map(|status| status.as_str().to_owned()));
    }

    /// The SQL, with the database's placeholder for the n-th value, and the values to bind.
    pub(crate) fn finish(self, limit: u32, placeholder: impl Fn(usize) -> String) -> (String, Vec<ListValue>) {
        let conditions: Vec<String> = self
            .conditions
            .iter()
            .enumerate()
            .map(|(index, (column, operator))| format!("{column} {operator} {}", placeholder(index + 1)))
            .collect();
        let sql = format!("{} WHERE {} ORDER BY id DESC LIMIT {}", self.select, conditions.join(" AND "), limit + 1);
        (sql, self.values)
    }
}

//! Endpoints: where a tenant's webhooks go, which topics they carry, how they are signed and retried.
//!
//! An endpoint's columns are listed once, in `COLUMNS`: the statements that write and read endpoints are made
//! from that list, `endpoint_values` binds it and `endpoint_at` reads it. Its topics are stored once, in
//! `endpoint_topics` (in the order they were given), which publishes join to find their targets.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use hookline_core::Scheme;
use hookline_core::body::Format;
use hookline_core::id::{EndpointId, TenantId};
use hookline_core::retry::RetrySchedule;
use hookline_core::time::Timestamp;
use hookline_core::topic::TopicName;

use crate::sql::{Columns, PageRequest, Sql, Value, millis, paginate, parse_field, ready};
use crate::tenants::tenant_exists;
use crate::topics::check_subscribable;
use crate::{Page, Store, StoreError};

#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant: TenantId,
    pub url: String,
    pub topics: Vec<TopicName>,
    pub description: String,
    pub enabled: bool,
    pub format: Format,
    pub signing: Vec<Scheme>,
    pub secret: String,
    /// The endpoint's own schedule, or `None` for the server's default.
    pub retry_schedule: Option<RetrySchedule>,
    /// Request headers of its own, sent on every attempt: lowercase names, checked by the caller.
    pub headers: Vec<(String, String)>,
    /// The secret a rotation replaced, while its grace period lasts.
    pub previous_secret: Option<PreviousSecret>,
    /// Why and when it was disabled, while it is.
    pub disabled: Option<Disabled>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// Why and when an endpoint was disabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disabled {
    pub reason: String,
    pub at: Timestamp,
}

/// The reason an endpoint disabled by a change gives.
pub const DISABLED_BY_HAND: &str = "disabled by a change to the endpoint";

/// A secret replaced by a rotation, which still signs until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousSecret {
    pub secret: String,
    pub until: Timestamp,
}

/// A new secret for an endpoint: the current one stays the previous one until `grace_until`, or goes at once
/// when it is `None`. A rotation during a grace period ends it: the secret it replaced is forgotten.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub secret: String,
    pub grace_until: Option<Timestamp>,
}

/// A new endpoint, validated by the caller.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub tenant: TenantId,
    pub url: String,
    pub topics: Vec<TopicName>,
    pub description: String,
    pub enabled: bool,
    pub format: Format,
    pub signing: Vec<Scheme>,
    pub secret: String,
    pub retry_schedule: Option<RetrySchedule>,
    pub headers: Vec<(String, String)>,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub topics: Option<Vec<TopicName>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub format: Option<Format>,
    pub signing: Option<Vec<Scheme>>,
    pub secret: Option<String>,
    pub retry_schedule: Option<Option<RetrySchedule>>,
    /// Replaces all of its headers.
    pub headers: Option<Vec<(String, String)>>,
    /// A new secret with a grace period for the current one. A patch that sets `secret` or `signing` instead
    /// replaces the secret at once and ends any grace period.
    pub rotation: Option<Rotation>,
}

impl Endpoint {
    fn new(new: NewEndpoint, id: EndpointId, now: Timestamp) -> Endpoint {
        let NewEndpoint { tenant, url, topics, description, enabled, format, signing, secret, retry_schedule, headers } =
            new;
        Endpoint {
            id,
            tenant,
            url,
            topics,
            description,
            enabled,
            format,
            signing,
            secret,
            retry_schedule,
            headers,
            previous_secret: None,
            disabled: (!enabled).then(|| Disabled { reason: DISABLED_BY_HAND.to_owned(), at: now }),
            created: now,
            updated: now,
        }
    }

    /// Applies the fields a patch sets and stamps the endpoint as updated at `now`.
    fn apply(&mut self, patch: EndpointPatch, now: Timestamp) {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        let EndpointPatch {
            url,
            topics,
            description,
            enabled,
            format,
            signing,
            secret,
            retry_schedule,
            headers,
            rotation,
        } = patch;
        if secret.is_some() || signing.is_some() {
            self.previous_secret = None;
        }
        if let Some(Rotation { secret, grace_until }) = rotation {
            let replaced = std::mem::replace(&mut self.secret, secret);
            self.previous_secret = grace_until.map(|until| PreviousSecret { secret: replaced, until });
        }
        match enabled {
            Some(true) => self.disabled = None,
            Some(false) if self.enabled => {
                self.disabled = Some(Disabled { reason: DISABLED_BY_HAND.to_owned(), at: now });
            }
            _ => {}
        }
        set(&mut self.url, url);
        set(&mut self.topics, topics);
        set(&mut self.description, description);
        set(&mut self.enabled, enabled);
        set(&mut self.format, format);
        set(&mut self.signing, signing);
        set(&mut self.secret, secret);
        set(&mut self.retry_schedule, retry_schedule);
        set(&mut self.headers, headers);
        self.updated = now;
    }

    /// The previous secret if its grace period has not ended at `now`.
    pub fn previous_secret_at(&self, now: Timestamp) -> Option<&PreviousSecret> {
        self.previous_secret.as_ref().filter(|previous| now < previous.until)
    }
}

/// The columns of `endpoints`, in the order `endpoint_values` binds them and `endpoint_at` reads them.
const COLUMNS: [&str; 16] = [
    "id",
    "tenant_id",
    "created_at",
    "url",
    "description",
    "enabled",
    "format",
    "signing",
    "secret",
    "retry_schedule",
    "headers",
    "updated_at",
    "previous_secret",
    "previous_secret_until",
    "disabled_reason",
    "disabled_at",
];
/// The columns an update leaves as they are; they come first.
const FIXED: usize = 3;

/// An endpoint's values for `COLUMNS`.
fn endpoint_values(endpoint: &Endpoint) -> [Box<dyn Value + Send>; COLUMNS.len()] {
    [
        Box::new(endpoint.id.to_string()),
        Box::new(endpoint.tenant.to_string()),
        Box::new(endpoint.created.unix_millis()),
        Box::new(endpoint.url.clone()),
        Box::new(endpoint.description.clone()),
        Box::new(endpoint.enabled),
        Box::new(endpoint.format.as_str()),
        Box::new(join_schemes(&endpoint.signing)),
        Box::new(endpoint.secret.clone()),
        Box::new(endpoint.retry_schedule.as_ref().map(|schedule| join_schedule(schedule.delays()))),
        Box::new(crate::attempts::headers_json(&endpoint.headers)),
        Box::new(endpoint.updated.unix_millis()),
        Box::new(endpoint.previous_secret.as_ref().map(|previous| previous.secret.clone())),
        Box::new(endpoint.previous_secret.as_ref().map(|previous| previous.until.unix_millis())),
        Box::new(endpoint.disabled.as_ref().map(|disabled| disabled.reason.clone())),
        Box::new(endpoint.disabled.as_ref().map(|disabled| disabled.at.unix_millis())),
    ]
}

/// Reads an endpoint from `READ_COLUMNS`, starting at column `offset` of the row.
pub(crate) fn endpoint_at(row: &dyn Columns, offset: usize) -> Result<Endpoint, StoreError> {
    let column = |index: usize| offset + index;
    Ok(Endpoint {
        id: parse_field(&row.text(column(0))?)?,
        tenant: parse_field(&row.text(column(1))?)?,
        created: millis(row, column(2))?,
        url: row.text(column(3))?,
        description: row.text(column(4))?,
        enabled: row.flag(column(5))?,
        format: parse_field(&row.text(column(6))?)?,
        signing: split_schemes(&row.text(column(7))?)?,
        secret: row.text(column(8))?,
        retry_schedule: row.optional_text(column(9))?.as_deref().map(split_schedule).transpose()?,
        headers: crate::attempts::parse_headers(&row.text(column(10))?)?,
        updated: millis(row, column(11))?,
        previous_secret: match (row.optional_text(column(12))?, row.optional_integer(column(13))?) {
            (Some(secret), Some(until)) => Some(PreviousSecret { secret, until: Timestamp::from_unix_millis(until) }),
            _ => None,
        },
        disabled: match (row.optional_text(column(14))?, row.optional_integer(column(15))?) {
            (Some(reason), Some(at)) => Some(Disabled { reason, at: Timestamp::from_unix_millis(at) }),
            _ => None,
        },
        topics: split_topics(&row.text(column(COLUMNS.len()))?)?,
    })
}

pub(crate) fn endpoint_row(row: &dyn Columns) -> Result<Endpoint, StoreError> {
    endpoint_at(row, 0)
}

/// What reads an endpoint from the table aliased `e`: its columns, then its topics in their order.
pub(crate) static READ_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = COLUMNS.iter().map(|column| format!("e.{column}")).collect();
    format!(
        "{}, COALESCE((SELECT string_agg(t.topic, ',' ORDER BY t.position, t.topic) FROM endpoint_topics t
            WHERE t.endpoint_id = e.id), '')",
        columns.join(", ")
    )
});

static SELECT: LazyLock<String> = LazyLock::new(|| format!("SELECT {} FROM endpoints e", *READ_COLUMNS));

static INSERT: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=COLUMNS.len()).map(|index| format!("${index}")).collect();
    format!("INSERT INTO endpoints ({}) VALUES ({})", COLUMNS.join(", "), placeholders.join(", "))
});

/// Sets every column but the fixed ones; the endpoint's id is the last parameter.
static UPDATE: LazyLock<String> = LazyLock::new(|| {
    let changed = &COLUMNS[FIXED..];
    let assignments: Vec<String> =
        changed.iter().enumerate().map(|(index, column)| format!("{column} = ${}", index + 1)).collect();
    format!("UPDATE endpoints SET {} WHERE id = ${}", assignments.join(", "), changed.len() + 1)
});

fn split_topics(text: &str) -> Result<Vec<TopicName>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(parse_field).collect()
}

pub(crate) fn join_schemes(schemes: &[Scheme]) -> String {
    schemes.iter().map(|scheme| scheme.as_str()).collect::<Vec<_>>().join(",")
}

/// How a delivery's body escapes text, from its endpoint's stored signing column.
pub(crate) fn escape_for_signing(signing: &str) -> Result<hookline_core::json::Escape, StoreError> {
    Ok(hookline_core::body::escape_for(&split_schemes(signing)?))
}

pub(crate) fn split_schemes(text: &str) -> Result<Vec<Scheme>, StoreError> {
    // A chat endpoint may sign with none.
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(parse_field).collect()
}

fn join_schedule(delays: &[Duration]) -> String {
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

/// Which endpoints an event goes to, the endpoint joined as `e` with its subscription `t`: the enabled ones (a
/// deleted one is disabled too) subscribed to a topic. Each publish adds which tenant and topic; a rule that
/// decides who gets an event (wildcards, content filters) adds its condition here, for both databases.
pub(crate) const TARGETS: &str = "FROM endpoints e JOIN endpoint_topics t ON t.endpoint_id = e.id WHERE e.enabled";

/// Endpoints as the embedded store's writer last read them, for the claims and publishes that run on it: every
/// write that changes endpoints moves the writer's generation on (`Sql::endpoints_changed`), and a lookup at a
/// later generation forgets all it held first, so what it gives is never stale.
#[derive(Default)]
pub(crate) struct EndpointCache(Mutex<(u64, HashMap<EndpointId, Arc<Endpoint>>)>);

impl EndpointCache {
    /// The endpoint `id` at the writer's `generation`, read through `sql` only if it is not held already.
    pub(crate) fn endpoint(&self, sql: &mut impl Sql, generation: u64, id: &str) -> Result<Arc<Endpoint>, StoreError> {
        let mut held = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        let (held_generation, endpoints) = &mut *held;
        if *held_generation != generation {
            endpoints.clear();
            *held_generation = generation;
        }
        if let Some(endpoint) = endpoints.get(id) {
            return Ok(Arc::clone(endpoint));
        }
        let endpoint = ready(endpoint_by_id(sql, id))?
            .ok_or_else(|| StoreError::Corrupt { detail: format!("endpoint {id} vanished in a write") })?;
        let endpoint = Arc::new(endpoint);
        endpoints.insert(endpoint.id.clone(), Arc::clone(&endpoint));
        Ok(endpoint)
    }
}

/// The endpoint with this id, of any tenant, deleted or not: for the writer's own use inside a write.
pub(crate) async fn endpoint_by_id(sql: &mut impl Sql, id: &str) -> Result<Option<Endpoint>, StoreError> {
    sql.first(&format!("{} WHERE e.id = $1", *SELECT), &[&id], endpoint_row).await
}

async fn load_endpoint(
    sql: &mut impl Sql,
    tenant: &TenantId,
    id: &EndpointId,
    lock: Lock,
) -> Result<Option<Endpoint>, StoreError> {
    // SQLite has one writer, so a write has the row to itself; PostgreSQL locks it for the transaction.
    let lock = match (lock, sql.dialect()) {
        (Lock::ForUpdate, crate::sql::Dialect::Postgres) => " FOR UPDATE OF e",
        _ => "",
    };
    let statement = format!("{} WHERE e.id = $1 AND e.tenant_id = $2 AND e.deleted_at IS NULL{lock}", *SELECT);
    sql.first(&statement, &[&id.as_str(), &tenant.as_str()], endpoint_row).await
}

/// Whether a read of an endpoint holds it until the write ends, so that concurrent patches apply in turn.
#[derive(Clone, Copy)]
enum Lock {
    None,
    ForUpdate,
}

async fn write_topics(sql: &mut impl Sql, endpoint: &EndpointId, topics: &[TopicName]) -> Result<(), StoreError> {
    sql.execute("DELETE FROM endpoint_topics WHERE endpoint_id = $1", &[&endpoint.as_str()]).await?;
    for (position, topic) in topics.iter().enumerate() {
        let values: [&dyn Value; 3] = [&endpoint.as_str(), &topic.as_str(), &(position as i64)];
        sql.execute(
            "INSERT INTO endpoint_topics (endpoint_id, topic, position) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &values,
        )
        .await?;
    }
    Ok(())
}

fn as_values<const N: usize>(values: &[Box<dyn Value + Send>; N]) -> Vec<&dyn Value> {
    values.iter().map(|value| value.as_ref() as &dyn Value).collect()
}

impl Store {
    /// Creates an endpoint; `None` when the tenant does not exist.
    pub async fn create_endpoint(&self, new: NewEndpoint) -> Result<Option<Endpoint>, StoreError> {
        let now = self.clock.now();
        let endpoint = Endpoint::new(new, EndpointId::generate_at(now), now);
        writing!(self, |sql| {
            if !tenant_exists(sql, &endpoint.tenant).await? {
                return Ok(None);
            }
            check_subscribable(sql, &endpoint.topics, &[]).await?;
            let values = endpoint_values(&endpoint);
            sql.execute(&INSERT, &as_values(&values)).await?;
            write_topics(sql, &endpoint.id, &endpoint.topics).await?;
            Ok(Some(endpoint))
        })
    }

    pub async fn list_endpoints(&self, tenant: TenantId, page: PageRequest) -> Result<Page<Endpoint>, StoreError> {
        reading!(self, |sql| {
            let statement = format!(
                "{} WHERE e.tenant_id = $1 AND e.id > $2 AND e.deleted_at IS NULL ORDER BY e.id LIMIT $3",
                *SELECT
            );
            let values: [&dyn Value; 3] =
                [&tenant.as_str(), &page.cursor.as_deref().unwrap_or(""), &(i64::from(page.limit) + 1)];
            let endpoints = sql.query(&statement, &values, endpoint_row).await?;
            Ok(paginate(endpoints, page.limit, |endpoint| endpoint.id.to_string()))
        })
    }

    /// The endpoint with this id whichever tenant owns it (deleted or not): for the operator's own settings.
    pub async fn find_endpoint(&self, id: EndpointId) -> Result<Option<Endpoint>, StoreError> {
        reading!(self, |sql| endpoint_by_id(sql, id.as_str()).await)
    }

    pub async fn get_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<Option<Endpoint>, StoreError> {
        reading!(self, |sql| load_endpoint(sql, &tenant, &id, Lock::None).await)
    }

    /// Applies `patch`; `None` when the endpoint does not exist for that tenant.
    pub async fn update_endpoint(
        &self,
        tenant: TenantId,
        id: EndpointId,
        patch: EndpointPatch,
    ) -> Result<Option<Endpoint>, StoreError> {
        let now = self.clock.now();
        let endpoint = writing!(self, |sql| {
            sql.endpoints_changed();
            let Some(mut endpoint) = load_endpoint(sql, &tenant, &id, Lock::ForUpdate).await? else {
                return Ok(None);
            };
            if let Some(topics) = &patch.topics {
                check_subscribable(sql, topics, &endpoint.topics).await?;
                write_topics(sql, &endpoint.id, topics).await?;
            }
            let enabled_again = patch.enabled == Some(true) && !endpoint.enabled;
            endpoint.apply(patch, now);
            if enabled_again {
                crate::health::start_over(sql, &endpoint.id).await?;
            }
            let values = endpoint_values(&endpoint);
            let mut changed = as_values(&values).split_off(FIXED);
            let id = endpoint.id.as_str();
            changed.push(&id);
            sql.execute(&UPDATE, &changed).await?;
            if endpoint.enabled {
                // Re-enabling an endpoint may make its held deliveries due.
                sql.work_due().await?;
            }
            Ok(Some(endpoint))
        })?;
        Ok(endpoint)
    }

    /// Forgets up to `limit` previous secrets whose grace is over: a secret a rotation replaced is kept no longer
    /// than it signs. How many it forgot.
    pub async fn forget_expired_secrets(&self, limit: u32) -> Result<u64, StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            let values: [&dyn Value; 2] = [&now, &i64::from(limit)];
            let forgotten = sql
                .execute(
                    "UPDATE endpoints SET previous_secret = NULL, previous_secret_until = NULL
                     WHERE id IN (SELECT id FROM endpoints WHERE previous_secret_until <= $1 LIMIT $2)",
                    &values,
                )
                .await?;
            // Run every purge interval: the writer's endpoints are read again only when one did change.
            if forgotten > 0 {
                sql.endpoints_changed();
            }
            Ok(forgotten)
        })
    }

    /// Deletes an endpoint; `false` when unknown. It is gone from every read and delivers nothing more at once;
    /// its pending deliveries are cancelled (the delivery log stays) and its row removed in the background, a
    /// batch at a time (`Store::remove_deleted`).
    pub async fn delete_endpoint(&self, tenant: TenantId, id: EndpointId) -> Result<bool, StoreError> {
        let now = self.clock.now().unix_millis();
        writing!(self, |sql| {
            sql.endpoints_changed();
            let deleted = sql
                .execute(
                    "UPDATE endpoints SET enabled = FALSE, deleted_at = $1
                     WHERE id = $2 AND tenant_id = $3 AND deleted_at IS NULL",
                    &[&now, &id.as_str(), &tenant.as_str()],
                )
                .await?;
            Ok(deleted > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_are_made_from_the_one_column_list() {
        let placeholders: Vec<String> = (1..=COLUMNS.len()).map(|index| format!("${index}")).collect();
        assert_eq!(
            *INSERT,
            format!("INSERT INTO endpoints ({}) VALUES ({})", COLUMNS.join(", "), placeholders.join(", "))
        );
        let (set, target) = UPDATE.split_once(" WHERE ").expect("an update names its row");
        let assigned: Vec<&str> = set
            .trim_start_matches("UPDATE endpoints SET ")
            .split(", ")
            .map(|assignment| assignment.split(" = ").next().unwrap_or(""))
            .collect();
        assert_eq!(assigned, COLUMNS[FIXED..], "an update sets every column but the fixed ones, in order");
        assert_eq!(target, format!("id = ${}", COLUMNS.len() - FIXED + 1));
        assert!(crate::sql::placeholders_in_order(&INSERT) && crate::sql::placeholders_in_order(&UPDATE));
        assert!(READ_COLUMNS.starts_with(&format!("e.{}", COLUMNS.join(", e."))), "reads in the same order");
    }
}

//! Publishing on PostgreSQL in batches: the publishes that arrive while a batch is being written are written
//! together in the next one, with a few set-based statements and one commit, so the database's work per event
//! stays small under load. A publish still resolves only after its batch has committed.
//!
//! Events are partitioned by time (`crate::postgres::partitions`), and no unique index spans partitions: a
//! batch holds a lock on each idempotency key it carries, in one order, while it looks for an event with that key
//! and writes its own, so that two publishes with one key, on any nodes, write one event between them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use hookline_core::id::DeliveryId;
use hookline_core::json::Escape;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Event, Published, event_cells, replayed_row, replayed_select};
use crate::StoreError;
use crate::deliveries::{self, NewDelivery};
use crate::endpoints::{TARGETS, escape_for_signing};
use crate::postgres::notify_work;
use crate::postgres::partitions;
use crate::postgres::pool::{Pool, Session};
use crate::rows::{Batch, column_list, unnest};
use crate::sql::Columns;

/// How many publishes one batch may carry.
const MAX_BATCH: usize = 256;
/// Batches being written at once: while one commits, the next is gathered and written.
const WRITERS: usize = 3;

type Answer = Result<Option<Published>, StoreError>;

pub(crate) struct PublishJob {
    event: Event,
    reply: oneshot::Sender<Answer>,
}

/// Where publishes are queued; the writers end when the last sender is gone.
#[derive(Clone)]
pub(crate) struct Publisher {
    queue: mpsc::Sender<PublishJob>,
}

impl Publisher {
    /// `partition_width` is the span of the partitions a batch makes when its events have none (see
    /// `crate::StoreOptions::partition_width`).
    pub(crate) fn start(pool: Arc<Pool>, partition_width: std::time::Duration) -> Publisher {
        let (queue, receiver) = mpsc::channel(4096);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_loop(Arc::clone(&pool), Arc::clone(&receiver), partition_width));
        }
        Publisher { queue }
    }

    /// Stores the event and its deliveries with the next batch; answers once that batch has committed.
    pub(crate) async fn publish(&self, event: Event) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.queue.send(PublishJob { event, reply }).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn write_loop(
    pool: Arc<Pool>,
    receiver: Arc<Mutex<mpsc::Receiver<PublishJob>>>,
    partition_width: std::time::Duration,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            // One writer gathers at a time; the others are writing meanwhile.
            let mut receiver = receiver.lock().await;
            if receiver.recv_many(&mut jobs, MAX_BATCH).await == 0 {
                return;
            }
        }
        // Events and replies apart, so the batch is written from the events themselves, not copies.
        let (events, replies): (Vec<Event>, Vec<oneshot::Sender<Answer>>) =
            jobs.drain(..).map(|job| (job.event, job.reply)).unzip();
        match write_covered(&pool, &events, partition_width).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    // The caller may have gone away; what was committed stands.
                    let _ = reply.send(answer);
                }
            }
            // Unreachable: nothing was written, and each caller hears so.
            Err(error) if error.is_unavailable() => {
                for reply in replies {
                    let _ =
                        reply.send(Err(StoreError::Unavailable { location: pool.location().to_owned(), source: None }));
                }
                tracing::warn!(error = %error, "publishing failed: the database is unreachable");
            }
            // Any other failure may be one event's: write each alone, so only that one fails.
            Err(error) => {
                tracing::warn!(error = %error, jobs = events.len(), "a publish batch failed; writing its events one by one");
                for (event, reply) in events.iter().zip(replies) {
                    let answer = match write_batch(&pool, std::slice::from_ref(event)).await {
                        // A batch of one has one answer.
                        Ok(mut answers) => answers.pop().unwrap_or(Ok(None)),
                        Err(error) => Err(error),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    }
}

/// Writes a batch; if no partition took some of its events (the store has not made one for their time yet, as
/// after a long stop or with a clock moved on), makes the partitions and writes it again.
async fn write_covered(
    pool: &Pool,
    events: &[Event],
    partition_width: std::time::Duration,
) -> Result<Vec<Answer>, StoreError> {
    match write_batch(pool, events).await {
        Err(error) if partitions::is_missing_partition(&error) => {
            let times: Vec<_> = events.iter().map(|event| event.created).collect();
            let made = partitions::cover(pool, &times, partition_width).await?;
            tracing::info!(made, "made partitions for events that had none");
            write_batch(pool, events).await
        }
        written => written,
    }
}

/// Writes a batch in one transaction; one answer per event, in order.
async fn write_batch(pool: &Pool, events: &[Event]) -> Result<Vec<Answer>, StoreError> {
    let mut connection = pool.get().await?;
    let transaction = connection.transaction().await.map_err(|error| pool.classify(error))?;
    let answers = {
        let mut session = Session { client: &transaction, pool };
        write_events(&mut session, events).await?
    };
    transaction.commit().await.map_err(|error| pool.classify(error))?;
    Ok(answers)
}

/// What to answer one event of a batch.
enum Plan {
    Answer(Answer),
    /// The same idempotency key as an earlier event of this batch: answer as that one, replayed.
    SameAs(usize),
    Insert,
}

async fn write_events(
    session: &mut Session<'_, deadpool_postgres::Transaction<'_>>,
    events: &[Event],
) -> Result<Vec<Answer>, StoreError> {
    let tenants: Vec<&str> = unique(events.iter().map(|event| event.tenant.as_str()));
    // Held until the batch commits: a tenant's deletion, which marks the row, waits for the batch, and its rows
    // are removed only after the mark, so no event of a deleted tenant is left behind (there is no foreign key).
    let known_tenants = names(
        session
            .pg_query("SELECT id FROM tenants WHERE id = ANY($1) AND deleted_at IS NULL FOR SHARE", &[&tenants])
            .await?,
    )?;
    let topics: Vec<&str> = unique(events.iter().map(|event| event.topic.as_str()));
    let known_topics = names(session.pg_query("SELECT name FROM topics WHERE name = ANY($1)", &[&topics]).await?)?;
    lock_keys(session, events).await?;
    let existing = existing_by_key(session, events).await?;

    let mut plans = Vec::with_capacity(events.len());
    let mut first_with_key: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        let key = event.idempotency_key.as_deref().map(|key| (event.tenant.as_str(), key));
        let plan = if !known_tenants.contains(event.tenant.as_str()) {
            Plan::Answer(Ok(None))
        } else if let Some(published) = key.and_then(|key| existing.get(&key)) {
            Plan::Answer(Ok(Some(published.clone())))
        } else if let Some(first) = key.and_then(|key| first_with_key.get(&key)) {
            Plan::SameAs(*first)
        } else if !known_topics.contains(event.topic.as_str()) {
            Plan::Answer(Err(StoreError::UnknownTopic { name: event.topic.to_string() }))
        } else {
            if let Some(key) = key {
                first_with_key.insert(key, index);
            }
            Plan::Insert
        };
        plans.push(plan);
    }

    let to_insert: Vec<&Event> =
        events.iter().zip(&plans).filter(|(_, plan)| matches!(plan, Plan::Insert)).map(|(event, _)| event).collect();
    let inserted = insert_events(session, &to_insert).await?;
    let deliveries = insert_deliveries(session, &to_insert, &inserted).await?;
    if deliveries.values().any(|count| *count > 0) {
        notify_work(session).await?;
    }

    let mut answers: Vec<Answer> = Vec::with_capacity(events.len());
    for (event, plan) in events.iter().zip(plans) {
        let answer = match plan {
            Plan::Answer(answer) => answer,
            Plan::SameAs(first) => match &answers[first] {
                Ok(Some(published)) => Ok(Some(Published { replayed: true, ..published.clone() })),
                // The first was not stored after all: this one is answered as it would have been.
                _ => Err(StoreError::Conflict { what: "idempotency key", id: event.id.to_string() }),
            },
            Plan::Insert if inserted.contains(event.id.as_str()) => {
                let deliveries = deliveries.get(event.id.as_str()).copied().unwrap_or(0);
                Ok(Some(Published { event: event.clone(), deliveries, replayed: false, due: deliveries }))
            }
            // Every row of the insert is written, or none; one missing from what it returned is a fault.
            Plan::Insert => Err(StoreError::Corrupt { detail: format!("event {} was not written", event.id) }),
        };
        answers.push(answer);
    }
    Ok(answers)
}

fn unique<T: Copy + Eq + std::hash::Hash>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    values.filter(|value| seen.insert(*value)).collect()
}

fn names(rows: Vec<tokio_postgres::Row>) -> Result<HashSet<String>, StoreError> {
    rows.iter().map(|row| row.text(0)).collect()
}

/// The locks' class (the first of PostgreSQL's two keys), apart from every other lock a single key names.
const KEY_LOCKS: i32 = 0x6b65_7973; // "keys"

/// Locks each idempotency key of the batch until it commits, in the order of their hashes, so that two batches
/// never wait for each other both ways. Two keys may share a hash; their publishes then only wait in turn.
async fn lock_keys(
    session: &mut Session<'_, deadpool_postgres::Transaction<'_>>,
    events: &[Event],
) -> Result<(), StoreError> {
    let keyed: Vec<String> = events
        .iter()
        .filter_map(|event| event.idempotency_key.as_deref().map(|key| format!("{}\n{key}", event.tenant)))
        .collect();
    if keyed.is_empty() {
        return Ok(());
    }
    session
        .pg_execute(
            "SELECT pg_advisory_xact_lock($1, hash) FROM (
                SELECT DISTINCT hashtext(key) AS hash FROM unnest($2::text[]) AS key ORDER BY 1) AS hashes",
            &[&KEY_LOCKS, &keyed],
        )
        .await
        .map(|_| ())
}

/// The events already stored under the batch's idempotency keys, as replayed answers.
async fn existing_by_key<'a>(
    session: &mut Session<'_, deadpool_postgres::Transaction<'_>>,
    events: &'a [Event],
) -> Result<HashMap<(&'a str, &'a str), Published>, StoreError> {
    let keyed: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|event| event.idempotency_key.as_deref().map(|key| (event.tenant.as_str(), key)))
        .collect();
    let mut found = HashMap::new();
    if keyed.is_empty() {
        return Ok(found);
    }
    let (tenants, keys): (Vec<&str>, Vec<&str>) = keyed.iter().copied().unzip();
    let statement =
        concat!(replayed_select!(), "(tenant_id, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))");
    let rows = session.pg_query(statement, &[&tenants, &keys]).await?;
    for row in rows {
        let published = replayed_row(&row)?;
        let event = &published.event;
        if let Some(key) = keyed
            .iter()
            .find(|(tenant, key)| *tenant == event.tenant.as_str() && Some(*key) == event.idempotency_key.as_deref())
        {
            found.insert(*key, published);
        }
    }
    Ok(found)
}

/// Inserts the events; returns the ids inserted.
async fn insert_events(
    session: &mut Session<'_, deadpool_postgres::Transaction<'_>>,
    events: &[&Event],
) -> Result<HashSet<String>, StoreError> {
    if events.is_empty() {
        return Ok(HashSet::new());
    }
    let mut batch = Batch::new(&super::COLUMNS);
    for event in events {
        batch.push(&event_cells(event));
    }
    // The keys are locked and none was stored (`lock_keys`, `existing_by_key`): every row goes in.
    let values: Vec<_> = batch.values().collect();
    let rows = session.pg_query(&INSERT_EVENTS, &values).await?;
    names(rows)
}

/// Makes one delivery per enabled endpoint subscribed to each inserted event's topic; returns how many each
/// event got.
async fn insert_deliveries(
    session: &mut Session<'_, deadpool_postgres::Transaction<'_>>,
    events: &[&Event],
    inserted: &HashSet<String>,
) -> Result<HashMap<String, u64>, StoreError> {
    let events: Vec<&Event> = events.iter().copied().filter(|event| inserted.contains(event.id.as_str())).collect();
    let mut counts: HashMap<String, u64> = HashMap::new();
    if events.is_empty() {
        return Ok(counts);
    }
    let pairs = unique(events.iter().map(|event| (event.tenant.as_str(), event.topic.as_str())));
    let (tenants, topics): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
    let rows = session.pg_query(&TARGETS_OF_BATCH, &[&tenants, &topics]).await?;
    let mut targets: HashMap<(String, String), Vec<Target>> = HashMap::new();
    for row in &rows {
        let target =
            Target { endpoint: row.text(2)?, format: row.text(3)?, escape: escape_for_signing(&row.text(4)?)? };
        targets.entry((row.text(0)?, row.text(1)?)).or_default().push(target);
    }
    // Every delivery's id first, so that the batch can borrow them.
    let mut made = Vec::new();
    for event in &events {
        let key = (event.tenant.to_string(), event.topic.to_string());
        let endpoints = targets.get(&key).map(Vec::as_slice).unwrap_or_default();
        let taken: Vec<&Target> = endpoints.iter().filter(|target| event.route.takes(&target.endpoint)).collect();
        counts.insert(event.id.to_string(), taken.len() as u64);
        made.extend(taken.into_iter().map(|target| (DeliveryId::generate_at(event.created), *event, target)));
    }
    let mut batch = Batch::new(&deliveries::NEW_COLUMNS);
    for (id, event, target) in &made {
        let created = event.created.unix_millis();
        let delivery = NewDelivery {
            id: id.as_str(),
            tenant: event.tenant.as_str(),
            event: event.id.as_str(),
            endpoint: &target.endpoint,
            topic: event.topic.as_str(),
            format: &target.format,
            escape: target.escape,
            next_attempt_at: created,
            lease: None,
            created,
            origin: event.route.origin,
        };
        batch.push(&delivery.cells());
    }
    if !batch.is_empty() {
        let values: Vec<_> = batch.values().collect();
        session.pg_execute(&INSERT_DELIVERIES, &values).await?;
    }
    Ok(counts)
}

/// An endpoint an event goes to.
struct Target {
    endpoint: String,
    format: String,
    escape: Escape,
}

/// The endpoints the events of a batch go to, for its pairs of tenant (`$1`) and topic (`$2`).
static TARGETS_OF_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT e.tenant_id, t.topic, e.id, e.format, e.signing {TARGETS}
            AND (e.tenant_id, t.topic) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
    )
});

/// The statements a batch writes with, made from the events' and deliveries' column lists.
static INSERT_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO events ({}) SELECT * FROM {} RETURNING id",
        column_list(&super::COLUMNS),
        unnest(&super::COLUMNS, 1, "v")
    )
});
static INSERT_DELIVERIES: LazyLock<String> = LazyLock::new(|| {
    let columns = &deliveries::NEW_COLUMNS;
    format!("INSERT INTO deliveries ({}) SELECT * FROM {}", column_list(columns), unnest(columns, 1, "d"))
});

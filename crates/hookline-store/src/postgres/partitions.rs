//! Events, deliveries and attempts on PostgreSQL are partitioned by time: each table by the id its rows are found
//! by (an event's, a delivery's), whose first characters are the millisecond it was made. One set of partitions,
//! one of each table over the same span, covers `width` of time, and the store makes the next sets ahead of the
//! clock. Retention then drops a set whole once all of it is older than the horizon and none of its deliveries is
//! pending: a purge costs a few catalogue rows instead of a delete per row, with its dead rows, index entries and
//! WAL, and the tables a vacuum must pass over stay those that traffic churns.
//!
//! A set is named after its upper bound's millisecond, as the id's ten characters that encode it
//! (`deliveries_p01kbx3r2m0`), so the three tables' partitions of one span share their suffix. The tables a store
//! had before partitioning are its first set, from the lowest id (`MINVALUE`), which retention purges row by row
//! until all of it is past the horizon. A set is dropped in the order deliveries, attempts, events, each detached
//! first without blocking reads and writes (`DETACH PARTITION … CONCURRENTLY`); a crash halfway leaves what the
//! next purge finishes (`recover`).

use std::collections::BTreeMap;
use std::time::Duration;

use hookline_core::id::{DeliveryId, EventId};
use hookline_core::time::Timestamp;

use super::pool::{Pool, Pooled, Session};
use crate::StoreError;
use crate::sql::Columns;

/// The partitioned tables with the prefix of the ids they are partitioned by, in the order a set is dropped:
/// deliveries first, whose pending ones keep a set, then the rest.
const TABLES: [(&str, &str); 3] =
    [("deliveries", DeliveryId::PREFIX), ("attempts", DeliveryId::PREFIX), ("events", EventId::PREFIX)];

/// Sets are made this far ahead of the clock, at least: a node that holds the job and dies leaves the others this
/// long to take it over. A publish past the last set makes one itself (`cover`), so this is not a limit.
const AHEAD_AT_LEAST: Duration = Duration::from_secs(120);
/// ... and at least this many sets' width ahead.
const SETS_AHEAD: u32 = 3;

/// The narrowest a set may be: each set is three tables and a dozen indexes in the catalogue.
pub(crate) const MIN_WIDTH: Duration = Duration::from_secs(10);

/// Serialises changes to the partitions across nodes ("partitio" in ASCII).
const PARTITION_LOCK: i64 = 0x7061_7274_6974_696f;
/// Held by the one purge that drops sets at a time, for as long as it runs ("purgeset" in ASCII). The purge
/// job's lease alone does not serialise them: a detach waits for every transaction on its table, and a long one
/// can outlast the lease, so that another node takes the job over while the first is still dropping.
pub(crate) const PURGE_LOCK: i64 = 0x7075_7267_6573_6574;

/// The comment a partition gets before retention detaches it, by which `recover` knows the tables it may finish
/// dropping: any other table detached (an operator's, kept apart on purpose) is left alone.
const DETACHED_MARK: &str = "hookline: detached by retention, to be dropped";

/// A partition the statistics say nothing of is counted up to this many rows when it is dropped.
const COUNTED_AT_MOST: u32 = 100_000;

/// The storage settings of migration 8, which a partitioned table cannot carry for its partitions.
const STORAGE: &str = "autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02, \
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0";

/// One partition of one table: its bounds as the ids they are, `None` below for `MINVALUE`.
#[derive(Clone, Debug)]
struct Bounds {
    lower: Option<String>,
    upper: String,
}

/// The partitions of one span, by table.
#[derive(Debug, Default)]
struct Set {
    tables: BTreeMap<&'static str, Bounds>,
}

impl Bounds {
    /// The bounds as a statement gives them (`FOR VALUES FROM (…) TO (…)`), as `read_partition_bound` reads them.
    fn clause(&self) -> String {
        let lower = self.lower.as_ref().map_or_else(|| "MINVALUE".to_owned(), |lower| format!("'{lower}'"));
        format!("FOR VALUES FROM ({lower}) TO ('{}')", self.upper)
    }
}

impl Set {
    /// The upper bound of one of its partitions (each table's begins with its own prefix, and the rest is the
    /// same in all three).
    fn upper(&self) -> Option<&str> {
        self.tables.values().next().map(|bounds| bounds.upper.as_str())
    }

    /// The ids it holds, from any of its partitions (a set dropped halfway has fewer than three).
    fn span(&self) -> Option<Span> {
        let bounds = self.tables.values().next()?;
        let body = |id: &str| id[DeliveryId::PREFIX.len()..].to_owned();
        Some(Span { lower: bounds.lower.as_deref().map(body), upper: body(&bounds.upper) })
    }

    /// Whether this set is the tables from before partitioning, from the lowest id.
    fn is_first(&self) -> bool {
        self.tables.values().any(|bounds| bounds.lower.is_none())
    }
}

/// The millisecond an id's ten first characters of body encode.
fn suffix_time(suffix: &str) -> Option<Timestamp> {
    let id: EventId = format!("{}{suffix}{}", EventId::PREFIX, "0".repeat(16)).parse().ok()?;
    Some(id.time())
}

/// The suffix naming the set whose upper bound is `upper` (an id).
fn suffix_of(upper: &str) -> &str {
    &upper[4..14]
}

/// A bound as PostgreSQL writes it back: `MINVALUE` or a quoted id.
fn read_bound(text: &str) -> Result<Option<String>, StoreError> {
    let text = text.trim();
    if text == "MINVALUE" {
        return Ok(None);
    }
    let id = text.strip_prefix('\'').and_then(|text| text.strip_suffix('\''));
    match id {
        Some(id) if is_id(id) => Ok(Some(id.to_owned())),
        _ => Err(StoreError::Corrupt { detail: format!("a partition bound that is not an id: {text}") }),
    }
}

/// An id of the shape the partitions are bounded by (so that it can be written into a statement as it is).
fn is_id(text: &str) -> bool {
    text.len() == 30 && text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

/// `FOR VALUES FROM (…) TO (…)`, read.
fn read_partition_bound(text: &str) -> Result<Bounds, StoreError> {
    let corrupt = || StoreError::Corrupt { detail: format!("a partition bound of an unknown shape: {text}") };
    let rest = text.strip_prefix("FOR VALUES FROM (").ok_or_else(corrupt)?;
    let (lower, rest) = rest.split_once(") TO (").ok_or_else(corrupt)?;
    let upper = rest.strip_suffix(')').ok_or_else(corrupt)?;
    Ok(Bounds { lower: read_bound(lower)?, upper: read_bound(upper)?.ok_or_else(corrupt)? })
}

/// Every set, oldest first (by the suffix, which sorts as the time it encodes).
async fn sets<C: deadpool_postgres::GenericClient>(
    session: &mut Session<'_, C>,
) -> Result<BTreeMap<String, Set>, StoreError> {
    let rows = session
        .pg_query(
            "SELECT parent.relname::text, child.relname::text, pg_get_expr(child.relpartbound, child.oid)
             FROM pg_inherits i JOIN pg_class child ON child.oid = i.inhrelid
                JOIN pg_class parent ON parent.oid = i.inhparent
             WHERE parent.relnamespace = current_schema()::regnamespace AND parent.relname::text = ANY($1)
                AND NOT i.inhdetachpending",
            &[&TABLES.iter().map(|(table, _)| *table).collect::<Vec<_>>()],
        )
        .await?;
    let mut sets: BTreeMap<String, Set> = BTreeMap::new();
    for row in rows {
        let (parent, child, bound) = (row.text(0)?, row.text(1)?, row.text(2)?);
        let Some(&(table, _)) = TABLES.iter().find(|(table, _)| *table == parent) else { continue };
        // Only names of the shape the store gives its partitions, which are written into statements as they are.
        let Some(suffix) = child.strip_prefix(&format!("{table}_p")).filter(|suffix| is_suffix(suffix)) else {
            continue;
        };
        sets.entry(suffix.to_owned()).or_default().tables.insert(table, read_partition_bound(&bound)?);
    }
    Ok(sets)
}

/// A set's suffix: ten characters of an id's body.
fn is_suffix(text: &str) -> bool {
    text.len() == 10 && text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
}

/// `time` rounded down to a multiple of `width` since the epoch.
fn floor(time: Timestamp, width: Duration) -> Timestamp {
    let width = width.as_millis().clamp(1, i64::MAX as u128) as i64;
    Timestamp::from_unix_millis(time.unix_millis().div_euclid(width) * width)
}

/// Makes sets so that every id of the window of `width` around each of `times` has a partition: each set a
/// window of `width` from a multiple of it since the epoch, or the part of one that no set has yet. A stretch of
/// time no id was made in (a long stop, a clock that jumped ahead and back, sets of the past dropped around one a
/// pending delivery keeps) stays without sets, so that no set spans more than one window and retention drops each
/// on time; an id made there later (a clock set back) gets its window then. Under a lock, so nodes doing this at
/// once make each set once. How many sets were made.
pub(crate) async fn cover(pool: &Pool, times: &[Timestamp], width: Duration) -> Result<u32, StoreError> {
    let width = width.max(MIN_WIDTH);
    let mut connection = pool.get().await?;
    let transaction = connection.transaction().await.map_err(|error| pool.classify(error))?;
    let mut session = Session { client: &transaction, pool };
    session.pg_execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK]).await?;
    let existing = sets(&mut session).await?;
    let mut spans: Vec<Span> = existing.values().filter_map(Set::span).collect();
    let windows: std::collections::BTreeSet<Timestamp> = times.iter().map(|time| floor(*time, width)).collect();
    let mut made = 0;
    let mut statements = String::new();
    for window in windows {
        let wanted = Span { lower: Some(body(window)), upper: body(window.saturating_add(width)) };
        for gap in wanted.less(&spans) {
            let lowers: Option<Vec<String>> =
                gap.lower.as_ref().map(|lower| TABLES.iter().map(|(_, prefix)| format!("{prefix}{lower}")).collect());
            let uppers: Vec<String> = TABLES.iter().map(|(_, prefix)| format!("{prefix}{}", gap.upper)).collect();
            add_set(&mut statements, lowers.as_deref(), &uppers);
            spans.push(gap);
            made += 1;
        }
    }
    if made > 0 {
        transaction.batch_execute(&statements).await.map_err(|error| pool.classify(error))?;
    }
    transaction.commit().await.map_err(|error| pool.classify(error))?;
    Ok(made)
}

/// The ids a set holds, as the part of an id after its prefix (the same in all three tables), `None` below for
/// the lowest.
#[derive(Clone, Debug, PartialEq)]
struct Span {
    lower: Option<String>,
    upper: String,
}

impl Span {
    /// The parts of this span that none of `spans` (which do not overlap) holds, in order. `None`, the lowest
    /// id, sorts below every id, as `Option` does.
    fn less(&self, spans: &[Span]) -> Vec<Span> {
        let mut others: Vec<&Span> = spans.iter().collect();
        others.sort_by(|a, b| a.lower.cmp(&b.lower));
        let mut gaps = Vec::new();
        // Where the part that no span holds yet begins.
        let mut from = self.lower.clone();
        for other in others {
            if other.lower.as_deref() >= Some(self.upper.as_str()) {
                break;
            }
            if Some(&other.upper) <= from.as_ref() {
                continue;
            }
            if let Some(lower) = other.lower.as_ref().filter(|lower| Some(*lower) > from.as_ref()) {
                gaps.push(Span { lower: from, upper: lower.clone() });
            }
            from = Some(other.upper.clone());
        }
        if from.as_deref() < Some(self.upper.as_str()) {
            gaps.push(Span { lower: from, upper: self.upper.clone() });
        }
        gaps
    }
}

/// The part after the prefix of the first id of `time`.
fn body(time: Timestamp) -> String {
    EventId::first_at(time).as_str()[EventId::PREFIX.len()..].to_owned()
}

/// The statements that make one set, from `lowers` (`MINVALUE` if none) to `uppers`, one of each per table.
fn add_set(statements: &mut String, lowers: Option<&[String]>, uppers: &[String]) {
    for (index, (table, _)) in TABLES.iter().enumerate() {
        let upper = &uppers[index];
        let lower = lowers.map_or_else(|| "MINVALUE".to_owned(), |lowers| format!("'{}'", lowers[index]));
        let partition = format!("{table}_p{}", suffix_of(upper));
        // Made apart and attached, which locks the parent only against other changes of its partitions (as
        // `CREATE TABLE … PARTITION OF` would lock it against reads and writes).
        statements.push_str(&format!(
            "CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS) WITH ({STORAGE});
             ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES FROM ({lower}) TO ('{upper}');\n"
        ));
    }
}

/// Makes the sets ahead of `now` that the store should have (see `AHEAD_AT_LEAST`); how many were made.
pub(crate) async fn prepare(pool: &Pool, now: Timestamp, width: Duration) -> Result<u32, StoreError> {
    let width = width.max(MIN_WIDTH);
    let ahead = AHEAD_AT_LEAST.max(width * SETS_AHEAD);
    let mut times = vec![now];
    while let Some(&last) = times.last()
        && last < now.saturating_add(ahead)
    {
        times.push(last.saturating_add(width));
    }
    cover(pool, &times, width).await
}

/// Whether a write failed for want of a partition for its rows. PostgreSQL says so with a check violation
/// (SQLSTATE 23514) that names the partitioned table and no constraint, where a failed CHECK names its
/// constraint; the message itself is translated by `lc_messages`, so it is not read.
pub(crate) fn is_missing_partition(error: &StoreError) -> bool {
    match error {
        StoreError::Postgres(error) => {
            error.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
                && error.as_db_error().is_some_and(|error| {
                    error.constraint().is_none() && TABLES.iter().any(|(table, _)| error.table() == Some(*table))
                })
        }
        _ => false,
    }
}

/// The rows of each table that dropping sets removed (the statistics' estimates: see `drop_set`).
#[derive(Clone, Copy, Default)]
pub(crate) struct DroppedRows {
    pub(crate) events: u64,
    pub(crate) deliveries: u64,
    pub(crate) attempts: u64,
}

/// What dropping sets did, and the id below which a purge row by row may still look (see `drop_expired`).
pub(crate) struct Dropped {
    pub(crate) purged: DroppedRows,
    /// Every event before this time whose set was dropped is gone.
    pub(crate) purged_before: Option<Timestamp>,
    /// Rows before this event id that retention may purge one by one: those of sets wholly past the horizon that
    /// a pending delivery keeps, and those of the first set up to the horizon. Rows of a set that straddles the
    /// horizon wait for it to be dropped whole.
    pub(crate) rows_before: String,
}

/// Drops each set wholly older than `horizon` that holds no pending delivery, oldest first, after finishing what
/// a crash interrupted. Does nothing while another purge drops sets (see `PURGE_LOCK`).
pub(crate) async fn drop_expired(pool: &Pool, horizon: Timestamp) -> Result<Dropped, StoreError> {
    let connection = pool.get().await?;
    let mut session = Session { client: &connection, pool };
    let nothing = Dropped { purged: DroppedRows::default(), purged_before: None, rows_before: String::new() };
    // A session's lock, not a transaction's: a detach cannot run in a transaction.
    let locked = session.pg_query_one("SELECT pg_try_advisory_lock($1)", &[&PURGE_LOCK]).await?;
    if !locked.flag(0)? {
        return Ok(nothing);
    }
    let dropped = drop_locked(&mut session, horizon, nothing).await;
    let unlocked = session.pg_query_one("SELECT pg_advisory_unlock($1)", &[&PURGE_LOCK]).await;
    if unlocked.is_err() {
        // The connection is broken, or would go back to the pool holding the lock: it is closed instead, which
        // releases the lock if PostgreSQL still had it.
        drop(deadpool_postgres::Object::take(connection));
    }
    let dropped = dropped?;
    unlocked?;
    Ok(dropped)
}

async fn drop_locked(
    session: &mut Session<'_, Pooled>,
    horizon: Timestamp,
    mut dropped: Dropped,
) -> Result<Dropped, StoreError> {
    recover(session).await?;
    let boundary = EventId::first_at(horizon).to_string();
    // Every id of a partition sorts below its upper bound: below the horizon's first id, all of it is older.
    let expired = |upper: &str| upper[4..] <= boundary[4..];
    // Rows are purged one by one only below a set whose deliveries are a table apart, whose events and attempts
    // must stay with them.
    let mut rows_held = false;
    for (suffix, set) in sets(session).await? {
        let Some(upper) = set.upper().map(str::to_owned) else { continue };
        if !expired(&upper) {
            // The first set straddling the horizon is purged row by row up to it; any later one waits.
            if set.is_first() && !rows_held {
                dropped.rows_before = boundary.clone();
            }
            break;
        }
        let events_before = dropped.purged.events;
        let outcome = drop_set(session, &suffix, &set, &mut dropped.purged).await?;
        rows_held |= outcome == Outcome::KeptApart;
        if !rows_held {
            dropped.rows_before = format!("{}{}", EventId::PREFIX, &upper[4..]);
        }
        if outcome != Outcome::Dropped {
            continue;
        }
        // The mark moves with the events purged, as on SQLite: a span that held none says nothing of its ids.
        if dropped.purged.events == events_before {
            continue;
        }
        // An upper bound of the first set is the last id of its millisecond, not the first of the next.
        let time = suffix_time(&suffix).unwrap_or(horizon);
        let time =
            if upper.ends_with("0000000000000000") { time } else { time.saturating_add(Duration::from_millis(1)) };
        dropped.purged_before = Some(dropped.purged_before.map_or(time, |before| before.max(time)));
    }
    Ok(dropped)
}

/// What became of a set past the horizon.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Dropped,
    /// One of its deliveries is pending: its other rows are purged one by one.
    KeptPending,
    /// Its deliveries are a table apart (detached by someone else, or whose span `recover` could not find): its
    /// events and attempts stay whole beside them.
    KeptApart,
}

/// Drops one set unless one of its deliveries is pending or they are a table apart. The rows counted are the
/// statistics' estimates where PostgreSQL has them (counting a partition of days would read all of it).
async fn drop_set(
    session: &mut Session<'_, Pooled>,
    suffix: &str,
    set: &Set,
    purged: &mut DroppedRows,
) -> Result<Outcome, StoreError> {
    let deliveries = format!("deliveries_p{suffix}");
    if set.tables.contains_key("deliveries") && holds_pending(session, &deliveries).await? {
        return Ok(Outcome::KeptPending);
    }
    if !set.tables.contains_key("deliveries") && table_exists(session, &deliveries).await? {
        return Ok(Outcome::KeptApart);
    }
    for (table, _) in TABLES {
        let Some(bounds) = set.tables.get(table) else { continue };
        let partition = format!("{table}_p{suffix}");
        let rows = estimated_rows(session, &partition).await?;
        execute(session, &format!("COMMENT ON TABLE {partition} IS '{DETACHED_MARK}'")).await?;
        execute(session, &format!("ALTER TABLE {table} DETACH PARTITION {partition} CONCURRENTLY")).await?;
        // A delivery made pending again in the moment before it was detached (a retry asked for by hand) keeps
        // its set after all.
        if table == "deliveries" && holds_pending(session, &partition).await? {
            attach_again(session, &partition, bounds).await?;
            return Ok(Outcome::KeptPending);
        }
        execute(session, &format!("DROP TABLE {partition}")).await?;
        match table {
            "deliveries" => purged.deliveries += rows,
            "attempts" => purged.attempts += rows,
            _ => purged.events += rows,
        }
    }
    Ok(Outcome::Dropped)
}

/// Attaches deliveries that retention detached again, with their bounds, as they were.
async fn attach_again(session: &mut Session<'_, Pooled>, partition: &str, bounds: &Bounds) -> Result<(), StoreError> {
    execute(
        session,
        &format!(
            "ALTER TABLE deliveries ATTACH PARTITION {partition} {}; COMMENT ON TABLE {partition} IS NULL",
            bounds.clause()
        ),
    )
    .await
}

async fn execute(session: &mut Session<'_, Pooled>, statement: &str) -> Result<(), StoreError> {
    session.client.batch_execute(statement).await.map_err(|error| session.pool.classify(error))
}

async fn table_exists(session: &mut Session<'_, Pooled>, table: &str) -> Result<bool, StoreError> {
    let row = session.pg_query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await?;
    row.flag(0)
}

async fn holds_pending(session: &mut Session<'_, Pooled>, table: &str) -> Result<bool, StoreError> {
    let statement = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE status = 'pending')");
    let row = session.client.query_one(&statement, &[]).await.map_err(|error| session.pool.classify(error))?;
    Ok(row.get(0))
}

async fn estimated_rows(session: &mut Session<'_, Pooled>, table: &str) -> Result<u64, StoreError> {
    let row =
        session.pg_query_one("SELECT reltuples::int8 FROM pg_class WHERE oid = to_regclass($1)", &[&table]).await?;
    let estimate = row.optional_integer(0)?.unwrap_or(-1);
    if estimate > 0 {
        return Ok(estimate.unsigned_abs());
    }
    // Never vacuumed nor analyzed, or last analyzed empty (as a set made ahead is): counted, up to a bound, so
    // that rows the statistics do not know of still count (the purge's mark moves with the events it dropped).
    let row = session
        .client
        .query_one(&format!("SELECT COUNT(*) FROM (SELECT FROM {table} LIMIT {COUNTED_AT_MOST}) AS counted"), &[])
        .await
        .map_err(|error| session.pool.classify(error))?;
    Ok(row.get::<_, i64>(0).unsigned_abs())
}

/// Finishes what a purge interrupted by a crash left: a detach begun and not completed, and a partition detached
/// and not dropped (marked by retention before it detached it: another table detached is not the store's to
/// drop). Deliveries detached that hold a pending one (a retry asked for at that very moment) are
/// attached again, over the bounds of their set's attempts, which a set drops only after its deliveries.
async fn recover(session: &mut Session<'_, Pooled>) -> Result<(), StoreError> {
    let tables: Vec<&str> = TABLES.iter().map(|(table, _)| *table).collect();
    let pending = session
        .pg_query(
            "SELECT parent.relname::text, child.relname::text
             FROM pg_inherits i JOIN pg_class child ON child.oid = i.inhrelid
                JOIN pg_class parent ON parent.oid = i.inhparent
             WHERE parent.relnamespace = current_schema()::regnamespace AND parent.relname::text = ANY($1)
                AND i.inhdetachpending",
            &[&tables],
        )
        .await?;
    for row in pending {
        let (parent, child) = (row.text(0)?, row.text(1)?);
        execute(session, &format!("ALTER TABLE {parent} DETACH PARTITION {child} FINALIZE")).await?;
    }
    let detached = session
        .pg_query(
            "SELECT relname::text FROM pg_class
             WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND NOT relispartition
                AND relname ~ '^(events|deliveries|attempts)_p[0-9a-z]{10}$' AND obj_description(oid, 'pg_class') = $1",
            &[&DETACHED_MARK],
        )
        .await?;
    let mut spans = None;
    for row in detached {
        let table = row.text(0)?;
        if let Some(suffix) = table.strip_prefix("deliveries_p")
            && holds_pending(session, &table).await?
        {
            let spans = match &mut spans {
                Some(spans) => spans,
                None => spans.insert(sets(session).await?),
            };
            // Attempts are partitioned by the delivery's id, as deliveries are: the same bounds.
            let Some(bounds) = spans.get(suffix).and_then(|set| set.tables.get("attempts")) else {
                tracing::warn!(
                    table,
                    "deliveries detached for retention hold a pending one and their span is gone; kept"
                );
                continue;
            };
            attach_again(session, &table, bounds).await?;
            tracing::info!(table, "deliveries detached for retention hold a pending one: attached again");
            continue;
        }
        execute(session, &format!("DROP TABLE {table}")).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_read_back_as_postgresql_writes_them() {
        let bounds = read_partition_bound("FOR VALUES FROM (MINVALUE) TO ('del_01jabcdefhzzzzzzzzzzzzzzzz')").unwrap();
        assert_eq!(bounds.lower, None);
        assert_eq!(bounds.upper, "del_01jabcdefhzzzzzzzzzzzzzzzz");
        let bounds = read_partition_bound(
            "FOR VALUES FROM ('evt_01jabcdefhzzzzzzzzzzzzzzzz') TO ('evt_01jabcdefj0000000000000000')",
        )
        .unwrap();
        assert_eq!(bounds.lower.as_deref(), Some("evt_01jabcdefhzzzzzzzzzzzzzzzz"));
        assert!(read_partition_bound("FOR VALUES FROM ('x'); DROP TABLE events; --') TO ('y')").is_err());
        assert!(read_partition_bound("DEFAULT").is_err());
        // And written back as they were read.
        for text in [
            "FOR VALUES FROM (MINVALUE) TO ('del_01jabcdefhzzzzzzzzzzzzzzzz')",
            "FOR VALUES FROM ('evt_01jabcdefhzzzzzzzzzzzzzzzz') TO ('evt_01jabcdefj0000000000000000')",
        ] {
            assert_eq!(read_partition_bound(text).unwrap().clause(), text);
        }
    }

    #[test]
    fn a_span_less_others_is_what_none_of_them_holds() {
        let span = |lower: Option<&str>, upper: &str| Span { lower: lower.map(str::to_owned), upper: upper.to_owned() };
        let wanted = span(Some("c"), "h");
        assert_eq!(wanted.less(&[]), std::slice::from_ref(&wanted));
        // Before it, after it, and over all of it.
        assert_eq!(wanted.less(&[span(None, "b"), span(Some("j"), "k")]), std::slice::from_ref(&wanted));
        assert_eq!(wanted.less(&[span(None, "c"), span(Some("h"), "k")]), std::slice::from_ref(&wanted));
        assert!(wanted.less(&[span(Some("a"), "z")]).is_empty());
        assert!(wanted.less(&[span(None, "e"), span(Some("e"), "h")]).is_empty());
        // Holes between others, in any order.
        assert_eq!(wanted.less(&[span(Some("f"), "g"), span(None, "d")]), [span(Some("d"), "f"), span(Some("g"), "h")]);
        assert_eq!(wanted.less(&[span(Some("e"), "z")]), [span(Some("c"), "e")]);
        assert_eq!(span(None, "h").less(&[span(Some("b"), "d")]), [span(None, "b"), span(Some("d"), "h")]);
    }

    #[test]
    fn a_suffix_is_the_millisecond_of_the_upper_bound() {
        let at = Timestamp::from_unix_millis(1_764_720_000_000);
        let upper = DeliveryId::first_at(at).to_string();
        assert_eq!(suffix_time(suffix_of(&upper)), Some(at));
        assert_eq!(
            floor(Timestamp::from_unix_millis(1_764_720_012_345), Duration::from_secs(10)),
            Timestamp::from_unix_millis(1_764_720_010_000)
        );
    }
}

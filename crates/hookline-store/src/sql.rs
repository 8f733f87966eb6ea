//! SQL written once for both databases: the values a statement binds, the rows it reads, and `Sql`, the one
//! interface on which every aggregate's shared statements run (a SQLite connection, on the writer thread or a
//! reader, or a PostgreSQL session, in a transaction or not).
//!
//! Shared statements use PostgreSQL's `$1` placeholders. SQLite reads `$1` as a named parameter and numbers
//! named parameters in the order they first appear, so a shared statement must name `$1`, `$2`, … first in that
//! order; the SQLite side checks it in debug builds, which every test run is.

use std::future::Future;
use std::str::FromStr;
use std::task::{Context, Poll, Waker};

use hookline_core::time::Timestamp;

use crate::StoreError;

/// How the machinery tells this process's dispatcher, once one is attached, that deliveries may be due: the
/// dispatcher's `HandoffSink::work_due`, which is all the backends know of it.
pub(crate) type Wake = std::sync::Arc<dyn Fn() + Send + Sync>;

/// A value either database can bind: text, integers (always `i64`: every integer column is `BIGINT` on
/// PostgreSQL), booleans, and options of those.
pub(crate) trait Value: Sync {
    fn sqlite(&self) -> &dyn rusqlite::ToSql;
    fn postgres(&self) -> &(dyn tokio_postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync> Value for T {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn postgres(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        self
    }
}

/// A result row of either database, read by column index. Record readers are written once against this.
pub(crate) trait Columns {
    fn text(&self, index: usize) -> Result<String, StoreError>;
    fn optional_text(&self, index: usize) -> Result<Option<String>, StoreError>;
    fn integer(&self, index: usize) -> Result<i64, StoreError>;
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError>;
    fn flag(&self, index: usize) -> Result<bool, StoreError>;
}

/// Reads a row into a record.
pub(crate) type Read<T> = fn(&dyn Columns) -> Result<T, StoreError>;

/// The few places where the databases' SQL differs name which one they are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// Where shared statements run. On SQLite the futures never wait (the connection is synchronous, and the caller
/// is already on a database thread); on PostgreSQL they are the session's round trips.
pub(crate) trait Sql {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; how many rows it changed.
    async fn execute(&mut self, sql: &str, values: &[&dyn Value]) -> Result<u64, StoreError>;

    /// Every row of a query, read into records.
    async fn query<T>(&mut self, sql: &str, values: &[&dyn Value], read: Read<T>) -> Result<Vec<T>, StoreError>;

    /// The first row of a query, if any, read into a record.
    async fn first<T>(&mut self, sql: &str, values: &[&dyn Value], read: Read<T>) -> Result<Option<T>, StoreError>;

    /// Told by every write that changes or deletes endpoints: on the embedded store, what was read of endpoints
    /// before is stale from then on (see `endpoints::EndpointCache`).
    fn endpoints_changed(&mut self) {}

    /// Told by a write that makes deliveries due (a retry, a re-enabled endpoint), so that dispatchers look:
    /// this node's on SQLite, every node's once the transaction commits on PostgreSQL.
    async fn work_due(&mut self) -> Result<(), StoreError>;
}

/// "Is one of the ids in the JSON array of strings bound as `$parameter`", to follow a column: neither database binds a
/// list the same way, but both read JSON. On PostgreSQL the ids are made an array once, so that the column's
/// index is used (a subquery of the JSON's elements would be a join the planner scans the table for).
pub(crate) fn in_id_list(dialect: Dialect, parameter: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!("IN (SELECT value FROM json_each(${parameter}))"),
        Dialect::Postgres => format!("= ANY(ARRAY(SELECT json_array_elements_text(${parameter}::text::json)))"),
    }
}

/// Ids as a JSON array of strings, for `in_id_list`.
pub(crate) fn json_ids(ids: &[impl std::fmt::Display]) -> Result<String, StoreError> {
    json_list(&ids.iter().map(ToString::to_string).collect::<Vec<_>>())
}

/// The first row of a query that always has one (an aggregate, `EXISTS`).
pub(crate) async fn one<T>(
    sql: &mut impl Sql,
    statement: &str,
    values: &[&dyn Value],
    read: Read<T>,
) -> Result<T, StoreError> {
    sql.first(statement, values, read).await?.ok_or_else(|| StoreError::Corrupt {
        detail: format!("a query that always answers a row gave none: {statement}"),
    })
}

/// Runs a future that never waits (shared statements on SQLite) to its end, on the caller's thread.
pub(crate) fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        // Every future `SqliteSql` makes is ready when first polled: nothing in it waits.
        Poll::Pending => unreachable!("a SQLite statement waited"),
    }
}

/// True when the `$n` placeholders of `sql` first appear in the order 1, 2, 3…, which SQLite needs to bind them
/// as PostgreSQL does.
pub(crate) fn placeholders_in_order(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut highest = 0u32;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'$' {
            let digits = bytes[index + 1..].iter().take_while(|byte| byte.is_ascii_digit()).count();
            if digits > 0 {
                let number: u32 = sql[index + 1..index + 1 + digits].parse().unwrap_or(u32::MAX);
                if number > highest + 1 {
                    return false;
                }
                highest = highest.max(number);
            }
            index += digits;
        }
        index += 1;
    }
    true
}

// ----- reading columns -----

/// Reads a stored text form; one that does not parse is damaged data.
pub(crate) fn parse_field<T: FromStr>(text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|error: T::Err| StoreError::Corrupt { detail: error.to_string() })
}

/// Reads a stored integer into a narrower type, calling a value out of range damage.
pub(crate) fn narrow<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt { detail: format!("{what} {value} is out of range") })
}

/// A time stored as unix milliseconds.
pub(crate) fn millis(row: &dyn Columns, index: usize) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_unix_millis(row.integer(index)?))
}

pub(crate) fn read_flag(row: &dyn Columns) -> Result<bool, StoreError> {
    row.flag(0)
}

pub(crate) fn read_text(row: &dyn Columns) -> Result<String, StoreError> {
    row.text(0)
}

// ----- lists -----

/// A page of a list, with the cursor that continues it.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Where a list starts and how long it may be.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: u32,
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

/// A tenant's list, newest first, with the filters the caller set. The statement has one shape per set of
/// filters (the limit is a parameter), so both databases cache it prepared.
pub(crate) struct ListQuery {
    select: &'static str,
    conditions: Vec<(&'static str, &'static str)>,
    values: Vec<Box<dyn Value + Send>>,
    /// Conditions written into the statement: `column = 'value'`.
    literals: Vec<(&'static str, &'static str)>,
    /// Conditions written into the statement as they are (see `condition`).
    written: Vec<&'static str>,
    /// See `through`.
    through: Option<&'static str>,
}

impl ListQuery {
    pub(crate) fn new(select: &'static str, tenant: &hookline_core::id::TenantId) -> ListQuery {
        ListQuery {
            select,
            conditions: vec![("tenant_id", "=")],
            values: vec![Box::new(tenant.to_string())],
            literals: Vec::new(),
            written: Vec::new(),
            through: None,
        }
    }

    /// A condition written as it is; it may name the tenant as `$1`, and no other parameter.
    pub(crate) fn condition(&mut self, sql: &'static str) {
        self.written.push(sql);
    }

    /// A condition on one of a closed set of values, written into the statement rather than bound, so that the
    /// planner can choose a partial index whose condition it matches (it cannot for a parameter).
    pub(crate) fn filter_literal(&mut self, column: &'static str, value: Option<&'static str>) {
        if let Some(value) = value {
            assert!(value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_'), "{value:?}");
            self.literals.push((column, value));
        }
    }

    pub(crate) fn filter<V: Value + Send + 'static>(
        &mut self,
        column: &'static str,
        operator: &'static str,
        value: Option<V>,
    ) {
        if let Some(value) = value {
            self.conditions.push((column, operator));
            self.values.push(Box::new(value));
        }
    }

    /// The statement, its rows sorted by id (newest first) or in whatever order the index gives: the conditions'
    /// values are its first parameters, in order, and the limit the last.
    pub(crate) fn statement(&self, dialect: Dialect, ordered: bool) -> String {
        let bound = self.conditions.iter().enumerate();
        let bound = bound.map(|(index, (column, operator))| format!("{column} {operator} ${}", index + 1));
        let literals = self.literals.iter().map(|(column, value)| format!("{column} = '{value}'"));
        let written = self.written.iter().map(|condition| (*condition).to_owned());
        let conditions: Vec<String> = bound.chain(literals).chain(written).collect();
        let through = match (self.through, dialect) {
            (Some(index), Dialect::Sqlite) => format!(" INDEXED BY {index}"),
            _ => String::new(),
        };
        let order = if ordered { " ORDER BY id DESC" } else { "" };
        let limit = self.values.len() + 1;
        format!("{}{through} WHERE {}{order} LIMIT ${limit}", self.select, conditions.join(" AND "))
    }

    /// Reads the list through `index`, which holds only its rows, even though they must then be sorted: SQLite
    /// would rather walk an index in the list's order and step over every other row. (PostgreSQL weighs the two
    /// by its statistics.)
    pub(crate) fn through(&mut self, index: &'static str) {
        self.through = Some(index);
    }

    /// Runs the query for a page of `limit`.
    pub(crate) async fn page<T>(
        self,
        sql: &mut impl Sql,
        limit: u32,
        read: Read<T>,
        cursor_of: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        let items = self.rows(sql, i64::from(limit) + 1, true, read).await?;
        Ok(paginate(items, limit, cursor_of))
    }

    /// Runs the query for up to `limit` rows, newest first when `ordered`, else in the order the index gives
    /// them (which spares a sort of every row the conditions match when only some are wanted).
    pub(crate) async fn rows<T>(
        mut self,
        sql: &mut impl Sql,
        limit: i64,
        ordered: bool,
        read: Read<T>,
    ) -> Result<Vec<T>, StoreError> {
        let statement = self.statement(sql.dialect(), ordered);
        self.values.push(Box::new(limit));
        let values: Vec<&dyn Value> = self.values.iter().map(|value| value.as_ref() as &dyn Value).collect();
        sql.query(&statement, &values, read).await
    }
}

/// The ids as a JSON array of strings, as `in_id_list` reads them.
pub(crate) fn json_list(ids: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(|error| StoreError::Corrupt { detail: format!("ids: {error}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_must_first_appear_in_order() {
        let check = |sql: &str, expected: bool| assert_eq!(placeholders_in_order(sql), expected, "{sql}");
        check("SELECT 1", true);
        check("SELECT $1, $2, $1, $3", true);
        check("UPDATE t SET a = $2 WHERE id = $1", false);
        check("SELECT $1, $3", false);
        check("SELECT $10", false);
        check("SELECT $1 WHERE price = '$5'", false);
    }
}

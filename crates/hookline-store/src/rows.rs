//! Rows inserted from one list of columns on both databases: a table's columns are listed once (`Column`), a
//! record gives its values in that order (`Cell`), and each backend's statement is made from the list. SQLite's
//! writer inserts row by row (`values_statement`, each statement cached); PostgreSQL writes a batch with one array
//! per column (`unnest_statement`, filled by `Batch`). A new column is one entry in the list and one value in the
//! record's row, whichever database it goes to.

use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A column rows are inserted into, with what it holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

impl Column {
    pub(crate) const fn text(name: &'static str) -> Column {
        Column { name, kind: Kind::Text }
    }

    pub(crate) const fn integer(name: &'static str) -> Column {
        Column { name, kind: Kind::Integer }
    }
}

/// What a column holds: every integer column is `BIGINT` on PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Integer,
}

/// One value of an inserted row; `None` is `NULL`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cell<'a> {
    Text(Option<&'a str>),
    Integer(Option<i64>),
}

impl rusqlite::ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Cell::Text(text) => rusqlite::ToSql::to_sql(text),
            Cell::Integer(integer) => rusqlite::ToSql::to_sql(integer),
        }
    }
}

impl ToSql for Cell<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Text(text) => text.to_sql(ty, out),
            Cell::Integer(integer) => integer.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <Option<&str> as ToSql>::accepts(ty) || <Option<i64> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// `INSERT INTO table (columns) VALUES ($1, …)`: one row, in the placeholders both dialects' `Sql` takes.
pub(crate) fn one_row_statement(table: &str, columns: &[Column]) -> String {
    let placeholders: Vec<String> = (1..=columns.len()).map(|index| format!("${index}")).collect();
    format!("INSERT INTO {table} ({}) VALUES ({})", column_list(columns), placeholders.join(", "))
}

/// `INSERT {verb} INTO table (columns) VALUES (?1, …)`, for one row bound with its cells in order; `verb` is
/// empty or SQLite's conflict clause (`OR IGNORE`).
pub(crate) fn values_statement(table: &str, columns: &[Column], verb: &str) -> String {
    let names: Vec<&str> = columns.iter().map(|column| column.name).collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|index| format!("?{index}")).collect();
    let verb = if verb.is_empty() { String::new() } else { format!(" {verb}") };
    format!("INSERT{verb} INTO {table} ({}) VALUES ({})", names.join(", "), placeholders.join(", "))
}

/// `unnest($first::text[], $(first+1)::int8[], …) AS alias(columns)`: a batch's rows, one array per column
/// bound from `$first` on (see `Batch`), named as the table's columns.
pub(crate) fn unnest(columns: &[Column], first: usize, alias: &str) -> String {
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(index, column)| {
            let array = match column.kind {
                Kind::Text => "text[]",
                Kind::Integer => "int8[]",
            };
            format!("${}::{array}", first + index)
        })
        .collect();
    format!("unnest({}) AS {alias}({})", arrays.join(", "), column_list(columns))
}

/// The columns' names, comma separated.
pub(crate) fn column_list(columns: &[Column]) -> String {
    columns.iter().map(|column| column.name).collect::<Vec<_>>().join(", ")
}

/// A batch of rows as one array per column, for `unnest`.
pub(crate) struct Batch<'a> {
    arrays: Vec<Array<'a>>,
}

/// One column of a batch.
#[derive(Debug)]
enum Array<'a> {
    Text(Vec<Option<&'a str>>),
    Integer(Vec<Option<i64>>),
}

impl<'a> Batch<'a> {
    pub(crate) fn new(columns: &[Column]) -> Batch<'a> {
        let arrays = columns
            .iter()
            .map(|column| match column.kind {
                Kind::Text => Array::Text(Vec::new()),
                Kind::Integer => Array::Integer(Vec::new()),
            })
            .collect();
        Batch { arrays }
    }

    /// Adds a row, its cells in the columns' order.
    pub(crate) fn push(&mut self, row: &[Cell<'a>]) {
        debug_assert_eq!(row.len(), self.arrays.len(), "a row has a cell per column");
        for (array, cell) in self.arrays.iter_mut().zip(row) {
            match (array, cell) {
                (Array::Text(values), Cell::Text(value)) => values.push(*value),
                (Array::Integer(values), Cell::Integer(value)) => values.push(*value),
                // A row's cells follow the same list as the batch's columns.
                (array, cell) => unreachable!("a {cell:?} in a column of {array:?}"),
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self.arrays.first() {
            Some(Array::Text(values)) => values.is_empty(),
            Some(Array::Integer(values)) => values.is_empty(),
            None => true,
        }
    }

    /// The arrays, to bind from the statement's first array parameter on.
    pub(crate) fn values(&self) -> impl Iterator<Item = &(dyn ToSql + Sync)> {
        self.arrays.iter().map(|array| array as &(dyn ToSql + Sync))
    }
}

impl ToSql for Array<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Array::Text(values) => values.to_sql(ty, out),
            Array::Integer(values) => values.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <Vec<Option<&str>> as ToSql>::accepts(ty) || <Vec<Option<i64>> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 3] = [Column::text("id"), Column::integer("created_at"), Column::text("meta")];

    #[test]
    fn statements_are_made_from_the_list() {
        assert_eq!(
            values_statement("events", &COLUMNS, ""),
            "INSERT INTO events (id, created_at, meta) VALUES (?1, ?2, ?3)"
        );
        assert_eq!(
            values_statement("attempts", &COLUMNS, "OR IGNORE"),
            "INSERT OR IGNORE INTO attempts (id, created_at, meta) VALUES (?1, ?2, ?3)"
        );
        assert_eq!(unnest(&COLUMNS, 4, "v"), "unnest($4::text[], $5::int8[], $6::text[]) AS v(id, created_at, meta)");
    }

    #[test]
    fn a_batch_keeps_a_column_per_array_in_order() {
        let mut batch = Batch::new(&COLUMNS);
        assert!(batch.is_empty());
        batch.push(&[Cell::Text(Some("evt_1")), Cell::Integer(Some(5)), Cell::Text(None)]);
        batch.push(&[Cell::Text(Some("evt_2")), Cell::Integer(None), Cell::Text(Some("{}"))]);
        assert!(!batch.is_empty());
        let arrays: Vec<String> = batch.arrays.iter().map(|array| format!("{array:?}")).collect();
        assert_eq!(
            arrays,
            [r#"Text([Some("evt_1"), Some("evt_2")])"#, "Integer([Some(5), None])", r#"Text([None, Some("{}")])"#]
        );
    }
}

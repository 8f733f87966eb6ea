//! Applies the schema's migrations (`crate::schema`) to PostgreSQL at start-up, under an advisory lock so that
//! several nodes starting at once apply each migration exactly once.

use tokio_postgres::Client;

use crate::schema::MIGRATIONS;
use crate::sql::Dialect;

/// The advisory lock that serialises migrations across nodes ("hookline" in ASCII).
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e65;

/// Brings the schema up to date in one transaction; another node migrating at the same moment waits, then
/// finds nothing left to do.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    transaction.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)").await?;
    let current: i64 = match transaction.query_opt("SELECT version FROM schema_version", &[]).await? {
        Some(row) => row.try_get(0)?,
        None => {
            transaction.execute("INSERT INTO schema_version (version) VALUES (0)", &[]).await?;
            0
        }
    };
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        transaction.batch_execute(migration.statements(Dialect::Postgres)).await?;
        transaction.execute("UPDATE schema_version SET version = $1", &[&(index as i64 + 1)]).await?;
    }
    transaction.commit().await
}

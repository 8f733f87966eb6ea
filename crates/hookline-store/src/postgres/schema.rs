//! Applies the schema's migrations (`crate::schema`) to PostgreSQL at start-up, under an advisory lock so that
//! several nodes starting at once apply each migration exactly once.

use tokio_postgres::Client;

use crate::schema::{MIGRATIONS, Upgrade, later_than_known};
use crate::sql::Dialect;

/// The advisory lock that serialises migrations across nodes ("hookline" in ASCII).
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e65;

/// Brings the schema up to date in one transaction; another node migrating at the same moment waits, then
/// finds nothing left to do.
/// The schema's version instead if a later release made it (see `later_than_known`).
pub(crate) async fn migrate(client: &mut Client) -> Result<Option<i64>, tokio_postgres::Error> {
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
    if let Some(later) = later_than_known(current) {
        return Ok(Some(later));
    }
    let upgrade = Upgrade::begin(current);
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        transaction.batch_execute(migration.statements(Dialect::Postgres)).await?;
        transaction.execute("UPDATE schema_version SET version = $1", &[&(index as i64 + 1)]).await?;
    }
    transaction.commit().await?;
    if let Some(upgrade) = upgrade {
        upgrade.end();
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use tokio_postgres::NoTls;

    use super::*;

    /// A database of its own on the suite's PostgreSQL, dropped at the end; `None` when the suite has none.
    pub(crate) async fn fresh_database(name: &str) -> Option<(Client, Client, String)> {
        let admin_url = match std::env::var("HOOKLINE_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("HOOKLINE_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
                panic!("HOOKLINE_TEST_REQUIRE_POSTGRES=1 but HOOKLINE_TEST_POSTGRES_URL is not set")
            }
            _ => return None,
        };
        let (admin, connection) = tokio_postgres::connect(&admin_url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let database = format!("hookline_{name}_{:08x}", rand::random::<u32>());
        admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
        let mut config: tokio_postgres::Config = admin_url.parse().unwrap();
        config.dbname(&database);
        let (client, connection) = config.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        Some((admin, client, database))
    }

    #[tokio::test]
    async fn a_database_made_by_the_previous_release_migrates_and_keeps_its_rows() {
        let Some((admin, mut client, database)) = fresh_database("migrate").await else { return };
        // The previous release's schema (version 3), with an endpoint of three topics.
        client.batch_execute("CREATE TABLE schema_version (version BIGINT NOT NULL)").await.unwrap();
        for migration in &MIGRATIONS[..3] {
            client.batch_execute(migration.statements(Dialect::Postgres)).await.unwrap();
        }
        client
            .batch_execute(
                "INSERT INTO schema_version VALUES (3);
                 INSERT INTO tenants VALUES ('acme', 'Acme', 1);
                 INSERT INTO endpoints (id, tenant_id, url, topics, description, enabled, format, signing, secret,
                     created_at, updated_at)
                     VALUES ('ep_1', 'acme', 'https://example.com/', 'pdf.processed,end_user.created,a.b', '', TRUE,
                         'envelope', 'standard', 'whsec_x', 1, 1);
                 INSERT INTO endpoint_topics VALUES ('ep_1', 'a.b'), ('ep_1', 'end_user.created'),
                     ('ep_1', 'pdf.processed');
                 INSERT INTO events (id, tenant_id, topic, created_at, data, idempotency_key)
                     VALUES ('evt_01jabcdefg0000000000000000', 'acme', 'pdf.processed', 1, '{}', 'job-1');
                 INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, topic, format, text_escape, status,
                     created_at, updated_at)
                     VALUES ('del_01jabcdefh0000000000000000', 'acme', 'evt_01jabcdefg0000000000000000', 'ep_1',
                         'pdf.processed', 'envelope', 'none', 'succeeded', 1, 1);",
            )
            .await
            .unwrap();
        migrate(&mut client).await.unwrap();
        let version: i64 = client.query_one("SELECT version FROM schema_version", &[]).await.unwrap().get(0);
        assert_eq!(version, MIGRATIONS.len() as i64);
        let topics: String = client
            .query_one(
                "SELECT string_agg(topic, ',' ORDER BY position) FROM endpoint_topics WHERE endpoint_id = 'ep_1'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(topics, "pdf.processed,end_user.created,a.b");
        let columns: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'endpoints' AND column_name = 'topics'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(columns, 0, "the comma list is gone");
        let foreign_keys: Vec<String> = client
            .query(
                "SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint
                 WHERE contype = 'f' AND conrelid::regclass::text IN ('events', 'deliveries', 'attempts')",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(foreign_keys, Vec::<String>::new(), "the churned tables check no keys on PostgreSQL");
        // The tables are partitioned, and what they held is their first partition, up to the newest millisecond.
        let partitions: Vec<(String, String)> = client
            .query(
                "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_class c
                 WHERE c.relispartition AND c.relkind = 'r' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let bound = |prefix: &str| format!("FOR VALUES FROM (MINVALUE) TO ('{prefix}01jabcdefhzzzzzzzzzzzzzzzz')");
        assert_eq!(
            partitions,
            [
                ("attempts_p01jabcdefh".to_owned(), bound("del_")),
                ("deliveries_p01jabcdefh".to_owned(), bound("del_")),
                ("events_p01jabcdefh".to_owned(), bound("evt_")),
            ]
        );
        let kept: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM deliveries d JOIN events v ON v.id = d.event_id
                 WHERE v.tenant_id = 'acme' AND v.idempotency_key = 'job-1'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(kept, 1, "the event and its delivery are kept");
        // Migrating again changes nothing.
        migrate(&mut client).await.unwrap();
        drop(client);
        admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await.unwrap();
    }
}

//! A small pool of PostgreSQL connections, each with its own cache of prepared statements.
//!
//! A connection that broke (the server restarted, the network dropped) is thrown away when it comes back to
//! the pool, and the next caller opens a fresh one; while the server is unreachable callers get
//! `StoreError::Unavailable` at once instead of waiting forever.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, Row, Statement};

use crate::StoreError;

/// How long a caller waits for a free connection before calling the database unavailable.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) statements: HashMap<String, Statement>,
}

pub(crate) struct Pool {
    config: tokio_postgres::Config,
    location: String,
    idle: Mutex<Vec<Connection>>,
    slots: Semaphore,
}

/// A connection taken from the pool; it goes back when dropped, unless it broke.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
    _slot: SemaphorePermit<'a>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Only `drop` takes the connection out.
        self.connection.as_ref().expect("a pooled connection is present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        // Only `drop` takes the connection out.
        self.connection.as_mut().expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && !connection.client.is_closed()
        {
            self.pool.idle.lock().unwrap_or_else(|poison| poison.into_inner()).push(connection);
        }
    }
}

impl Pool {
    pub(crate) fn new(mut config: tokio_postgres::Config, size: usize) -> Pool {
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("hookline");
        let location = describe(&config);
        Pool { config, location, idle: Mutex::new(Vec::new()), slots: Semaphore::new(size) }
    }

    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The server and database, without credentials.
    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// Calls a client error what it is: the database unreachable, or a request it refused.
    pub(crate) fn classify(&self, error: tokio_postgres::Error) -> StoreError {
        let unreachable = match error.code() {
            // Connection exceptions, and the server shutting down or restarting.
            Some(code) => {
                let class = &code.code()[..2];
                class == "08" || class == "57"
            }
            // No SQLSTATE: a closed connection or an I/O failure is the database out of reach; anything else
            // (a parameter that does not fit its column) is a request it could not take.
            None => {
                use std::error::Error as _;
                error.is_closed() || error.source().is_some_and(|source| source.is::<std::io::Error>())
            }
        };
        if unreachable {
            StoreError::Unavailable { location: self.location.clone(), source: Some(error) }
        } else {
            StoreError::Postgres(error)
        }
    }

    pub(crate) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let slot = match tokio::time::timeout(CHECKOUT_TIMEOUT, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            // The semaphore is never closed; waiting this long means every connection is stuck on the server.
            _ => return Err(StoreError::Unavailable { location: self.location.clone(), source: None }),
        };
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|poison| poison.into_inner());
            idle.retain(|connection| !connection.client.is_closed());
            idle.pop()
        };
        let connection = match idle {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        Ok(Pooled { pool: self, connection: Some(connection), _slot: slot })
    }

    /// Opens a fresh connection whose driver runs on its own task.
    pub(crate) async fn connect(&self) -> Result<Connection, StoreError> {
        let (client, driver) = self.config.connect(NoTls).await.map_err(|error| self.classify(error))?;
        tokio::spawn(async move {
            if let Err(error) = driver.await {
                tracing::debug!(%error, "a database connection closed");
            }
        });
        Ok(Connection { client, statements: HashMap::new() })
    }
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}

/// Runs prepared statements on a client or a transaction, preparing each SQL text once per connection.
pub(crate) struct Session<'a, C> {
    pub(crate) client: &'a C,
    pub(crate) statements: &'a mut HashMap<String, Statement>,
    pub(crate) pool: &'a Pool,
}

impl<C: GenericClient + Sync> Session<'_, C> {
    async fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await.map_err(|error| self.pool.classify(error))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) async fn query(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, parameters).await.map_err(|error| self.pool.classify(error))
    }

    pub(crate) async fn query_opt(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, parameters).await.map_err(|error| self.pool.classify(error))
    }

    pub(crate) async fn query_one(&mut self, sql: &str, parameters: &[&(dyn ToSql + Sync)]) -> Result<Row, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.query_one(&statement, parameters).await.map_err(|error| self.pool.classify(error))
    }

    pub(crate) async fn execute(&mut self, sql: &str, parameters: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, parameters).await.map_err(|error| self.pool.classify(error))
    }

    /// Runs SQL built at run time (list queries with optional filters), unprepared and uncached.
    pub(crate) async fn query_dynamic(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.client.query(sql, parameters).await.map_err(|error| self.pool.classify(error))
    }
}

//! The pool of PostgreSQL connections (deadpool-postgres), each with its own cache of prepared statements.
//!
//! A connection that broke (the server restarted, the network dropped) is found closed when it is next taken
//! from the pool and thrown away, and a fresh one is opened in its place; while the server is unreachable
//! callers get `StoreError::Unavailable` at once instead of waiting forever. The `LISTEN` connection is not
//! one of these: it is opened on its own from [`Pool::config`].

use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Statement};

use crate::StoreError;

/// How long a caller waits for a free connection before calling the database unavailable.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Pool {
    connections: deadpool_postgres::Pool,
    config: tokio_postgres::Config,
    location: String,
}

/// A connection taken from the pool; it goes back when dropped.
pub(crate) type Pooled = Object;

impl Pool {
    pub(crate) fn new(mut config: tokio_postgres::Config, size: usize) -> Pool {
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("hookline");
        // Every statement here is a short one by index: compiling it (which costs estimates on big tables set
        // off, 100 ms or more) would cost more than running it.
        config.options("-c jit=off");
        let location = describe(&config);
        // Fast: a connection taken from the pool is only checked for being closed, with no round trip; a call
        // that fails on it reports the failure all the same.
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let connections = deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CHECKOUT_TIMEOUT))
            .build()
            // Building fails only when a timeout is set without a runtime to run it, and the runtime is set.
            .expect("a pool with a runtime for its timeout");
        Pool { connections, config, location }
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

    /// How many connections are open, taken or idle.
    pub(crate) fn open(&self) -> usize {
        self.connections.status().size
    }

    pub(crate) async fn get(&self) -> Result<Pooled, StoreError> {
        self.connections.get().await.map_err(|error| match error {
            PoolError::Backend(error) => self.classify(error),
            // A timeout: waiting this long means every connection is stuck on the server. The pool is never
            // closed, and it has a runtime and no hooks, so nothing else comes here.
            _ => StoreError::Unavailable { location: self.location.clone(), source: None },
        })
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

/// Runs prepared statements on a pooled client or a transaction on one, preparing each SQL text once per
/// connection (deadpool's statement cache).
pub(crate) struct Session<'a, C> {
    pub(crate) client: &'a C,
    pub(crate) pool: &'a Pool,
}

impl<C: GenericClient> Session<'_, C> {
    async fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        self.client.prepare_cached(sql).await.map_err(|error| self.pool.classify(error))
    }

    pub(crate) async fn pg_query(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, parameters).await.map_err(|error| self.pool.classify(error))
    }

    pub(crate) async fn pg_query_opt(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, parameters).await.map_err(|error| self.pool.classify(error))
    }

    pub(crate) async fn pg_query_one(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.query_one(&statement, parameters).await.map_err(|error| self.pool.classify(error))
    }

    pub(crate) async fn pg_execute(
        &mut self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, parameters).await.map_err(|error| self.pool.classify(error))
    }
}

//! Hookline's service: configuration, the HTTP API, and the lifecycle that ties the store, the API and the
//! dispatcher together.
//!
//! Architecture invariant: no SQL here (that is the store's) and no outbound HTTP (that is the dispatcher's).
//! Shutdown is passed in as a token, so two servers can run in one process.

pub mod api;
pub mod config;
mod connections;
mod error;
pub mod jobs;
mod portal;
pub mod service;
mod upkeep;

use std::net::SocketAddr;
use std::sync::Arc;

use hookline_core::secret::{generate_api_key, hash_api_key};
use hookline_dispatch::{DispatchConfig, HeadersLimit, TargetGuard, TargetPolicy};
use hookline_store::{OpenError, Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::config::Config;
pub use hookline_store::{BackedUp, Database, Vacuumed, backup, vacuum};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not open the store")]
    Open(#[from] OpenError),
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("could not listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A server that has opened its store and bound its port, ready to run.
pub struct Server {
    config: Config,
    store: Store,
    listener: TcpListener,
    admin_key_hash: String,
    generated_admin_key: Option<String>,
    connection_limits: connections::ConnectionLimits,
    jobs: Vec<Arc<dyn jobs::Job>>,
}

impl Server {
    /// Opens the store (running migrations), settles the admin key, and binds the listen address.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        Server::bind_with_clock(config, Arc::new(hookline_core::clock::SystemClock)).await
    }

    /// As `bind`, with the clock the store and the dispatcher read "now" from (a manual one, in tests).
    pub async fn bind_with_clock(
        config: Config,
        clock: Arc<dyn hookline_core::clock::Clock>,
    ) -> Result<Server, ServeError> {
        let options = hookline_store::StoreOptions { clock, ..config.store_options() };
        let store = Store::open(&config.database(), &config.data_dir, &options).await?;
        let (admin_key_hash, generated_admin_key) = match &config.admin_key {
            Some(key) => (hash_api_key(key), None),
            None => {
                // The first start stores a new key's hash; later starts (and nodes that lose the race to start
                // first on an empty database) get the stored one back, and print nothing.
                let key = generate_api_key("hka_");
                let hash = hash_api_key(&key);
                let stored = store.settle_admin_key_hash(hash.clone()).await?;
                let generated = (stored == hash).then_some(key);
                (stored, generated)
            }
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind { address: config.listen, source })?;
        let open_file_limit = connections::raise_open_file_limit();
        let max_connections =
            connections::connection_cap(config.api_max_connections, open_file_limit, config.delivery_concurrency);
        if max_connections < config.api_max_connections {
            tracing::warn!(
                configured = config.api_max_connections,
                max_connections,
                open_file_limit,
                "api_max_connections lowered to leave deliveries room under the open file limit"
            );
        }
        let connection_limits = connections::ConnectionLimits {
            max_connections,
            header_timeout: config.api_header_timeout,
            idle_timeout: config.api_idle_timeout,
            request_timeout: config.api_request_timeout,
        };
        let mut jobs: Vec<Arc<dyn jobs::Job>> = vec![
            Arc::new(upkeep::Removal { interval: config.purge_interval }),
            Arc::new(upkeep::Recovering { interval: config.purge_interval }),
            Arc::new(upkeep::Notifying {
                // Each run renews its lease, a write: run more often and an idle store never counts as idle.
                interval: config.purge_interval,
                operator: config.operational_endpoint.clone(),
            }),
        ];
        if let Some(keep) = config.retention {
            jobs.push(Arc::new(upkeep::Retention { keep, interval: config.purge_interval }));
        }
        if store.keeps_dead_rows() {
            jobs.push(Arc::new(upkeep::Vacuum { interval: upkeep::VACUUM_INTERVAL }));
            let width = config.store_options().partition_width;
            jobs.push(Arc::new(upkeep::Partitioning { interval: (width / 4).min(upkeep::VACUUM_INTERVAL) }));
        }
        Ok(Server { config, store, listener, admin_key_hash, generated_admin_key, connection_limits, jobs })
    }

    /// Runs `job` in the background on this node while the server runs (see `jobs`).
    pub fn add_job(&mut self, job: Arc<dyn jobs::Job>) {
        self.jobs.push(job);
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin key generated on this first start, to show the operator once.
    pub fn generated_admin_key(&self) -> Option<&str> {
        self.generated_admin_key.as_deref()
    }

    /// Where the data lives: the embedded file, or the PostgreSQL server and database.
    pub fn store_location(&self) -> String {
        self.store.location()
    }

    /// Serves the API and runs the dispatcher until `shutdown` is cancelled; then stops taking requests, lets
    /// in-flight attempts finish and records them.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let config = &self.config;
        let policy = if config.dangerous_allow_private_targets {
            tracing::warn!("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS is on: endpoints may target internal addresses");
            TargetPolicy::DangerousAllowPrivate
        } else {
            TargetPolicy::PublicOnly
        };
        // One guard, so that the host's interfaces are read by one cache.
        let target_guard = TargetGuard::new(policy);
        let dispatch = DispatchConfig {
            concurrency: config.delivery_concurrency,
            per_tenant_concurrency: config.tenant_concurrency,
            per_endpoint_concurrency: config.endpoint_concurrency,
            timeout: config.delivery_timeout,
            default_schedule: config.default_schedule(),
            response_body_limit: 4096,
            response_headers_limit: HeadersLimit {
                count: config.response_headers_max_count,
                bytes: config.response_headers_max_bytes,
            },
            target_guard: target_guard.clone(),
            clock: self.store.clock(),
        };
        let service = service::Service::new(
            self.store.clone(),
            service::Settings {
                default_signing: config.default_signing.clone(),
                target_guard,
                retention: config.retention,
                health: config.health_policy(),
                portal_session_idle: config.portal_session_idle,
                portal_session_lifetime: config.portal_session_lifetime,
                default_schedule: config.default_schedule(),
            },
        );
        let state = api::AppState {
            store: self.store.clone(),
            service,
            admin_key_hash: Arc::from(self.admin_key_hash.as_str()),
            settings: Arc::new(api::ApiSettings {
                max_payload_bytes: config.max_payload_bytes,
                public_url: match (&config.public_url, self.listener.local_addr()) {
                    (Some(url), _) => url.clone(),
                    (None, Ok(address)) => format!("http://{address}"),
                    (None, Err(_)) => format!("http://{}", config.listen),
                },
                portal_frame_ancestors: config.portal_frame_ancestors.clone(),
                portal_theme: config.portal_theme.clone(),
            }),
        };
        let dispatcher_stop = CancellationToken::new();
        let dispatcher = config
            .role
            .delivers()
            .then(|| tokio::spawn(hookline_dispatch::run(self.store.clone(), dispatch, dispatcher_stop.clone())));
        let jobs_stop = CancellationToken::new();
        let jobs = tokio::spawn(jobs::run(self.store.clone(), self.jobs, jobs_stop.clone()));
        let app = if config.role.serves_api() { api::router(state) } else { api::health_router(state) }
            .layer(axum::middleware::from_fn(request_span));
        connections::serve(self.listener, app, self.connection_limits, shutdown).await;
        dispatcher_stop.cancel();
        jobs_stop.cancel();
        if let Err(error) = jobs.await {
            tracing::error!(%error, "the background jobs task failed");
        }
        if let Some(dispatcher) = dispatcher
            && let Err(error) = dispatcher.await
        {
            tracing::error!(%error, "the dispatcher task failed");
        }
        // Every other handle went with the API, the jobs and the dispatcher: the embedded store can now empty its WAL.
        self.store.close().await;
        Ok(())
    }
}

/// A span per request with its method and path, so errors logged inside a handler carry them.
async fn request_span(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use tracing::Instrument;
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
    next.run(request).instrument(span).await
}

//! The server's configuration: built-in defaults, then a TOML file, then `HOOKLINE_*` environment variables,
//! then command-line flags, validated once with messages that name the key and the value.
//!
//! Loading is pure: the caller reads the file and the environment and passes them in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookline_core::Scheme;
use hookline_core::duration::{DurationError, format_duration, parse_duration, parse_duration_at_most};
use hookline_core::retry::RetrySchedule;
use hookline_store::{Database, StoreOptions};
use serde::Deserialize;

/// The address `hookline serve` listens on when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8750";

/// What a node runs: the HTTP API, the dispatcher, or both. With PostgreSQL, API and delivery scale separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Api,
    Worker,
    All,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    pub fn delivers(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything `hookline serve` needs to know, resolved and validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// A PostgreSQL database shared by several nodes (or `sqlite://DIR`); `None` is the embedded store in
    /// `data_dir`.
    pub database: Option<Database>,
    pub role: Role,
    /// The operator's key; when absent, one is generated on first start and only its hash is kept.
    pub admin_key: Option<String>,
    /// Lets endpoints target loopback and private addresses. For tests and local demos only.
    pub dangerous_allow_private_targets: bool,
    /// Signing schemes of a new endpoint that names none.
    pub default_signing: Vec<Scheme>,
    /// The largest request body the API accepts.
    pub max_payload_bytes: usize,
    pub delivery_timeout: Duration,
    pub delivery_concurrency: usize,
    /// Attempts in flight at once for one tenant; `None` is half of `delivery_concurrency`.
    pub tenant_concurrency: Option<usize>,
    pub endpoint_concurrency: usize,
    /// The retry schedule of endpoints without their own; `None` is the built-in jittered default.
    pub retry_schedule: Option<RetrySchedule>,
    /// The most response headers an attempt keeps, by count and by total bytes (names and values).
    pub response_headers_max_count: usize,
    pub response_headers_max_bytes: usize,
    /// API connections open at once (lowered at start-up to leave deliveries room under the open file limit).
    pub api_max_connections: usize,
    /// How long a request head may take, from a new connection or from its first byte.
    pub api_header_timeout: Duration,
    /// How long a kept-alive API connection may stay silent between requests.
    pub api_idle_timeout: Duration,
    /// How long an API request may take from its complete head to its response, its body included.
    pub api_request_timeout: Duration,
    pub log_format: LogFormat,
    /// The embedded store's write-ahead log file stays under about this many bytes.
    pub max_wal_bytes: u64,
    /// Events older than this are purged with their deliveries and attempts; `None` keeps everything.
    pub retention: Option<Duration>,
    /// How often the purge looks for events past the retention period.
    pub purge_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            // The literal is a valid socket address.
            listen: DEFAULT_LISTEN.parse().expect("default listen address parses"),
            data_dir: PathBuf::from("hookline-data"),
            database: None,
            role: Role::All,
            admin_key: None,
            dangerous_allow_private_targets: false,
            default_signing: vec![Scheme::Standard],
            max_payload_bytes: 256 * 1024,
            delivery_timeout: Duration::from_secs(15),
            // Twice what one tenant may use (half of it, `tenant_concurrency`), so that a lone tenant has the
            // 1,024 slots it had before shares, and the others as many again.
            delivery_concurrency: 2048,
            tenant_concurrency: None,
            endpoint_concurrency: 64,
            retry_schedule: None,
            response_headers_max_count: 64,
            response_headers_max_bytes: 4096,
            api_max_connections: 4096,
            api_header_timeout: Duration::from_secs(10),
            api_idle_timeout: Duration::from_secs(75),
            api_request_timeout: Duration::from_secs(60),
            log_format: LogFormat::Text,
            max_wal_bytes: StoreOptions::DEFAULT_MAX_WAL_BYTES,
            retention: Some(Duration::from_secs(30 * 86_400)),
            purge_interval: Duration::from_secs(10),
        }
    }
}

/// A configuration value that does not make sense, named by the key it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {key} {value:?}; {hint}")]
    Invalid { key: String, value: String, hint: String },
    #[error("could not parse the config file {path:?}")]
    File {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
}

/// The config file's shape; every key optional. Keys match the environment variables without `HOOKLINE_`,
/// in lowercase.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    listen: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    role: Option<String>,
    admin_key: Option<String>,
    dangerous_allow_private_targets: Option<bool>,
    default_signing: Option<Vec<String>>,
    max_payload_bytes: Option<usize>,
    delivery_timeout: Option<String>,
    delivery_concurrency: Option<usize>,
    tenant_concurrency: Option<usize>,
    endpoint_concurrency: Option<usize>,
    retry_schedule: Option<Vec<String>>,
    response_headers_max_count: Option<usize>,
    response_headers_max_bytes: Option<usize>,
    api_max_connections: Option<usize>,
    api_header_timeout: Option<String>,
    api_idle_timeout: Option<String>,
    api_request_timeout: Option<String>,
    log_format: Option<String>,
    max_wal_bytes: Option<u64>,
    retention: Option<String>,
    purge_interval: Option<String>,
}

/// Values given as command-line flags, which win over everything else.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub database: Option<String>,
    pub role: Option<String>,
}

/// The layers as the caller read them.
pub struct Sources<'a> {
    /// The config file's path and text, if there is one.
    pub file: Option<(PathBuf, String)>,
    /// Looks up an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub flags: Flags,
}

/// The accepted ranges of the limits.
const HEADER_COUNTS: std::ops::RangeInclusive<usize> = 0..=1000;
const HEADER_BYTES: std::ops::RangeInclusive<usize> = 0..=1024 * 1024;
const CONNECTIONS: std::ops::RangeInclusive<usize> = 16..=1_000_000;

fn invalid(key: &str, value: &str, hint: &str) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), value: value.to_owned(), hint: hint.to_owned() }
}

fn parse_listen(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| invalid(key, value, "expected host:port such as 127.0.0.1:8750"))
}

fn parse_database(key: &str, value: &str) -> Result<Database, ConfigError> {
    // The url may hold a password: the message names the problem, not the value.
    Database::parse(value).map_err(|error| match error {
        hookline_store::OpenError::InvalidUrl { hint, .. } => invalid(key, "(hidden)", hint),
        other => invalid(key, "(hidden)", &other.to_string()),
    })
}

fn parse_role(key: &str, value: &str) -> Result<Role, ConfigError> {
    match value {
        "api" => Ok(Role::Api),
        "worker" => Ok(Role::Worker),
        "all" => Ok(Role::All),
        _ => Err(invalid(key, value, "expected api, worker or all")),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

fn parse_count(key: &str, value: &str, range: std::ops::RangeInclusive<usize>) -> Result<usize, ConfigError> {
    match value.parse::<usize>() {
        Ok(count) if range.contains(&count) => Ok(count),
        _ => Err(invalid(key, value, &format!("expected a whole number from {} to {}", range.start(), range.end()))),
    }
}

/// The WAL bound: below a few MiB the log would be restarted every few commits.
fn parse_wal_bytes(key: &str, value: &str) -> Result<u64, ConfigError> {
    const RANGE: std::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 40);
    match value.parse::<u64>() {
        Ok(bytes) if RANGE.contains(&bytes) => Ok(bytes),
        _ => Err(invalid(key, value, "expected a number of bytes from 1048576 (1 MiB) to 1099511627776 (1 TiB)")),
    }
}

fn parse_signing(key: &str, names: &[String]) -> Result<Vec<Scheme>, ConfigError> {
    let joined = names.join(",");
    if names.is_empty() {
        return Err(invalid(key, &joined, "name at least one of heron, herald, standard"));
    }
    names
        .iter()
        .map(|name| {
            name.trim()
                .parse()
                .map_err(|error: hookline_verify::ParseSchemeError| invalid(key, name, &error.to_string()))
        })
        .collect()
}

fn parse_schedule(key: &str, delays: &[String]) -> Result<RetrySchedule, ConfigError> {
    let parsed = delays
        .iter()
        .map(|delay| parse_duration(delay.trim()).map_err(|error| invalid(key, delay, &error.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    RetrySchedule::exact(parsed).map_err(|error| invalid(key, &delays.join(","), &error.to_string()))
}

/// A timeout from 100 ms to `max`.
fn parse_timeout_within(key: &str, value: &str, max: Duration) -> Result<Duration, ConfigError> {
    match parse_duration(value) {
        Ok(timeout) if timeout >= Duration::from_millis(100) && timeout <= max => Ok(timeout),
        Ok(_) => Err(invalid(key, value, &format!("use a timeout from 100ms to {}", format_duration(max)))),
        Err(error) => Err(invalid(key, value, &error.to_string())),
    }
}

/// An API timeout: from 100 ms to 5 min.
fn parse_timeout(key: &str, value: &str) -> Result<Duration, ConfigError> {
    parse_timeout_within(key, value, Duration::from_secs(300))
}

/// A delivery timeout: from 100 ms to the longest the dispatcher takes, which its leases depend on.
fn parse_delivery_timeout(key: &str, value: &str) -> Result<Duration, ConfigError> {
    parse_timeout_within(key, value, hookline_dispatch::MAX_DELIVERY_TIMEOUT)
}

/// A retention period of a minute or more, or `off` to keep everything.
/// The longest retention period: ten years (3650d), which any platform's audit rules fit in.
const MAX_RETENTION: Duration = Duration::from_secs(3650 * 86_400);

fn parse_retention(key: &str, value: &str) -> Result<Option<Duration>, ConfigError> {
    if value == "off" {
        return Ok(None);
    }
    match parse_duration_at_most(value, MAX_RETENTION) {
        Ok(period) if period >= Duration::from_secs(60) => Ok(Some(period)),
        Ok(_) => Err(invalid(key, value, "keep events a minute (1m) or more, or say off to keep everything")),
        Err(DurationError::TooLong { .. } | DurationError::Overflow { .. }) => {
            Err(invalid(key, value, "keep events at most 3650d (ten years), or say off to keep everything"))
        }
        Err(_) => Err(invalid(key, value, "use a duration such as 30d or 12h, or off to keep everything")),
    }
}

fn parse_purge_interval(key: &str, value: &str) -> Result<Duration, ConfigError> {
    match parse_duration(value) {
        Ok(interval) if interval >= Duration::from_millis(10) && interval <= Duration::from_secs(3600) => Ok(interval),
        Ok(_) => Err(invalid(key, value, "use an interval from 10ms to 1h")),
        Err(error) => Err(invalid(key, value, &error.to_string())),
    }
}

fn parse_log_format(key: &str, value: &str) -> Result<LogFormat, ConfigError> {
    match value {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(invalid(key, value, "expected text or json")),
    }
}

impl Config {
    /// Resolves the layers into one validated configuration.
    pub fn load(sources: Sources<'_>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some((path, text)) = &sources.file {
            let file: FileLayer = toml::from_str(text)
                .map_err(|source| ConfigError::File { path: path.clone(), source: Box::new(source) })?;
            config.apply_file(file)?;
        }
        config.apply_env(sources.env)?;
        if let Some(listen) = &sources.flags.listen {
            config.listen = parse_listen("--listen", listen)?;
        }
        if let Some(data_dir) = &sources.flags.data_dir {
            config.data_dir = PathBuf::from(data_dir);
        }
        if let Some(database) = &sources.flags.database {
            config.database = Some(parse_database("--database", database)?);
        }
        if let Some(role) = &sources.flags.role {
            config.role = parse_role("--role", role)?;
        }
        Ok(config)
    }

    fn apply_file(&mut self, file: FileLayer) -> Result<(), ConfigError> {
        if let Some(listen) = file.listen {
            self.listen = parse_listen("listen", &listen)?;
        }
        if let Some(data_dir) = file.data_dir {
            self.data_dir = PathBuf::from(data_dir);
        }
        if let Some(url) = file.database_url {
            self.database = Some(parse_database("database_url", &url)?);
        }
        if let Some(role) = file.role {
            self.role = parse_role("role", &role)?;
        }
        if let Some(key) = file.admin_key {
            self.admin_key = Some(check_admin_key("admin_key", key)?);
        }
        if let Some(allow) = file.dangerous_allow_private_targets {
            self.dangerous_allow_private_targets = allow;
        }
        if let Some(names) = file.default_signing {
            self.default_signing = parse_signing("default_signing", &names)?;
        }
        if let Some(bytes) = file.max_payload_bytes {
            self.max_payload_bytes = parse_count("max_payload_bytes", &bytes.to_string(), 1024..=64 * 1024 * 1024)?;
        }
        if let Some(timeout) = file.delivery_timeout {
            self.delivery_timeout = parse_delivery_timeout("delivery_timeout", &timeout)?;
        }
        if let Some(count) = file.delivery_concurrency {
            self.delivery_concurrency = parse_count("delivery_concurrency", &count.to_string(), 1..=100_000)?;
        }
        if let Some(count) = file.tenant_concurrency {
            self.tenant_concurrency = Some(parse_count("tenant_concurrency", &count.to_string(), 1..=100_000)?);
        }
        if let Some(count) = file.endpoint_concurrency {
            self.endpoint_concurrency = parse_count("endpoint_concurrency", &count.to_string(), 1..=10_000)?;
        }
        if let Some(delays) = file.retry_schedule {
            self.retry_schedule = Some(parse_schedule("retry_schedule", &delays)?);
        }
        if let Some(count) = file.response_headers_max_count {
            self.response_headers_max_count =
                parse_count("response_headers_max_count", &count.to_string(), HEADER_COUNTS)?;
        }
        if let Some(bytes) = file.response_headers_max_bytes {
            self.response_headers_max_bytes =
                parse_count("response_headers_max_bytes", &bytes.to_string(), HEADER_BYTES)?;
        }
        if let Some(count) = file.api_max_connections {
            self.api_max_connections = parse_count("api_max_connections", &count.to_string(), CONNECTIONS)?;
        }
        if let Some(timeout) = file.api_header_timeout {
            self.api_header_timeout = parse_timeout("api_header_timeout", &timeout)?;
        }
        if let Some(timeout) = file.api_idle_timeout {
            self.api_idle_timeout = parse_timeout("api_idle_timeout", &timeout)?;
        }
        if let Some(timeout) = file.api_request_timeout {
            self.api_request_timeout = parse_timeout("api_request_timeout", &timeout)?;
        }
        if let Some(format) = file.log_format {
            self.log_format = parse_log_format("log_format", &format)?;
        }
        if let Some(retention) = file.retention {
            self.retention = parse_retention("retention", &retention)?;
        }
        if let Some(interval) = file.purge_interval {
            self.purge_interval = parse_purge_interval("purge_interval", &interval)?;
        }
        if let Some(bytes) = file.max_wal_bytes {
            self.max_wal_bytes = parse_wal_bytes("max_wal_bytes", &bytes.to_string())?;
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let list = |value: &str| value.split(',').map(str::to_owned).collect::<Vec<_>>();
        if let Some(value) = env("HOOKLINE_LISTEN") {
            self.listen = parse_listen("HOOKLINE_LISTEN", &value)?;
        }
        if let Some(value) = env("HOOKLINE_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = env("HOOKLINE_DATABASE_URL") {
            self.database = Some(parse_database("HOOKLINE_DATABASE_URL", &value)?);
        }
        if let Some(value) = env("HOOKLINE_ROLE") {
            self.role = parse_role("HOOKLINE_ROLE", &value)?;
        }
        if let Some(value) = env("HOOKLINE_ADMIN_KEY") {
            self.admin_key = Some(check_admin_key("HOOKLINE_ADMIN_KEY", value)?);
        }
        if let Some(value) = env("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS") {
            self.dangerous_allow_private_targets = parse_bool("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", &value)?;
        }
        if let Some(value) = env("HOOKLINE_DEFAULT_SIGNING") {
            self.default_signing = parse_signing("HOOKLINE_DEFAULT_SIGNING", &list(&value))?;
        }
        if let Some(value) = env("HOOKLINE_MAX_PAYLOAD_BYTES") {
            self.max_payload_bytes = parse_count("HOOKLINE_MAX_PAYLOAD_BYTES", &value, 1024..=64 * 1024 * 1024)?;
        }
        if let Some(value) = env("HOOKLINE_DELIVERY_TIMEOUT") {
            self.delivery_timeout = parse_delivery_timeout("HOOKLINE_DELIVERY_TIMEOUT", &value)?;
        }
        if let Some(value) = env("HOOKLINE_DELIVERY_CONCURRENCY") {
            self.delivery_concurrency = parse_count("HOOKLINE_DELIVERY_CONCURRENCY", &value, 1..=100_000)?;
        }
        if let Some(value) = env("HOOKLINE_TENANT_CONCURRENCY") {
            self.tenant_concurrency = Some(parse_count("HOOKLINE_TENANT_CONCURRENCY", &value, 1..=100_000)?);
        }
        if let Some(value) = env("HOOKLINE_ENDPOINT_CONCURRENCY") {
            self.endpoint_concurrency = parse_count("HOOKLINE_ENDPOINT_CONCURRENCY", &value, 1..=10_000)?;
        }
        if let Some(value) = env("HOOKLINE_RETRY_SCHEDULE") {
            self.retry_schedule = Some(parse_schedule("HOOKLINE_RETRY_SCHEDULE", &list(&value))?);
        }
        if let Some(value) = env("HOOKLINE_RESPONSE_HEADERS_MAX_COUNT") {
            self.response_headers_max_count =
                parse_count("HOOKLINE_RESPONSE_HEADERS_MAX_COUNT", &value, HEADER_COUNTS)?;
        }
        if let Some(value) = env("HOOKLINE_RESPONSE_HEADERS_MAX_BYTES") {
            self.response_headers_max_bytes = parse_count("HOOKLINE_RESPONSE_HEADERS_MAX_BYTES", &value, HEADER_BYTES)?;
        }
        if let Some(value) = env("HOOKLINE_API_MAX_CONNECTIONS") {
            self.api_max_connections = parse_count("HOOKLINE_API_MAX_CONNECTIONS", &value, CONNECTIONS)?;
        }
        if let Some(value) = env("HOOKLINE_API_HEADER_TIMEOUT") {
            self.api_header_timeout = parse_timeout("HOOKLINE_API_HEADER_TIMEOUT", &value)?;
        }
        if let Some(value) = env("HOOKLINE_API_IDLE_TIMEOUT") {
            self.api_idle_timeout = parse_timeout("HOOKLINE_API_IDLE_TIMEOUT", &value)?;
        }
        if let Some(value) = env("HOOKLINE_API_REQUEST_TIMEOUT") {
            self.api_request_timeout = parse_timeout("HOOKLINE_API_REQUEST_TIMEOUT", &value)?;
        }
        if let Some(value) = env("HOOKLINE_LOG_FORMAT") {
            self.log_format = parse_log_format("HOOKLINE_LOG_FORMAT", &value)?;
        }
        if let Some(value) = env("HOOKLINE_RETENTION") {
            self.retention = parse_retention("HOOKLINE_RETENTION", &value)?;
        }
        if let Some(value) = env("HOOKLINE_PURGE_INTERVAL") {
            self.purge_interval = parse_purge_interval("HOOKLINE_PURGE_INTERVAL", &value)?;
        }
        if let Some(value) = env("HOOKLINE_MAX_WAL_BYTES") {
            self.max_wal_bytes = parse_wal_bytes("HOOKLINE_MAX_WAL_BYTES", &value)?;
        }
        Ok(())
    }

    /// The database this node uses: the configured one, else the embedded store in the data directory.
    pub fn database(&self) -> Database {
        match &self.database {
            Some(database) => database.clone(),
            None => Database::Sqlite { data_dir: self.data_dir.clone() },
        }
    }

    /// What the store is told at open, whichever database it is.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            max_wal_bytes: self.max_wal_bytes,
            partition_width: StoreOptions::partition_width_for(self.retention),
            ..StoreOptions::default()
        }
    }

    /// The retry schedule endpoints without their own follow.
    pub fn default_schedule(&self) -> RetrySchedule {
        self.retry_schedule.clone().unwrap_or_else(RetrySchedule::standard)
    }

    /// The default schedule as shown to operators.
    pub fn describe_schedule(&self) -> Vec<String> {
        self.default_schedule().delays().iter().map(|delay| format_duration(*delay)).collect()
    }
}

fn check_admin_key(key: &str, value: String) -> Result<String, ConfigError> {
    if value.len() < 16 || !value.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(invalid(key, "(hidden)", "use at least 16 printable characters without spaces"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: Option<&str>, env: &[(&str, &str)], flags: Flags) -> Result<Config, String> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |name: &str| env.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
        Config::load(Sources {
            file: file.map(|text| (PathBuf::from("hookline.toml"), text.to_owned())),
            env: &lookup,
            flags,
        })
        .map_err(|error| error.to_string())
    }

    #[test]
    fn layers_apply_in_order() {
        let config = load(None, &[], Flags::default()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        let file = "listen = \"127.0.0.1:9001\"\ndata_dir = \"from-file\"\nretry_schedule = [\"3m\", \"3m\"]";
        let config = load(Some(file), &[], Flags::default()).unwrap();
        assert_eq!((config.listen.port(), config.data_dir.to_str()), (9001, Some("from-file")));
        assert_eq!(config.describe_schedule(), ["3m", "3m"]);
        let config = load(Some(file), &[("HOOKLINE_LISTEN", "127.0.0.1:9002")], Flags::default()).unwrap();
        assert_eq!(config.listen.port(), 9002);
        let flags = Flags { listen: Some("127.0.0.1:9003".into()), ..Flags::default() };
        let config = load(Some(file), &[("HOOKLINE_LISTEN", "127.0.0.1:9002")], flags).unwrap();
        assert_eq!(config.listen.port(), 9003);
        assert_eq!(config.database(), Database::Sqlite { data_dir: PathBuf::from("from-file") });
        let url = "postgres://postgres@127.0.0.1:5432/hookline";
        let flags = Flags { database: Some(url.into()), role: Some("worker".into()), ..Flags::default() };
        let config = load(Some("role = \"api\""), &[("HOOKLINE_DATABASE_URL", "sqlite://elsewhere")], flags).unwrap();
        assert_eq!(config.database(), Database::Postgres { url: url.into() });
        assert_eq!(config.role, Role::Worker);
        let config =
            load(Some("role = \"api\""), &[("HOOKLINE_DATABASE_URL", "sqlite://elsewhere")], Flags::default()).unwrap();
        assert_eq!(config.database(), Database::Sqlite { data_dir: PathBuf::from("elsewhere") });
        assert_eq!(config.role, Role::Api);
    }

    #[test]
    fn the_wal_bound_reaches_the_store_from_each_layer() {
        let bound =
            |file, env: &[(&str, &str)]| load(file, env, Flags::default()).unwrap().store_options().max_wal_bytes;
        assert_eq!(bound(None, &[]), 64 << 20);
        assert_eq!(bound(Some("max_wal_bytes = 4194304"), &[]), 4 << 20);
        assert_eq!(bound(Some("max_wal_bytes = 4194304"), &[("HOOKLINE_MAX_WAL_BYTES", "1048576")]), 1 << 20);
    }

    fn check_error(file: Option<&str>, env: &[(&str, &str)], expected: &str) {
        assert_eq!(load(file, env, Flags::default()).unwrap_err(), expected);
    }

    #[test]
    fn bad_values_name_their_key() {
        check_error(
            None,
            &[("HOOKLINE_LISTEN", "nowhere")],
            "invalid HOOKLINE_LISTEN \"nowhere\"; expected host:port such as 127.0.0.1:8750",
        );
        check_error(
            None,
            &[("HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS", "yes")],
            "invalid HOOKLINE_DANGEROUS_ALLOW_PRIVATE_TARGETS \"yes\"; expected true or false",
        );
        check_error(
            None,
            &[("HOOKLINE_DEFAULT_SIGNING", "hmac")],
            "invalid HOOKLINE_DEFAULT_SIGNING \"hmac\"; unknown signing scheme \"hmac\"; expected one of heron, herald, standard",
        );
        check_error(
            None,
            &[("HOOKLINE_DELIVERY_TIMEOUT", "1h")],
            "invalid HOOKLINE_DELIVERY_TIMEOUT \"1h\"; use a timeout from 100ms to 5m",
        );
        check_error(
            Some("delivery_concurrency = 0"),
            &[],
            "invalid delivery_concurrency \"0\"; expected a whole number from 1 to 100000",
        );
        check_error(Some("lisen = \"x\""), &[], "could not parse the config file \"hookline.toml\"");
        check_error(
            None,
            &[("HOOKLINE_DATABASE_URL", "mysql://root:secret@db/hookline")],
            "invalid HOOKLINE_DATABASE_URL \"(hidden)\"; expected postgres://… or sqlite://DIR",
        );
        check_error(Some("role = \"both\""), &[], "invalid role \"both\"; expected api, worker or all");
        check_error(
            Some("api_max_connections = 2"),
            &[],
            "invalid api_max_connections \"2\"; expected a whole number from 16 to 1000000",
        );
        check_error(
            None,
            &[("HOOKLINE_API_HEADER_TIMEOUT", "0s")],
            "invalid HOOKLINE_API_HEADER_TIMEOUT \"0s\"; use a timeout from 100ms to 5m",
        );
        check_error(
            None,
            &[("HOOKLINE_RESPONSE_HEADERS_MAX_BYTES", "lots")],
            "invalid HOOKLINE_RESPONSE_HEADERS_MAX_BYTES \"lots\"; expected a whole number from 0 to 1048576",
        );
        check_error(
            None,
            &[("HOOKLINE_MAX_WAL_BYTES", "64MiB")],
            "invalid HOOKLINE_MAX_WAL_BYTES \"64MiB\"; expected a number of bytes from 1048576 (1 MiB) to 1099511627776 (1 TiB)",
        );
        check_error(
            Some("max_wal_bytes = 4096"),
            &[],
            "invalid max_wal_bytes \"4096\"; expected a number of bytes from 1048576 (1 MiB) to 1099511627776 (1 TiB)",
        );
        check_error(
            None,
            &[("HOOKLINE_ADMIN_KEY", "short")],
            "invalid HOOKLINE_ADMIN_KEY \"(hidden)\"; use at least 16 printable characters without spaces",
        );
        check_error(
            None,
            &[("HOOKLINE_RETENTION", "30s")],
            "invalid HOOKLINE_RETENTION \"30s\"; keep events a minute (1m) or more, or say off to keep everything",
        );
        check_error(
            Some("retention = \"3651d\""),
            &[],
            "invalid retention \"3651d\"; keep events at most 3650d (ten years), or say off to keep everything",
        );
        check_error(
            Some("retention = \"forever\""),
            &[],
            "invalid retention \"forever\"; use a duration such as 30d or 12h, or off to keep everything",
        );
        check_error(
            None,
            &[("HOOKLINE_PURGE_INTERVAL", "2h")],
            "invalid HOOKLINE_PURGE_INTERVAL \"2h\"; use an interval from 10ms to 1h",
        );
    }

    #[test]
    fn retention_defaults_to_thirty_days_and_can_be_turned_off() {
        let retention = |file: Option<&str>, env: &[(&str, &str)]| load(file, env, Flags::default()).unwrap().retention;
        assert_eq!(retention(None, &[]), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(retention(Some("retention = \"7d\""), &[]), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(retention(Some("retention = \"7d\""), &[("HOOKLINE_RETENTION", "off")]), None);
        // Longer than a duration elsewhere may be: a quarter, a year, ten years.
        for days in [31, 90, 365, 3650] {
            let value = format!("{days}d");
            let expected = Some(Duration::from_secs(days * 86_400));
            assert_eq!(retention(None, &[("HOOKLINE_RETENTION", &value)]), expected, "{value}");
        }
        let interval = load(Some("purge_interval = \"1m\""), &[], Flags::default()).unwrap().purge_interval;
        assert_eq!(interval, Duration::from_secs(60));
    }
}

//! The server's configuration: built-in defaults, then a TOML file, then `HOOKLINE_*` environment variables,
//! then command-line flags, validated once with messages that name the key and the value.
//!
//! Every key is declared once, in [`KEYS`]: its name (the file's key; the environment variable is `HOOKLINE_` and
//! the name in capitals), its flag if it has one, its default, what it accepts and a sentence on what it does.
//! The loader, the checks, `hookline serve --help` and `docs/configuration.md` all come from that list, so a new
//! key is one entry there (and its field in [`Config`]).
//!
//! Loading is pure: the caller reads the file and the environment and passes them in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookline_core::Scheme;
use hookline_core::duration::{DurationError, format_duration, parse_duration, parse_duration_at_most};
use hookline_core::id::EndpointId;
use hookline_core::retry::RetrySchedule;
use hookline_store::{Database, StoreOptions};

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
    /// Failures in a row after which an endpoint is failing and `endpoint.failing` is published.
    pub failing_after: usize,
    /// How long an endpoint may fail every attempt (with a delivery that used its last retry) before it is
    /// disabled; `None` never disables one.
    pub disable_after: Option<Duration>,
    /// An endpoint that also gets every tenant's operational events.
    pub operational_endpoint: Option<EndpointId>,
    /// Where users reach this server, for the portal links it makes; `None`: `http://` and the listening address.
    pub public_url: Option<String>,
    /// How long a portal session lasts unused, and at most.
    pub portal_session_idle: Duration,
    pub portal_session_lifetime: Duration,
    /// The origins whose pages may frame the portal; none when empty.
    pub portal_frame_ancestors: Vec<String>,
    /// How the portal looks unless a link says otherwise.
    pub portal_theme: hookline_core::portal::Theme,
}

impl Default for Config {
    /// Every key at its declared default.
    fn default() -> Self {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: PathBuf::new(),
            database: None,
            role: Role::All,
            admin_key: None,
            dangerous_allow_private_targets: false,
            default_signing: Vec::new(),
            max_payload_bytes: 0,
            delivery_timeout: Duration::ZERO,
            delivery_concurrency: 0,
            tenant_concurrency: None,
            endpoint_concurrency: 0,
            retry_schedule: None,
            response_headers_max_count: 0,
            response_headers_max_bytes: 0,
            api_max_connections: 0,
            api_header_timeout: Duration::ZERO,
            api_idle_timeout: Duration::ZERO,
            api_request_timeout: Duration::ZERO,
            log_format: LogFormat::Text,
            max_wal_bytes: 0,
            retention: None,
            purge_interval: Duration::ZERO,
            failing_after: 0,
            disable_after: None,
            operational_endpoint: None,
            public_url: None,
            portal_session_idle: Duration::ZERO,
            portal_session_lifetime: Duration::ZERO,
            portal_frame_ancestors: Vec::new(),
            portal_theme: hookline_core::portal::Theme::default(),
        };
        for key in KEYS {
            if let Some(default) = key.default {
                // `every_declared_default_is_valid` checks each one.
                key.apply(&mut config, key.name, Raw::Text(default.to_owned())).expect("a declared default is valid");
            }
        }
        config
    }
}

/// A configuration value that does not make sense, named by the key it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {key} {value:?}; {hint}")]
    Invalid { key: String, value: String, hint: String },
    #[error("unknown key {key:?} in the config file {path:?}; docs/configuration.md lists every key")]
    UnknownKey { path: PathBuf, key: String },
    #[error("could not parse the config file {path:?}")]
    File {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
}

/// Values given as command-line flags, which win over everything else: each flag's name (without `--`, as
/// [`Key::flag`] has it) and value.
#[derive(Clone, Debug, Default)]
pub struct Flags(pub Vec<(String, String)>);

/// The layers as the caller read them.
pub struct Sources<'a> {
    /// The config file's path and text, if there is one.
    pub file: Option<(PathBuf, String)>,
    /// Looks up an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub flags: Flags,
}

/// One configuration key: everything about it, in one place.
pub struct Key {
    /// The key in the config file; the environment variable is `HOOKLINE_` and this in capitals.
    pub name: &'static str,
    /// The command-line flag, without `--`, for the few keys that have one.
    pub flag: Option<&'static str>,
    /// The value when nothing sets it, written as the file or the environment would give it; `None` when an
    /// unset key means something of its own, which `description` says.
    pub default: Option<&'static str>,
    /// What it does, in one sentence.
    pub description: &'static str,
    kind: Kind,
}

/// What a key accepts, and where its value goes in [`Config`].
enum Kind {
    Address(fn(&mut Config, SocketAddr)),
    Directory(fn(&mut Config, PathBuf)),
    DatabaseUrl(fn(&mut Config, Database)),
    Role(fn(&mut Config, Role)),
    Secret(fn(&mut Config, String)),
    Switch(fn(&mut Config, bool)),
    Schemes(fn(&mut Config, Vec<Scheme>)),
    Count(std::ops::RangeInclusive<usize>, fn(&mut Config, usize)),
    Bytes(std::ops::RangeInclusive<u64>, fn(&mut Config, u64)),
    /// A timeout from 100 ms to this.
    Timeout(Duration, fn(&mut Config, Duration)),
    Schedule(fn(&mut Config, RetrySchedule)),
    Retention(fn(&mut Config, Option<Duration>)),
    Interval(fn(&mut Config, Duration)),
    LogFormat(fn(&mut Config, LogFormat)),
    Endpoint(fn(&mut Config, EndpointId)),
    PublicUrl(fn(&mut Config, String)),
    Origins(fn(&mut Config, Vec<String>)),
    /// A part of the portal's theme, checked as a link's theme is.
    Theme(fn(&mut hookline_core::portal::Theme, String)),
}

/// The accepted ranges of the limits.
const PAYLOAD_BYTES: std::ops::RangeInclusive<usize> = 1024..=64 * 1024 * 1024;
const CONCURRENCY: std::ops::RangeInclusive<usize> = 1..=100_000;
const WAL_BYTES: std::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 40);
/// The longest API timeout.
const API_TIMEOUT: Duration = Duration::from_secs(300);

/// Every configuration key, in the order the reference lists them.
pub const KEYS: &[Key] = &[
    Key {
        name: "listen",
        flag: Some("listen"),
        default: Some(DEFAULT_LISTEN),
        description: "The address the API listens on.",
        kind: Kind::Address(|config, value| config.listen = value),
    },
    Key {
        name: "data_dir",
        flag: Some("data-dir"),
        default: Some("hookline-data"),
        description: "The directory of the embedded store (`hookline.db`, its WAL and its lock), made if missing.",
        kind: Kind::Directory(|config, value| config.data_dir = value),
    },
    Key {
        name: "database_url",
        flag: Some("database"),
        default: None,
        description: "A PostgreSQL database that several nodes share, or `sqlite://DIR`; unset, the embedded store \
                      in `data_dir`.",
        kind: Kind::DatabaseUrl(|config, value| config.database = Some(value)),
    },
    Key {
        name: "role",
        flag: Some("role"),
        default: Some("all"),
        description: "What this node runs: the API (`api`), the dispatcher (`worker`), or both (`all`).",
        kind: Kind::Role(|config, value| config.role = value),
    },
    Key {
        name: "admin_key",
        flag: None,
        default: None,
        description: "The operator's key; unset, one is generated on first start and printed once, and only its \
                      hash is stored.",
        kind: Kind::Secret(|config, value| config.admin_key = Some(value)),
    },
    Key {
        name: "dangerous_allow_private_targets",
        flag: None,
        default: Some("false"),
        description: "Lets endpoints target loopback and private addresses, which the SSRF guard refuses \
                      otherwise; for tests and local demos only.",
        kind: Kind::Switch(|config, value| config.dangerous_allow_private_targets = value),
    },
    Key {
        name: "default_signing",
        flag: None,
        default: Some("standard"),
        description: "The signing schemes of a new endpoint that names none.",
        kind: Kind::Schemes(|config, value| config.default_signing = value),
    },
    Key {
        name: "max_payload_bytes",
        flag: None,
        default: Some("262144"),
        description: "The largest request body the API accepts, in bytes.",
        kind: Kind::Count(PAYLOAD_BYTES, |config, value| config.max_payload_bytes = value),
    },
    Key {
        name: "delivery_timeout",
        flag: None,
        default: Some("15s"),
        description: "How long one delivery attempt may take, the response body included.",
        kind: Kind::Timeout(hookline_dispatch::MAX_DELIVERY_TIMEOUT, |config, value| config.delivery_timeout = value),
    },
    Key {
        name: "delivery_concurrency",
        flag: None,
        default: Some("2048"),
        description: "Delivery attempts in flight at once on this node.",
        kind: Kind::Count(CONCURRENCY, |config, value| config.delivery_concurrency = value),
    },
    Key {
        name: "tenant_concurrency",
        flag: None,
        default: None,
        description: "Delivery attempts in flight at once for one tenant on this node, so that no tenant takes the \
                      others' share; unset, half of `delivery_concurrency`.",
        kind: Kind::Count(CONCURRENCY, |config, value| config.tenant_concurrency = Some(value)),
    },
    Key {
        name: "endpoint_concurrency",
        flag: None,
        default: Some("64"),
        description: "Delivery attempts in flight at once to one endpoint (fewer while it keeps timing out).",
        kind: Kind::Count(1..=10_000, |config, value| config.endpoint_concurrency = value),
    },
    Key {
        name: "retry_schedule",
        flag: None,
        default: None,
        description: "The delays between attempts for endpoints without a schedule of their own, followed exactly; \
                      unset, immediately, then 5s, 5m, 30m, 2h, 5h, 10h and 10h, each jittered by up to 10%.",
        kind: Kind::Schedule(|config, value| config.retry_schedule = Some(value)),
    },
    Key {
        name: "response_headers_max_count",
        flag: None,
        default: Some("64"),
        description: "The most response headers an attempt's record keeps.",
        kind: Kind::Count(0..=1000, |config, value| config.response_headers_max_count = value),
    },
    Key {
        name: "response_headers_max_bytes",
        flag: None,
        default: Some("4096"),
        description: "The most bytes of response headers (names and values) an attempt's record keeps.",
        kind: Kind::Count(0..=1024 * 1024, |config, value| config.response_headers_max_bytes = value),
    },
    Key {
        name: "api_max_connections",
        flag: None,
        default: Some("4096"),
        description: "API connections open at once (lowered at start-up to leave deliveries room under the \
                      open-file limit).",
        kind: Kind::Count(16..=1_000_000, |config, value| config.api_max_connections = value),
    },
    Key {
        name: "api_header_timeout",
        flag: None,
        default: Some("10s"),
        description: "How long a request's head may take to arrive, from a new connection or from its first byte.",
        kind: Kind::Timeout(API_TIMEOUT, |config, value| config.api_header_timeout = value),
    },
    Key {
        name: "api_idle_timeout",
        flag: None,
        default: Some("75s"),
        description: "How long a kept-alive API connection may stay silent between requests.",
        kind: Kind::Timeout(API_TIMEOUT, |config, value| config.api_idle_timeout = value),
    },
    Key {
        name: "api_request_timeout",
        flag: None,
        default: Some("60s"),
        description: "How long an API request may take from its complete head to its response, its body included.",
        kind: Kind::Timeout(API_TIMEOUT, |config, value| config.api_request_timeout = value),
    },
    Key {
        name: "log_format",
        flag: None,
        default: Some("text"),
        description: "Log lines on stderr as text or as JSON objects; `HOOKLINE_LOG` sets the level (`info`).",
        kind: Kind::LogFormat(|config, value| config.log_format = value),
    },
    Key {
        name: "max_wal_bytes",
        flag: None,
        default: Some("67108864"),
        description: "The embedded store's write-ahead log file stays under about this many bytes (64 MiB by \
                      default).",
        kind: Kind::Bytes(WAL_BYTES, |config, value| config.max_wal_bytes = value),
    },
    Key {
        name: "retention",
        flag: None,
        default: Some("30d"),
        description: "Events older than this are purged with their deliveries and attempts; `off` keeps \
                      everything.",
        kind: Kind::Retention(|config, value| config.retention = value),
    },
    Key {
        name: "purge_interval",
        flag: None,
        default: Some("10s"),
        description: "How often the purge looks for events past the retention period.",
        kind: Kind::Interval(|config, value| config.purge_interval = value),
    },
    Key {
        name: "failing_after",
        flag: None,
        default: Some("5"),
        description: "Failed attempts in a row after which an endpoint shows as failing and its tenant gets an \
                      `endpoint.failing` event.",
        kind: Kind::Count(1..=10_000, |config, value| config.failing_after = value),
    },
    Key {
        name: "disable_after",
        flag: None,
        default: Some("5d"),
        description: "An endpoint whose every attempt has failed for this long, with a delivery that used its last \
                      retry, is disabled (`endpoint.disabled`); `off` never disables one.",
        kind: Kind::Retention(|config, value| config.disable_after = value),
    },
    Key {
        name: "operational_endpoint",
        flag: None,
        default: None,
        description: "The id of an endpoint (of any tenant) that also gets every tenant's operational events: \
                      `endpoint.failing`, `endpoint.recovered`, `endpoint.disabled`, `delivery.exhausted`.",
        kind: Kind::Endpoint(|config, value| config.operational_endpoint = Some(value)),
    },
    Key {
        name: "public_url",
        flag: None,
        default: None,
        description: "The URL users reach this server at (`https://hooks.example.com`), which the portal links it \
                      makes start with; `http://` and the listening address when not set.",
        kind: Kind::PublicUrl(|config, value| config.public_url = Some(value)),
    },
    Key {
        name: "portal_session_idle",
        flag: None,
        default: Some("30m"),
        description: "A portal session unused for this long is over.",
        kind: Kind::Timeout(Duration::from_secs(7 * 86_400), |config, value| config.portal_session_idle = value),
    },
    Key {
        name: "portal_session_lifetime",
        flag: None,
        default: Some("12h"),
        description: "A portal session is over this long after it began, however much it is used.",
        kind: Kind::Timeout(Duration::from_secs(30 * 86_400), |config, value| config.portal_session_lifetime = value),
    },
    Key {
        name: "portal_frame_ancestors",
        flag: None,
        default: None,
        description: "The origins (`https://app.example.com`) whose pages may show the portal in a frame. When set, \
                      the portal's session cookie is `SameSite=None; Secure; Partitioned`, so that it works inside \
                      another site's frame, also where third-party cookies are blocked: serve the portal over HTTPS.",
        kind: Kind::Origins(|config, value| config.portal_frame_ancestors = value),
    },
    Key {
        name: "portal_name",
        flag: None,
        default: Some("Hookline"),
        description: "The name at the top of the portal's pages (a link's theme may give another).",
        kind: Kind::Theme(|theme, value| theme.name = Some(value)),
    },
    Key {
        name: "portal_accent",
        flag: None,
        default: Some("#2456c8"),
        description: "The portal's accent colour, `#rrggbb` (a link's theme may give another).",
        kind: Kind::Theme(|theme, value| theme.accent = Some(value)),
    },
    Key {
        name: "portal_mode",
        flag: None,
        default: Some("light"),
        description: "`light` or `dark` pages (a link's theme may give another).",
        kind: Kind::Theme(|theme, value| theme.mode = Some(value)),
    },
    Key {
        name: "portal_logo",
        flag: None,
        default: None,
        description: "An `https://` address of an image shown before the portal's name (a link's theme may give \
                      another).",
        kind: Kind::Theme(|theme, value| theme.logo = Some(value)),
    },
];

/// A value as a layer gave it: one value, or a list (a TOML array; the environment's lists are comma separated).
enum Raw {
    Text(String),
    List(Vec<String>),
}

impl Raw {
    /// A TOML value as text, or `None` for a shape no key takes (a table, a float, a date).
    fn from_toml(value: &toml::Value) -> Option<Raw> {
        match value {
            toml::Value::String(text) => Some(Raw::Text(text.clone())),
            toml::Value::Integer(number) => Some(Raw::Text(number.to_string())),
            toml::Value::Boolean(switch) => Some(Raw::Text(switch.to_string())),
            toml::Value::Array(items) => {
                items.iter().map(|item| item.as_str().map(str::to_owned)).collect::<Option<_>>().map(Raw::List)
            }
            _ => None,
        }
    }

    fn text(self, key: &str) -> Result<String, ConfigError> {
        match self {
            Raw::Text(text) => Ok(text),
            Raw::List(items) => Err(invalid(key, &items.join(","), "expected one value, not a list")),
        }
    }

    fn list(self) -> Vec<String> {
        match self {
            Raw::Text(text) => text.split(',').map(str::to_owned).collect(),
            Raw::List(items) => items,
        }
    }
}

impl Key {
    /// The environment variable that sets it.
    pub fn env(&self) -> String {
        format!("HOOKLINE_{}", self.name.to_uppercase())
    }

    /// What it accepts, in a few words.
    pub fn accepts(&self) -> String {
        match &self.kind {
            Kind::Address(_) => "host:port".to_owned(),
            Kind::Directory(_) => "a directory".to_owned(),
            Kind::DatabaseUrl(_) => "postgres://user@host:port/db or sqlite://DIR".to_owned(),
            Kind::Role(_) => "api, worker or all".to_owned(),
            Kind::Secret(_) => "16 or more printable characters, no spaces".to_owned(),
            Kind::Switch(_) => "true or false".to_owned(),
            Kind::Schemes(_) => "a list of heron, herald, standard".to_owned(),
            Kind::Count(range, _) => format!("a whole number from {} to {}", range.start(), range.end()),
            Kind::Bytes(range, _) => format!("bytes, from {} (1 MiB) to {} (1 TiB)", range.start(), range.end()),
            Kind::Timeout(max, _) => format!("a duration from 100ms to {}", format_duration(*max)),
            Kind::Schedule(_) => format!(
                "a list of up to {} durations, each at most {}",
                hookline_core::retry::MAX_RETRIES,
                format_duration(hookline_core::retry::MAX_DELAY)
            ),
            Kind::Retention(_) => "a duration from 1m to 3650d, or off".to_owned(),
            Kind::Interval(_) => "a duration from 10ms to 1h".to_owned(),
            Kind::LogFormat(_) => "text or json".to_owned(),
            Kind::Endpoint(_) => "an endpoint id, ep_…".to_owned(),
            Kind::PublicUrl(_) => "an http:// or https:// URL without a path".to_owned(),
            Kind::Origins(_) => "a list of origins, each http:// or https:// and a host".to_owned(),
            Kind::Theme(_) => {
                "a name (1 to 64 characters), a #rrggbb colour, light or dark, or an https:// address".to_owned()
            }
        }
    }

    /// Checks `raw`, given under the name `label` (the key, its variable or its flag), and sets it in `config`.
    fn apply(&self, config: &mut Config, label: &str, raw: Raw) -> Result<(), ConfigError> {
        match &self.kind {
            Kind::Address(set) => set(config, parse_listen(label, &raw.text(label)?)?),
            Kind::Directory(set) => set(config, PathBuf::from(raw.text(label)?)),
            Kind::DatabaseUrl(set) => set(config, parse_database(label, &raw.text(label)?)?),
            Kind::Role(set) => set(config, parse_role(label, &raw.text(label)?)?),
            Kind::Secret(set) => set(config, check_admin_key(label, raw.text(label)?)?),
            Kind::Switch(set) => set(config, parse_bool(label, &raw.text(label)?)?),
            Kind::Schemes(set) => set(config, parse_signing(label, &raw.list())?),
            Kind::Count(range, set) => set(config, parse_count(label, &raw.text(label)?, range.clone())?),
            Kind::Bytes(range, set) => set(config, parse_wal_bytes(label, &raw.text(label)?, range.clone())?),
            Kind::Timeout(max, set) => set(config, parse_timeout_within(label, &raw.text(label)?, *max)?),
            Kind::Schedule(set) => set(config, parse_schedule(label, &raw.list())?),
            Kind::Retention(set) => set(config, parse_retention(label, &raw.text(label)?)?),
            Kind::Interval(set) => set(config, parse_purge_interval(label, &raw.text(label)?)?),
            Kind::LogFormat(set) => set(config, parse_log_format(label, &raw.text(label)?)?),
            Kind::PublicUrl(set) => set(config, parse_public_url(label, &raw.text(label)?)?),
            Kind::Theme(set) => {
                let value = raw.text(label)?;
                let mut theme = hookline_core::portal::Theme::default();
                set(&mut theme, value.clone());
                theme.check().map_err(|error| invalid(label, &value, &error.to_string()))?;
                set(&mut config.portal_theme, value);
            }
            Kind::Origins(set) => {
                let origins: Vec<String> = raw
                    .list()
                    .iter()
                    .map(|origin| origin.trim())
                    .filter(|origin| !origin.is_empty())
                    .map(str::to_owned)
                    .collect();
                set(config, origins.iter().map(|origin| parse_public_url(label, origin)).collect::<Result<_, _>>()?)
            }
            Kind::Endpoint(set) => {
                let text = raw.text(label)?;
                set(
                    config,
                    text.parse().map_err(|_| {
                        invalid(label, &text, "expected an endpoint id such as ep_01m95j3yvbj6n95m7p5wv56vg1")
                    })?,
                )
            }
        }
        Ok(())
    }
}

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

/// A public URL: a scheme and a host (and port), no path, query or fragment; a trailing `/` is dropped.
fn parse_public_url(key: &str, value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim_end_matches('/');
    let rest = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && !host.contains(['/', '?', '#', ' ', ';', ',', '\'', '"'])
                && !host.contains(char::is_control) =>
        {
            Ok(trimmed.to_owned())
        }
        _ => Err(invalid(key, value, "expected http:// or https:// and a host, such as https://hooks.example.com")),
    }
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
fn parse_wal_bytes(key: &str, value: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
    match value.parse::<u64>() {
        Ok(bytes) if range.contains(&bytes) => Ok(bytes),
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
            let table: toml::Table = toml::from_str(text)
                .map_err(|source| ConfigError::File { path: path.clone(), source: Box::new(source) })?;
            for (name, value) in &table {
                let Some(key) = KEYS.iter().find(|key| key.name == name) else {
                    return Err(ConfigError::UnknownKey { path: path.clone(), key: name.clone() });
                };
                let raw = Raw::from_toml(value)
                    .ok_or_else(|| invalid(name, &value.to_string(), &format!("expected {}", key.accepts())))?;
                key.apply(&mut config, name, raw)?;
            }
        }
        for key in KEYS {
            let variable = key.env();
            if let Some(value) = (sources.env)(&variable) {
                key.apply(&mut config, &variable, Raw::Text(value))?;
            }
        }
        for (flag, value) in &sources.flags.0 {
            let label = format!("--{flag}");
            let Some(key) = KEYS.iter().find(|key| key.flag == Some(flag.as_str())) else {
                return Err(invalid(&label, value, "no such flag"));
            };
            key.apply(&mut config, &label, Raw::Text(value.clone()))?;
        }
        Ok(config)
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
            health: self.health_policy(),
            ..StoreOptions::default()
        }
    }

    /// When a run of an endpoint's failures is told, and when it disables the endpoint.
    pub fn health_policy(&self) -> hookline_core::health::Policy {
        hookline_core::health::Policy {
            failing_after: u32::try_from(self.failing_after).unwrap_or(u32::MAX),
            disable_after: self.disable_after,
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

/// `docs/configuration.md`: every key, made from [`KEYS`]. A test checks that the committed page is this.
pub fn reference() -> String {
    let mut page = String::from(
        "# Configuration\n\n\
         <!-- Made from `KEYS` in crates/hookline-server/src/config.rs; a test fails when this page differs. To remake it:\n     \
         HOOKLINE_WRITE_DOCS=1 cargo test -p hookline-server the_configuration_page_is_made_from_the_keys -->\n\n\
         Each key is read from, in order, its built-in default, the TOML file (`hookline.toml` in the working \
         directory,\nor `--config FILE`), its environment variable, and its flag where it has one; the last one \
         given wins. `hookline\nserve` stops at start-up on a value it does not accept, with a message that names \
         the key as it was given.\n\n\
         Durations are written as a number and a unit: `100ms`, `15s`, `5m`, `2h`, `30d`. Lists are TOML arrays in \
         the file\n(`retry_schedule = [\"3m\", \"3m\"]`) and comma-separated in the environment \
         (`HOOKLINE_RETRY_SCHEDULE=3m,3m`).\n\n\
         ```toml\n# hookline.toml\nlisten = \"0.0.0.0:8750\"\ndata_dir = \"/var/lib/hookline\"\n\
         retention = \"14d\"\nretry_schedule = [\"1m\", \"10m\", \"1h\"]\n```\n\n\
         | key | environment variable | flag | default |\n| --- | --- | --- | --- |\n",
    );
    let shown = |value: Option<&str>| value.map_or("(unset)".to_owned(), |value| format!("`{value}`"));
    for key in KEYS {
        let flag = key.flag.map_or(String::new(), |flag| format!("`--{flag}`"));
        page.push_str(&format!(
            "| [`{name}`](#{name}) | `{env}` | {flag} | {default} |\n",
            name = key.name,
            env = key.env(),
            default = shown(key.default)
        ));
    }
    for key in KEYS {
        page.push_str(&format!("\n## {}\n\n{}\n\n", key.name, key.description));
        page.push_str(&format!("- environment variable: `{}`\n", key.env()));
        if let Some(flag) = key.flag {
            page.push_str(&format!("- flag: `--{flag}`\n"));
        }
        page.push_str(&format!("- default: {}\n", shown(key.default)));
        page.push_str(&format!("- accepts: {}\n", key.accepts()));
    }
    page
}

/// The keys as `hookline serve --help` lists them.
pub fn help() -> String {
    let mut text = String::from(
        "Configuration (defaults, then hookline.toml or --config, then the environment, then the flags; \
         docs/configuration.md has more):\n",
    );
    for key in KEYS {
        let default = key.default.map_or("unset".to_owned(), |value| format!("default {value}"));
        text.push_str(&format!(
            "\n  {} ({}; {default})\n      {} Accepts {}.\n",
            key.name,
            key.env(),
            key.description,
            key.accepts()
        ));
    }
    text
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
        let flags = Flags(vec![("listen".into(), "127.0.0.1:9003".into())]);
        let config = load(Some(file), &[("HOOKLINE_LISTEN", "127.0.0.1:9002")], flags).unwrap();
        assert_eq!(config.listen.port(), 9003);
        assert_eq!(config.database(), Database::Sqlite { data_dir: PathBuf::from("from-file") });
        let url = "postgres://postgres@127.0.0.1:5432/hookline";
        let flags = Flags(vec![("database".into(), url.into()), ("role".into(), "worker".into())]);
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
        check_error(
            Some("lisen = \"x\""),
            &[],
            "unknown key \"lisen\" in the config file \"hookline.toml\"; docs/configuration.md lists every key",
        );
        check_error(Some("listen = "), &[], "could not parse the config file \"hookline.toml\"");
        check_error(
            Some("delivery_concurrency = 1.5"),
            &[],
            "invalid delivery_concurrency \"1.5\"; expected a whole number from 1 to 100000",
        );
        check_error(Some("role = [\"api\"]"), &[], "invalid role \"api\"; expected one value, not a list");
        check_error(
            Some("retry_schedule = [\"1m\", \"soon\"]"),
            &[],
            "invalid retry_schedule \"soon\"; invalid duration \"soon\"; use a number followed by ms, s, m, h or d",
        );
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
    fn every_declared_default_is_valid_and_the_defaults_are_these() {
        for key in KEYS {
            if let Some(default) = key.default {
                let mut config = Config::default();
                let applied = key.apply(&mut config, key.name, Raw::Text(default.to_owned()));
                assert!(applied.is_ok(), "{}: {applied:?}", key.name);
            }
        }
        let config = Config::default();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir, PathBuf::from("hookline-data"));
        assert_eq!((config.database, config.role, config.admin_key), (None, Role::All, None));
        assert!(!config.dangerous_allow_private_targets);
        assert_eq!(config.default_signing, [Scheme::Standard]);
        assert_eq!(config.max_payload_bytes, 256 * 1024);
        assert_eq!(config.delivery_timeout, Duration::from_secs(15));
        assert_eq!((config.delivery_concurrency, config.tenant_concurrency), (2048, None));
        assert_eq!(config.endpoint_concurrency, 64);
        assert!(config.retry_schedule.is_none());
        assert_eq!((config.response_headers_max_count, config.response_headers_max_bytes), (64, 4096));
        assert_eq!(config.api_max_connections, 4096);
        let api_timeouts = (config.api_header_timeout, config.api_idle_timeout, config.api_request_timeout);
        assert_eq!(api_timeouts, (Duration::from_secs(10), Duration::from_secs(75), Duration::from_secs(60)));
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.max_wal_bytes, StoreOptions::DEFAULT_MAX_WAL_BYTES);
        assert_eq!(config.retention, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(config.purge_interval, Duration::from_secs(10));
    }

    #[test]
    fn keys_and_flags_are_unique_and_lists_read_from_every_layer() {
        let names: std::collections::HashSet<_> = KEYS.iter().map(|key| key.name).collect();
        assert_eq!(names.len(), KEYS.len());
        let flags: Vec<_> = KEYS.iter().filter_map(|key| key.flag).collect();
        assert_eq!(flags, ["listen", "data-dir", "database", "role"]);
        let schedule = |file, env: &[(&str, &str)]| load(file, env, Flags::default()).unwrap().describe_schedule();
        assert_eq!(schedule(Some("retry_schedule = \"1m,2m\""), &[]), ["1m", "2m"]);
        assert_eq!(schedule(None, &[("HOOKLINE_RETRY_SCHEDULE", "3m,4m")]), ["3m", "4m"]);
        let flags = Flags(vec![("no-such".into(), "x".into())]);
        assert_eq!(load(None, &[], flags).unwrap_err(), "invalid --no-such \"x\"; no such flag");
        let flags = Flags(vec![("role".into(), "both".into())]);
        assert_eq!(load(None, &[], flags).unwrap_err(), "invalid --role \"both\"; expected api, worker or all");
    }

    /// The committed `docs/configuration.md` is the page the keys make; `HOOKLINE_WRITE_DOCS=1` writes it.
    #[test]
    fn the_configuration_page_is_made_from_the_keys() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let made = reference();
        if std::env::var("HOOKLINE_WRITE_DOCS").as_deref() == Ok("1") {
            std::fs::write(&path, &made).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == made,
            "docs/configuration.md differs from the declared keys; remake it with \
             HOOKLINE_WRITE_DOCS=1 cargo test -p hookline-server the_configuration_page_is_made_from_the_keys"
        );
        for key in KEYS {
            assert!(help().contains(&key.env()), "serve --help lists {}", key.name);
        }
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

//! `flywheel serve`'s settings, in layers: the built-in defaults, then a `flywheel.toml`
//! named by `--config` or `FLYWHEEL_CONFIG`, then the `FLYWHEEL_*` environment, then the
//! flags — for each setting the last layer that gives it wins. clap reads the flags and
//! the environment (its fields are `Option`s without defaults, so an absent flag or
//! variable leaves the file's value standing); this module reads the file and merges.
//!
//! It owns the names and defaults of the settings and the example file
//! (`flywheel.example.toml`, printed by `flywheel config example`); it does not start
//! anything. A file is read only when it is named: a `./flywheel.toml` is never picked up
//! on its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// The commented example: every setting at its default.
pub const EXAMPLE: &str = include_str!("flywheel.example.toml");

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";
pub const DEFAULT_DATABASE: &str = "sqlite://./flywheel-data/flywheel.db";
pub const DEFAULT_LOG: &str = "info,tower_http=warn";

/// `flywheel serve`'s flags, each with its `FLYWHEEL_*` environment variable.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// A flywheel.toml to read settings from (flags and FLYWHEEL_* variables override it;
    /// `flywheel config example` prints one).
    #[arg(long, env = "FLYWHEEL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7700].
    #[arg(long, env = "FLYWHEEL_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Database URL: sqlite://PATH (embedded) or postgres://… [default:
    /// sqlite://./flywheel-data/flywheel.db].
    #[arg(long, env = "FLYWHEEL_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// The admin API key of a new database (otherwise one is generated and printed once).
    #[arg(long, env = "FLYWHEEL_ADMIN_KEY", hide_env_values = true, value_name = "KEY")]
    pub admin_key: Option<String>,
    /// The log filter, in `tracing` syntax [default: info,tower_http=warn].
    #[arg(long, env = "FLYWHEEL_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Let webhook endpoints point at private, loopback and link-local addresses
    /// [default: false].
    #[arg(long, env = "FLYWHEEL_WEBHOOKS_ALLOW_PRIVATE", value_name = "BOOL")]
    pub webhooks_allow_private: Option<bool>,
    /// A PEM file of CA certificates that https webhook endpoints may also be signed by
    /// (a private CA), beside the public roots [default: none].
    #[arg(long, env = "FLYWHEEL_WEBHOOKS_CA_FILE", value_name = "PATH")]
    pub webhooks_ca_file: Option<PathBuf>,
    /// The log's format: `text` (for people) or `json` (one object per line, for a log
    /// pipeline) [default: text].
    #[arg(long, env = "FLYWHEEL_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, a listener of its own
    /// [default: off].
    #[arg(long, env = "FLYWHEEL_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Behind a reverse proxy you trust: the request header holding the client's address
    /// (such as `X-Real-IP`), which the sign-in brake counts per client instead of the
    /// socket's peer [default: none — the socket's peer].
    #[arg(long, env = "FLYWHEEL_CLIENT_IP_HEADER", value_name = "HEADER")]
    pub client_ip_header: Option<String>,
    /// Open connections the API accepts at once; more wait to be accepted [default: 768].
    #[arg(long, env = "FLYWHEEL_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers, and a kept-alive connection may
    /// idle [default: 10].
    #[arg(long, env = "FLYWHEEL_HEADER_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub header_timeout_seconds: Option<u64>,
    /// Seconds the server waits for the next piece of a request body [default: 30].
    #[arg(long, env = "FLYWHEEL_BODY_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub body_timeout_seconds: Option<u64>,
    /// Milliseconds the policy's rules may take on one item; a rule still running then
    /// fails closed (the item goes to review, `rule_budget_exceeded`) [default: 100].
    #[arg(long, env = "FLYWHEEL_RULE_BUDGET_MS", value_name = "MS")]
    pub rule_budget_ms: Option<u64>,
    /// Batches of more items than this are decided on the blocking pool instead of the
    /// async workers that answer other requests; 0: every batch [default: 8].
    #[arg(long, env = "FLYWHEEL_BLOCKING_BATCH", value_name = "ITEMS")]
    pub blocking_batch: Option<usize>,
    /// Requests a second one admin key may make, with a burst of twice that; 0 is no
    /// limit [default: 10000].
    #[arg(long, env = "FLYWHEEL_RATE_LIMIT_ADMIN", value_name = "PER_SECOND")]
    pub rate_limit_admin: Option<u32>,
    /// Requests a second one service key may make [default: 100000].
    #[arg(long, env = "FLYWHEEL_RATE_LIMIT_SERVICE", value_name = "PER_SECOND")]
    pub rate_limit_service: Option<u32>,
    /// Requests a second one reviewer key or console session may make [default: 10000].
    #[arg(long, env = "FLYWHEEL_RATE_LIMIT_REVIEWER", value_name = "PER_SECOND")]
    pub rate_limit_reviewer: Option<u32>,
    /// Seed a demo and keep feeding it while the server runs: `spam` makes a project, two
    /// reviewers with passwords (printed), gold, and a stream of SMS messages. Not a
    /// setting of the file: a flag for trying Flywheel out.
    #[arg(long, value_name = "NAME")]
    pub demo: Option<crate::live_demo::Demo>,
    /// The demo's messages: a JSON-lines file of {id, text, label} [default:
    /// $FLYWHEEL_DATA_DIR/sms_spam.jsonl, else ../shared/data/sms_spam.jsonl, else a small
    /// built-in sample].
    #[arg(long, value_name = "PATH", requires = "demo")]
    pub data: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, `spans`).
    Json,
}

/// The settings `flywheel serve` runs with, every layer applied.
#[derive(Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: String,
    pub admin_key: Option<String>,
    pub log: String,
    /// `[webhooks] allow_private`.
    pub webhooks_allow_private: bool,
    /// `[webhooks] ca_file`: extra CAs for https endpoints; `None`: the public roots only.
    pub webhooks_ca_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// Where `GET /metrics` is served; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The trusted proxy's client-address header; `None`: the socket's peer.
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// The API listener's connection cap.
    pub max_connections: usize,
    /// Seconds for a request's headers (and a kept-alive connection's idling).
    pub header_timeout_seconds: u64,
    /// Seconds of waiting for the next piece of a request body.
    pub body_timeout_seconds: u64,
    /// Milliseconds the rules may take on one item.
    pub rule_budget_ms: u64,
    /// Batches above this many items are decided on the blocking pool.
    pub blocking_batch: usize,
    /// Requests a second per key, by role (0: no limit).
    pub rate_limits: flywheel_server::app::ratelimit::RateSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            database: DEFAULT_DATABASE.into(),
            admin_key: None,
            log: DEFAULT_LOG.into(),
            webhooks_allow_private: false,
            webhooks_ca_file: None,
            log_format: LogFormat::Text,
            metrics_listen: None,
            client_ip_header: None,
            max_connections: flywheel_server::accept::DEFAULT_MAX_CONNECTIONS,
            header_timeout_seconds: flywheel_server::accept::DEFAULT_HEADER_TIMEOUT.as_secs(),
            body_timeout_seconds: flywheel_server::accept::DEFAULT_BODY_TIMEOUT.as_secs(),
            rule_budget_ms: flywheel_server::app::items::DEFAULT_RULE_BUDGET.as_millis() as u64,
            blocking_batch: flywheel_server::app::items::DEFAULT_BLOCKING_BATCH,
            rate_limits: Default::default(),
        }
    }
}

/// Never prints the admin key.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<set>"))
            .field("log", &self.log)
            .field("webhooks_allow_private", &self.webhooks_allow_private)
            .field("webhooks_ca_file", &self.webhooks_ca_file)
            .field("log_format", &self.log_format)
            .field("metrics_listen", &self.metrics_listen)
            .field("client_ip_header", &self.client_ip_header)
            .field("max_connections", &self.max_connections)
            .field("header_timeout_seconds", &self.header_timeout_seconds)
            .field("body_timeout_seconds", &self.body_timeout_seconds)
            .field("rule_budget_ms", &self.rule_budget_ms)
            .field("blocking_batch", &self.blocking_batch)
            .field("rate_limits", &self.rate_limits)
            .finish()
    }
}

/// A `flywheel.toml`: every key optional, no other key allowed.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database: Option<String>,
    admin_key: Option<String>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    /// An address, or `""` for none (what the example writes: TOML has no null).
    metrics_listen: Option<String>,
    /// A header name, or `""` for none.
    client_ip_header: Option<String>,
    max_connections: Option<usize>,
    header_timeout_seconds: Option<u64>,
    body_timeout_seconds: Option<u64>,
    rule_budget_ms: Option<u64>,
    blocking_batch: Option<usize>,
    rate_limit_admin: Option<u32>,
    rate_limit_service: Option<u32>,
    rate_limit_reviewer: Option<u32>,
    webhooks: Option<WebhooksFile>,
}

/// The `[webhooks]` table.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksFile {
    allow_private: Option<bool>,
    /// A path, or `""` for none.
    ca_file: Option<PathBuf>,
}

/// A configuration the operator must fix: the file cannot be read, has an unknown key or a
/// bad value, or a setting is invalid. The binary exits with 2, as for a usage error.
#[derive(Debug)]
pub struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl FileConfig {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read the config file {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a file's `text`; `origin` (its path) starts every error message, then the
    /// line and the key at fault.
    fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let at = |span: Option<std::ops::Range<usize>>| {
            span.map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1))
                .unwrap_or_default()
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigError(format!("{origin}{}: {}", at(e.span()), e.message())))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let key = if key == "." { String::new() } else { format!("{key}: ") };
            ConfigError(format!("{origin}{}: {key}{}", at(inner.span()), inner.message()))
        })
    }
}

impl Settings {
    /// The settings from the flags and environment in `args`, then the file they name (if
    /// any), then the defaults.
    pub fn resolve(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => Some((FileConfig::read(path)?, path.display().to_string())),
            None => None,
        };
        Self::layer(args, file)
    }

    /// `args` over `file` (and the file's name, for errors) over the defaults.
    fn layer(args: ServeArgs, file: Option<(FileConfig, String)>) -> Result<Self, ConfigError> {
        let (file, origin) = file.unwrap_or_default();
        let log_from = if args.log.is_some() {
            "--log or FLYWHEEL_LOG".to_string()
        } else {
            origin.clone()
        };
        let default = Settings::default();
        let settings = Settings {
            listen: args.listen.or(file.listen).unwrap_or(default.listen),
            database: args.database.or(file.database).unwrap_or(default.database),
            admin_key: args.admin_key.or(file.admin_key),
            log: args.log.or(file.log).unwrap_or(default.log),
            webhooks_allow_private: args
                .webhooks_allow_private
                .or(file.webhooks.as_ref().and_then(|w| w.allow_private))
                .unwrap_or(default.webhooks_allow_private),
            webhooks_ca_file: args
                .webhooks_ca_file
                .or(file.webhooks.and_then(|w| w.ca_file))
                .filter(|p| !p.as_os_str().is_empty()),
            log_format: args.log_format.or(file.log_format).unwrap_or(default.log_format),
            metrics_listen: match (args.metrics_listen, file.metrics_listen) {
                (Some(a), _) => Some(a),
                (None, Some(s)) if s.is_empty() => None,
                (None, Some(s)) => Some(s.parse().map_err(|e| {
                    ConfigError(format!(
                        "{origin}: metrics_listen: '{s}' is not an address (host:port) or \"\" for off: {e}"
                    ))
                })?),
                (None, None) => default.metrics_listen,
            },
            client_ip_header: match args.client_ip_header.or(file.client_ip_header) {
                Some(h) if h.is_empty() => None,
                Some(h) => Some(axum::http::HeaderName::try_from(h.as_str()).map_err(|_| {
                    ConfigError(format!(
                        "client_ip_header (--client-ip-header, FLYWHEEL_CLIENT_IP_HEADER or {origin}): '{h}' is not a header name"
                    ))
                })?),
                None => default.client_ip_header,
            },
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(default.max_connections),
            header_timeout_seconds: args
                .header_timeout_seconds
                .or(file.header_timeout_seconds)
                .unwrap_or(default.header_timeout_seconds),
            body_timeout_seconds: args
                .body_timeout_seconds
                .or(file.body_timeout_seconds)
                .unwrap_or(default.body_timeout_seconds),
            rule_budget_ms: args.rule_budget_ms.or(file.rule_budget_ms).unwrap_or(default.rule_budget_ms),
            blocking_batch: args.blocking_batch.or(file.blocking_batch).unwrap_or(default.blocking_batch),
            rate_limits: flywheel_server::app::ratelimit::RateSettings {
                admin: args
                    .rate_limit_admin
                    .or(file.rate_limit_admin)
                    .unwrap_or(default.rate_limits.admin),
                service: args
                    .rate_limit_service
                    .or(file.rate_limit_service)
                    .unwrap_or(default.rate_limits.service),
                reviewer: args
                    .rate_limit_reviewer
                    .or(file.rate_limit_reviewer)
                    .unwrap_or(default.rate_limits.reviewer),
            },
        };
        for (name, value) in [
            ("max_connections", settings.max_connections as u64),
            ("header_timeout_seconds", settings.header_timeout_seconds),
            ("body_timeout_seconds", settings.body_timeout_seconds),
            ("rule_budget_ms", settings.rule_budget_ms),
        ] {
            if value == 0 {
                return Err(ConfigError(format!(
                    "{name} (--{}, FLYWHEEL_{} or {origin}): must be at least 1",
                    name.replace('_', "-"),
                    name.to_uppercase()
                )));
            }
        }
        EnvFilter::try_new(&settings.log)
            .map_err(|e| ConfigError(format!("{log_from}: log: '{}' is not a log filter: {e}", settings.log)))?;
        Ok(settings)
    }

    /// The API listener's limits.
    pub fn limits(&self) -> flywheel_server::accept::ConnLimits {
        flywheel_server::accept::ConnLimits {
            max_connections: self.max_connections,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_seconds),
            body_timeout: std::time::Duration::from_secs(self.body_timeout_seconds),
        }
    }

    /// The tracing filter of `log` (checked by `resolve`).
    pub fn log_filter(&self) -> EnvFilter {
        EnvFilter::new(&self.log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_flags() -> ServeArgs {
        ServeArgs {
            config: None,
            listen: None,
            database: None,
            admin_key: None,
            log: None,
            webhooks_allow_private: None,
            webhooks_ca_file: None,
            log_format: None,
            metrics_listen: None,
            client_ip_header: None,
            max_connections: None,
            header_timeout_seconds: None,
            body_timeout_seconds: None,
            rule_budget_ms: None,
            blocking_batch: None,
            rate_limit_admin: None,
            rate_limit_service: None,
            rate_limit_reviewer: None,
            demo: None,
            data: None,
        }
    }

    fn from_file(text: &str) -> Result<Settings, ConfigError> {
        let file = FileConfig::parse(text, "flywheel.toml")?;
        Settings::layer(no_flags(), Some((file, "flywheel.toml".into())))
    }

    #[test]
    fn the_client_ip_header_is_a_header_name_or_none() {
        let s = from_file("client_ip_header = \"X-Real-IP\"\n").unwrap();
        assert_eq!(s.client_ip_header.unwrap().as_str(), "x-real-ip");
        assert_eq!(from_file("client_ip_header = \"\"\n").unwrap().client_ip_header, None);
        let e = from_file("client_ip_header = \"not a header\"\n").unwrap_err();
        assert!(e.to_string().contains("client_ip_header"), "{e}");
    }

    #[test]
    fn rate_limits_and_the_rule_budget_layer_like_the_rest() {
        use flywheel_server::app::ratelimit::DEFAULT_ADMIN_PER_SECOND;
        let s = from_file("rate_limit_service = 5\nrule_budget_ms = 250\n").unwrap();
        assert_eq!(
            (s.rate_limits.service, s.rate_limits.admin, s.rule_budget_ms),
            (5, DEFAULT_ADMIN_PER_SECOND, 250)
        );
        // A flag beats the file; 0 turns a role's limit off.
        let flags = ServeArgs {
            rate_limit_service: Some(0),
            ..no_flags()
        };
        let file = FileConfig::parse("rate_limit_service = 5\n", "f").unwrap();
        let s = Settings::layer(flags, Some((file, "f".into()))).unwrap();
        assert_eq!(s.rate_limits.service, 0);
        // A rule budget of nothing would send every item to review: refused.
        let e = from_file("rule_budget_ms = 0\n").unwrap_err();
        assert!(e.to_string().contains("rule_budget_ms"), "{e}");
    }

    #[test]
    fn the_example_is_every_default() {
        let file = FileConfig::parse(EXAMPLE, "example").unwrap();
        // Each setting is written out (the admin key commented), not left to the default.
        assert!(file.listen.is_some() && file.database.is_some() && file.log.is_some());
        assert!(
            file.webhooks
                .as_ref()
                .is_some_and(|w| w.allow_private.is_some() && w.ca_file.is_some())
        );
        assert!(file.log_format.is_some() && file.metrics_listen.is_some() && file.client_ip_header.is_some());
        assert!(
            file.max_connections.is_some()
                && file.header_timeout_seconds.is_some()
                && file.body_timeout_seconds.is_some()
                && file.rule_budget_ms.is_some()
                && file.blocking_batch.is_some()
        );
        assert!(
            file.rate_limit_admin.is_some() && file.rate_limit_service.is_some() && file.rate_limit_reviewer.is_some()
        );
        assert!(file.admin_key.is_none(), "the example sets no admin key");
        assert_eq!(
            Settings::layer(no_flags(), Some((file, "example".into()))).unwrap(),
            Settings::default()
        );
        let uncommented = EXAMPLE.replace("# admin_key = ", "admin_key = ");
        assert_ne!(uncommented, EXAMPLE);
        let file = FileConfig::parse(&uncommented, "example").unwrap();
        assert_eq!(file.admin_key.as_deref(), Some("at-least-16-characters"));
    }

    #[test]
    fn a_flag_beats_the_file_and_the_file_beats_the_default() {
        let file = "listen = \"127.0.0.1:9001\"\nlog = \"debug\"\nadmin_key = \"file-admin-key-0123456789\"\n";
        let s = from_file(file).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9001".parse().unwrap());
        assert_eq!((s.log.as_str(), s.database.as_str()), ("debug", DEFAULT_DATABASE));
        assert_eq!(s.admin_key.as_deref(), Some("file-admin-key-0123456789"));
        assert_eq!((s.log_format, s.metrics_listen), (LogFormat::Text, None));
        let s = from_file("log_format = \"json\"\nmetrics_listen = \"127.0.0.1:9100\"\n").unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        let flags = ServeArgs {
            metrics_listen: Some("127.0.0.1:9200".parse().unwrap()),
            ..no_flags()
        };
        let metrics_file = FileConfig::parse("metrics_listen = \"127.0.0.1:9100\"", "f").unwrap();
        let s = Settings::layer(flags, Some((metrics_file, "f".into()))).unwrap();
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9200".parse().unwrap()));
        let flags = ServeArgs {
            listen: Some("127.0.0.1:9002".parse().unwrap()),
            database: Some("sqlite:///tmp/x.db".into()),
            ..no_flags()
        };
        let s = Settings::layer(flags, Some((FileConfig::parse(file, "f").unwrap(), "f".into()))).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9002".parse().unwrap());
        assert_eq!((s.log.as_str(), s.database.as_str()), ("debug", "sqlite:///tmp/x.db"));
        assert_eq!(from_file("").unwrap(), Settings::default());
        let hooks = "[webhooks]\nallow_private = true\n";
        assert!(from_file(hooks).unwrap().webhooks_allow_private);
        let flags = ServeArgs {
            webhooks_allow_private: Some(false),
            ..no_flags()
        };
        let s = Settings::layer(flags, Some((FileConfig::parse(hooks, "f").unwrap(), "f".into()))).unwrap();
        assert!(!s.webhooks_allow_private);
        let ca = "[webhooks]\nca_file = \"/etc/flywheel/ca.pem\"\n";
        assert_eq!(
            from_file(ca).unwrap().webhooks_ca_file,
            Some("/etc/flywheel/ca.pem".into())
        );
        let flags = ServeArgs {
            webhooks_ca_file: Some("/run/ca.pem".into()),
            ..no_flags()
        };
        let s = Settings::layer(flags, Some((FileConfig::parse(ca, "f").unwrap(), "f".into()))).unwrap();
        assert_eq!(s.webhooks_ca_file, Some("/run/ca.pem".into()));
        assert_eq!(
            from_file("[webhooks]\nca_file = \"\"\n").unwrap().webhooks_ca_file,
            None
        );
        assert_eq!(Settings::layer(no_flags(), None).unwrap(), Settings::default());
    }

    #[test]
    fn mistakes_name_the_file_and_the_key() {
        let cases: &[(&str, &[&str])] = &[
            (
                "log = \"info\"\nlissen = \"127.0.0.1:1\"",
                &["flywheel.toml (line 2): lissen: ", "unknown field"],
            ),
            (
                "log = \"info\"\nlisten = \"nowhere\"",
                &["flywheel.toml", "line 2", "listen: "],
            ),
            ("database = 5", &["flywheel.toml", "database: "]),
            (
                "[webhooks]\nallow_privat = true",
                &["flywheel.toml (line 2): webhooks.allow_privat: ", "unknown field"],
            ),
            (
                "log = \"info,x=notalevel\"",
                &["flywheel.toml: log: ", "not a log filter"],
            ),
            ("log = \"info\"\nlisten = ", &["flywheel.toml (line 2): "]),
            ("log_format = \"xml\"", &["flywheel.toml", "log_format: "]),
            (
                "metrics_listen = \"nowhere\"",
                &["flywheel.toml: metrics_listen: ", "not an address"],
            ),
        ];
        for (text, needles) in cases {
            let e = from_file(text).unwrap_err().to_string();
            for n in *needles {
                assert!(e.contains(n), "{text:?}: {e}");
            }
        }
    }

    #[test]
    fn connection_limits_are_positive() {
        let s = from_file("max_connections = 10\nheader_timeout_seconds = 2\nbody_timeout_seconds = 3\n").unwrap();
        let limits = s.limits();
        assert_eq!(limits.max_connections, 10);
        assert_eq!(limits.header_timeout, std::time::Duration::from_secs(2));
        assert_eq!(limits.body_timeout, std::time::Duration::from_secs(3));
        let e = from_file("header_timeout_seconds = 0\n").unwrap_err();
        assert!(e.to_string().contains("header_timeout_seconds"), "{e}");
    }

    #[test]
    fn the_debug_form_hides_the_admin_key() {
        let s = Settings {
            admin_key: Some("secret-admin-key-0123".into()),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("secret"));
    }
}

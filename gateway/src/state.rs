//! Shared state of one gateway: configuration, the backend, tokens, metrics
//! and the shutdown signal. Cheap to clone (one `Arc`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::jwt::{ClaimNames, JwtVerifier, KeySource};
use crate::auth::subscriber::SubscriberAuth;
use crate::auth::{configured_digest, SecretDigest, ServiceTokens};
use std::time::Duration;

use crate::backend::idempotency::MemoLimits;
use crate::backend::memory::{MemoryBackend, MemoryLimits};
use crate::backend::redis::{RedisConfig, RedisStore};
use crate::backend::routed::RoutedBackend;
use crate::backend::Backend;
use crate::config::Config;
use crate::control::registry::Registry;
use crate::control::relay::Relay;
use crate::limits::{PublishLimiter, StreamLimits};
use crate::metrics::Metrics;
use crate::stats::RateWindow;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    node: String,
    config: Config,
    backend: Arc<dyn Backend>,
    tokens: ServiceTokens,
    admin: Option<SecretDigest>,
    subscribers: SubscriberAuth,
    stream_limits: Arc<StreamLimits>,
    publish_limiter: PublishLimiter,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    started: Instant,
    next_connection_id: AtomicU64,
    /// Prefix of this node's connection ids: names the node when several
    /// share a store (Redis), so a control call can be routed to it.
    connection_prefix: String,
    streams: Registry,
    relay: Option<Arc<Relay>>,
    rates: Mutex<RateWindow>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.0.backend.name())
            .field("tokens", &self.0.tokens)
            .finish_non_exhaustive()
    }
}

/// A configuration the gateway refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "--send-queue-bytes ({queue}) must be larger than --max-log-bytes ({log}) plus framing"
    )]
    QueueSmallerThanLog { queue: usize, log: usize },
    #[error("invalid --cors-origin {0:?}: expected `*` or an origin like https://app.example.com")]
    CorsOrigin(String),
    #[error("subscribers would be unauthenticated: configure a JWT key (--jwt-secret, --jwt-public-key-file or --jwks-file) or pass --allow-anonymous explicitly")]
    InsecureSubscribers,
    #[error("subscriber JWT configuration: {0}")]
    Jwt(String),
    #[error("cannot read {path}: {error}")]
    File { path: String, error: String },
    #[error("{flag}: {message}")]
    Token { flag: &'static str, message: String },
    #[error("--redis-url: {0}")]
    Redis(String),
    #[error("--idle-timeout-secs ({idle}) must exceed --heartbeat-secs ({heartbeat}), or idle streams would be cut")]
    IdleBelowHeartbeat { idle: u64, heartbeat: u64 },
    #[error("--static-dir: {0}")]
    StaticDir(String),
    #[error("--publish-burst ({burst}) must be at least --max-batch ({batch}), or a full batch could never pass")]
    BurstSmallerThanBatch { burst: u32, batch: usize },
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        error: e.to_string(),
    })
}

/// Builds the subscriber JWT verifier, if a key is configured.
fn jwt_verifier(config: &Config) -> Result<Option<JwtVerifier>, ConfigError> {
    let source = if let Some(secret) = &config.jwt_secret {
        KeySource::Hs256Secret(secret.as_bytes().to_vec())
    } else if let Some(path) = &config.jwt_secret_file {
        let mut secret = read_file(path)?;
        // Files usually end with a newline that is not part of the secret.
        while secret.last().is_some_and(|b| b.is_ascii_whitespace()) {
            secret.pop();
        }
        KeySource::Hs256Secret(secret)
    } else if let Some(path) = &config.jwt_public_key_file {
        KeySource::PublicKeyPem(read_file(path)?)
    } else if let Some(path) = &config.jwks_file {
        KeySource::Jwks(String::from_utf8_lossy(&read_file(path)?).into_owned())
    } else {
        return Ok(None);
    };
    let claims = ClaimNames {
        channels: config.jwt_channels_claim.clone(),
        workspaces: config.jwt_workspaces_claim.clone(),
        user: config.jwt_user_claim.clone(),
    };
    JwtVerifier::new(
        &source,
        config.jwt_issuers.clone(),
        config.jwt_audiences.clone(),
        config.jwt_leeway_secs,
        claims,
    )
    .map(Some)
    .map_err(ConfigError::Jwt)
}

impl AppState {
    /// State with the backend the configuration selects: Redis with
    /// `--redis-url`, else the embedded in-memory backend.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let metrics = Arc::new(Metrics::default());
        if let Some(url) = &config.redis_url {
            let redis = RedisConfig {
                url: url.clone(),
                key_prefix: config.redis_key_prefix.clone(),
                history_per_channel: config.history_size as usize,
                history_ttl: Duration::from_secs(config.redis_history_ttl_secs),
                timeout: Duration::from_millis(config.redis_timeout_ms),
                idempotency_ttl: config.idempotency_ttl(),
            };
            let check_every = Duration::from_millis(config.redis_check_ms);
            let store = RedisStore::new(redis, check_every, metrics.clone())
                .map_err(|e| ConfigError::Redis(e.to_string()))?;
            let backend = Arc::new(RoutedBackend::from_store(store, metrics.clone()));
            return Self::with_backend(config, backend, metrics);
        }
        let limits = MemoryLimits {
            history_per_channel: config.history_size as usize,
            max_history_bytes: config.history_max_bytes,
            max_channels: config.max_channels,
            channel_idle: config.channel_idle(),
            idempotency: MemoLimits {
                ttl: config.idempotency_ttl(),
                max_keys: usize::try_from(config.idempotency_max_keys).unwrap_or(usize::MAX),
            },
        };
        let backend = Arc::new(MemoryBackend::new(limits, metrics.clone()));
        Self::with_backend(config, backend, metrics)
    }

    /// State with any backend.
    pub fn with_backend(
        config: Config,
        backend: Arc<dyn Backend>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ConfigError> {
        // A frame is the log plus at most a few hundred bytes of envelope.
        if config.send_queue_bytes < config.max_log_bytes + 1024 {
            return Err(ConfigError::QueueSmallerThanLog {
                queue: config.send_queue_bytes,
                log: config.max_log_bytes,
            });
        }
        crate::cors::layer(&config.cors_origins)?;
        let verifier = jwt_verifier(&config)?;
        if verifier.is_none() && !config.allow_anonymous {
            return Err(ConfigError::InsecureSubscribers);
        }
        if config.publish_rate > 0 && (config.publish_burst as usize) < config.max_batch {
            return Err(ConfigError::BurstSmallerThanBatch {
                burst: config.publish_burst,
                batch: config.max_batch,
            });
        }
        if config.idle_timeout_secs <= config.heartbeat_secs {
            return Err(ConfigError::IdleBelowHeartbeat {
                idle: config.idle_timeout_secs,
                heartbeat: config.heartbeat_secs,
            });
        }
        if let Some(dir) = &config.static_dir {
            crate::static_files::root(dir).map_err(ConfigError::StaticDir)?;
        }
        let mut service_tokens = Vec::new();
        for (service, token) in config.all_service_tokens() {
            let digest = configured_digest(token).map_err(|message| ConfigError::Token {
                flag: "--service-token",
                message,
            })?;
            service_tokens.push((service.to_owned(), digest));
        }
        let admin = config
            .admin_token
            .as_deref()
            .map(configured_digest)
            .transpose()
            .map_err(|message| ConfigError::Token {
                flag: "--admin-token",
                message,
            })?;
        let subscribers = SubscriberAuth {
            verifier,
            allow_anonymous: config.allow_anonymous,
            cookie: config.auth_cookie.clone(),
            allow_query_token: config.allow_query_token,
        };
        let (connection_prefix, relay) = match &config.redis_url {
            Some(url) => {
                // Random per process: short, URL-safe, and never reused by
                // a restarted node whose old streams are gone.
                let tag = format!("{:08x}", rand::random::<u32>());
                let relay = Relay::new(
                    url,
                    &config.redis_key_prefix,
                    &tag,
                    Duration::from_millis(config.redis_timeout_ms),
                )
                .map_err(ConfigError::Redis)?;
                (format!("{tag}."), Some(Arc::new(relay)))
            }
            None => ("c".to_owned(), None),
        };
        Ok(AppState(Arc::new(Inner {
            connection_prefix,
            streams: Registry::default(),
            relay,
            node: config.node_name(),
            tokens: ServiceTokens::new(service_tokens),
            admin,
            subscribers,
            stream_limits: StreamLimits::new(
                config.max_streams_per_user,
                config.max_streams_per_ip,
            ),
            publish_limiter: PublishLimiter::new(config.publish_rate, config.publish_burst),
            config,
            backend,
            metrics,
            shutdown: CancellationToken::new(),
            started: Instant::now(),
            next_connection_id: AtomicU64::new(1),
            rates: Mutex::new(RateWindow::default()),
        })))
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.0.node
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.0.backend
    }

    pub fn tokens(&self) -> &ServiceTokens {
        &self.0.tokens
    }

    pub fn admin_digest(&self) -> Option<&SecretDigest> {
        self.0.admin.as_ref()
    }

    pub fn subscribers(&self) -> &SubscriberAuth {
        &self.0.subscribers
    }

    pub fn stream_limits(&self) -> &Arc<StreamLimits> {
        &self.0.stream_limits
    }

    pub fn publish_limiter(&self) -> &PublishLimiter {
        &self.0.publish_limiter
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    pub fn started(&self) -> Instant {
        self.0.started
    }

    /// A new stream's id: its number, and the connection id that names it
    /// (`c{n}`, or `{node}.{n}` when several nodes share a store).
    pub fn next_connection_id(&self) -> (u64, String) {
        let n = self.0.next_connection_id.fetch_add(1, Ordering::Relaxed);
        (n, format!("{}{n}", self.0.connection_prefix))
    }

    /// The prefix of this node's connection ids.
    pub fn connection_prefix(&self) -> &str {
        &self.0.connection_prefix
    }

    /// The relay of channel changes between nodes (Redis backend only).
    pub fn relay(&self) -> Option<&Arc<Relay>> {
        self.0.relay.as_ref()
    }

    /// This node's open streams.
    pub fn streams(&self) -> &Registry {
        &self.0.streams
    }

    pub fn rates(&self) -> std::sync::MutexGuard<'_, RateWindow> {
        self.0.rates.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_redis_url_selects_the_redis_backend_and_a_bad_one_is_refused() {
        let mut config = Config::for_tests();
        config.redis_url = Some("redis://127.0.0.1:1/".into());
        let state = AppState::new(config).expect("a lazy connection starts while Redis is down");
        assert_eq!(state.backend().name(), "redis");
        assert!(!state.backend().ready(), "not ready before Redis answered");
        let mut config = Config::for_tests();
        config.redis_url = Some("http://127.0.0.1:6379/".into());
        let error = AppState::new(config).expect_err("not a Redis URL");
        assert!(error.to_string().starts_with("--redis-url"), "{error}");
        assert_eq!(
            AppState::new(Config::for_tests()).unwrap().backend().name(),
            "memory"
        );
    }
}

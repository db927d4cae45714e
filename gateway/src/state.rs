//! Shared state of one gateway: configuration, the backend, tokens, metrics
//! and the shutdown signal. Cheap to clone (one `Arc`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::ServiceTokens;
use crate::backend::memory::{MemoryBackend, MemoryLimits};
use crate::backend::Backend;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::stats::RateWindow;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    backend: Arc<dyn Backend>,
    tokens: ServiceTokens,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    started: Instant,
    next_connection_id: AtomicU64,
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
}

impl AppState {
    /// State with the embedded in-memory backend.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let metrics = Arc::new(Metrics::default());
        let limits = MemoryLimits {
            history_per_channel: config.history_size as usize,
            max_history_bytes: config.history_max_bytes,
            max_channels: config.max_channels,
            channel_idle: config.channel_idle(),
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
        Ok(AppState(Arc::new(Inner {
            tokens: ServiceTokens::new(config.all_service_tokens()),
            config,
            backend,
            metrics,
            shutdown: CancellationToken::new(),
            started: Instant::now(),
            next_connection_id: AtomicU64::new(1),
            rates: Mutex::new(RateWindow::default()),
        })))
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

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.0.shutdown
    }

    pub fn started(&self) -> Instant {
        self.0.started
    }

    pub fn next_connection_id(&self) -> u64 {
        self.0.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn rates(&self) -> std::sync::MutexGuard<'_, RateWindow> {
        self.0.rates.lock().unwrap_or_else(|p| p.into_inner())
    }
}

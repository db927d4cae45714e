//! Gateway configuration: command-line flags, each also readable from the
//! environment, with the defaults and bounds documented in the README.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Command-line and environment configuration of `logs-sse-gateway`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "logs-sse-gateway",
    version,
    about = "Real-time log streaming over Server-Sent Events"
)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "LOGS_SSE_LISTEN", default_value = "127.0.0.1:3002")]
    pub listen: SocketAddr,

    /// Service publish token as SERVICE=TOKEN, or SERVICE+SERVICE=TOKEN for a
    /// token granted several services (e.g. `faas+function=...`); repeat for
    /// more tokens, also several of one service (rotation).
    #[arg(long = "service-token", value_name = "SERVICES=TOKEN", value_parser = parse_service_token)]
    pub service_tokens: Vec<ServiceToken>,

    /// Service tokens from the environment, as `etl=t1,faas+function=t2`.
    #[arg(long = "service-tokens-env", env = "LOGS_SSE_SERVICE_TOKENS", hide = true, value_delimiter = ',', value_parser = parse_service_token)]
    pub service_tokens_env: Vec<ServiceToken>,

    /// Let browsers subscribe without a token (every channel). Without it,
    /// a subscriber JWT key must be configured.
    #[arg(long, env = "LOGS_SSE_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,

    /// Bearer token for `/admin/*` and `/metrics` (or `sha256:<hex>` of it);
    /// without it the admin endpoints answer 403.
    #[arg(long, env = "LOGS_SSE_ADMIN_TOKEN")]
    pub admin_token: Option<String>,

    /// Serve `/metrics` without the admin token.
    #[arg(long, env = "LOGS_SSE_PUBLIC_METRICS")]
    pub public_metrics: bool,

    /// HS256 secret for subscriber JWTs (at least 32 bytes).
    #[arg(long, env = "LOGS_SSE_JWT_SECRET", conflicts_with_all = ["jwt_secret_file", "jwt_public_key_file", "jwks_file"])]
    pub jwt_secret: Option<String>,

    /// File holding the HS256 secret for subscriber JWTs.
    #[arg(long, env = "LOGS_SSE_JWT_SECRET_FILE", conflicts_with_all = ["jwt_public_key_file", "jwks_file"])]
    pub jwt_secret_file: Option<std::path::PathBuf>,

    /// PEM public key for subscriber JWTs: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA).
    #[arg(
        long,
        env = "LOGS_SSE_JWT_PUBLIC_KEY_FILE",
        conflicts_with = "jwks_file"
    )]
    pub jwt_public_key_file: Option<std::path::PathBuf>,

    /// JWKS file with the public keys for subscriber JWTs (chosen by `kid`).
    #[arg(long, env = "LOGS_SSE_JWKS_FILE")]
    pub jwks_file: Option<std::path::PathBuf>,

    /// Accepted `iss` of subscriber JWTs (repeatable); unchecked if none.
    #[arg(
        long = "jwt-issuer",
        env = "LOGS_SSE_JWT_ISSUERS",
        value_delimiter = ','
    )]
    pub jwt_issuers: Vec<String>,

    /// Accepted `aud` of subscriber JWTs (repeatable); unchecked if none.
    #[arg(
        long = "jwt-audience",
        env = "LOGS_SSE_JWT_AUDIENCES",
        value_delimiter = ','
    )]
    pub jwt_audiences: Vec<String>,

    /// Clock skew allowed when checking `exp` and `nbf`, in seconds.
    #[arg(long, env = "LOGS_SSE_JWT_LEEWAY_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub jwt_leeway_secs: u64,

    /// JWT claim listing the channel patterns a subscriber may see.
    #[arg(
        long,
        env = "LOGS_SSE_JWT_CHANNELS_CLAIM",
        default_value = "logs_channels"
    )]
    pub jwt_channels_claim: String,

    /// JWT claim listing workspaces whose every channel a subscriber may see.
    #[arg(
        long,
        env = "LOGS_SSE_JWT_WORKSPACES_CLAIM",
        default_value = "workspaces"
    )]
    pub jwt_workspaces_claim: String,

    /// JWT claim naming the user (for per-user limits).
    #[arg(long, env = "LOGS_SSE_JWT_USER_CLAIM", default_value = "sub")]
    pub jwt_user_claim: String,

    /// Cookie that may carry the subscriber JWT (HttpOnly, sent by
    /// `EventSource` with `withCredentials`).
    #[arg(long, env = "LOGS_SSE_AUTH_COOKIE", default_value = "logs_sse_token")]
    pub auth_cookie: String,

    /// Accept the subscriber JWT in the `access_token` query parameter.
    /// Weaker: URLs end up in access logs and browser history.
    #[arg(long, env = "LOGS_SSE_ALLOW_QUERY_TOKEN")]
    pub allow_query_token: bool,

    /// Most open streams per user (JWT user claim).
    #[arg(long, env = "LOGS_SSE_MAX_STREAMS_PER_USER", default_value_t = 16)]
    pub max_streams_per_user: usize,

    /// Most open streams per client IP address.
    #[arg(long, env = "LOGS_SSE_MAX_STREAMS_PER_IP", default_value_t = 256)]
    pub max_streams_per_ip: usize,

    /// Take the client IP from the last `X-Forwarded-For` entry (only behind
    /// a proxy that sets it).
    #[arg(long, env = "LOGS_SSE_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Logs per second each service may publish (token bucket; 0 = unlimited).
    #[arg(long, env = "LOGS_SSE_PUBLISH_RATE", default_value_t = 5000)]
    pub publish_rate: u32,

    /// Logs a service may publish at once above its rate (bucket size).
    #[arg(long, env = "LOGS_SSE_PUBLISH_BURST", default_value_t = 20_000)]
    pub publish_burst: u32,

    /// Allowed browser origin for CORS (repeatable); `*` allows any origin
    /// without credentials. Exact origins are allowed with credentials.
    #[arg(
        long = "cors-origin",
        env = "LOGS_SSE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Serve the files of this folder (a built web app) at `/`, with
    /// `index.html` for unknown paths so client-side routes load.
    #[arg(long, env = "LOGS_SSE_STATIC_DIR")]
    pub static_dir: Option<std::path::PathBuf>,

    /// Logs kept per channel for resume.
    #[arg(long, env = "LOGS_SSE_HISTORY_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub history_size: u32,

    /// Upper bound of all history and queued frames together, in bytes.
    #[arg(long, env = "LOGS_SSE_HISTORY_MAX_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub history_max_bytes: usize,

    /// Most channels (resource and service-level) tracked at once.
    #[arg(long, env = "LOGS_SSE_MAX_CHANNELS", default_value_t = 100_000)]
    pub max_channels: usize,

    /// A channel nobody subscribes to is forgotten after this many seconds
    /// without a publish.
    #[arg(long, env = "LOGS_SSE_CHANNEL_IDLE_SECS", default_value_t = 3600)]
    pub channel_idle_secs: u64,

    /// Seconds a publish's `Idempotency-Key` is remembered: a retry with the
    /// same key and body within it stores nothing again.
    #[arg(long, env = "LOGS_SSE_IDEMPOTENCY_TTL_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idempotency_ttl_secs: u64,

    /// Most `Idempotency-Key`s the in-memory backend remembers (one per
    /// family of a keyed request; the oldest are forgotten first). The Redis
    /// backend keeps them in Redis, bounded by --idempotency-ttl-secs.
    #[arg(long, env = "LOGS_SSE_IDEMPOTENCY_MAX_KEYS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub idempotency_max_keys: u64,

    /// Most channels in one stream.
    #[arg(long, env = "LOGS_SSE_MAX_CHANNELS_PER_STREAM", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_channels_per_stream: u32,

    /// Events queued for one stream before it counts as a slow consumer.
    #[arg(long, env = "LOGS_SSE_SEND_QUEUE_EVENTS", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub send_queue_events: u32,

    /// Bytes queued for one stream before it counts as a slow consumer.
    #[arg(long, env = "LOGS_SSE_SEND_QUEUE_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub send_queue_bytes: usize,

    /// Seconds between keep-alive comments on an idle stream.
    #[arg(long, env = "LOGS_SSE_HEARTBEAT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_secs: u64,

    /// Reconnect delay suggested to clients (`retry:`), in milliseconds.
    #[arg(long, env = "LOGS_SSE_RETRY_MS", default_value_t = 2000)]
    pub retry_ms: u64,

    /// Largest publish request body, in bytes.
    #[arg(long, env = "LOGS_SSE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest `logData` of one log, in bytes.
    #[arg(long, env = "LOGS_SSE_MAX_LOG_BYTES", default_value_t = 64 * 1024)]
    pub max_log_bytes: usize,

    /// Most logs in one publish request.
    #[arg(long, env = "LOGS_SSE_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,

    /// Seconds a connection has to send a complete request head, counted
    /// from when it starts waiting for one: a new connection, or a kept-alive
    /// one after its previous response (so it also ends idle keep-alives).
    #[arg(long, env = "LOGS_SSE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,

    /// Seconds without a byte read or written after which any connection is
    /// closed. Streams send a heartbeat, so this must exceed --heartbeat-secs.
    #[arg(long, env = "LOGS_SSE_IDLE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_secs: u64,

    /// Seconds a write may wait for the client to accept bytes; past it the
    /// connection is dropped (a stream's client resumes from its cursors).
    #[arg(long, env = "LOGS_SSE_WRITE_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_timeout_secs: u64,

    /// Seconds a publish request body may take in total.
    #[arg(long, env = "LOGS_SSE_BODY_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,

    /// Seconds a publish request body may pause between two chunks.
    #[arg(long, env = "LOGS_SSE_BODY_IDLE_TIMEOUT_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_idle_timeout_secs: u64,

    /// Most open connections; beyond it a lane of a few more answers only
    /// `/health` (others get 503), its oldest dropped for the newest.
    /// Default: the soft open-file limit minus 256.
    #[arg(long, env = "LOGS_SSE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_connections: Option<u64>,

    /// Longest request target (path and query), in bytes; longer ones get
    /// `414 uri_too_long`. The target also counts toward --max-header-bytes.
    #[arg(long, env = "LOGS_SSE_MAX_URI_BYTES", default_value_t = 8 * 1024, value_parser = clap::value_parser!(u64).range(256..=1024 * 1024))]
    pub max_uri_bytes: u64,

    /// Largest request head (request line and headers), in bytes; larger
    /// ones get `431 headers_too_large`.
    #[arg(long, env = "LOGS_SSE_MAX_HEADER_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024))]
    pub max_header_bytes: u64,

    /// Kernel send buffer of each accepted socket, in bytes (SO_SNDBUF);
    /// unset leaves the kernel's autotuning. Bounds what a client that stops
    /// reading holds in the kernel before the write timeout cuts it.
    #[arg(long, env = "LOGS_SSE_SOCKET_SEND_BUFFER_BYTES", value_parser = clap::value_parser!(u64).range(4096..=64 * 1024 * 1024))]
    pub socket_send_buffer_bytes: Option<u64>,

    /// Log output format.
    #[arg(long, env = "LOGS_SSE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Share channels and history with other gateway nodes through this
    /// Redis (`redis://[user:password@]host:port[/db]`). Without it the
    /// gateway keeps history in memory.
    #[arg(long, env = "LOGS_SSE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and pub/sub channel of this gateway.
    #[arg(long, env = "LOGS_SSE_REDIS_KEY_PREFIX", default_value = "logs-sse")]
    pub redis_key_prefix: String,

    /// A family's history in Redis expires after this many seconds without
    /// a publish (`--history-size` bounds its length).
    #[arg(long, env = "LOGS_SSE_REDIS_HISTORY_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub redis_history_ttl_secs: u64,

    /// Longest a Redis command or connection attempt may take, in
    /// milliseconds; past it a publish or a stream open answers 503.
    #[arg(long, env = "LOGS_SSE_REDIS_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub redis_timeout_ms: u64,

    /// Period of the check that finds logs the pub/sub feed dropped, in
    /// milliseconds.
    #[arg(long, env = "LOGS_SSE_REDIS_CHECK_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub redis_check_ms: u64,

    /// Name of this node in `/admin/logs/stats` and `/health` (default: the
    /// host name and process id).
    #[arg(long, env = "LOGS_SSE_NODE_ID")]
    pub node_id: Option<String>,
}

/// How the gateway writes its own logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// One configured publish token and the services it may publish for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceToken {
    pub services: Vec<String>,
    pub token: String,
}

impl ServiceToken {
    pub fn new<S: Into<String>>(
        services: impl IntoIterator<Item = S>,
        token: impl Into<String>,
    ) -> Self {
        ServiceToken {
            services: services.into_iter().map(Into::into).collect(),
            token: token.into(),
        }
    }
}

/// Most services one token may be granted.
const MAX_SERVICES_PER_TOKEN: usize = 32;

fn parse_service_token(text: &str) -> Result<ServiceToken, String> {
    let (services, token) = text.split_once('=').ok_or_else(|| {
        format!(
            "expected SERVICE=TOKEN or SERVICE+SERVICE=TOKEN, got {:?}",
            text.split('=').next().unwrap_or_default()
        )
    })?;
    let mut names: Vec<String> = Vec::new();
    for service in services.split('+') {
        logs_sse_protocol::channel::Segment::parse(
            logs_sse_protocol::channel::SegmentKind::Service,
            service,
        )
        .map_err(|e| format!("in {services:?}: {e}"))?;
        if !names.iter().any(|n| n == service) {
            names.push(service.to_owned());
        }
    }
    if names.len() > MAX_SERVICES_PER_TOKEN {
        return Err(format!(
            "{services:?} names {} services; one token may be granted at most {MAX_SERVICES_PER_TOKEN}",
            names.len()
        ));
    }
    if token.len() < 8 {
        return Err(format!(
            "the token for {services:?} is shorter than 8 characters"
        ));
    }
    Ok(ServiceToken::new(names, token))
}

impl Config {
    /// A configuration with every default, listening on a free loopback port.
    /// Used by tests and embedders.
    pub fn for_tests() -> Self {
        let mut config = Config::parse_from([
            "logs-sse-gateway",
            "--listen",
            "127.0.0.1:0",
            "--allow-anonymous",
        ]);
        config.service_tokens = vec![
            ServiceToken::new(["etl"], "etl-test-token"),
            ServiceToken::new(["faas"], "faas-test-token"),
            ServiceToken::new(["function"], "function-test-token"),
        ];
        config.admin_token = Some("admin-test-token".into());
        config
    }

    /// Every (service, token) grant, from flags and environment: a token
    /// granted several services appears once per service.
    pub fn all_service_tokens(&self) -> impl Iterator<Item = (&str, &str)> {
        self.service_tokens
            .iter()
            .chain(&self.service_tokens_env)
            .flat_map(|t| {
                t.services
                    .iter()
                    .map(move |service| (service.as_str(), t.token.as_str()))
            })
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs)
    }

    pub fn channel_idle(&self) -> Duration {
        Duration::from_secs(self.channel_idle_secs)
    }

    pub fn idempotency_ttl(&self) -> Duration {
        Duration::from_secs(self.idempotency_ttl_secs)
    }

    /// This node's name: `--node-id`, else host name and process id.
    pub fn node_name(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "gateway".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    pub fn body_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.body_idle_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_readme() {
        let c = Config::parse_from(["x"]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:3002");
        assert_eq!(c.history_size, 1000);
        assert_eq!(c.max_channels_per_stream, 64);
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert!(!c.allow_anonymous);
        assert_eq!(c.redis_url, None, "memory is the default backend");
        assert_eq!(c.redis_key_prefix, "logs-sse");
        assert_eq!(c.redis_history_ttl_secs, 86_400);
        assert_eq!(c.redis_timeout_ms, 2000);
        assert_eq!(c.redis_check_ms, 1000);
        let memo = crate::backend::idempotency::MemoLimits::default();
        assert_eq!(c.idempotency_ttl(), memo.ttl);
        assert_eq!(c.idempotency_max_keys as usize, memo.max_keys);
        assert_eq!(c.header_read_timeout_secs, 10);
        assert_eq!(c.idle_timeout_secs, 60);
        assert_eq!(c.write_timeout_secs, 30);
        assert_eq!((c.body_timeout_secs, c.body_idle_timeout_secs), (10, 5));
        assert_eq!((c.max_uri_bytes, c.max_header_bytes), (8192, 16384));
        assert_eq!(c.max_connections, None);
    }

    #[test]
    fn service_tokens_are_validated() {
        let c = Config::try_parse_from([
            "x",
            "--service-token",
            "etl=abcdefgh",
            "--service-token",
            "faas=12345678",
        ])
        .unwrap();
        assert_eq!(c.service_tokens.len(), 2);
        let err = Config::try_parse_from(["x", "--service-token", "etl"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SERVICE=TOKEN"), "{err}");
        let err = Config::try_parse_from(["x", "--service-token", "e tl=abcdefgh"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("service contains ' '"), "{err}");
        let err = Config::try_parse_from(["x", "--service-token", "etl=short"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shorter than 8"), "{err}");
    }

    #[test]
    fn one_token_may_be_granted_several_services() {
        let c = Config::try_parse_from([
            "x",
            "--service-token",
            "faas+function=faas-token-1",
            "--service-token",
            "etl=etl-token-1",
            "--service-token",
            "etl+etl=etl-token-2",
        ])
        .unwrap();
        assert_eq!(
            c.service_tokens[0],
            ServiceToken::new(["faas", "function"], "faas-token-1")
        );
        assert_eq!(c.service_tokens[2].services, ["etl"], "named once");
        assert_eq!(
            c.all_service_tokens().collect::<Vec<_>>(),
            [
                ("faas", "faas-token-1"),
                ("function", "faas-token-1"),
                ("etl", "etl-token-1"),
                ("etl", "etl-token-2"),
            ]
        );
        for (bad, says) in [
            ("faas+=faas-token-1", "in \"faas+\""),
            ("+faas=faas-token-1", "in \"+faas\""),
            ("faas+fun ction=faas-token-1", "contains ' '"),
            ("faas,function=faas-token-1", "contains ','"),
        ] {
            let err = Config::try_parse_from(["x", "--service-token", bad])
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let many = (0..=MAX_SERVICES_PER_TOKEN)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join("+");
        let err = Config::try_parse_from(["x", "--service-token", &format!("{many}=faas-token-1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 32"), "{err}");
    }
}

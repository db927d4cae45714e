//! Configuration from the environment. A test binary of its own, because it
//! sets process environment variables.

use clap::Parser;
use logs_sse_gateway::Config;

#[test]
fn service_tokens_and_limits_come_from_the_environment() {
    std::env::set_var(
        "LOGS_SSE_SERVICE_TOKENS",
        "etl=etl-env-token,faas+function=faas-env-token",
    );
    std::env::set_var("LOGS_SSE_HISTORY_SIZE", "42");
    std::env::set_var("LOGS_SSE_CORS_ORIGINS", "http://a.example,http://b.example");
    let config = Config::try_parse_from([
        "logs-sse-gateway",
        "--service-token",
        "function=fn-flag-token",
    ])
    .expect("valid");
    let tokens: Vec<_> = config.all_service_tokens().collect();
    assert_eq!(
        tokens,
        vec![
            ("function", "fn-flag-token"),
            ("etl", "etl-env-token"),
            ("faas", "faas-env-token"),
            ("function", "faas-env-token"),
        ]
    );
    assert_eq!(config.history_size, 42);
    assert_eq!(
        config.cors_origins,
        vec!["http://a.example", "http://b.example"]
    );

    std::env::set_var("LOGS_SSE_SERVICE_TOKENS", "etl");
    let error = Config::try_parse_from(["logs-sse-gateway"]).expect_err("malformed env is refused");
    assert!(error.to_string().contains("SERVICE=TOKEN"), "{error}");
}

//! Handlers through `tower::ServiceExt::oneshot`: every error status, the
//! stream's headers and keep-alives under paused time, health, stats,
//! metrics and CORS.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use logs_sse_gateway::{app, AppState, Config};
use serde_json::{json, Value};
use tower::ServiceExt;

const ETL: &str = "Bearer etl-test-token";

fn router_with(configure: impl FnOnce(&mut Config)) -> (Router, AppState) {
    let mut config = Config::for_tests();
    configure(&mut config);
    let state = AppState::new(config).expect("valid config");
    (app(state.clone()), state)
}

fn router() -> Router {
    router_with(|_| {}).0
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

fn publish(auth: Option<&str>, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post("/api/logs/publish");
    if let Some(auth) = auth {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder.body(body.into()).unwrap()
}

/// A body-less GET request.
fn get(uri: impl AsRef<str>) -> Request<Body> {
    Request::get(uri.as_ref()).body(Body::empty()).unwrap()
}

fn item(service: &str, workspace: &str, workflow: &str) -> Value {
    json!({"service": service, "workspace_id": workspace, "workflow_id": workflow, "logData": {"message": "m"}})
}

#[tokio::test]
async fn publish_errors_name_the_problem() {
    let r = router();
    let ok = item("etl", "ws1", "wf1").to_string();
    let json = Some("application/json");
    let cases: Vec<(Request<Body>, u16, &str)> = vec![
        (publish(None, json, ok.clone()), 401, "missing_token"),
        (publish(Some("Bearer wrong-token"), json, ok.clone()), 401, "unknown_token"),
        (publish(Some("Bearer faas-test-token"), json, ok.clone()), 403, "forbidden_service"),
        (publish(Some(ETL), Some("text/plain"), ok.clone()), 415, "unsupported_media_type"),
        (publish(Some(ETL), Some("application/x-www-form-urlencoded"), ok.clone()), 415, "unsupported_media_type"),
        (publish(Some(ETL), json, "{not json"), 400, "invalid_json"),
        (publish(Some(ETL), json, "\"a string\""), 400, "invalid_body"),
        (publish(Some(ETL), json, ""), 400, "empty_body"),
        (publish(Some(ETL), json, json!({"service": "etl", "workflow_id": "w", "logData": 1}).to_string()), 400, "missing_field"),
        (publish(Some(ETL), json, item("etl", "ws 1", "wf").to_string()), 400, "invalid_segment"),
        (publish(Some(ETL), json, item("etl", "ws1", "wf:1").to_string()), 400, "invalid_segment"),
        (publish(Some(ETL), json, "x".repeat(2 * 1024 * 1024)), 413, "body_too_large"),
        (publish(Some(ETL), json, json!((0..1001).map(|_| item("etl", "w", "f")).collect::<Vec<_>>()).to_string()), 413, "batch_too_large"),
        (publish(Some(ETL), json, json!({"service": "etl", "workspace_id": "w", "workflow_id": "f", "logData": "x".repeat(70_000)}).to_string()), 413, "log_too_large"),
    ];
    for (request, status, code) in cases {
        let (got, body) = send(&r, request).await;
        assert_eq!(
            (got.as_u16(), body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn oversized_body_without_content_length_is_refused() {
    let r = router();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let (status, body) = send(&r, publish(Some(ETL), Some("application/json"), body)).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
}

#[tokio::test]
async fn a_batch_says_exactly_what_was_accepted_and_rejected() {
    let r = router();
    let batch = json!([
        item("etl", "ws1", "wf1"),
        item("faas", "ws1", "wf1"),
        item("etl", "ws!", "wf1"),
        item("etl", "ws1", "wf2")
    ]);
    let (status, body) = send(
        &r,
        publish(Some(ETL), Some("application/json"), batch.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(2))
    );
    let accepted: Vec<_> = body["cursors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(accepted, vec![0, 3]);
    assert_eq!(body["cursors"][1]["channel"], "logs:etl:ws1:wf2");
    let rejected: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(rejected, vec![(1, 403), (2, 400)]);

    let all_bad = json!([item("faas", "ws1", "wf1"), item("etl", "ws!", "wf1")]);
    let (status, body) = send(&r, publish(Some(ETL), None, all_bad.to_string())).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (400, Some("all_rejected"))
    );
    assert_eq!(body["rejected"], 2);
}

#[tokio::test]
async fn ndjson_batches_are_accepted() {
    let r = router();
    let body = format!(
        "{}\n{}\n\n{}\n",
        item("etl", "w", "a"),
        item("etl", "w", "b"),
        item("etl", "w", "c")
    );
    let (status, body) = send(&r, publish(Some(ETL), Some("application/x-ndjson"), body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["accepted"], 3);
    let seqs: Vec<u64> = body["cursors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["cursor"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn stream_rejects_bad_queries_with_json() {
    let r = router_with(|c| c.max_channels_per_stream = 3).0;
    for (query, code) in [
        ("", "missing_channels"),
        ("channels=", "missing_channels"),
        ("channels=logs:etl", "invalid_channel"),
        ("channels=logs:etl:ws1:wf1:extra", "invalid_channel"),
        ("channels=logs:etl:ws%201", "invalid_channel"),
        (
            "channels=logs:a:b,logs:a:c,logs:a:d,logs:a:e",
            "too_many_channels",
        ),
        ("channels=logs:a:b&since=logs:a:b@nope", "invalid_cursor"),
        ("channels=logs:a:b&since=logs:a:c@1-1", "invalid_since"),
    ] {
        let request = get(format!("/api/logs/stream?{query}"));
        let (status, body) = send(&r, request).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}: {body}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn stream_sends_headers_retry_hint_and_keep_alives() {
    let (r, _) = router_with(|c| {
        c.heartbeat_secs = 15;
        c.retry_ms = 3000;
    });
    let request = get("/api/logs/stream?channels=logs:etl:ws1:wf1");
    let response = r.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    let mut body = response.into_body();
    let mut text = String::new();
    for _ in 0..3 {
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        text.push_str(std::str::from_utf8(&frame).unwrap());
    }
    assert!(text.starts_with("retry: 3000\n\nevent: hello\n"), "{text}");
    assert!(text.contains(
        "event: status\ndata: {\"channel\":\"logs:etl:ws1:wf1\",\"status\":\"subscribed\""
    ));
    // Nothing else is due before the heartbeat interval.
    let early = tokio::time::timeout(Duration::from_secs(14), body.frame()).await;
    assert!(early.is_err(), "no frame before the heartbeat");
    let frame = tokio::time::timeout(Duration::from_secs(2), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        frame.into_data().unwrap(),
        ": keep-alive\nevent: ping\ndata: {}\n\n"
    );
}

#[tokio::test]
async fn health_reports_liveness_and_readiness() {
    let (r, state) = router_with(|_| {});
    let (status, body) = send(&r, get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["live"].as_bool(), body["ready"].as_bool()),
        (Some(true), Some(true))
    );
    state.shutdown_token().cancel();
    let (status, body) = send(&r, get("/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    let (status, body) = send(&r, get("/api/logs/stream?channels=logs:a:b")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("shutting_down"))
    );
}

#[tokio::test]
async fn admin_stats_need_the_admin_token_and_count_traffic() {
    let r = router();
    let stats = |auth: Option<&str>| {
        let mut b = Request::get("/admin/logs/stats");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(send(&r, stats(None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&r, stats(Some(ETL))).await.0, StatusCode::UNAUTHORIZED);
    send(
        &r,
        publish(Some(ETL), None, item("etl", "w", "a").to_string()),
    )
    .await;
    send(&r, publish(Some(ETL), None, "{")).await;
    let (status, body) = send(&r, stats(Some("Bearer admin-test-token"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["publishRequests"].as_u64(),
            body["publishRejectedRequests"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(body["logsPublished"], 1);
    assert_eq!(body["channels"], 2, "resource and service-level channel");
    assert_eq!(body["history"]["entries"], 2);
    for key in [
        "connections",
        "deliveries",
        "slowConsumerDisconnects",
        "uptimeSecs",
        "rates",
    ] {
        assert!(body.get(key).is_some(), "stats lack {key}: {body}");
    }

    let (r, _) = router_with(|c| c.admin_token = None);
    let (status, body) = send(&r, stats(Some("Bearer anything"))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_disabled"))
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_behind_the_admin_token() {
    let r = router();
    send(
        &r,
        publish(Some(ETL), None, item("etl", "w", "a").to_string()),
    )
    .await;
    let metrics = |auth: Option<&str>| {
        let mut b = Request::get("/metrics");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(send(&r, metrics(None)).await.0, StatusCode::UNAUTHORIZED);
    let response = r
        .clone()
        .oneshot(metrics(Some("Bearer admin-test-token")))
        .await
        .unwrap();
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("logs_sse_logs_published_total 1"), "{text}");
    assert!(text.contains("logs_sse_channels 2"), "{text}");
    assert!(text.contains("logs_sse_open_streams 0"), "{text}");

    let (public, _) = router_with(|c| c.public_metrics = true);
    assert_eq!(send(&public, metrics(None)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn cors_allows_listed_origins_with_credentials() {
    let (r, _) = router_with(|c| c.cors_origins = vec!["http://localhost:5173".into()]);
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/api/logs/publish")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let ok = r
        .clone()
        .oneshot(preflight("http://localhost:5173"))
        .await
        .unwrap();
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:5173"
    );
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    let denied = r.oneshot(preflight("http://evil.example")).await.unwrap();
    assert!(denied
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());

    let mut config = Config::for_tests();
    config.cors_origins = vec!["not an origin".into()];
    assert!(AppState::new(config).is_err());
}

#[tokio::test]
async fn a_static_app_is_served_with_index_html_for_client_routes() {
    let dir = std::env::temp_dir().join(format!("logs-sse-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>demo</title>").unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log(1)").unwrap();
    let (r, _) = router_with(|c| c.static_dir = Some(dir.clone()));
    for (path, expected) in [
        ("/", "<!doctype html><title>demo</title>"),
        ("/assets/app.js", "console.log(1)"),
        ("/indata/logs", "<!doctype html><title>demo</title>"),
    ] {
        let (status, body) = send(&r, get(path)).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, Some(expected)),
            "{path}"
        );
    }
    // The API keeps its own answers.
    let (status, body) = send(&r, get("/api/logs/stream")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_channels"))
    );
    std::fs::remove_dir_all(dir).ok();
}
